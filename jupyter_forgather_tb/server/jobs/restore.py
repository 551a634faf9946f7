"""Restart survival: the job table a previous server left, re-adopting what still runs.

Suspended jobs have no process to re-adopt: they stay suspended, and wake on the next
request as before.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import os
from collections.abc import Callable, Coroutine
from typing import Any

from tornado.ioloop import IOLoop

from ...common.options import OptionError, refuse_tcp
from ...common.processes import FORKSERVER_MODULE
from ...common.sizes import format_size
from ..host.procfs import leads_its_group, listens_on, process_identity
from .admission import ceiling, confine
from .job import Job, JobStatus
from .lifecycle import Lifecycle
from .records import OwnDirs, RecordError, lost_job, restore_job
from .run import Run, release_files
from .state import StateFile, StateInUse, StateRefused
from .table import JobTable, now


def open_state(path: str | None, log: logging.Logger) -> StateFile | None:
    """The state file, locked; None (and a warning saying why) if this server may not use it."""
    if not path:
        return None
    try:
        return StateFile(path)
    except StateInUse as error:
        log.warning(
            "Not using the TensorBoard job table %s: %s. This server keeps its job table "
            "in memory only and re-adopts nothing, so it never touches that server's jobs.",
            path,
            error,
        )
    except StateRefused as error:
        log.warning(
            "Refusing the TensorBoard job table %s: %s. This server starts with an empty "
            "job table, kept in memory only, and leaves the file as it is.",
            path,
            error,
        )
    return None


class Restorer:
    """Loads, checks and re-adopts the jobs a previous server saved in its state file."""

    def __init__(
        self,
        lifecycle: Lifecycle,
        own_dirs: OwnDirs,
        schedule: Callable[[], None],
        kill: Callable[[str, str], Coroutine[Any, Any, Job]],
    ):
        self.lifecycle = lifecycle
        self.table: JobTable = lifecycle.table
        self.parts = lifecycle.parts
        self.settings = lifecycle.settings
        self.log = lifecycle.log
        self.own_dirs = own_dirs
        self.schedule = schedule
        self.kill = kill

    def restore(self) -> None:
        """Reload the job table a previous server left, re-adopting what still runs."""
        if self.table.state is None:
            return
        adopt = []
        for record in self.table.state.load():
            job = self._restored_job(record)
            self.table.add(job)
            if job.status in (JobStatus.STARTING, JobStatus.RUNNING) and self._re_adopt(job):
                adopt.append(job)
        self.table.save()
        if adopt or self.table.queue() or self.table.suspended():
            # The event loop may not run yet while the server initializes.
            IOLoop.current().add_callback(self._resume, adopt)

    def _restored_job(self, record: Any) -> Job:
        """The job a saved record describes, or a lost placeholder if it fails validation."""
        jobs = self.table.jobs
        try:
            job = restore_job(record, self.own_dirs)
            if job.id in jobs:
                raise RecordError("its id repeats an earlier record's")
        except RecordError as error:
            job = lost_job(record, str(error), self.own_dirs, jobs)
            self.log.warning(
                "TensorBoard job table %s: a record failed validation (%s); "
                "it is listed as lost job %s and nothing is done with it",
                self.settings.state_file,
                error,
                job.id,
            )
        return job

    def _re_adopt(self, job: Job) -> bool:
        """Adopt a job saved as live if its process is provably ours; else mark it lost."""
        identity = process_identity(job.pid) if job.pid else None
        if identity is None or identity[0] != job.proc_start_time:
            self._mark_lost(job, "the Jupyter server stopped while this job was live")
            self._remove_stale_files(job)
            return False
        why = self._not_ours_because(job, identity[1])
        if why:
            self.log.warning("TensorBoard job %s not re-adopted: %s", job.id, why)
            self._mark_lost(job, f"not re-adopted: {why}")
            return False
        job.argv = identity[1]
        job.status = JobStatus.STARTING  # until it answers again
        self.table.live(job).adopted = True
        return True

    @staticmethod
    def _mark_lost(job: Job, error: str) -> None:
        job.status = JobStatus.LOST
        job.error = error
        job.ended = job.ended or now()

    def _not_ours_because(self, job: Job, argv: builtins.list[str]) -> str | None:
        """Why the live process with the job's pid and start time is not the job, or None.

        It must run the command line this server builds for the job's options
        (or be a child of the fork server, which shows the fork server's), lead
        its own process group, and itself listen on the job's socket or port.
        """
        if job.pid is None:
            return "its record names no process"
        process = f"its process (pid {job.pid})"
        if (job.unix_socket is None) == (job.port is None):
            return "its record names no socket or port to reach it"
        forked = argv[:3] == [self.settings.python, "-m", FORKSERVER_MODULE] and (
            len(argv) == 4 and argv[3].isdigit()
        )
        if not forked and argv != Run(job, self.table.live(job), self.parts).command_line():
            return f"{process} does not run the command line this server would start for it"
        if not leads_its_group(job.pid):
            return f"{process} does not lead its own process group"
        if not listens_on(job.pid, unix_socket=job.unix_socket, port=job.port):
            where = job.unix_socket or f"port {job.port}"
            return f"{process} does not listen on {where}"
        return None

    def _remove_stale_files(self, job: Job) -> None:
        """Remove a dead job's socket, report, compare folder, S3 cache and emptied run dir."""
        release_files(job)
        for path in (job.unix_socket, job.logdir_tree, job.report_file):
            if path:
                with contextlib.suppress(OSError):
                    os.rmdir(os.path.dirname(path))
        self.parts.mirrors.remove_cache(job)

    async def _resume(self, adopt: list[Job]) -> None:
        for job in adopt:
            self._seed_output(job)
            self.lifecycle.adopt(job)
            await self._hold_to_todays_rules(job)
        for job in self.table.queue():  # saved while waiting: admitted again, as a wake is
            self.lifecycle.requeue(job)
        if self.table.suspended():
            # So that the first wake after a restart is a warm start too.
            self.parts.launcher.warm_up()
        self.schedule()

    async def _hold_to_todays_rules(self, job: Job) -> None:
        """Keep a re-adopted job within the limits this server runs with now.

        A cap above today's largest (``max_memory_limit``, the memory budget), or none,
        becomes that largest, enforced by the watchdog (its control group, if any,
        keeps the old one). A job on a TCP port that ``allow_port`` now refuses, or
        whose log directory now resolves outside the allowed roots, is stopped, saying why.
        """
        most = ceiling(self.settings)
        if most and (job.memory_limit is None or job.memory_limit > most):
            self.log.warning(
                "TensorBoard job %s was re-adopted with a memory cap of %s, above today's "
                "%s: the watchdog now holds it to that",
                job.id,
                format_size(job.memory_limit) if job.memory_limit else "none",
                format_size(most),
            )
            job.memory_limit = most
            job.enforced_by = "watchdog"
        loop = asyncio.get_running_loop()
        try:
            if not self.settings.allow_port:
                refuse_tcp(job.options)
            await loop.run_in_executor(None, confine, job.options, self.settings)
        except OptionError as error:
            why = f"stopped after a restart of the server: {error}"
            self.log.warning("TensorBoard job %s %s", job.id, why)
            self.lifecycle.in_background(self.kill(job.id, why))

    def _seed_output(self, job: Job) -> None:
        """Start a re-adopted job's output with the end of its log file, or say it has none."""
        output = self.table.live(job).output
        if job.log_file is None:
            output.note(
                "output from before the server restarted is unavailable: "
                "this job's record names no log file"
            )
        else:
            with contextlib.suppress(OSError), open(job.log_file, "rb") as log_file:
                log_file.seek(0, os.SEEK_END)
                log_file.seek(max(0, log_file.tell() - self.settings.output_buffer_size))
                output.append(log_file.read())
