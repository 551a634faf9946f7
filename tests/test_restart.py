"""Restart survival: the job table on disk, re-adoption, and no orphaned TensorBoard."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import JupyterServerProcess, group_pids, pid_alive, write_scalars
from orphans import record_for, start_orphan

from jupyter_forgather_tb.common.options import LaunchOptions
from jupyter_forgather_tb.server.host.procfs import process_identity
from jupyter_forgather_tb.server.jobs.job import new_job_id
from jupyter_forgather_tb.server.jobs.state import save_state


def _socket_of(server, job_id):
    state_file = next((server.runtime / "forgather-tb").glob("jobs-*.json"))
    records = json.loads(state_file.read_text())["jobs"]
    return next(r["unix_socket"] for r in records if r["id"] == job_id)


@pytest.fixture
def server_dirs(tmp_path):
    root, runtime = tmp_path / "root", tmp_path / "runtime"
    write_scalars(root / "logs" / "run1", "loss", [1.0, 0.5])
    runtime.mkdir()
    return root, runtime


def test_killed_server_leaves_no_tensorboard_and_restart_reports_it_lost(server_dirs):
    server = JupyterServerProcess(*server_dirs)
    server.start()
    try:
        job = server.call("POST", "jobs", {"logdir": "logs"})
        job = server.wait_status(job["id"], "running")
        socket_path = _socket_of(server, job["id"])
        assert os.path.exists(socket_path)
        server.stop(signal.SIGKILL)
        deadline = time.monotonic() + 10
        while group_pids(job["pid"]):
            assert time.monotonic() < deadline, "TensorBoard outlived its killed server"
            time.sleep(0.1)
        server.start()
        after = server.call("GET", f"jobs/{job['id']}")
        assert after["status"] == "lost"
        assert "stopped while this job was live" in after["error"]
        # The dead server's private socket directory does not pile up in /tmp.
        assert not os.path.exists(os.path.dirname(socket_path))
    finally:
        server.stop(signal.SIGKILL)


def test_clean_shutdown_stops_and_records_every_job(server_dirs):
    server = JupyterServerProcess(*server_dirs)
    server.start()
    try:
        job = server.wait_status(server.call("POST", "jobs", {"logdir": "logs"})["id"], "running")
        server.stop(signal.SIGTERM)
        assert group_pids(job["pid"]) == []
        server.start()
        after = server.call("GET", f"jobs/{job['id']}")
        assert after["status"] == "killed"
        assert after["error"] == "the Jupyter server stopped"
    finally:
        server.stop(signal.SIGKILL)


@pytest.fixture
def orphan(tb_config, jp_root_dir, jp_base_url, tmp_path):
    """A TensorBoard left running by a previous server, recorded in the state file."""
    logdir = write_scalars(jp_root_dir / "logs" / "run1", "loss", [3.0, 2.0]).parent
    left = start_orphan(logdir, jp_base_url)
    record = {**left.record, "report_file": os.path.join(left.run_dir, f"{left.record['id']}.json")}
    state_file = tmp_path / "state" / "jobs.json"
    save_state(str(state_file), [record])
    tb_config["state_file"] = str(state_file)
    yield record
    left.stop()


async def test_restart_re_adopts_a_tensorboard_that_still_runs(orphan, api):
    job = await api.wait_status(orphan["id"], "running", timeout=15)
    assert job["adopted"] is True and job["pid"] == orphan["pid"]
    assert job["loader"] == orphan["loader"]  # kept in the state file
    response = await api.proxied(
        job["id"], "data/plugin/scalars/scalars", params={"run": "run1", "tag": "loss"}
    )
    assert [v for _, _, v in json.loads(response.body)] == [3.0, 2.0]
    output = await api.json("GET", "jobs", job["id"], "output")
    assert orphan["log_file"] is None  # as records may be: its earlier output is gone
    assert "output from before the server restarted is unavailable" in output["text"]
    killed = await api.kill(job["id"])
    assert killed["status"] == "killed"
    assert group_pids(orphan["pid"]) == []


@pytest.fixture
def suspended_without_log_file(tb_config, jp_root_dir, jp_base_url, tmp_path):
    """A state file holding a suspended job whose record names no log file."""
    logdir = write_scalars(jp_root_dir / "logs" / "run1", "loss", [3.0, 2.0]).parent
    options = LaunchOptions(logdir=str(logdir), window_title="logs")
    record = record_for(
        new_job_id(),
        options,
        jp_base_url,
        status="suspended",
        suspended_at="2026-12-01T10:00:00+00:00",
        log_file=None,
    )
    state_file = tmp_path / "state" / "jobs.json"
    save_state(str(state_file), [record])
    tb_config.update(state_file=str(state_file), suspend_after=600)
    return record


async def test_a_restored_job_without_a_log_file_runs_says_so_and_stops_cleanly(
    suspended_without_log_file, api
):
    job_id = suspended_without_log_file["id"]
    await api.json("POST", "jobs", job_id, "resume", expect=200)
    await api.wait_status(job_id, "running")
    killed = await api.kill(job_id)
    assert (killed["status"], killed["error"]) == ("killed", None)
    output = await api.json("GET", "jobs", job_id, "output")
    assert "output is not saved: its record names no log file" in output["text"]
    assert output["complete"] is True


@pytest.fixture
def reused_pid(tb_config, tmp_path):
    """A state file naming a pid that now belongs to an unrelated process."""
    stranger = subprocess.Popen(["sleep", "600"], start_new_session=True)
    state_file = tmp_path / "state" / "jobs.json"
    identity = process_identity(stranger.pid)
    record = {
        "id": new_job_id(),
        "options": LaunchOptions(logdir=str(tmp_path), window_title="x").to_json(),
        "url": "/x/",
        "status": "running",
        "seq": 3,
        "created": None,
        "started": None,
        "ended": None,
        "pid": stranger.pid,
        "exit_code": None,
        "error": None,
        "port": None,
        "unix_socket": None,
        "log_file": None,
        "argv": [sys.executable, "-m", "jupyter_forgather_tb.runner"],
        "proc_start_time": identity[0],
    }
    save_state(str(state_file), [record])
    tb_config["state_file"] = str(state_file)
    yield record, stranger
    stranger.kill()
    stranger.wait()


async def test_restart_never_touches_a_process_that_merely_reused_the_pid(reused_pid, api):
    record, stranger = reused_pid
    job = await api.job(record["id"])
    assert job["status"] == "lost"
    assert pid_alive(stranger.pid)
    assert (await api.kill(record["id"]))["status"] == "lost"
    assert pid_alive(stranger.pid)
    # New jobs do not collide with restored ids or order.
    state = json.loads(
        Path(api.serverapp.web_app.settings["forgather_tb_manager"].settings.state_file).read_text()
    )
    assert [j["status"] for j in state["jobs"]] == ["lost"]


def test_a_dead_compare_jobs_folder_of_links_goes_with_its_run_directory(server_dirs):
    root, runtime = server_dirs
    write_scalars(root / "other" / "run2", "loss", [1.0])
    server = JupyterServerProcess(root, runtime)
    server.start()
    try:
        body = {"logdirs": {"a": "logs", "b": "other"}}
        job = server.wait_status(server.call("POST", "jobs", body)["id"], "running")
        state_file = next((runtime / "forgather-tb").glob("jobs-*.json"))
        (record,) = json.loads(state_file.read_text())["jobs"]
        tree = record["logdir_tree"]
        assert sorted(os.listdir(tree)) == ["a", "b"]
        server.stop(signal.SIGKILL)
        deadline = time.monotonic() + 10
        while group_pids(job["pid"]):
            assert time.monotonic() < deadline, "TensorBoard outlived its killed server"
            time.sleep(0.1)
        server.start()
        after = server.call("GET", f"jobs/{job['id']}")
        assert after["status"] == "lost" and after["logdirs"] == job["logdirs"]
        assert not os.path.exists(os.path.dirname(tree))  # links, socket and run directory
        assert (root / "logs" / "run1").is_dir() and (root / "other" / "run2").is_dir()
    finally:
        server.stop(signal.SIGKILL)


@pytest.fixture
def compare_orphan(tb_config, jp_root_dir, jp_base_url, tmp_path):
    """A compare job's TensorBoard left running by a previous server, with its links."""
    first = write_scalars(jp_root_dir / "x" / "run1", "loss", [3.0]).parent
    second = write_scalars(jp_root_dir / "y" / "run2", "loss", [4.0]).parent
    left = start_orphan(first, jp_base_url, compare={"a": str(first), "b": str(second)})
    state_file = tmp_path / "state" / "jobs.json"
    save_state(str(state_file), [left.record])
    tb_config["state_file"] = str(state_file)
    yield left.record
    left.stop()


async def test_restart_re_adopts_a_compare_job_and_removes_its_links_when_it_ends(
    compare_orphan, api
):
    job = await api.wait_status(compare_orphan["id"], "running", timeout=15)
    assert job["adopted"] is True and sorted(job["logdirs"]) == ["a", "b"]
    for _ in range(100):  # until its reload thread has read both folders
        runs = sorted(json.loads((await api.proxied(job["id"], "data/runs")).body))
        if len(runs) == 2:
            break
        await asyncio.sleep(0.1)
    assert runs == ["a/run1", "b/run2"]
    await api.kill(job["id"])
    assert not os.path.exists(compare_orphan["logdir_tree"])


@pytest.fixture
def gone_connection(tb_config, jp_base_url, tmp_path):
    """A previous server's table: two s3:// jobs read through a connection ``gone``, one queued
    and one ended. This server has another connection, not ``gone``.
    """
    options = LaunchOptions(logdir="s3://tb-bucket/runs", connection="gone", window_title="x")
    queued = record_for(new_job_id(), options, jp_base_url, status="queued", loader=None)
    ended = record_for(
        new_job_id(), options, jp_base_url, status="killed", exit_code=-15, loader=None
    )
    state_file = tmp_path / "state" / "jobs.json"
    save_state(str(state_file), [queued, ended])
    other = {"protocol": "s3", "endpoint_url": "http://127.0.0.1:9", "key": "k", "secret": "s"}
    tb_config.update(
        state_file=str(state_file),
        mirror_cache_dir=str(tmp_path / "cache"),
        connections={"other": other},
    )
    return queued["id"], ended["id"]


async def test_a_saved_job_whose_connection_is_no_longer_configured_fails_its_start(
    gone_connection, api
):
    queued_id, ended_id = gone_connection
    words = "connection 'gone' is not configured on this server"
    restored = await api.wait_status(queued_id, "failed", "exited", "running", timeout=30)
    assert restored["status"] == "failed" and restored["error"] == words
    assert restored["pid"] is None  # nothing was started
    relaunched = await api.json("POST", "jobs", ended_id, "relaunch", body={})
    assert relaunched["options"]["connection"] == "gone"
    relaunched = await api.wait_status(relaunched["id"], "failed", "exited", "running")
    assert relaunched["status"] == "failed" and relaunched["error"] == words
