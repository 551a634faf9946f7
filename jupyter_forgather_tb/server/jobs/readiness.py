"""Is a starting job ready, and is what answers on its address really the job?

A job on its Unix socket (in our private directory) can only be itself. A job with
a TCP port is probed only once its runner has said which address it bound and the
listening socket there is proved to be held by the job's own processes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

from ...common.addresses import bind_ip, connect_ip
from ...common.jobwire import read_report
from ...common.options import LaunchOptions
from ..host.listeners import PortCheck, check_port
from ..host.procfs import Listener
from ..host.transport import http_status, port_is_free
from .errors import PortInUse
from .job import Job
from .live import JobLive


def taken(port: int | None, listener: Listener) -> str:
    """Why a job cannot have its port, in words."""
    return f"port {port} on {listener.ip} is taken by another process of {listener.user}"


def check_port_free(options: LaunchOptions, jobs: Iterable[Job], job: Job | None = None) -> None:
    """Raise :class:`PortInUse` if the port the options ask for is taken (``job`` aside)."""
    if options.port is None:
        return
    for other in jobs:
        if other is not job and other.status.is_live and other.port == options.port:
            raise PortInUse(f"port {options.port} is already used by TensorBoard job {other.id}")
    host = "0.0.0.0" if options.bind_all else bind_ip(options.host, False)
    if not port_is_free(options.port, host):
        raise PortInUse(f"port {options.port} is already in use on this machine")


async def wait_ready(
    job: Job, live: JobLive, base_url: str, timeout: float, exited: asyncio.Future[int]
) -> bool:
    """Probe the job until it answers 200, it exits or is killed, its port is taken, or
    the timeout.

    False with ``job.error`` set when another process holds its port.
    """
    deadline = time.monotonic() + timeout
    delay = 0.02  # a warm (forked) job answers within about 0.1 s
    # A TCP job's poll reads its report and makes a trial bind until it serves: cheap
    # enough to keep at the first step, where a longer one would only add latency.
    longest = 0.02 if job.options.uses_tcp else 0.1
    while not exited.done() and not live.kill_requested:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        status = await probe(job, base_url, timeout=min(2.0, remaining))
        if status == 200:
            return True
        if job.error:
            return False
        await asyncio.wait({exited}, timeout=min(delay, max(0.0, remaining)))
        delay = min(delay * 1.5, longest)  # a 0.5 s step cost plain starts up to 0.3 s
    return False


async def probe(job: Job, base_url: str, timeout: float) -> int | None:
    """The status of the job's index page, asked of the job's own listener only.

    A Unix socket in our private directory can only be the job's. A TCP port is
    asked only once the runner has said which address it bound and that address's
    listening socket is proved to be held by the job's processes; any other listener
    on the job's address (before or after it bound) sets ``job.error`` and gets
    nothing. None: not (yet) answering.
    """
    path = f"{base_url}tb/{job.id}/"
    if not job.options.uses_tcp:
        return await http_status(path, unix_socket=job.unix_socket, timeout=timeout)
    bound = job.host or _bound_ip(job)
    check = await check_listener(job, job.pid, bound or intended_ip(job))
    if bound and check.ours and check.foreign is None:
        status = await http_status(path, host=connect_ip(bound), port=job.port, timeout=timeout)
        if status != 200:
            return status
        # Still its own after answering: it did not end and leave the port to another.
        check = await check_listener(job, job.pid, bound)
        if check.ours and check.foreign is None:
            job.host = bound
            return 200
    if check.foreign is not None:
        job.error = taken(job.port, check.foreign)
    return None


def _bound_ip(job: Job) -> str | None:
    """The IP the job's runner says it bound on the job's port, once it serves."""
    if job.report_file is None:
        return None
    address = read_report(job.report_file).address
    return address[0] if address and address[1] == job.port else None


def intended_ip(job: Job) -> str:
    """The IP a TCP job binds, as its options ask."""
    return bind_ip(job.options.host, job.options.bind_all)


async def check_listener(job: Job, pgid: int | None, ip: str) -> PortCheck:
    """Who listens on ``ip`` at the job's port (a thread reads ``/proc``)."""
    assert job.port is not None  # only jobs with a TCP port are checked
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, check_port, pgid, ip, job.port)
