"""One long-lived HTTP client per running TensorBoard job, for the proxy."""

from __future__ import annotations

import socket
import sys

from jupyter_server_proxy.unixsock import UnixResolver
from tornado.netutil import Resolver
from tornado.simple_httpclient import SimpleAsyncHTTPClient

from ...common.addresses import connect_ip
from ..jobs.job import Job

# Concurrent requests to one job; more wait in the client's queue (up to the connect
# timeout). TensorBoard serves each connection on its own thread.
MAX_CONCURRENT = 128


class JobResolver(Resolver):
    """Every name resolves to the address where a job with a TCP port listens.

    The TCP counterpart of jupyter-server-proxy's ``UnixResolver``: the proxy asks for
    ``localhost``, for which tornado's default resolver would run getaddrinfo on a thread
    for every request and might answer ``::1`` for a job on ``127.0.0.1`` or the other
    way round; this answers the very address the manager proved to be the job's.
    """

    def initialize(self, ip: str) -> None:
        self.ip = ip

    async def resolve(
        self, host: str, port: int, family: socket.AddressFamily = socket.AF_UNSPEC
    ) -> list[tuple[int, tuple[str, int]]]:
        family = socket.AF_INET6 if ":" in self.ip else socket.AF_INET
        return [(family, (self.ip, port))]


#: How the proxy reaches a job: ``(unix socket, ip, port)``, one of the first two set.
_Transport = tuple[str | None, str | None, int | None]


def _transport(job: Job) -> _Transport:
    if job.unix_socket:
        return job.unix_socket, None, None
    return None, backend_ip(job), job.port


def backend_ip(job: Job) -> str:
    """The address the proxy connects to for a running job with a TCP port.

    ``job.host`` is set before such a job is marked running (see ``JobManager._probe``).
    """
    return connect_ip(job.host or "")


class BackendClients:
    """Tornado HTTP clients by job id: made on a job's first proxied request, closed when it ends.

    One client per job instead of jupyter-server-proxy's one per request. Responses are
    streamed through (see ``proxy.py``), so the client's ``max_body_size`` no longer
    costs memory and is lifted: tornado's 100 MB default would turn a larger
    TensorBoard response into an error.
    """

    def __init__(self) -> None:
        self._clients: dict[str, tuple[_Transport, SimpleAsyncHTTPClient]] = {}

    def __len__(self) -> int:
        return len(self._clients)

    def client_for(self, job: Job) -> SimpleAsyncHTTPClient:
        """The job's client, made if it has none or its transport changed."""
        transport = _transport(job)
        entry = self._clients.get(job.id)
        if entry is not None and entry[0] == transport:
            return entry[1]
        self.close(job.id)
        unix_socket, ip, _ = transport
        client = SimpleAsyncHTTPClient(
            force_instance=True,
            resolver=UnixResolver(unix_socket) if unix_socket else JobResolver(ip),
            max_clients=MAX_CONCURRENT,
            max_body_size=sys.maxsize,
        )
        self._clients[job.id] = (transport, client)
        return client

    def close(self, job_id: str) -> None:
        """Close a job's client, if it has one (called when the job ends)."""
        entry = self._clients.pop(job_id, None)
        if entry is not None:
            client = entry[1]
            client.close()
            client.resolver.close()  # ours, so the client leaves it open

    def close_all(self) -> None:
        """Close every client (the server is stopping)."""
        for job_id in list(self._clients):
            self.close(job_id)
