"""Where a TensorBoard listens, and the small network checks the manager needs."""

from __future__ import annotations

import asyncio
import socket
from urllib.parse import quote

# jupyter-server-proxy quotes the backend path with this safe set; the probe
# must send the very same bytes TensorBoard will get through the proxy.
PROXY_SAFE_CHARS = ":/?#[]@!$&'()*+,;=-._~"


def port_is_free(port: int, host: str) -> bool:
    """True if a server could bind ``host:port`` now (as TensorBoard's would, reusing addresses)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port the kernel says is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


async def http_status(
    path: str,
    *,
    unix_socket: str | None = None,
    host: str | None = None,
    port: int | None = None,
    timeout: float = 2.0,
) -> int | None:
    """Status code of ``GET path`` on a Unix socket or ``host:port``, or None if unreachable.

    Hand-written on asyncio streams because tornado's HTTP client cannot reach a
    Unix socket without a custom resolver, and this probe needs only the status line.
    """
    try:
        if unix_socket:
            opening = asyncio.open_unix_connection(unix_socket)
        else:
            opening = asyncio.open_connection(host, port)
        reader, writer = await asyncio.wait_for(opening, timeout)
    except (TimeoutError, OSError):
        return None
    try:
        writer.write(
            f"GET {quote(path, safe=PROXY_SAFE_CHARS)} HTTP/1.0\r\nHost: localhost\r\n\r\n".encode()
        )
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), timeout)
        parts = line.split()
        return int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else None
    except (TimeoutError, OSError, ValueError):
        return None
    finally:
        writer.close()
