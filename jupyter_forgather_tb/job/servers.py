"""The WSGI servers a job's TensorBoard serves with: on a Unix socket, or on a TCP port.

Both replace TensorBoard's own server. The TCP one binds exactly the address the job
was given and no other (TensorBoard's first connects to ``localhost:<port>`` to see
whether it is taken: a connection to whoever listens there), and says where it bound.
"""

from __future__ import annotations

import argparse
import errno
import os
import socket
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

from ..common.addresses import ANY_IP, bind_ip, url_host

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

LISTEN_BACKLOG = 128

#: TensorBoard's ``assets_zip_provider``: a function that opens its frontend's zip.
AssetsZipProvider = Callable[[], IO[bytes]]
#: A TensorBoard server class (tensorboard is untyped: its instances are Any to mypy).
ServerClass = Callable[..., Any]


def _listen(address: str, port: int, dual_stack: bool) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if dual_stack:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((address, port))
        sock.listen(LISTEN_BACKLOG)
    except BaseException:
        sock.close()
        raise
    return sock


def listen_tcp(host: str | None, port: int, bind_all: bool) -> socket.socket:
    """A socket listening on ``host:port``, or on every interface; raises OSError.

    ``bind_all`` listens on ``::`` for IPv6 and IPv4 alike, or on ``0.0.0.0``
    where the machine has no IPv6.
    """
    if not bind_all:
        return _listen(bind_ip(host, False), port, dual_stack=False)
    try:
        return _listen(ANY_IP, port, dual_stack=True)
    except OSError as error:
        if error.errno not in (errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL):
            raise
    return _listen("0.0.0.0", port, dual_stack=False)


class _Http11:
    """HTTP/1.1 for werkzeug's request handler: connections stay open between requests."""

    protocol_version = "HTTP/1.1"


def make_unix_server_class() -> ServerClass:
    """A TensorBoard server class serving on a Unix domain socket readable only by us."""
    from tensorboard import program
    from werkzeug import serving

    class UnixHandler(_Http11, serving.WSGIRequestHandler):
        def address_string(self) -> str:
            return "unix"

    class UnixSocketServer(serving.ThreadedWSGIServer, program.TensorBoardServer):
        """TensorBoard's WSGI app served on a Unix domain socket readable only by us."""

        daemon_threads = True

        def __init__(
            self, wsgi_app: WSGIApplication, flags: argparse.Namespace, socket_path: str
        ) -> None:
            self._flags = flags
            self._socket_path = socket_path
            if os.path.exists(socket_path):
                os.unlink(socket_path)
            old_umask = os.umask(0o177)
            try:
                super().__init__(f"unix://{socket_path}", 0, wsgi_app, UnixHandler)
            finally:
                os.umask(old_umask)
            os.chmod(socket_path, 0o600)

        def get_url(self) -> str:
            return f"unix://{self._socket_path}{self._flags.path_prefix.rstrip('/')}/"

    return UnixSocketServer


def make_tcp_server_class() -> ServerClass:
    """A TensorBoard server class serving on a socket made by :func:`listen_tcp`.

    Made with ``(wsgi_app, flags, listener)``; it owns the listener from then on.
    ``address`` is the ``(ip, port)`` it listens on.
    """
    from tensorboard import program
    from werkzeug import serving

    class TcpHandler(_Http11, serving.WSGIRequestHandler):
        pass

    class TcpServer(serving.ThreadedWSGIServer, program.TensorBoardServer):
        """TensorBoard's WSGI app served on a listening socket made beforehand."""

        daemon_threads = True

        def __init__(
            self, wsgi_app: WSGIApplication, flags: argparse.Namespace, listener: socket.socket
        ) -> None:
            self._flags = flags
            self.address: tuple[str, int] = listener.getsockname()[:2]
            ip, port = self.address
            try:
                # werkzeug serves a duplicate of the listener's descriptor.
                super().__init__(ip, port, wsgi_app, TcpHandler, fd=listener.fileno())
            finally:
                listener.close()

        def get_url(self) -> str:
            ip, port = self.address
            return f"http://{url_host(ip)}:{port}{self._flags.path_prefix.rstrip('/')}/"

    return TcpServer
