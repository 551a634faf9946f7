"""The job list itself: lookups, the job table on disk, and what happens when a job ends."""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from ...common.connections import Connection
from ...common.jobwire import read_report
from ..host.procfs import process_identity
from ..logdirs.compare import remove_tree
from .errors import JobNotFound
from .forkclient import ForkServer, JobProcess
from .job import Job, JobStatus
from .limits import JobLimits
from .mirrors import MirrorCaches
from .records import OwnDirs
from .scheduling import queue_order
from .state import StateFile


@dataclass
class ManagerSettings:
    """What the manager needs from configuration: built from ``app.ForgatherTB``'s traits.

    No defaults here: the traits (with their help text) are the one place they live.
    """

    base_url: str
    python: str
    max_running: int
    max_queued: int
    startup_timeout: float
    kill_grace: float
    idle_timeout: float
    suspend_after: float  # 0: never suspend
    output_buffer_size: int
    max_finished: int
    log_dir: str
    socket_dir: str | None
    state_file: str | None
    s3_cache_dir: str  # "" for "s3-cache" next to log_dir
    s3_cache_max_bytes: int
    s3_cache_max_objects: int
    s3_keep_cache: bool
    s3_endpoint_url: str | None
    connections: dict[str, Connection]  # by name, from c.ForgatherTB.connections
    load_fast_auto_bytes: int
    private_network: bool
    fork_server: bool
    memory_limit: int  # 0: no cap
    max_memory_limit: int  # 0: no maximum
    total_memory_limit: int  # 0: no budget
    allow_port: bool  # False: no job may listen on a TCP port
    allowed_roots: list[str]  # local log directories must resolve inside one of these
    cpu_nice: int
    cpu_limit: float  # 0: no limit
    limit_mechanism: str
    live_window: float
    stall_after: float  # 0: off
    scan_depth: int  # the log directory picker's limits, which activity scans keep too
    scan_max_dirs: int
    scan_max_entries: int


def now() -> datetime:
    """The current time, in UTC (job timestamps)."""
    return datetime.now(UTC)


def signal_group(pgid: int, sig: int) -> None:
    """Send a signal to a process group that may be gone already."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


class JobRegistry:
    """Every job of one Jupyter server by id, and their shared bookkeeping."""

    settings: ManagerSettings
    log: logging.Logger
    s3: MirrorCaches
    limits: JobLimits
    fork_server: ForkServer | None
    _jobs: dict[str, Job]
    _procs: dict[str, JobProcess]
    _tasks: dict[str, asyncio.Task[None]]
    _seq: int
    _end_listeners: list[Callable[[Job], None]]
    _own_dirs: OwnDirs
    _state: StateFile | None
    _socket_dir: str
    _waking: dict[str, asyncio.Future[None]]  # woken jobs not yet running or ended

    def get(self, job_id: str) -> Job:
        """The job with this id, or :class:`JobNotFound`."""
        try:
            return self._jobs[job_id]
        except KeyError:
            raise JobNotFound(f"no TensorBoard job with id {job_id!r}") from None

    def list(self) -> list[Job]:
        """All jobs, oldest first."""
        return sorted(self._jobs.values(), key=lambda job: job.seq)

    def queue(self) -> builtins.list[Job]:
        """Queued jobs in the order they will start: highest priority, then oldest."""
        return queue_order(self._jobs.values())

    def queue_position(self, job: Job) -> int | None:
        """1-based place of a queued job in the queue, else None."""
        if job.status != JobStatus.QUEUED:
            return None
        return self.queue().index(job) + 1

    def touch(self, job: Job) -> None:
        """Record that a request reached this job through the proxy."""
        job.last_activity = now()

    def on_job_end(self, listener: Callable[[Job], None]) -> None:
        """Call ``listener(job)`` whenever a job's processes are gone: it ended or was suspended.

        The proxy closes the job's client then.
        """
        self._end_listeners.append(listener)

    def _settle_wake(self, job: Job) -> None:
        """A woken job runs or has ended: release the requests waiting for it."""
        waking = self._waking.pop(job.id, None)
        if waking is not None and not waking.done():
            waking.set_result(None)

    def _finish(self, job: Job, status: JobStatus, error: str | None) -> None:
        job.status = status
        job.error = error
        job.ended = now()
        job.suspended_at = None
        job.output.close()
        job.mirror_status = self.s3.mirror_json(job)  # kept: the cache goes now
        self.s3.remove_cache(job)
        self._take_report(job)  # a job that failed at start may have said it too
        if job.unix_socket:
            with contextlib.suppress(OSError):
                os.unlink(job.unix_socket)
        if job.logdir_tree:
            remove_tree(job.logdir_tree)
        self.log.info(
            "TensorBoard job %s %s%s", job.id, status.value, f": {error}" if error else ""
        )
        for listener in self._end_listeners:
            listener(job)
        self._settle_wake(job)
        self._prune_finished()
        self._save()

    def _suspended(self, job: Job) -> None:
        """A job whose processes were stopped for want of requests: it stays, without them.

        It keeps its id, options, URL and place in the list; its socket, report file,
        compare folder, process and control group are gone (the caller released the group), and its
        next start makes them anew.
        """
        job.status = JobStatus.SUSPENDED
        job.suspend_requested = False
        job.suspended_at = now()
        for path in (job.unix_socket, job.report_file):
            if path:
                with contextlib.suppress(OSError):
                    os.unlink(path)
        if job.logdir_tree:
            remove_tree(job.logdir_tree)
        job.unix_socket = job.report_file = job.logdir_tree = job.host = None
        job.pid = job.proc_start_time = job.exit_code = None
        job.argv = job.cgroup_files = job.usage = None
        job.adopted = False
        self.log.info("TensorBoard job %s suspended; the next request wakes it", job.id)
        for listener in self._end_listeners:
            listener(job)
        self._save()

    def forget_ended(self) -> builtins.list[str]:
        """Drop every ended job from the list (their log files stay); the ids dropped."""
        ended = [job.id for job in self.list() if not job.status.is_live]
        for job_id in ended:
            del self._jobs[job_id]
        if ended:
            self._save()
        return ended

    def _prune_finished(self) -> None:
        finished = [job for job in self.list() if not job.status.is_live]
        for job in finished[: max(0, len(finished) - self.settings.max_finished)]:
            del self._jobs[job.id]

    def _save(self) -> None:
        if self._state is not None:
            try:
                self._state.save([job.to_record() for job in self.list()])
            except OSError as error:
                self.log.warning("Could not save the TensorBoard job table: %s", error)

    def _take_report(self, job: Job) -> None:
        """Read the runner's report into ``job.loader`` (once; it says it before serving)."""
        if job.report_file is None:
            return
        if job.loader is None:
            job.loader = read_report(job.report_file).loader
        with contextlib.suppress(OSError):
            os.unlink(job.report_file)

    def _is_ours(self, job: Job) -> bool:
        """True if the job's pid is still the very process we started (not a reused pid)."""
        if not job.pid or job.proc_start_time is None or not job.argv:
            return False
        return process_identity(job.pid) == (job.proc_start_time, job.argv)

    def _signal(self, job: Job, sig: int) -> None:
        proc = self._procs.get(job.id)
        if proc is not None:
            signal_group(proc.pid, sig)
        elif job.adopted and job.pid is not None and self._is_ours(job):
            signal_group(job.pid, sig)
