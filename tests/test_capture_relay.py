"""The way out of a job's private network for Profile captures (capture.py), for real.

A child forked from the test process starts the connector, enters a private
network as a job does (as root, or as an unprivileged user through a user
namespace), then connects to a loopback port inside: the bytes reach a server on
the machine's loopback, in the test process.
"""

from __future__ import annotations

import ctypes
import json
import os
import socket
import threading

import pytest

from jupyter_forgather_tb.job import capture, netns

NOBODY = 65534
PR_SET_DUMPABLE = 4


def _echo_server() -> tuple[socket.socket, list[bytes]]:
    """A server on the machine's loopback that answers each line with ``echo: <line>``."""
    server = socket.create_server(("127.0.0.1", 0))
    seen: list[bytes] = []

    def serve() -> None:
        with server:
            conn, _ = server.accept()
            with conn:
                line = conn.makefile("rb").readline()
                seen.append(line)
                conn.sendall(b"echo: " + line)

    threading.Thread(target=serve, daemon=True).start()
    return server, seen


def _in_a_private_child(port: int, user: int | None) -> dict:
    """Fork a child that starts the connector, enters a private network and talks to ``port``."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child's coverage is not collected
        code = 0
        try:
            os.close(read_end)
            if user is not None:
                os.setgroups([])
                os.setgid(user)
                os.setuid(user)
                ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, 1)  # as after an exec
            control, _ = capture.start_connector()
            netns.enter_private_network()
            report: dict = {"netns": os.readlink("/proc/self/ns/net")}
            try:  # nothing listens on the port in here yet
                socket.create_connection(("127.0.0.1", port), timeout=5).close()
            except ConnectionRefusedError:
                report["refused_before"] = True
            capture.Forwarder(control).open(["127.0.0.1"], port)
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(b"hello from inside\n")
                sock.shutdown(socket.SHUT_WR)
                report["answer"] = sock.makefile("rb").read().decode()
            os.write(write_end, json.dumps(report).encode())
        except BaseException as error:
            os.write(write_end, json.dumps({"error": repr(error)}).encode())
            code = 1
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end) as reports:
        report = json.loads(reports.read() or '{"error": "no report"}')
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0, report
    return report


@pytest.mark.parametrize("user", [None, NOBODY], ids=["root", "unprivileged"])
def test_a_loopback_port_inside_reaches_the_machines_loopback(user):
    if user is not None and os.geteuid() != 0:
        pytest.skip("needs root to become an unprivileged user")
    server, seen = _echo_server()
    port = server.getsockname()[1]
    report = _in_a_private_child(port, user)
    assert report["netns"] != os.readlink("/proc/self/ns/net")
    assert report["refused_before"] is True
    assert report["answer"] == "echo: hello from inside\n"
    assert seen == [b"hello from inside\n"]


def test_the_connector_connects_only_to_loopback_addresses():
    server, seen = _echo_server()
    control, pid = capture.start_connector()
    try:
        control.send(json.dumps({"ips": ["192.0.2.1"], "port": 80}).encode())
        data, fds, _, _ = socket.recv_fds(control, 4096, 1)
        assert fds == [] and "not a loopback address" in json.loads(data)["error"]
        # A loopback one is connected, and the socket handed over works.
        control.send(json.dumps({"ips": ["127.0.0.1"], "port": server.getsockname()[1]}).encode())
        data, fds, _, _ = socket.recv_fds(control, 4096, 1)
        with socket.socket(fileno=fds[0]) as sock:
            sock.sendall(b"x\n")
            assert sock.makefile("rb").readline() == b"echo: x\n"
    finally:
        capture.stop_connector(control, pid)  # returns once the connector has exited
    assert seen == [b"x\n"]


@pytest.mark.parametrize(
    ("address", "ips"),
    [
        ("localhost:9012", ["127.0.0.1", "::1"]),
        ("LocalHost:9012", ["127.0.0.1", "::1"]),
        ("grpc://localhost:9012", ["127.0.0.1", "::1"]),
        (" 127.0.0.1:6009", ["127.0.0.1"]),
        ("127.8.9.10:1", ["127.8.9.10"]),
        ("[::1]:9012", ["::1"]),
        ("10.0.0.5:9012", None),
        ("myhost:9012", None),  # a name other than localhost is not resolved
        ("localhost", None),
        ("localhost:0", None),
        ("localhost:70000", None),
        ("", None),
    ],
)
def test_only_loopback_capture_addresses_are_forwarded(address, ips):
    assert capture.loopback_ips(address) == ips
