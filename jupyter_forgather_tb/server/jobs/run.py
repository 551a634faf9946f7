"""One start of a job: the process it runs and the files it makes, from start to release.

A :class:`Run` owns what one start of a job holds: its process (started by the
:class:`~.launcher.Launcher`), its Unix socket or TCP port, its report file, a
compare job's folder of links, an s3:// job's cache and its control group. It
starts, is signalled and stopped, says how it ended (:meth:`Run.outcome`), and its
files go in one place (:func:`release_files`). A job that is suspended and woken, or
relaunched, gets a new run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from ...common.jobwire import read_report
from ...common.options import build_argv
from ..host.procfs import process_identity
from ..host.transport import free_port
from ..logdirs.compare import TREE_SUFFIX, make_tree, remove_tree
from .forkclient import JobProcess
from .job import Job, JobStatus
from .launcher import Launcher
from .limits import JobLimits
from .live import JobLive
from .mirrors import MirrorCaches
from .readiness import check_listener, intended_ip, probe, taken, wait_ready
from .settings import ManagerSettings
from .table import now


@dataclass
class RunParts:
    """What every run draws on: the settings and the parts the server shares between jobs."""

    settings: ManagerSettings
    mirrors: MirrorCaches
    limits: JobLimits
    launcher: Launcher
    log: logging.Logger
    socket_dir: str = ""  # this server run's private directory, made once restore is done


def signal_group(pgid: int, sig: int) -> None:
    """Send a signal to a process group that may be gone already."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def describe_exit(code: int) -> str:
    """How a process ended, in words, from its exit code (negative: a signal)."""
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


def take_report(job: Job) -> None:
    """Read the runner's report into ``job.loader`` (once; it says it before serving)."""
    if job.report_file is None:
        return
    if job.loader is None:
        job.loader = read_report(job.report_file).loader
    with contextlib.suppress(OSError):
        os.unlink(job.report_file)


def release_files(job: Job) -> None:
    """Remove the socket, report file and compare folder a job's run made, if still there."""
    for path in (job.unix_socket, job.report_file):
        if path:
            with contextlib.suppress(OSError):
                os.unlink(path)
    if job.logdir_tree:
        remove_tree(job.logdir_tree)


def is_ours(job: Job) -> bool:
    """True if the job's pid is still the very process we started (not a reused pid)."""
    if not job.pid or job.proc_start_time is None or not job.argv:
        return False
    return process_identity(job.pid) == (job.proc_start_time, job.argv)


class Run:
    """One start of one job: its process, socket, report, compare folder, cache and group.

    ``live`` is what this server holds of the job: the stops asked of it, its output.
    ``adopted``: the process was started by an earlier server and re-adopted after a
    restart; it is watched through ``/proc`` rather than as our child.
    """

    def __init__(self, job: Job, live: JobLive, parts: RunParts):
        self.job = job
        self.live = live
        self.parts = parts
        self.adopted = live.adopted
        self.answered = False  # an adopted run answered its first probe
        self.process: JobProcess | None = None  # our child, until it has exited
        self.exited: asyncio.Future[int] | None = None
        self._pump: asyncio.Future[None] | None = None

    def command_line(self) -> list[str]:
        """The command line this server runs for the job, from its options and its own paths."""
        job, settings, mirrors = self.job, self.parts.settings, self.parts.mirrors
        where = {"port": job.port} if job.options.uses_tcp else {"unix_socket": job.unix_socket}
        # A remote job reads its mirror, a compare job its folder of links.
        read = {"logdir": job.logdir_tree} if job.logdir_tree else mirrors.mirror_argv(job)
        return build_argv(
            job.options,
            python=settings.python,
            path_prefix=f"{settings.base_url}tb/{job.id}",
            **where,
            **read,
            fast_loader_above=settings.load_fast_auto_bytes,
            private_network=settings.private_network,
            report_file=job.report_file,
            **self.parts.limits.argv(job),
        )

    def prepare(self) -> list[str]:
        """Give the job its socket (or port), report file, compare folder, cache and group.

        Returns the command line that uses them.
        """
        job, socket_dir = self.job, self.parts.socket_dir
        if job.options.uses_tcp:
            if job.port is None:
                job.port = free_port()
        else:
            job.unix_socket = os.path.join(socket_dir, f"{job.id}.sock")
        job.report_file = os.path.join(socket_dir, f"{job.id}.json")
        if job.options.logdirs is not None:
            job.logdir_tree = os.path.join(socket_dir, f"{job.id}{TREE_SUFFIX}")
            make_tree(job.logdir_tree, job.options.logdirs)
        self.parts.mirrors.make_cache(job)
        self.parts.limits.prepare(job)
        return self.command_line()

    async def start(self, argv: list[str]) -> None:
        """Start the job's process and copy its output; OSError if it cannot start."""
        job = self.job
        self.process = proc = await self.parts.launcher.start(argv)
        job.pid = proc.pid
        job.started = now()
        identity = process_identity(proc.pid)
        job.proc_start_time = identity[0] if identity else None
        # What /proc shows, which re-adoption compares: a forked job shows the fork server's.
        job.argv = identity[1] if identity else argv
        self._pump = asyncio.ensure_future(self._copy_output(proc))
        self.exited = asyncio.ensure_future(proc.wait())

    def signal(self, sig: int) -> None:
        """Signal the run's process group, if it still runs (and, adopted, is provably ours)."""
        job = self.job
        if self.process is not None:
            signal_group(self.process.pid, sig)
        elif self.adopted and job.pid is not None and is_ours(job):
            signal_group(job.pid, sig)

    async def serve(self, on_ready: Callable[[Job], None]) -> int:
        """Wait until the process answers (then mark the job running, and tell ``on_ready``)
        and until it exits.

        A process that does not answer within the startup timeout, or whose port
        another process holds, is killed. Returns its exit code; its whole group is
        gone then.
        """
        job, live, settings = self.job, self.live, self.parts.settings
        assert self.exited is not None and self._pump is not None
        try:
            if live.kill_requested:
                self.signal(signal.SIGTERM)
            timeout = settings.startup_timeout
            if await wait_ready(job, live, settings.base_url, timeout, self.exited):
                job.status = JobStatus.RUNNING
                live.running_since = now()
                take_report(job)
                on_ready(job)
            elif job.error:  # its port is taken
                self.parts.log.warning("TensorBoard job %s: %s", job.id, job.error)
                self.signal(signal.SIGKILL)
            elif not self.exited.done() and not live.kill_requested:
                self.parts.log.warning("TensorBoard job %s did not answer in time", job.id)
                job.error = f"TensorBoard did not answer within {timeout:g} s"
                last_error = (self.parts.mirrors.mirror_status(job) or {}).get("last_error")
                if last_error:
                    label = self.parts.mirrors.label(job)
                    job.error += f" (the {label} mirror's initial sync failed: {last_error})"
                self.signal(signal.SIGKILL)
            return await self.exited
        finally:
            # The group may still hold TensorBoard's data-server child: end it too.
            self.signal(signal.SIGKILL)
            await self._pump
            self.process = None

    async def serve_adopted(self) -> None:
        """Confirm an adopted process answers (else kill it), then wait until it is gone."""
        job = self.job
        assert job.pid is not None  # adopted only if is_ours(job): its pid still runs
        self.answered = await probe(job, self.parts.settings.base_url, timeout=2.0) == 200
        if self.answered:
            job.status = JobStatus.RUNNING
            self.live.running_since = now()
            self.parts.log.info("Re-adopted TensorBoard job %s (pid %s)", job.id, job.pid)
        else:
            self.parts.log.warning(
                "TensorBoard job %s still runs but does not answer: stopping it", job.id
            )
            signal_group(job.pid, signal.SIGKILL)

    async def gone(self) -> None:
        """Wait until an adopted process is no longer ours, then end its group."""
        assert self.job.pid is not None
        while is_ours(self.job):
            await asyncio.sleep(0.25)
        signal_group(self.job.pid, signal.SIGKILL)

    async def outcome(self, code: int | None) -> tuple[JobStatus, str | None]:
        """How the run ended: the job's status (``SUSPENDED`` if it was asked to) and error.

        ``code`` is the exit code, None for an adopted process. This releases the
        run's control group, which tells whether the kernel ended it over its memory cap.
        """
        job, live = self.job, self.live
        over_memory = self.parts.limits.ended(job)
        failed = code != 0 and not self.adopted
        if failed and job.options.uses_tcp and not job.error and not live.kill_requested:
            # Failed to listen, most likely: say who holds the port.
            foreign = (await check_listener(job, None, intended_ip(job))).foreign
            if foreign is not None:
                job.error = taken(job.port, foreign)
        if live.kill_requested:
            return JobStatus.KILLED, live.stop_reason
        if live.suspend_requested:
            return JobStatus.SUSPENDED, None
        if over_memory:
            return JobStatus.FAILED, over_memory
        if self.adopted:
            if not self.answered:
                why = job.error or "did not answer"
                return JobStatus.LOST, f"re-adopted after a restart but {why}"
            return JobStatus.FAILED, "TensorBoard ended; its exit code is unknown"
        if job.error:  # startup timeout, or its port is taken
            return JobStatus.FAILED, job.error
        if code == 0:
            return JobStatus.EXITED, None
        assert code is not None
        reason = self.parts.mirrors.fatal_error(job) or f"TensorBoard {describe_exit(code)}"
        return JobStatus.FAILED, reason

    async def _copy_output(self, proc: JobProcess) -> None:
        """Copy the process's output into the job's buffer, and into its log file if it can.

        Never fails: output the log file cannot take (the job has none, or it cannot be
        written) stays in the buffer, which says so once; the process's pipe is always
        read to its end.
        """
        job, output = self.job, self.live.output
        assert proc.stdout is not None
        log_file = None
        if job.log_file is None:  # a restored record may name none
            output.note("this job's output is not saved: its record names no log file")
        else:
            try:
                log_file = open(job.log_file, "ab")  # noqa: SIM115 (closed below)
            except OSError as error:
                output.note(f"this job's output is not saved to its log file: {error}")
        try:
            while chunk := await proc.stdout.read(65536):
                output.append(chunk)
                if log_file is None:
                    continue
                try:  # small appends to a local file; not worth a thread per chunk
                    log_file.write(chunk)
                    log_file.flush()
                except OSError as error:
                    output.note(f"this job's output is no longer saved to its log file: {error}")
                    _close(log_file)
                    log_file = None
        finally:
            if log_file is not None:
                _close(log_file)


def _close(log_file: BinaryIO) -> None:
    """Close a log file that may have failed a write; nothing is left to save then."""
    with contextlib.suppress(OSError):
        log_file.close()
