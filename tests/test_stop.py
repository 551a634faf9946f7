"""How a server stops (SIGINT, SIGTERM), and what a starting server sweeps after one killed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from conftest import JupyterServerProcess, group_pids, pid_alive, write_scalars

from jupyter_forgather_tb.server.host.procfs import process_identity


def _own_memory_cgroup() -> str | None:
    """This process's cgroup v1 memory directory (test servers start in it), if writable."""
    try:
        with open("/proc/self/cgroup") as cgroup:
            lines = cgroup.read().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            directory = "/sys/fs/cgroup/memory" + path.rstrip("/")
            if os.access(os.path.join(directory, "memory.limit_in_bytes"), os.W_OK):
                return directory
    return None


_OWN = _own_memory_cgroup()
# Two or three servers per test, on a machine that may be busy.
pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def short_dir():
    """A directory with a short path (Unix socket paths must stay under 108 bytes)."""
    path = tempfile.mkdtemp(prefix="fts-", dir="/tmp")
    yield Path(path)
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def dirs(tmp_path, short_dir):
    """A root with one run, a runtime directory, and a private socket base."""
    root, runtime = tmp_path / "root", tmp_path / "runtime"
    write_scalars(root / "logs" / "run1", "loss", [1.0, 0.5])
    runtime.mkdir()
    sockets = short_dir / "s"
    sockets.mkdir(mode=0o700)
    return root, runtime, sockets


def _server(dirs) -> JupyterServerProcess:
    root, runtime, sockets = dirs
    return JupyterServerProcess(root, runtime, args=(f"--ForgatherTB.socket_dir={sockets}",))


def _records(server) -> dict[str, dict]:
    state_file = next((server.runtime / "forgather-tb").glob("jobs-*.json"))
    return {record["id"]: record for record in json.loads(state_file.read_text())["jobs"]}


def _parent_cgroup(pid: int) -> str | None:
    return os.path.join(_OWN, f"forgather-tb-{pid}") if _OWN else None


def _run_job(server) -> dict:
    job = server.call("POST", "jobs", {"logdir": "logs"})
    return server.wait_status(job["id"], "running")


def _wait_gone(pids: list[int]) -> None:
    deadline = time.monotonic() + 15
    while any(pid_alive(pid) for pid in pids):
        assert time.monotonic() < deadline, "processes outlived their server"
        time.sleep(0.1)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signalled_server_ends_its_jobs_and_leaves_nothing_behind(dirs, sig):
    server = _server(dirs)
    server.start()
    try:
        job = _run_job(server)
        pids = group_pids(job["pid"])
        record = _records(server)[job["id"]]
        socket_dir = os.path.dirname(record["unix_socket"])
        assert os.path.isdir(socket_dir)
        # The server's own groups (forgather-tb-<pid>), where the machine gives it some.
        groups = {os.path.dirname(os.path.dirname(f)) for f in record["cgroup_files"] or ()}
        if _OWN:
            assert groups == {_parent_cgroup(server.proc.pid)}
        assert all(os.path.isdir(group) for group in groups)
        server.stop(sig)
        assert server.proc.returncode is not None
        _wait_gone(pids)
        record = _records(server)[job["id"]]
        assert record["status"] == "killed"
        assert record["error"] == "the Jupyter server stopped"
        assert not os.path.exists(socket_dir)
        assert not any(os.path.exists(group) for group in groups)
    finally:
        server.stop(signal.SIGKILL)


def _dead_pid() -> int:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    return gone.pid


def test_a_starting_server_sweeps_what_a_killed_server_left_and_nothing_live(dirs, tmp_path):
    root, _, sockets = dirs
    live = JupyterServerProcess(
        root, tmp_path / "live-runtime", args=(f"--ForgatherTB.socket_dir={sockets}",)
    )
    (tmp_path / "live-runtime").mkdir()
    killed = _server(dirs)
    live.start(log=tmp_path / "live.log")
    try:
        (live_dir,) = sockets.iterdir()  # the live server's run directory
        killed.start(log=tmp_path / "killed.log")
        job = _run_job(killed)
        pids = group_pids(job["pid"])
        left_dir = os.path.dirname(_records(killed)[job["id"]]["unix_socket"])
        parent = _parent_cgroup(killed.proc.pid)
        # A directory named for a server that is gone, where a TensorBoard still serves
        # (one a later server on that job table re-adopts): it stays.
        start = process_identity(os.getpid())[0]
        serving_dir = sockets / f"forgather-tb-{_dead_pid()}-{start}-abcd1234"
        serving_dir.mkdir(mode=0o700)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(serving_dir / "x.sock"))
        listener.listen()
        killed.stop(signal.SIGKILL)
        _wait_gone(pids)
        assert os.path.isdir(left_dir)
        if job["limits"]["enforced_by"] == "cgroup1":
            assert os.path.isdir(parent)
        # Another server, on another job table (so it re-adopts nothing), in the same place.
        after = JupyterServerProcess(
            root, tmp_path / "after-runtime", args=(f"--ForgatherTB.socket_dir={sockets}",)
        )
        (tmp_path / "after-runtime").mkdir()
        after.start(log=tmp_path / "after.log")
        try:
            assert not os.path.exists(left_dir)
            if parent:
                assert not os.path.exists(parent)
            assert os.path.isdir(live_dir) and os.path.isdir(serving_dir)
            listener.close()
        finally:
            after.stop(signal.SIGKILL)
    finally:
        killed.stop(signal.SIGKILL)
        live.stop(signal.SIGTERM)


def test_sigterm_during_a_sigint_shutdown_stops_once_and_cleanly(dirs, tmp_path):
    """JupyterHub sends SIGTERM when SIGINT has not stopped the server soon enough."""
    server = _server(dirs)
    log = tmp_path / "server.log"
    server.start(log=log)
    try:
        job = _run_job(server)
        pids = group_pids(job["pid"])
        server.proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 30
        while "Stopping 1 TensorBoard job(s)" not in log.read_text():
            assert time.monotonic() < deadline and server.proc.poll() is None
            time.sleep(0.02)
        server.stop(signal.SIGTERM)
        _wait_gone(pids)
        text = log.read_text()
        assert text.count("Stopping 1 TensorBoard job(s)") == 1
        assert "Traceback" not in text
        assert _records(server)[job["id"]]["status"] == "killed"
    finally:
        server.stop(signal.SIGKILL)
