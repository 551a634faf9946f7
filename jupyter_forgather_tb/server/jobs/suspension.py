"""Scale to zero: idle jobs give their processes back, and the next request wakes them.

A running job that no proxied request has reached for ``suspend_after`` seconds is
suspended: its processes, socket and control group go, the job stays (id, options,
URL, place in the list). A request to its URL, or ``resume``, queues it to start again
through the same scheduling as a launch. The same watch ends jobs, running or
suspended, that stay without requests for ``idle_timeout``.

Never suspended: jobs not running (queued, starting), jobs with an open output
stream, and jobs on a TCP port, which can be reached without the proxy, so that
neither their silence nor a request to them can be seen here.
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from .errors import NotSuspended
from .job import Job, JobStatus
from .lifecycle import ProcessLifecycle
from .registry import now


class Suspension(ProcessLifecycle):
    """Suspends idle jobs, ends long-idle ones, and wakes suspended jobs on demand."""

    _idle_watch: asyncio.Task[None] | None
    _background: set[asyncio.Future[Any]]  # stops and suspensions under way (kept referenced)

    def _schedule(self) -> None:
        settings = self.settings
        if self._idle_watch is None and (settings.idle_timeout > 0 or settings.suspend_after > 0):
            self._idle_watch = asyncio.ensure_future(self._watch_idle())
        super()._schedule()

    async def _watch_idle(self) -> None:
        """Every few seconds: end jobs idle for ``idle_timeout``, suspend those idle for
        ``suspend_after``."""
        idle_timeout, suspend_after = self.settings.idle_timeout, self.settings.suspend_after
        shortest = min(t for t in (idle_timeout, suspend_after) if t > 0)
        while True:
            await asyncio.sleep(max(0.2, min(shortest / 4, 30.0)))
            current = now()
            for job in self.list():
                idle = self._idle_for(job, current)
                if idle is None:
                    continue
                if idle_timeout > 0 and idle >= idle_timeout:
                    self.log.info("Stopping idle TensorBoard job %s", job.id)
                    reason = f"stopped after {idle_timeout:g} s without requests"
                    self._in_background(self.kill(job.id, reason))
                elif suspend_after > 0 and idle >= suspend_after and self._suspendable(job):
                    self._suspend(job)

    @staticmethod
    def _idle_for(job: Job, current: datetime) -> float | None:
        """Seconds since a running or suspended job last had a request (or started)."""
        if job.status not in (JobStatus.RUNNING, JobStatus.SUSPENDED):
            return None
        if job.kill_requested or job.suspend_requested:
            return None
        since = max(filter(None, (job.last_activity, job.running_since)), default=None)
        since = since or job.suspended_at
        return (current - since).total_seconds() if since else None

    @staticmethod
    def _suspendable(job: Job) -> bool:
        return (
            job.status == JobStatus.RUNNING
            and not job.options.uses_tcp
            and job.output_followers == 0
        )

    def _in_background(self, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _suspend(self, job: Job) -> None:
        """Stop a running job's processes (in the background) and keep the job, suspended.

        Marked at once, so that a request arriving meanwhile waits for the suspension
        and then wakes the job, rather than reaching a process on its way out.
        """
        self.log.info(
            "Suspending TensorBoard job %s after %g s without requests",
            job.id,
            self.settings.suspend_after,
        )
        job.suspend_requested = True
        self._in_background(self._stop_process(job, signal_it=True))

    def wake(self, job_id: str) -> Job:
        """Queue a suspended job to start again; :class:`NotSuspended` if it is not.

        It gets today's limits, or ends failed saying which one refuses it, and then
        goes through the same scheduling as a launch (``max_running``, the memory
        budget), so it may wait in the queue.
        """
        job = self.get(job_id)
        if job.status != JobStatus.SUSPENDED:
            state = "has ended" if not job.status.is_live else "is not suspended"
            raise NotSuspended(
                f"TensorBoard job {job_id} is {job.status.value}: it {state}, so there is "
                "nothing to resume"
            )
        self.log.info("Waking TensorBoard job %s", job.id)
        job.suspended_at = None
        job.wakes += 1
        job.loader = None  # its next process says again which loader it got
        if not self._requeue(job):  # today's limits refuse it: it has ended, saying why
            return job
        self._waking[job.id] = asyncio.get_running_loop().create_future()
        self._schedule()
        self._save()
        return job

    async def awake(self, job: Job) -> Job:
        """Make a job ready for a request: wake it if suspended, and wait while it starts.

        Returns once it runs or has ended, or at once while its wake waits in the queue
        (:meth:`is_waking` then says so). A job that is not waking (a new launch still
        starting, say) is returned as it is.
        """
        if job.suspend_requested:  # its processes are going: wake it once they have
            task = self._tasks.get(job.id)
            if task is not None:
                await asyncio.shield(task)
        if job.status == JobStatus.SUSPENDED:
            self.wake(job.id)
        waking = self._waking.get(job.id)
        if waking is not None and job.status == JobStatus.STARTING:
            await asyncio.shield(waking)
        return job

    def is_waking(self, job: Job) -> bool:
        """True from a wake until the job runs or ends."""
        return job.id in self._waking

    @contextmanager
    def following_output(self, job: Job) -> Iterator[None]:
        """While an output stream follows the job, it is not suspended."""
        job.output_followers += 1
        try:
            yield
        finally:
            job.output_followers -= 1

    def suspended_jobs(self) -> builtins.list[Job]:
        """The jobs that are suspended now."""
        return [job for job in self.list() if job.status == JobStatus.SUSPENDED]

    async def shutdown(self) -> None:
        """Stop watching for idle jobs, then every job's processes (see the base class)."""
        if self._idle_watch is not None:
            self._idle_watch.cancel()
        await super().shutdown()
