"""Warm starts: jobs forked by the fork server behave like plain subprocesses, and it falls back."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import JupyterServerProcess, data_server_pids, group_pids, pid_alive, write_scalars


def _cmdline(pid: int) -> bytes:
    with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
        return cmdline.read()


def _forked(pid: int) -> bool:
    return b"jupyter_forgather_tb.forkserver" in _cmdline(pid)


def _manager(api):
    return api.serverapp.web_app.settings["forgather_tb_manager"]


async def _running(api, **options):
    job = await api.launch(**{"logdir": "logs", **options})
    return await api.wait_status(job["id"], "running")


async def _warm(api):
    """Make the fork server start (with a first, plain job) and wait until it forks jobs."""
    first = await _running(api, force_new=True)
    assert not _forked(first["pid"])
    await api.kill(first["id"])
    fork_server = _manager(api).fork_server
    deadline = time.monotonic() + 60
    while fork_server.pid is None:
        assert not fork_server.failed, "the fork server failed to start"
        assert time.monotonic() < deadline, "the fork server never got ready"
        await asyncio.sleep(0.1)
    return fork_server


@pytest.fixture(params=["forked", "plain"])
def started(request, tb_config):
    """How the test's jobs start: warm through the fork server, or as plain subprocesses."""
    if request.param == "plain":
        tb_config["fork_server"] = False
    return request.param


async def _job(started, api):
    if started == "forked":
        await _warm(api)
    return await _running(api, force_new=True)


async def test_a_job_behaves_the_same_either_way(started, api, logdir):
    job = await _job(started, api)
    assert _forked(job["pid"]) is (started == "forked")
    assert os.getpgid(job["pid"]) == job["pid"]  # its own process group, as before
    response = await api.proxied(job["id"], "data/plugin/scalars/scalars?run=run1&tag=loss")
    assert response.code == 200
    assert [point[2] for point in json.loads(response.body)] == [1.0, 0.5, 0.25]
    output = await api.json("GET", "jobs", job["id"], "output")
    assert "TensorBoard serving at unix://" in output["text"]
    killed = await api.kill(job["id"])
    assert killed["status"] == "killed" and killed["exit_code"] == 0
    assert group_pids(job["pid"]) == []


async def test_a_crash_is_reported_either_way(started, api, logdir):
    job = await _job(started, api)
    os.kill(job["pid"], signal.SIGKILL)
    failed = await api.wait_status(job["id"], "failed", timeout=15)
    assert failed["error"] == "TensorBoard killed by signal SIGKILL"
    assert failed["exit_code"] == -signal.SIGKILL


async def test_a_forked_job_runs_the_rust_data_server_and_ends_it(api, logdir):
    await _warm(api)
    job = await _running(api, load_fast="true")
    assert _forked(job["pid"])
    servers = data_server_pids(job["pid"])
    assert len(servers) == 1
    deadline = time.monotonic() + 30
    while True:
        response = await api.proxied(job["id"], "data/plugin/scalars/scalars?run=run1&tag=loss")
        if response.code == 200 and len(json.loads(response.body)) == 3:
            break
        assert time.monotonic() < deadline, "the Rust loader never served the scalars"
        await asyncio.sleep(0.2)
    await api.kill(job["id"])
    assert not pid_alive(servers[0])


async def test_forked_jobs_are_independent_of_each_other(api, logdir):
    fork_server = await _warm(api)
    jobs = [await _running(api, logdir=f"logs/run{i}") for i in (1, 2)]
    assert all(_forked(job["pid"]) for job in jobs)
    await api.kill(jobs[0]["id"])
    assert (await api.proxied(jobs[1]["id"], "data/environment")).code == 200
    assert pid_alive(fork_server.pid)


async def test_a_dead_fork_server_ends_its_jobs_and_later_jobs_start_plain(api, logdir):
    fork_server = await _warm(api)
    job = await _running(api)
    assert _forked(job["pid"])
    os.kill(fork_server.pid, signal.SIGKILL)
    failed = await api.wait_status(job["id"], "failed", timeout=15)
    assert failed["error"] == "TensorBoard killed by signal SIGKILL"
    assert group_pids(job["pid"]) == []
    later = await _running(api, force_new=True)
    assert not _forked(later["pid"])
    assert (await api.proxied(later["id"], "data/environment")).code == 200


@pytest.fixture
def broken_fork_server(tb_config, fake_python):
    # Real Python for jobs, but the fork server itself exits at once.
    tb_config["tensorboard_python"] = fake_python(
        f'[ "$2" = jupyter_forgather_tb.forkserver ] && exit 3; exec {sys.executable} "$@"'
    )


async def test_a_fork_server_that_cannot_start_leaves_plain_starts(broken_fork_server, api, logdir):
    first = await _running(api, force_new=True)
    fork_server = _manager(api).fork_server
    deadline = time.monotonic() + 30
    while not fork_server.failed:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    second = await _running(api, force_new=True)
    assert not _forked(first["pid"]) and not _forked(second["pid"])
    assert (await api.proxied(second["id"], "data/environment")).code == 200


def test_killed_server_leaves_neither_forked_jobs_nor_the_fork_server(tmp_path):
    root, runtime = tmp_path / "root", tmp_path / "runtime"
    write_scalars(root / "logs" / "run1", "loss", [1.0, 0.5])
    runtime.mkdir()
    server = JupyterServerProcess(root, runtime).start()
    try:
        deadline = time.monotonic() + 60
        while True:  # the first job starts plain; later ones fork once the server is warm
            job = server.wait_status(
                server.call("POST", "jobs", {"logdir": "logs", "force_new": True})["id"], "running"
            )
            if _forked(job["pid"]):
                break
            assert time.monotonic() < deadline, "no job was ever forked"
            time.sleep(0.5)
        fork_server_pid = _parent(job["pid"])
        server.stop(signal.SIGKILL)
        deadline = time.monotonic() + 10
        while group_pids(job["pid"]) or pid_alive(fork_server_pid):
            assert time.monotonic() < deadline, "a forked job or the fork server outlived Jupyter"
            time.sleep(0.1)
    finally:
        server.stop(signal.SIGKILL)


def _parent(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[1])


def test_the_warm_up_imports_the_profile_plugin_so_forked_jobs_need_not():
    """The Profile plugin's module (0.26 s to import) is imported once, before any fork."""
    pytest.importorskip("xprof", reason="the test extra installs xprof; make test-lowest does not")
    code = (
        "import json, sys; from jupyter_forgather_tb.job import forkserver as f; f._warm_up(); "
        "print(json.dumps([m for m in f.PLUGIN_MODULES if m in sys.modules]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(done.stdout.splitlines()[-1]) == ["xprof.profile_plugin"]
