"""Every start of a job passes today's rules: wakes, relaunches, restored and re-adopted jobs.

"The administrator tightened the settings" is a real restart with other settings, the
jobs coming back from the state file; "a shared folder became a link to a private one"
is a real rename and symlink between two starts.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error

import pytest
from conftest import JupyterServerProcess, free_port, group_pids, pid_alive, write_scalars
from orphans import record_for, start_orphan

from jupyter_forgather_tb.common.options import LaunchOptions, build_argv
from jupyter_forgather_tb.server.host.listeners import listeners_on
from jupyter_forgather_tb.server.host.procfs import process_identity
from jupyter_forgather_tb.server.jobs.job import new_job_id
from jupyter_forgather_tb.server.jobs.state import save_state

MiB = 1 << 20
GiB = 1 << 30
SCALARS = "data/plugin/scalars/scalars"


def refused(server, path, body):
    """POST that the server must refuse: its status and JSON answer."""
    with pytest.raises(urllib.error.HTTPError) as caught:
        server.call("POST", path, body)
    return caught.value.code, json.loads(caught.value.read())


def loose_then_tight(tmp_path):
    """A server with no memory limits at all, and the arguments that tighten them."""
    root, runtime = tmp_path / "root", tmp_path / "runtime"
    write_scalars(root / "logs" / "run1", "loss", [3.0, 2.0])
    runtime.mkdir()
    loose = (
        "--ForgatherTB.suspend_after=2",
        "--ForgatherTB.memory_limit=0",
        "--ForgatherTB.max_memory_limit=0",
    )
    tight = (
        "--ForgatherTB.suspend_after=600",
        "--ForgatherTB.memory_limit=512M",
        "--ForgatherTB.max_memory_limit=2G",
        "--ForgatherTB.total_memory_limit=1G",
    )
    return JupyterServerProcess(root, runtime), loose, tight


@pytest.mark.timeout(300)  # two server starts and four jobs, on a shared machine
def test_jobs_saved_under_looser_limits_start_again_only_within_todays(tmp_path):
    server, loose, tight = loose_then_tight(tmp_path)
    server.start(args=loose)
    try:
        bodies = {
            "nothing asked": {"logdir": "logs"},
            "no cap": {"logdir": "logs/run1", "memory_limit": 0},
            "2 GiB": {"logdir": "logs", "memory_limit": "2G", "force_new": True},
        }
        jobs = {name: server.call("POST", "jobs", body) for name, body in bodies.items()}
        for job in jobs.values():
            assert job["limits"]["memory_bytes"] == (2 * GiB if job is jobs["2 GiB"] else None)
            server.wait_status(job["id"], "suspended", timeout=60)
        ended = server.call("POST", "jobs", {**bodies["2 GiB"], "window_title": "ended"})
        server.call("DELETE", f"jobs/{ended['id']}")
        server.stop(signal.SIGTERM)

        server.start(args=tight)
        # Asked for nothing: today's default cap.
        woken = server.call("POST", f"jobs/{jobs['nothing asked']['id']}/resume")
        assert woken["limits"]["memory_bytes"] == 512 * MiB
        assert server.wait_status(woken["id"], "running")["limits"]["memory_bytes"] == 512 * MiB
        # Asked for no cap: refused in words, as a launch would be.
        no_cap = server.call("POST", f"jobs/{jobs['no cap']['id']}/resume")
        assert no_cap["status"] == "failed"
        assert no_cap["error"].startswith("not started again: memory_limit: 0 asks for no cap")
        assert "at most 2 GiB (max_memory_limit)" in no_cap["error"]
        # Asked for more than the whole budget: it could never start, so it ends now...
        big = server.call("POST", f"jobs/{jobs['2 GiB']['id']}/resume")
        assert big["status"] == "failed" and big["queue_position"] is None
        assert "more than the memory budget of all jobs together (1 GiB" in big["error"]
        # ...and blocks no launch behind it.
        later = server.call("POST", "jobs", {"logdir": "logs/run1", "memory_limit": "256M"})
        server.wait_status(later["id"], "running")
        # A relaunch of a job saved with 2 GiB, or asking for no cap, is refused too.
        code, error = refused(server, f"jobs/{ended['id']}/relaunch", {})
        assert code == 400 and error["field"] == "memory_limit"
        assert "(1 GiB, total_memory_limit)" in error["message"]
        code, error = refused(server, f"jobs/{ended['id']}/relaunch", {"memory_limit": 0})
        assert code == 400 and "(max_memory_limit)" in error["message"]
    finally:
        server.stop(signal.SIGKILL)


@pytest.fixture
def saved_queue(tb_config, tmp_path, jp_base_url, jp_root_dir):
    """A state file of queued jobs saved under looser settings: one of 2 GiB, one on a TCP
    port, then one of 256 MiB; the server now has a 1 GiB budget and no ports."""
    logdir = write_scalars(jp_root_dir / "logs" / "run1", "loss", [4.0, 3.0]).parent
    saved = {
        "big": LaunchOptions(logdir=str(logdir), window_title="big", memory_limit=2 * GiB),
        "port": LaunchOptions(
            logdir=str(logdir), window_title="port", memory_limit=256 * MiB, port=free_port()
        ),
        "small": LaunchOptions(logdir=str(logdir), window_title="small", memory_limit=256 * MiB),
    }
    records = {
        name: record_for(
            new_job_id(),
            options,
            jp_base_url,
            status="queued",
            seq=seq,
            memory_limit=options.memory_limit,
        )
        for seq, (name, options) in enumerate(saved.items(), 1)
    }
    state_file = tmp_path / "state" / "jobs.json"
    save_state(str(state_file), list(records.values()))
    tb_config.update(
        state_file=str(state_file),
        max_memory_limit="4G",
        total_memory_limit="1G",
        allow_port=False,
    )
    return records


async def test_restored_queued_jobs_todays_settings_refuse_fail_in_words_and_hold_back_none(
    saved_queue, api
):
    big = await api.wait_status(saved_queue["big"]["id"], "failed")
    assert big["error"] == (
        "not started again: memory_limit: 2 GiB is more than the memory budget of all "
        "jobs together (1 GiB, total_memory_limit)"
    )
    port = await api.wait_status(saved_queue["port"]["id"], "failed")
    assert port["error"].startswith(
        "not started again: port: the administrator has disabled TCP ports on this server"
    )
    running = await api.wait_status(saved_queue["small"]["id"], "running")
    assert running["limits"]["memory_bytes"] == 256 * MiB


@pytest.fixture
def uncapped_orphan(tb_config, jp_root_dir, jp_base_url, tmp_path):
    """A TensorBoard left running without a memory cap by a previous server."""
    logdir = write_scalars(jp_root_dir / "logs" / "run1", "loss", [3.0, 2.0]).parent
    left = start_orphan(logdir, jp_base_url)
    record = {**left.record, "report_file": os.path.join(left.run_dir, f"{left.record['id']}.json")}
    assert record.get("memory_limit") is None
    state_file = tmp_path / "state" / "jobs.json"
    save_state(str(state_file), [record])
    tb_config.update(state_file=str(state_file), max_memory_limit="1G")
    yield record
    left.stop()


async def test_a_re_adopted_job_without_a_cap_is_held_to_todays_maximum(uncapped_orphan, api):
    job = await api.wait_status(uncapped_orphan["id"], "running", timeout=15)
    assert job["adopted"] is True and pid_alive(uncapped_orphan["pid"])
    assert job["limits"]["memory_bytes"] == GiB
    assert job["limits"]["enforced_by"] == "watchdog"


# -- log directories checked again at each start ---------------------------------------------


@pytest.fixture
def private(tmp_path):
    """A folder outside the server's root (the allowed root): someone's private runs."""
    return write_scalars(tmp_path / "private" / "secret", "loss", [42.0]).parent


def swap_for_link(folder, target):
    """Replace a folder by a symbolic link to ``target`` (the old folder moves aside)."""
    folder.rename(folder.with_name(folder.name + ".old"))
    folder.symlink_to(target, target_is_directory=True)


def outside(folder, target, field="logdir"):
    return f"{field}: {folder} now resolves to {target}, outside the allowed roots"


@pytest.mark.tb_config(suspend_after=2)
async def test_a_wake_refuses_a_log_directory_that_now_leads_outside_the_roots(
    api, logdir, private
):
    job = await api.launch(logdir="logs")
    await api.wait_status(job["id"], "running")
    await api.wait_status(job["id"], "suspended", timeout=30)
    swap_for_link(logdir, private)

    page = await api.proxied(job["id"], SCALARS, params={"run": "secret", "tag": "loss"})
    assert page.code == 503 and "42" not in page.body.decode()
    failed = await api.job(job["id"])
    assert failed["status"] == "failed" and failed["pid"] is None
    assert failed["error"] == f"not started: {outside(logdir, private)}"


async def test_a_relaunch_refuses_a_log_directory_that_now_leads_outside_the_roots(
    api, logdir, private
):
    job = await api.launch(logdir="logs")
    await api.wait_status(job["id"], "running")
    await api.kill(job["id"])
    swap_for_link(logdir, private)

    again = await api.json("POST", "jobs", job["id"], "relaunch", body={})
    failed = await api.wait_status(again["id"], "failed")
    assert failed["error"] == f"not started: {outside(logdir, private)}"
    assert failed["pid"] is None


async def test_a_compare_relaunch_checks_every_folder_and_links_to_the_resolved_one(
    api, jp_root_dir, private
):
    first = write_scalars(jp_root_dir / "a" / "lr1", "loss", [1.0]).parent
    second = write_scalars(jp_root_dir / "b" / "lr2", "loss", [2.0]).parent
    moved = write_scalars(jp_root_dir / "c" / "lr3", "loss", [3.0]).parent
    job = await api.launch(logdirs={"a": "a", "b": "b"})
    await api.wait_status(job["id"], "running")
    await api.kill(job["id"])

    swap_for_link(second, moved)  # still inside the roots: it starts, on the folder it is now
    again = await api.json("POST", "jobs", job["id"], "relaunch", body={})
    running = await api.wait_status(again["id"], "running")
    assert running["logdirs"] == {"a": str(first), "b": str(moved)}
    tree = api.serverapp.web_app.settings["forgather_tb_manager"].get(again["id"]).logdir_tree
    assert os.readlink(os.path.join(tree, "b")) == str(moved)
    await api.kill(again["id"])

    swap_for_link(first, private)  # now the other one leads outside
    last = await api.json("POST", "jobs", again["id"], "relaunch", body={})
    failed = await api.wait_status(last["id"], "failed")
    assert failed["error"] == f"not started: {outside(first, private, 'logdirs')}"


@pytest.fixture
def swapped_orphan(tb_config, jp_root_dir, jp_base_url, tmp_path, private):
    """A TensorBoard left running by a previous server on a folder since swapped for a link
    out of the allowed root."""
    logdir = write_scalars(jp_root_dir / "logs" / "run1", "loss", [3.0, 2.0]).parent
    left = start_orphan(logdir, jp_base_url)
    swap_for_link(logdir, private)
    record = {
        **left.record,
        "report_file": os.path.join(left.run_dir, f"{left.record['id']}.json"),
        "memory_limit": GiB,
    }
    state_file = tmp_path / "state" / "jobs.json"
    save_state(str(state_file), [record])
    tb_config.update(state_file=str(state_file))
    yield record, logdir
    left.stop()


async def test_a_re_adopted_job_whose_folder_now_leads_outside_the_roots_is_stopped(
    swapped_orphan, api, private
):
    record, logdir = swapped_orphan
    job = await api.wait_status(record["id"], "killed", timeout=30)
    assert job["error"] == f"stopped after a restart of the server: {outside(logdir, private)}"
    assert group_pids(record["pid"]) == []


@pytest.fixture
def port_orphan(tb_config, jp_root_dir, jp_base_url, tmp_path):
    """A TensorBoard on a TCP port left running by a previous server, which allowed ports;
    the server now has ``allow_port = False``."""
    logdir = write_scalars(jp_root_dir / "logs" / "run1", "loss", [3.0, 2.0]).parent
    job_id, port = new_job_id(), free_port()
    options = LaunchOptions(logdir=str(logdir), window_title="logs", port=port, host="127.0.0.1")
    run_dir = tempfile.mkdtemp(prefix="forgather-tb-")
    report_file = os.path.join(run_dir, f"{job_id}.json")
    argv = build_argv(
        options,
        python=sys.executable,
        path_prefix=f"{jp_base_url}tb/{job_id}",
        port=port,
        private_network=True,
        report_file=report_file,
    )
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while not listeners_on("127.0.0.1", port):
        assert time.monotonic() < deadline and proc.poll() is None, "the orphan did not start"
        time.sleep(0.05)
    record = record_for(
        job_id,
        options,
        jp_base_url,
        pid=proc.pid,
        port=port,
        host="127.0.0.1",
        argv=argv,
        report_file=report_file,
        proc_start_time=process_identity(proc.pid)[0],
        memory_limit=GiB,
    )
    state_file = tmp_path / "state" / "jobs.json"
    save_state(str(state_file), [record])
    tb_config.update(state_file=str(state_file), allow_port=False)
    yield record
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    shutil.rmtree(run_dir, ignore_errors=True)


async def test_a_re_adopted_job_on_a_port_now_forbidden_is_stopped(port_orphan, api):
    job = await api.wait_status(port_orphan["id"], "killed", timeout=30)
    assert job["error"].startswith(
        "stopped after a restart of the server: port: the administrator has disabled TCP ports"
    )
    assert group_pids(port_orphan["pid"]) == []
