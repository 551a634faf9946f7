"""Profile captures from inside a job's private network, to the machine's loopback.

TensorBoard's Profile plugin (xprof) captures by calling a training process's
profiler server over gRPC at the ``host:port`` the user types, usually
``localhost:9012``. In the job's own network namespace (``netns.py``) that
``localhost`` is the job's: the call finds nothing and xprof says "No trace event
was collected".

So before the job leaves the machine's network it forks a *connector*: a small
process that stays in that network and, on request, opens a TCP connection to a
loopback address there and hands the connected socket back over a socket pair
(``SCM_RIGHTS``). A socket belongs to the network namespace it was created in, so
the job can use it from inside its own. When a capture request names a loopback
``host:port``, the job first listens on that same address inside its namespace
(the :class:`Forwarder`) and relays each connection to a socket from the
connector. Captures of other hosts are refused with the reason: the namespace has
no route out, and the job is not meant to reach the network.

What this opens: nothing outside the job. The listeners are in the job's
namespace, which only the job's processes share; the connector listens on
nothing and connects only to loopback addresses, as bare TensorBoard could; the
data server's port stays unreachable from the machine.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import json
import os
import socket
import sys
import threading
from collections.abc import Iterable
from importlib.util import find_spec
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

#: xprof's capture route (and tensorboard-plugin-profile's before it), after the path prefix.
CAPTURE_PATH = "/data/plugin/profile/capture_profile"
CONNECT_TIMEOUT = 10.0
_MESSAGE_MAX = 4096
_CHUNK = 65536
_OTHER_LOOPBACK = {"127.0.0.1": "::1", "::1": "127.0.0.1"}


def profile_plugin_installed() -> bool:
    """True if a Profile plugin is installed: xprof, or tensorboard-plugin-profile before it.

    Looked up by module, not by TensorBoard's plugin entry points: a scan of every
    installed package's metadata would add a tenth of a second to each job's start.
    """
    return any(find_spec(name) for name in ("xprof", "tensorboard_plugin_profile"))


def loopback_ips(address: str) -> list[str] | None:
    """The loopback IPs a capture address ``host:port`` names, or None if it names another host.

    ``localhost`` names both ``127.0.0.1`` and ``::1``; IPv6 literals come in
    brackets (``[::1]:9012``); xprof's ``grpc://`` prefix is allowed. Names are not
    resolved: only ``localhost`` and loopback IP literals count.
    """
    host, _, port = address.strip().removeprefix("grpc://").rpartition(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        return None
    host = host.removeprefix("[").removesuffix("]")
    if host.lower() == "localhost":
        return ["127.0.0.1", "::1"]
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    return [str(ip)] if ip.is_loopback else None


def _port(address: str) -> int:
    return int(address.rpartition(":")[2])


def refusal(addresses: str) -> str:
    """What a refused capture says: why this job cannot reach ``addresses``, and what can."""
    return (
        "This TensorBoard runs in a private network (the default with the Rust loader): the "
        "Profile plugin captures only from this machine's loopback, so type localhost:PORT "
        f"for a training process on this machine. To capture from {addresses!r}, start the "
        "job with load_fast: false."
    )


# -- the connector: a process that stays in the machine's network ------------------------------


def _connect(ips: list[str], port: int) -> socket.socket:
    """A TCP connection to the first of ``ips`` that accepts; only loopback IPs are tried."""
    error: OSError = ConnectionRefusedError(errno.ECONNREFUSED, "no address to try")
    for ip in ips:
        if not ipaddress.ip_address(ip).is_loopback:
            raise PermissionError(errno.EPERM, f"{ip} is not a loopback address")
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(CONNECT_TIMEOUT)
        try:
            sock.connect((ip, port))
        except OSError as failed:
            sock.close()
            error = failed
            continue
        sock.settimeout(None)
        return sock
    raise error


def _serve_connects(control: socket.socket) -> None:
    """Answer each request ``{"ips", "port"}`` with a connected socket or ``{"error"}``."""
    while True:
        data = control.recv(_MESSAGE_MAX)
        if not data:  # the job has ended
            return
        try:
            request = json.loads(data)
            sock = _connect([str(ip) for ip in request["ips"]], int(request["port"]))
        except (OSError, ValueError, KeyError, TypeError) as error:
            control.send(json.dumps({"error": str(error)}).encode())
            continue
        with sock:
            socket.send_fds(control, [b"{}"], [sock.fileno()])


def start_connector() -> tuple[socket.socket, int]:
    """Fork the connector, here in the machine's network; return the job's end of its socket.

    And the connector's pid. The connector ends when the job's end closes (when
    the job exits, or by :func:`stop_connector`). Call before entering the
    private network, while the process has a single thread.
    """
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pid = os.fork()
    if pid == 0:  # the connector: keep only its socket, run nothing of the job's
        code = 0
        try:
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            keep = theirs.fileno()
            os.closerange(3, keep)
            os.closerange(keep + 1, os.sysconf("SC_OPEN_MAX"))
            _serve_connects(theirs)
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    theirs.close()
    return ours, pid


def stop_connector(control: socket.socket, pid: int) -> None:
    """Close the job's end of the connector's socket and wait for the connector to exit."""
    control.close()
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


# -- the job's side, inside its network ---------------------------------------------------------


class Forwarder:
    """Loopback listeners inside the job's network, relayed to the machine's through the connector.

    A listener on ``ip:port`` in here relays each connection to ``ip:port`` out
    there, or to the other loopback family's address on the same port (a server
    on ``localhost`` may listen on either). Listeners stay for the job's life.
    """

    def __init__(self, control: socket.socket):
        self._control = control
        self._control_lock = threading.Lock()
        self._listening_lock = threading.Lock()
        self._listening: set[tuple[str, int]] = set()

    def open(self, ips: Iterable[str], port: int) -> None:
        """Listen on each ``ip:port`` not yet listened on (an address in use here is skipped)."""
        for ip in ips:
            with self._listening_lock:
                if (ip, port) in self._listening:
                    continue
                try:
                    listener = socket.create_server(
                        (ip, port), family=socket.AF_INET6 if ":" in ip else socket.AF_INET
                    )
                except OSError as error:
                    if error.errno != errno.EADDRNOTAVAIL:  # no IPv6 in here is fine
                        _say(f"Profile capture: cannot listen on {ip}:{port}: {error}")
                    continue
                self._listening.add((ip, port))
            targets = [ip, _OTHER_LOOPBACK[ip]] if ip in _OTHER_LOOPBACK else [ip]
            accept = threading.Thread(target=self._accept, args=(listener, targets, port))
            accept.daemon = True
            accept.start()

    def _accept(self, listener: socket.socket, targets: list[str], port: int) -> None:
        while True:
            try:
                inner, _ = listener.accept()
            except OSError as error:  # out of file descriptors, say: the next capture retries
                _say(f"Profile capture: stopped listening on port {port}: {error}")
                with self._listening_lock:
                    self._listening.discard((targets[0], port))
                listener.close()
                return
            relay = threading.Thread(target=self._relay, args=(inner, targets, port))
            relay.daemon = True
            relay.start()

    def _outside(self, targets: list[str], port: int) -> socket.socket | None:
        try:
            with self._control_lock:
                self._control.send(json.dumps({"ips": targets, "port": port}).encode())
                data, fds, _, _ = socket.recv_fds(self._control, _MESSAGE_MAX, 1)
        except OSError as error:
            data, fds = json.dumps({"error": f"the connector has ended ({error})"}).encode(), []
        if fds:
            return socket.socket(fileno=fds[0])
        why = json.loads(data or b'{"error": "the connector has ended"}')["error"]
        _say(f"Profile capture: cannot connect to port {port} of this machine: {why}")
        return None

    def _relay(self, inner: socket.socket, targets: list[str], port: int) -> None:
        with inner:
            outer = self._outside(targets, port)
            if outer is None:
                return
            with outer:
                back = threading.Thread(target=_pump, args=(outer, inner))
                back.daemon = True
                back.start()
                _pump(inner, outer)
                back.join()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    """Copy bytes until ``source`` ends, then end ``sink``'s sending side."""
    with contextlib.suppress(OSError):
        while data := source.recv(_CHUNK):
            sink.sendall(data)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


def forward_captures(app: WSGIApplication, forwarder: Forwarder) -> WSGIApplication:
    """TensorBoard's app, with capture requests first given a way to the machine's loopback.

    A capture naming only loopback addresses gets listeners for them (see
    :class:`Forwarder`); one naming another host is refused with a 400 saying why,
    as plain text (what xprof's capture dialog shows as the error).
    """

    def app_with_captures(environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        if not environ.get("PATH_INFO", "").endswith(CAPTURE_PATH):
            return app(environ, start_response)
        query = parse_qs(environ.get("QUERY_STRING", ""))
        addresses = query.get("service_addr", [""])[0]
        named = [loopback_ips(address) for address in addresses.split(",")]
        if query.get("is_tpu_name", [""])[0] == "true" or not all(named):
            body = refusal(addresses).encode()
            headers = [("Content-Type", "text/plain; charset=utf-8")]
            start_response("400 Bad Request", [*headers, ("Content-Length", str(len(body)))])
            return [body]
        for address, ips in zip(addresses.split(","), named, strict=True):
            forwarder.open(ips or [], _port(address))
        return app(environ, start_response)

    return app_with_captures


def _say(text: str) -> None:
    sys.stderr.write(text + "\n")
