"""The job manager: launches, queues and stops TensorBoard jobs. Knows nothing of HTTP.

Its parts, one layer each: :mod:`registry` (the job list and what happens when a job
ends), :mod:`readiness` (port checks, the readiness probe), :mod:`lifecycle`
(processes: start, output, kill; which queued job starts, decided by the pure
:mod:`scheduling`; whether today's settings let a job start at all, by
:mod:`admission`), :mod:`suspension` (idle jobs suspended and woken, or ended),
:mod:`restore` (restart survival),
and :class:`~.mirrors.MirrorCaches` for what s3:// jobs add.
"""

from __future__ import annotations

import logging
import os
import tempfile
from concurrent.futures import Executor
from dataclasses import replace
from typing import Any

from ...common.options import LaunchOptions
from ...common.sizes import format_size
from ...common.sources import url_scheme
from ..host.rundirs import check_socket_base, make_run_dir, sweep_run_dirs
from ..logdirs.dirchecks import DirChecks
from .activity import ActivitySettings, ActivityTracker
from .admission import admit, default_cap
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
from .job import Job, JobStatus
from .limits import JobLimits
from .mirrors import MirrorCaches
from .output import OutputBuffer
from .records import OwnDirs
from .registry import ManagerSettings
from .restore import RestartSurvival

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


class JobManager(RestartSurvival):
    """Owns every TensorBoard job of one Jupyter server."""

    def __init__(
        self,
        settings: ManagerSettings,
        log: logging.Logger | None = None,
        scan_executor: Executor | None = None,
    ):
        self.settings = settings
        self.log = log or logging.getLogger(__name__)
        socket_base = settings.socket_dir or tempfile.gettempdir()
        # First: restoring the job table acts on files under it.
        check_socket_base(socket_base)
        self._jobs = {}
        self._procs = {}
        self._tasks = {}
        self._seq = 0
        self._idle_watch = None
        self._usage_task = None
        self._background = set()
        self._waking = {}
        self._end_listeners = []
        self._dir_checks = DirChecks()
        self.on_job_end(lambda job: self._dir_checks.forget(job.id))
        self.s3 = MirrorCaches(
            settings.s3_cache_dir or os.path.join(os.path.dirname(settings.log_dir), "s3-cache"),
            max_bytes=settings.s3_cache_max_bytes,
            max_objects=settings.s3_cache_max_objects,
            keep=settings.s3_keep_cache,
            endpoint_url=settings.s3_endpoint_url,
            connections=settings.connections,
        )
        self.activity = ActivityTracker(
            ActivitySettings(
                live_window=settings.live_window,
                stall_after=settings.stall_after,
                scan_depth=settings.scan_depth,
                scan_max_dirs=settings.scan_max_dirs,
                scan_max_entries=settings.scan_max_entries,
            ),
            self.s3,
            scan_executor,
            self.log,
        )
        self._own_dirs = OwnDirs(
            base_url=settings.base_url,
            log_dir=settings.log_dir,
            socket_base=socket_base,
            cache_root=self.s3.cache_root,
        )
        # Before the log directory, which may share the state file's directory:
        # that one is then made private (0700) rather than as a parent.
        self._state = self._open_state()
        os.makedirs(settings.log_dir, mode=0o700, exist_ok=True)
        #: Starts jobs warm (see forkserver.py); None when turned off.
        self.fork_server = (
            ForkServer(settings.python, os.path.join(settings.log_dir, "forkserver.log"), self.log)
            if settings.fork_server
            else None
        )
        self.limits = JobLimits(settings.limit_mechanism, self.log)
        if settings.memory_limit != default_cap(settings):
            self.log.warning(
                "memory_limit (%s) is not within max_memory_limit (%s): a job that asks for "
                "no cap gets %s",
                format_size(settings.memory_limit) if settings.memory_limit else "no cap",
                format_size(settings.max_memory_limit),
                format_size(default_cap(settings)),
            )
        self._restore()
        # Sockets live in a private directory: only this user can connect, so
        # nobody can reach a TensorBoard without going through Jupyter's login.
        # Made after _restore, so no saved record can name it for removal; after the
        # sweep of the directories that servers killed outright left behind.
        sweep_run_dirs(socket_base, self.log)
        self._socket_dir = make_run_dir(socket_base)
        self.s3.run_dir = self._socket_dir  # where jobs' connection files go

    def job_json(self, job: Job) -> dict[str, Any]:
        """A job's JSON, with its queue position, log directories' existence, mirror, activity.

        Reading a live job's activity may start a scan of its log directory (see
        :mod:`.activity`), and whether its log directories exist is the last answer of a
        check in a thread (see :mod:`..logdirs.dirchecks`): None while unknown.
        """
        data = job.to_json(self.queue_position(job))
        live = job.status.is_live
        if job.options.logdirs is not None:
            paths = [path for _, path in job.options.logdirs]
        else:
            paths = [] if url_scheme(job.options.logdir) else [job.options.logdir]
        data["logdir_exists"] = self._dir_checks.answer(job.id, paths) if live and paths else None
        data["mirror"] = self.s3.mirror_json(job) if live else job.mirror_status
        data["activity"] = self.activity.json(job)
        return data

    @staticmethod
    def check_running(job: Job) -> None:
        """Raise :class:`JobNotRunning` unless the job is running (so its TensorBoard answers)."""
        if job.status != JobStatus.RUNNING:
            raise JobNotRunning(
                f"TensorBoard job {job.id} is {job.status.value}: only a running job can be "
                "asked for its scalars"
            )

    def find_reusable(self, options: LaunchOptions) -> Job | None:
        """A live job started with the same options, if any."""
        key = options.reuse_key()
        for job in self.list():
            if job.status.is_live and job.options.reuse_key() == key:
                return job
        return None

    def launch(self, options: LaunchOptions, force_new: bool = False) -> tuple[Job, bool]:
        """Queue a job for these options, or return the live one that matches.

        Returns ``(job, reused)``. Raises :class:`PortInUse` when a requested
        port is taken, and :class:`~...common.options.OptionError` when today's rules
        refuse the options (:func:`~.admission.admit`), before anything starts.
        """
        if not force_new:
            existing = self.find_reusable(options)
            if existing is not None:
                return existing, True
        if len(self.queue()) >= self.settings.max_queued:
            raise QueueFull(
                f"{self.settings.max_queued} TensorBoard jobs are already waiting to start; "
                "try again when one has started or been cancelled"
            )
        if options.port is not None:
            self._check_port(options)
        memory_cap = admit(options, self.settings)
        self._seq += 1
        job = Job(
            options=options,
            url="",
            output=OutputBuffer(self.settings.output_buffer_size),
            seq=self._seq,
        )
        job.url = f"{self.settings.base_url}tb/{job.id}/"
        job.port = options.port
        job.log_file = os.path.join(self.settings.log_dir, f"{job.id}.log")
        job.memory_limit = memory_cap
        job.cpu_nice = self.settings.cpu_nice
        job.cpu_limit = self.settings.cpu_limit or None
        self._jobs[job.id] = job
        self.log.info("TensorBoard job %s queued for %s", job.id, options.shown_logdir)
        if options.bind_all:
            self.log.warning(
                "TensorBoard job %s listens on all network interfaces (bind_all): "
                "anyone who can reach this machine can read its data without Jupyter's login",
                job.id,
            )
        self._schedule()
        self._save()
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
