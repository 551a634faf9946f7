"""The runs of all jobs: which queued job starts, each start driven to its end, and stops.

Each start is a :class:`~.run.Run`; this part decides when runs start (by the pure
:mod:`scheduling`, under today's rules from :mod:`admission`), drives each through
start, readiness and exit, stops them, and records how each job ended.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Coroutine
from typing import Any

from ...common.options import OptionError
from .admission import admit, confine
from .errors import PortInUse
from .job import Job, JobStatus
from .live import JobLive
from .mirrors import UnknownConnection
from .readiness import check_port_free
from .run import Run, RunParts, release_files, signal_group, take_report
from .scheduling import plan
from .table import JobTable, now


class Lifecycle:
    """Starts queued jobs as runs, stops them, and ends or suspends their jobs."""

    def __init__(self, table: JobTable, parts: RunParts, log: logging.Logger):
        self.table = table
        self.parts = parts
        self.settings = parts.settings
        self.log = log
        self.runs: dict[str, Run] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.waking: dict[str, asyncio.Future[None]] = {}  # woken jobs not yet running or ended
        self.end_listeners: list[Callable[[Job], None]] = []
        self._usage_watch: asyncio.Task[None] | None = None
        self._background: set[asyncio.Future[Any]] = set()  # stops under way (kept referenced)

    def schedule(self) -> None:
        """Start the queued jobs that may start now; say why the others wait."""
        if self._usage_watch is None:
            watch = self.parts.limits.watch(self._sampled, self._kill_now, self.log)
            self._usage_watch = asyncio.ensure_future(watch)
        decided = plan(
            self.table.jobs.values(), self.settings.max_running, self.settings.total_memory_limit
        )
        for job in self.table.queue():
            self.table.live(job).queue_reason = decided.waiting.get(job.id)
        for job in decided.start:
            job.status = JobStatus.STARTING
            self.tasks[job.id] = asyncio.ensure_future(self._drive(job, self._start(job)))

    def _sampled(self) -> list[tuple[Job, JobLive]]:
        """The jobs whose usage is sampled: those with a process that may run."""
        return [
            (job, self.table.live(job))
            for job in self.table.jobs.values()
            if job.status in (JobStatus.STARTING, JobStatus.RUNNING) and job.pid
        ]

    @staticmethod
    def _kill_now(job: Job) -> None:
        if job.pid:
            signal_group(job.pid, signal.SIGKILL)

    def requeue(self, job: Job) -> bool:
        """Queue a job that starts again (a wake, a restored queued job) under today's rules.

        It gets today's memory cap, niceness and CPU limit; if the rules refuse it (see
        :func:`~.admission.admit`), it ends failed, saying which rule, and False is returned.
        """
        try:
            job.memory_limit = admit(job.options, self.settings)
        except OptionError as error:
            self.finish(job, JobStatus.FAILED, f"not started again: {error}")
            return False
        job.cpu_nice = self.settings.cpu_nice
        job.cpu_limit = self.settings.cpu_limit or None
        job.status = JobStatus.QUEUED
        return True

    def adopt(self, job: Job) -> None:
        """Watch a job re-adopted after a restart until its process is gone."""
        self.parts.limits.adopt(job)
        # In runs at once: a kill may come before the watch starts.
        run = self.runs[job.id] = Run(job, self.table.live(job), self.parts)
        self.tasks[job.id] = asyncio.ensure_future(self._drive(job, self._watch_adopted(run)))

    def in_background(self, work: Coroutine[Any, Any, Any]) -> None:
        """Run a stop (or other work nobody waits for) without losing it."""
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _drive(self, job: Job, work: Coroutine[Any, Any, None]) -> None:
        """Run a job's start or watch; whatever happens, it ends and the queue moves on."""
        try:
            await work
        except Exception as error:  # a bug here must not leave a job stuck in "starting"
            self.log.exception("TensorBoard job %s crashed the manager", job.id)
            self.finish(job, JobStatus.FAILED, f"internal error: {error}")
        finally:
            self.tasks.pop(job.id, None)
            self.runs.pop(job.id, None)
            self.schedule()

    async def _start(self, job: Job) -> None:
        """Check, prepare and start a job's run, then watch it until it ends."""
        loop = asyncio.get_running_loop()
        try:  # its log directories, resolved and checked again: it reads the paths found
            job.options = await loop.run_in_executor(None, confine, job.options, self.settings)
        except OptionError as error:
            self.finish(job, JobStatus.FAILED, f"not started: {error}")
            return
        live = self.table.live(job)
        run = self.runs[job.id] = Run(job, live, self.parts)
        try:
            argv = run.prepare()
        except UnknownConnection as error:
            self.finish(job, JobStatus.FAILED, str(error))
            return
        if job.options.port is not None and not live.kill_requested:
            try:
                check_port_free(job.options, self.table.jobs.values(), job)
            except PortInUse as error:
                self.finish(job, JobStatus.FAILED, str(error))
                return
        if live.kill_requested:
            self.finish(job, JobStatus.KILLED, "cancelled before it started")
            return
        self.log.info("Starting TensorBoard job %s: %s", job.id, argv)
        try:
            await run.start(argv)
        except OSError as error:
            self.finish(job, JobStatus.FAILED, f"could not start TensorBoard: {error}")
            return
        self.table.save()
        code = await run.serve(self._running)
        job.exit_code = code
        self.end(job, *await run.outcome(code))

    def _running(self, job: Job) -> None:
        self.settle_wake(job)
        self.table.save()
        self.log.info("TensorBoard job %s is running (pid %s)", job.id, job.pid)

    async def _watch_adopted(self, run: Run) -> None:
        """Confirm a re-adopted job answers, then watch it until it ends."""
        await run.serve_adopted()
        self.table.save()
        await run.gone()
        self.end(run.job, *await run.outcome(None))

    def signal(self, job: Job, sig: int) -> None:
        """Signal the processes of a job's run, if it has one."""
        run = self.runs.get(job.id)
        if run is not None:
            run.signal(sig)

    async def stop(self, job: Job, signal_it: bool) -> None:
        """End a starting or running job's processes and wait until its task has seen it."""
        task = self.tasks.get(job.id)
        if signal_it:
            self.signal(job, signal.SIGTERM)
            self.signal(job, signal.SIGCONT)  # a stopped process only sees SIGTERM once continued
        if task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(task), self.settings.kill_grace)
            except TimeoutError:
                self.log.warning("TensorBoard job %s ignored SIGTERM; sending SIGKILL", job.id)
                self.signal(job, signal.SIGKILL)
                await asyncio.shield(task)

    def end(self, job: Job, status: JobStatus, error: str | None) -> None:
        """Record how a run ended: the job ends, or stays suspended without processes."""
        if status == JobStatus.SUSPENDED:
            self.suspended(job)
        else:
            self.finish(job, status, error)

    def settle_wake(self, job: Job) -> None:
        """A woken job runs or has ended: release the requests waiting for it."""
        waking = self.waking.pop(job.id, None)
        if waking is not None and not waking.done():
            waking.set_result(None)

    def finish(self, job: Job, status: JobStatus, error: str | None) -> None:
        """End a job: what its run prepared goes, its listeners hear, the table is saved.

        Every way a run ends comes here, also a start that failed between preparing the
        run and starting its process: its control group, socket, report file, compare
        folder and cache are all released (each only if still there).
        """
        live = self.table.live(job)
        self.parts.limits.ended(job)  # its group; already released if its process ran
        job.status = status
        job.error = error
        job.ended = now()
        job.suspended_at = None
        live.output.close()
        live.mirror_status = self.parts.mirrors.mirror_json(job)  # kept: the cache goes now
        self.parts.mirrors.remove_cache(job)
        take_report(job)  # a job that failed at start may have said it too
        release_files(job)
        self.log.info(
            "TensorBoard job %s %s%s", job.id, status.value, f": {error}" if error else ""
        )
        for listener in self.end_listeners:
            listener(job)
        self.settle_wake(job)
        self.table.prune_finished()
        self.table.save()

    def suspended(self, job: Job) -> None:
        """A job whose processes were stopped for want of requests: it stays, without them.

        It keeps its id, options, URL and place in the list; its socket, report file,
        compare folder, process and control group are gone, and its next start makes
        them anew.
        """
        live = self.table.live(job)
        job.status = JobStatus.SUSPENDED
        live.suspend_requested = False
        job.suspended_at = now()
        release_files(job)
        job.unix_socket = job.report_file = job.logdir_tree = job.host = None
        job.pid = job.proc_start_time = job.exit_code = None
        job.argv = job.cgroup_files = live.usage = None
        live.adopted = False
        self.log.info("TensorBoard job %s suspended; the next request wakes it", job.id)
        for listener in self.end_listeners:
            listener(job)
        self.table.save()

    def close(self) -> None:
        """Stop sampling usage (on shutdown, before the last stops)."""
        if self._usage_watch is not None:
            self._usage_watch.cancel()
