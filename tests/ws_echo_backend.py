"""Stands in for TensorBoard where TensorBoard cannot show what a test checks.

TensorBoard serves no websocket and does not reveal the headers it received.
This backend takes the runner's command line, answers 200 at the path prefix
(so the job becomes running), echoes websocket messages at ``<prefix>/echo``
and shows the request it got at ``<prefix>/seen``.
"""

import argparse
import asyncio
import os
import re
import sys
from urllib.parse import quote

from tornado import httpserver, netutil, web, websocket


class Index(web.RequestHandler):
    def get(self):
        self.write("echo backend")


class Seen(web.RequestHandler):
    """Shows what reached the backend, so tests can check what the proxy forwards."""

    def get(self):
        self.write({"headers": dict(self.request.headers), "query": self.request.query})


class Echo(websocket.WebSocketHandler):
    def on_message(self, message):
        self.write_message(f"echo: {message}")


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-m")
    parser.add_argument("--unix-socket", required=True)
    parser.add_argument("--path_prefix", required=True)
    args, _ = parser.parse_known_args([a for a in sys.argv[1:] if a != "--"])
    # Unlike werkzeug, tornado routes on the raw path, as quoted by the proxy.
    prefix = re.escape(quote(args.path_prefix, safe="/"))
    app = web.Application(
        [(rf"{prefix}/", Index), (rf"{prefix}/echo", Echo), (rf"{prefix}/seen", Seen)]
    )
    server = httpserver.HTTPServer(app)
    server.add_socket(netutil.bind_unix_socket(args.unix_socket, mode=0o600))
    print(f"echo backend on {args.unix_socket}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    os.environ.pop("PYTHONSTARTUP", None)
    asyncio.run(main())
