"""The job manager: launches, queues and stops TensorBoard jobs. Knows nothing of HTTP.

It is made of parts, each an object it holds: the :class:`~.table.JobTable` (the
jobs by id, saved to the state file), the :class:`~.lifecycle.Lifecycle` (which
queued job starts, each start a :class:`~.run.Run` through a
:class:`~.launcher.Launcher`), the :class:`~.idle.IdleWatch` (suspends and ends idle
jobs) and the :class:`~.restore.Restorer` (restart survival); beside them
:class:`~.limits.JobLimits`, :class:`~.mirrors.MirrorCaches` and the
:class:`~.activity.ActivityTracker`.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from concurrent.futures import Executor
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import Any

from ...common.options import LaunchOptions
from ...common.sources import url_scheme
from ..host.rundirs import check_socket_base, make_run_dir, sweep_run_dirs
from ..logdirs.dirchecks import DirChecks
from .activity import ActivitySettings, ActivityTracker
from .admission import admit, warn_of_default_cap
from .errors import (
    JobNotFound,
    JobNotRunning,
    JobStillLive,
    ManagerError,
    NotSuspended,
    PortInUse,
    QueueFull,
)
from .forkclient import ForkServer
from .idle import IdleWatch
from .job import Job, JobStatus
from .launcher import ForkLauncher, Launcher, SubprocessLauncher
from .lifecycle import Lifecycle
from .limits import JobLimits
from .live import JobLive
from .mirrors import MirrorCaches
from .readiness import check_port_free
from .records import OwnDirs
from .restore import Restorer, open_state
from .run import RunParts
from .settings import ManagerSettings
from .table import JobTable, now

__all__ = [
    "JobManager",
    "JobNotFound",
    "JobStillLive",
    "ManagerError",
    "ManagerSettings",
    "NotSuspended",
    "PortInUse",
    "QueueFull",
]


class JobManager:
    """Owns every TensorBoard job of one Jupyter server."""

    def __init__(
        self,
        settings: ManagerSettings,
        log: logging.Logger | None = None,
        scan_executor: Executor | None = None,
    ):
        self.settings = settings
        self.log = log = log or logging.getLogger(__name__)
        socket_base = settings.socket_dir or tempfile.gettempdir()
        # First: restoring the job table acts on files under it.
        check_socket_base(socket_base)
        self.mirrors = MirrorCaches(
            settings.mirror_cache_dir
            or os.path.join(os.path.dirname(settings.log_dir), "s3-cache"),
            max_bytes=settings.mirror_cache_max_bytes,
            max_objects=settings.mirror_cache_max_objects,
            keep=settings.keep_mirror_cache,
            endpoint_url=settings.s3_endpoint_url,
            connections=settings.connections,
        )
        activity = ActivitySettings(
            live_window=settings.live_window,
            stall_after=settings.stall_after,
            scan_depth=settings.scan_depth,
            scan_max_dirs=settings.scan_max_dirs,
            scan_max_entries=settings.scan_max_entries,
        )
        self.activity = ActivityTracker(activity, self.mirrors, scan_executor, log)
        # Before the log directory, which may share the state file's directory:
        # that one is then made private (0700) rather than as a parent.
        self.table = JobTable(settings, open_state(settings.state_file, log), log)
        os.makedirs(settings.log_dir, mode=0o700, exist_ok=True)
        #: Starts jobs warm (see forkserver.py); None when turned off.
        self.fork_server = (
            ForkServer(settings.python, os.path.join(settings.log_dir, "forkserver.log"), log)
            if settings.fork_server
            else None
        )
        launcher: Launcher = (
            ForkLauncher(self.fork_server) if self.fork_server else SubprocessLauncher()
        )
        self.limits = JobLimits(settings.limit_mechanism, log)
        warn_of_default_cap(settings, log)
        self.parts = RunParts(settings, self.mirrors, self.limits, launcher, log)
        self.lifecycle = Lifecycle(self.table, self.parts, log)
        self.idle = IdleWatch(self.lifecycle, self.kill)
        self._dir_checks = DirChecks()
        self.on_job_end(lambda job: self._dir_checks.forget(job.id))
        own_dirs = OwnDirs(
            settings.base_url, settings.log_dir, socket_base, self.mirrors.cache_root
        )
        Restorer(self.lifecycle, own_dirs, self._schedule, self.kill).restore()
        # Sockets live in a private directory: only this user can connect, so
        # nobody can reach a TensorBoard without going through Jupyter's login.
        # Made after the restore, so no saved record can name it for removal; after the
        # sweep of the directories that servers killed outright left behind.
        sweep_run_dirs(socket_base, log)
        self.parts.socket_dir = make_run_dir(socket_base)
        self.mirrors.run_dir = self.parts.socket_dir  # where jobs' connection files go

    def get(self, job_id: str) -> Job:
        """The job with this id, or :class:`JobNotFound`."""
        return self.table.get(job_id)

    def list(self) -> builtins.list[Job]:
        """All jobs, oldest first."""
        return self.table.list()

    def forget_ended(self) -> builtins.list[str]:
        """Drop every ended job from the list (their log files stay); the ids dropped."""
        return self.table.forget_ended()

    def live(self, job: Job) -> JobLive:
        """What this server holds of a job beyond its record: its output, stops asked, samples."""
        return self.table.live(job)

    def touch(self, job: Job) -> None:
        """Record that a request reached this job through the proxy."""
        job.last_activity = now()

    def on_job_end(self, listener: Callable[[Job], None]) -> None:
        """Call ``listener(job)`` whenever a job's processes are gone: it ended or was suspended.

        The proxy closes the job's client then.
        """
        self.lifecycle.end_listeners.append(listener)

    def job_json(self, job: Job) -> dict[str, Any]:
        """A job's JSON, with its queue position, log directories' existence, mirror, activity.

        Reading a live job's activity may start a scan of its log directory (see
        :mod:`.activity`), and whether its log directories exist is the last answer of a
        check in a thread (see :mod:`..logdirs.dirchecks`): None while unknown.
        """
        live = self.table.live(job)
        data = job.to_json(live, self.table.queue_position(job))
        ended = not job.status.is_live
        if job.options.logdirs is not None:
            paths = [path for _, path in job.options.logdirs]
        else:
            paths = [] if url_scheme(job.options.logdir) else [job.options.logdir]
        data["logdir_exists"] = (
            None if ended or not paths else self._dir_checks.answer(job.id, paths)
        )
        data["mirror"] = live.mirror_status if ended else self.mirrors.mirror_json(job)
        data["activity"] = self.activity.json(job, live)
        return data

    @staticmethod
    def check_running(job: Job) -> None:
        """Raise :class:`JobNotRunning` unless the job is running (so its TensorBoard answers)."""
        if job.status != JobStatus.RUNNING:
            raise JobNotRunning(
                f"TensorBoard job {job.id} is {job.status.value}: only a running job can be "
                "asked for its scalars"
            )

    def launch(self, options: LaunchOptions, force_new: bool = False) -> tuple[Job, bool]:
        """Queue a job for these options, or return the live one that matches.

        Returns ``(job, reused)``. Raises :class:`PortInUse` when a requested
        port is taken, and :class:`~...common.options.OptionError` when today's rules
        refuse the options (:func:`~.admission.admit`), before anything starts.
        """
        if not force_new:
            existing = self.table.find_reusable(options)
            if existing is not None:
                return existing, True
        settings = self.settings
        if len(self.table.queue()) >= settings.max_queued:
            raise QueueFull(
                f"{settings.max_queued} TensorBoard jobs are already waiting to start; "
                "try again when one has started or been cancelled"
            )
        check_port_free(options, self.table.jobs.values())
        memory_cap = admit(options, settings)
        job = Job(options=options, url="", seq=self.table.seq + 1)
        job.url = f"{settings.base_url}tb/{job.id}/"
        job.port = options.port
        job.log_file = os.path.join(settings.log_dir, f"{job.id}.log")
        job.memory_limit = memory_cap
        job.cpu_nice = settings.cpu_nice
        job.cpu_limit = settings.cpu_limit or None
        self.table.add(job)
        self.log.info("TensorBoard job %s queued for %s", job.id, options.shown_logdir)
        if options.bind_all:
            self.log.warning(
                "TensorBoard job %s listens on all network interfaces (bind_all): "
                "anyone who can reach this machine can read its data without Jupyter's login",
                job.id,
            )
        self._schedule()
        self.table.save()
        return job, False

    def relaunch(self, job_id: str, memory_limit: int | None = None) -> Job:
        """Start a new job with an ended job's options (and a new memory limit, if given).

        It is admitted under today's rules, as any launch is.
        """
        old = self.get(job_id)
        if old.status.is_live:
            raise JobStillLive(
                f"TensorBoard job {job_id} is {old.status.value}: only an ended job can be "
                "relaunched (kill it first)"
            )
        if not old.options.logdir and old.options.logdirs is None:
            raise ManagerError(
                f"the options of TensorBoard job {job_id} are unknown (its saved record could "
                "not be read): launch it anew"
            )
        options = old.options
        if memory_limit is not None:
            options = replace(options, memory_limit=memory_limit)
        job, _ = self.launch(options, force_new=True)
        return job

    def _schedule(self) -> None:
        self.idle.start()
        self.lifecycle.schedule()

    async def kill(self, job_id: str, reason: str | None = None) -> Job:
        """Stop a job (SIGTERM, then SIGKILL after the grace period), or cancel it if queued.

        A suspended job ends at once. Idempotent: killing an ended job changes nothing.
        ``reason`` is kept as the job's error text when the stop was not asked for by a
        user.
        """
        job = self.get(job_id)
        if not job.status.is_live:
            return job
        live = self.table.live(job)
        if job.status in (JobStatus.QUEUED, JobStatus.SUSPENDED):  # no process
            live.kill_requested = True
            never_started = job.started is None
            self.lifecycle.finish(
                job,
                JobStatus.KILLED,
                reason or ("cancelled before it started" if never_started else None),
            )
            return job
        first = not live.kill_requested
        live.kill_requested = True
        live.stop_reason = live.stop_reason or reason
        await self.lifecycle.stop(job, first)
        return job

    def wake(self, job_id: str) -> Job:
        """Queue a suspended job to start again (see :meth:`.idle.IdleWatch.wake`)."""
        return self.idle.wake(self.get(job_id))

    async def awake(self, job: Job) -> Job:
        """Make a job ready for a request (see :meth:`.idle.IdleWatch.awake`)."""
        return await self.idle.awake(job)

    def is_waking(self, job: Job) -> bool:
        """True from a wake until the job runs or ends."""
        return job.id in self.lifecycle.waking

    def following_output(self, job: Job) -> AbstractContextManager[None]:
        """While an output stream follows the job, it is not suspended."""
        return self.idle.following_output(job)

    async def shutdown(self) -> None:
        """Stop every job's processes; called when the Jupyter server stops.

        Suspended jobs have no process, and stay suspended for the next server.
        """
        self.idle.close()
        live = [
            job
            for job in self.table.jobs.values()
            if job.status.is_live and job.status != JobStatus.SUSPENDED
        ]
        if live:
            self.log.info("Stopping %d TensorBoard job(s)", len(live))
        self.lifecycle.close()
        await asyncio.gather(
            *(self.kill(job.id, "the Jupyter server stopped") for job in live),
            return_exceptions=True,
        )
        await self.mirrors.wait_for_cleanups()
        self.limits.close()
        await self.parts.launcher.close()
        shutil.rmtree(self.parts.socket_dir, ignore_errors=True)
        self.table.close()
