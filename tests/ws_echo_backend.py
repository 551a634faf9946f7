"""Stands in for TensorBoard where TensorBoard cannot show what a test checks.

TensorBoard serves no websocket, does not reveal the headers it received, and cannot
be made to send a body over 100 MB, hold a response half-sent or break one off.
This backend takes the runner's command line, listens on its Unix socket or
TCP port (reporting the address it bound, as the runner does), answers 200 at the
path prefix (so the job becomes running), echoes websocket messages at ``<prefix>/echo``,
shows the request it got at ``<prefix>/seen`` (over a websocket: ``ws-seen``),
answers with a header its Connection header lists at ``hop``, redirects to any
``Location`` at ``redirect?to=``, and serves the
bodies the streaming tests need (``big``, ``drip`` and ``release``, ``broken``).
"""

import argparse
import asyncio
import hashlib
import json
import os
import re
import sys
from urllib.parse import quote

from tornado import httpserver, netutil, web, websocket


class Index(web.RequestHandler):
    def get(self):
        self.write("echo backend")


def seen(request) -> dict:
    """What reached the backend, so tests can check what the proxy forwards."""
    return {
        "headers": dict(request.headers),
        "query": request.query,
        "body": request.body.decode("latin1"),
    }


class Seen(web.RequestHandler):
    def get(self):
        self.write(seen(self.request))

    post = get


class WsSeen(websocket.WebSocketHandler):
    def open(self):
        self.write_message(json.dumps(seen(self.request)))


class Hop(web.RequestHandler):
    """An answer whose Connection header lists ``X-Hop``, written raw (tornado would
    replace that Connection header)."""

    async def get(self):
        stream = self.detach()
        await stream.write(
            b"HTTP/1.1 200 OK\r\nConnection: close, X-Hop\r\nX-Hop: 1\r\nX-Kept: 1\r\n"
            b"Content-Length: 2\r\n\r\nok"
        )
        stream.close()


class Redirect(web.RequestHandler):
    """A 302 to ``?to=``, written raw: tornado would refuse some of the values tried."""

    async def get(self):
        location = self.get_argument("to", strip=False).encode()
        stream = self.detach()
        await stream.write(
            b"HTTP/1.1 302 Found\r\nLocation: " + location + b"\r\nContent-Length: 0\r\n\r\n"
        )
        stream.close()


MIB = 1024 * 1024


def big_block(index: int) -> bytes:
    """Block ``index`` (1 MiB) of the ``big`` body: different for every block."""
    return hashlib.sha256(str(index).encode()).digest() * (MIB // 32)


class Big(web.RequestHandler):
    """``?mib=N`` MiB with a Content-Length, written block by block."""

    async def get(self):
        blocks = int(self.get_argument("mib"))
        self.set_header("Content-Length", str(blocks * MIB))
        for index in range(blocks):
            self.write(big_block(index))
            await self.flush()


RELEASED = asyncio.Event()


class Drip(web.RequestHandler):
    """Sends ``first``, then waits for a request to ``release`` before ``last``."""

    async def get(self):
        self.write(b"first")
        await self.flush()
        await RELEASED.wait()
        self.write(b"last")


class Release(web.RequestHandler):
    def get(self):
        RELEASED.set()


class Broken(web.RequestHandler):
    """Sends 1 MiB of a 4 MiB answer and hangs up (``?length=0``: without a Content-Length)."""

    async def get(self):
        if self.get_argument("length") == "1":
            self.set_header("Content-Length", str(4 * MIB))
        self.write(b"x" * MIB)
        await self.flush()
        self.request.connection.stream.close()


class Echo(websocket.WebSocketHandler):
    def on_message(self, message):
        self.write_message(f"echo: {message}")


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-m")
    parser.add_argument("--unix-socket")
    parser.add_argument("--port", type=int)
    parser.add_argument("--host")
    parser.add_argument("--report-file")
    parser.add_argument("--path_prefix", required=True)
    args, _ = parser.parse_known_args([a for a in sys.argv[1:] if a != "--"])
    # Unlike werkzeug, tornado routes on the raw path, as quoted by the proxy.
    prefix = re.escape(quote(args.path_prefix, safe="/"))
    app = web.Application(
        [
            (rf"{prefix}/", Index),
            (rf"{prefix}/echo", Echo),
            (rf"{prefix}/seen", Seen),
            (rf"{prefix}/ws-seen", WsSeen),
            (rf"{prefix}/hop", Hop),
            (rf"{prefix}/redirect", Redirect),
            (rf"{prefix}/big", Big),
            (rf"{prefix}/drip", Drip),
            (rf"{prefix}/release", Release),
            (rf"{prefix}/broken", Broken),
        ]
    )
    server = httpserver.HTTPServer(app)
    if args.unix_socket:
        server.add_socket(netutil.bind_unix_socket(args.unix_socket, mode=0o600))
        print(f"echo backend on {args.unix_socket}", flush=True)
    else:  # a TCP port: say where it listens, as the runner does
        (listener,) = netutil.bind_sockets(args.port, args.host)
        server.add_socket(listener)
        address = {"host": listener.getsockname()[0], "port": args.port}
        report = {"name": "python", "private_network": False, "address": address}
        with open(args.report_file, "w") as report_file:
            json.dump(report, report_file)
        print(f"echo backend on {args.host} port {args.port}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    os.environ.pop("PYTHONSTARTUP", None)
    asyncio.run(main())
