"""Scale to zero: idle jobs give their processes back, and the next request wakes them.

A running job that no proxied request has reached for ``suspend_after`` seconds is
suspended: its processes, socket and control group go, the job stays (id, options,
URL, place in the list). A request to its URL, or ``resume``, queues it to start again
through the same scheduling as a launch (see ``JobManager.wake``). The same watch ends
jobs, running or suspended, that stay without requests for ``idle_timeout``.

Never suspended: jobs not running (queued, starting), jobs with an open output
stream, and jobs on a TCP port, which can be reached without the proxy, so that
neither their silence nor a request to them can be seen here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from .errors import NotSuspended
from .job import Job, JobStatus
from .lifecycle import Lifecycle
from .live import JobLive
from .table import now


def idle_for(job: Job, live: JobLive, current: datetime) -> float | None:
    """Seconds since a running or suspended job last had a request (or started)."""
    if job.status not in (JobStatus.RUNNING, JobStatus.SUSPENDED):
        return None
    if live.kill_requested or live.suspend_requested:
        return None
    since = max(filter(None, (job.last_activity, live.running_since)), default=None)
    since = since or job.suspended_at
    return (current - since).total_seconds() if since else None


def suspendable(job: Job, live: JobLive) -> bool:
    """True if the job may be suspended: it runs, on a Unix socket, with no output stream."""
    return (
        job.status == JobStatus.RUNNING and not job.options.uses_tcp and live.output_followers == 0
    )


class IdleWatch:
    """Suspends idle jobs, ends long-idle ones, and wakes suspended jobs on demand."""

    def __init__(self, lifecycle: Lifecycle, kill: Callable[[str, str], Coroutine[Any, Any, Job]]):
        self.lifecycle = lifecycle
        self.settings = lifecycle.settings
        self.table = lifecycle.table
        self.log = lifecycle.log
        self.kill = kill
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start watching, once, if either timeout is set (the event loop runs by now)."""
        settings = self.settings
        if self._task is None and (settings.idle_timeout > 0 or settings.suspend_after > 0):
            self._task = asyncio.ensure_future(self._watch())

    def close(self) -> None:
        """Stop watching."""
        if self._task is not None:
            self._task.cancel()

    async def _watch(self) -> None:
        """Every few seconds: end jobs idle for ``idle_timeout``, suspend the others idle
        for ``suspend_after``."""
        idle_timeout, suspend_after = self.settings.idle_timeout, self.settings.suspend_after
        shortest = min(t for t in (idle_timeout, suspend_after) if t > 0)
        while True:
            await asyncio.sleep(max(0.2, min(shortest / 4, 30.0)))
            current = now()
            for job in self.table.list():
                live = self.table.live(job)
                idle = idle_for(job, live, current)
                if idle is None:
                    continue
                if idle_timeout > 0 and idle >= idle_timeout:
                    self.log.info("Stopping idle TensorBoard job %s", job.id)
                    reason = f"stopped after {idle_timeout:g} s without requests"
                    self.lifecycle.in_background(self.kill(job.id, reason))
                elif suspend_after > 0 and idle >= suspend_after and suspendable(job, live):
                    self.suspend(job)

    def suspend(self, job: Job) -> None:
        """Stop a running job's processes (in the background) and keep the job, suspended.

        Marked at once, so that a request arriving meanwhile waits for the suspension
        and then wakes the job, rather than reaching a process on its way out.
        """
        self.log.info(
            "Suspending TensorBoard job %s after %g s without requests",
            job.id,
            self.settings.suspend_after,
        )
        self.table.live(job).suspend_requested = True
        self.lifecycle.in_background(self.lifecycle.stop(job, signal_it=True))

    def wake(self, job: Job) -> Job:
        """Queue a suspended job to start again; :class:`NotSuspended` if it is not.

        It gets today's limits, or ends failed saying which one refuses it, and then
        goes through the same scheduling as a launch (``max_running``, the memory
        budget), so it may wait in the queue.
        """
        if job.status != JobStatus.SUSPENDED:
            state = "has ended" if not job.status.is_live else "is not suspended"
            raise NotSuspended(
                f"TensorBoard job {job.id} is {job.status.value}: it {state}, so there is "
                "nothing to resume"
            )
        self.log.info("Waking TensorBoard job %s", job.id)
        job.suspended_at = None
        job.wakes += 1
        job.loader = None  # its next process says again which loader it got
        if not self.lifecycle.requeue(job):  # today's limits refuse it: it has ended, saying why
            return job
        self.lifecycle.waking[job.id] = asyncio.get_running_loop().create_future()
        self.start()
        self.lifecycle.schedule()
        self.table.save()
        return job

    async def awake(self, job: Job) -> Job:
        """Make a job ready for a request: wake it if suspended, and wait while it starts.

        Returns once it runs or has ended, or at once while its wake waits in the queue
        (``JobManager.is_waking`` then says so). A job that is not waking (a new launch still
        starting, say) is returned as it is.
        """
        if self.table.live(job).suspend_requested:
            # Its processes are going: wake it once they have.
            task = self.lifecycle.tasks.get(job.id)
            if task is not None:
                await asyncio.shield(task)
        if job.status == JobStatus.SUSPENDED:
            self.wake(job)
        waking = self.lifecycle.waking.get(job.id)
        if waking is not None and job.status == JobStatus.STARTING:
            await asyncio.shield(waking)
        return job

    @contextmanager
    def following_output(self, job: Job) -> Iterator[None]:
        """While an output stream follows the job, it is not suspended."""
        live = self.table.live(job)
        live.output_followers += 1
        try:
            yield
        finally:
            live.output_followers -= 1
