"""A job's private network namespace (netns.py), set up for real in forked children.

The children are forked from the test process (not started as new programs) so an
unprivileged user can run them even where it could not read this interpreter.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest

from jupyter_forgather_tb.job import netns, runner

NOBODY = 65534
PR_SET_DUMPABLE = 4


def _inside(mode: str, directory: str) -> dict:
    """In the child: enter a private network and report what it sees from inside."""
    if mode in ("threaded", "undumpable"):
        if mode == "threaded":  # a user namespace refuses a multithreaded caller
            threading.Thread(target=threading.Event().wait, daemon=True).start()
        with contextlib.redirect_stderr(io.StringIO()) as err:
            entered = runner._enter_private_network()
        # Still itself: in its old network, and able to create files.
        with open(os.path.join(directory, "made-after"), "w"):
            pass
        netns_now = os.readlink("/proc/self/ns/net")
        return {"entered": entered, "stderr": err.getvalue(), "netns": netns_now}
    note = netns.enter_private_network()
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    socket.create_connection(("127.0.0.1", port), timeout=5).close()  # loopback works
    routes = None
    if shutil.which("ip"):
        command = ["ip", "-d", "route", "show", "table", "local"]
        routes = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    with open(os.path.join(directory, "made-inside"), "w"):
        pass
    report = {"note": note, "port": port, "routes": routes}
    report["netns"] = os.readlink("/proc/self/ns/net")
    report["_server"] = server  # kept open until the parent has tried it
    return report


class Child:
    """A forked child that runs ``_inside`` (as ``user``, if given) and waits for ``done()``."""

    def __init__(self, mode: str, directory, user: int | None = None):
        report_r, report_w = os.pipe()
        self._go_r, self._go_w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:  # pragma: no cover - the child's coverage is not collected
            code = 0
            try:
                os.close(report_r)
                if user is not None:
                    os.setgroups([])
                    os.setgid(user)
                    os.setuid(user)
                    if mode != "undumpable":
                        # As after an exec: a setuid() from root leaves /proc/self/*
                        # root's, so the user could not write its own ID maps.
                        ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, 1)
                report = _inside(mode, str(directory))
                report.pop("_server", None)  # stays open in this frame's locals
                os.write(report_w, json.dumps(report).encode() + b"\n")
            except BaseException as error:
                os.write(report_w, json.dumps({"error": repr(error)}).encode() + b"\n")
                code = 1
            finally:
                os.read(self._go_r, 1)
                os._exit(code)
        os.close(report_w)
        with os.fdopen(report_r) as reports:
            self.report = json.loads(reports.readline() or '{"error": "no report"}')

    def done(self) -> int:
        os.write(self._go_w, b"x")
        os.close(self._go_w)
        os.close(self._go_r)
        return os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])


def _check_private(child: Child) -> None:
    seen = child.report
    assert "error" not in seen, (seen, child.done())
    try:
        assert seen["note"] is None  # the quickack routes were set too
        assert seen["netns"] != os.readlink("/proc/self/ns/net")
        # The port it listens on inside is not reachable from here.
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", seen["port"]), timeout=5).close()
        if seen["routes"] is not None:
            local = [line for line in seen["routes"].splitlines() if line.startswith("local 127.")]
            assert len(local) == 2 and all("quickack 1" in line for line in local), local
    finally:
        assert child.done() == 0


@pytest.fixture
def shared_tmp():
    """A directory an unprivileged child can write in (pytest's tmp_path is private)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to become an unprivileged user")
    directory = Path(tempfile.mkdtemp())
    os.chmod(directory, 0o777)
    yield directory
    shutil.rmtree(directory)


def test_a_private_network_has_its_own_quick_loopback(tmp_path):
    _check_private(Child("plain", tmp_path))


def test_an_unprivileged_user_gets_one_through_a_user_namespace(shared_tmp):
    _check_private(Child("plain", shared_tmp, user=NOBODY))
    # Its user maps to itself: what it makes is owned as before.
    assert os.stat(shared_tmp / "made-inside").st_uid == NOBODY


@pytest.mark.parametrize(
    ("mode", "why"),
    [
        # A user namespace refuses a multithreaded caller.
        ("threaded", "unshare(CLONE_NEWUSER | CLONE_NEWNET): Invalid argument"),
        # The user namespace is made but its ID maps cannot be written: a process left
        # in it could create no file. The trial in a child keeps the job out of it.
        ("undumpable", "mapping our user into the user namespace: Permission denied"),
    ],
)
def test_a_refused_namespace_leaves_the_job_as_it_was(shared_tmp, mode, why):
    child = Child(mode, shared_tmp, user=NOBODY)
    assert child.done() == 0
    assert child.report == {
        "entered": False,
        "stderr": f"No private network for this job: {why}\n",
        "netns": os.readlink("/proc/self/ns/net"),
    }
    assert os.stat(shared_tmp / "made-after").st_uid == NOBODY
