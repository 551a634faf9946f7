"""Starts, schedules, watches and stops TensorBoard jobs. Knows nothing of HTTP handlers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from tornado.ioloop import IOLoop

from ..common.jsonfile import read_json
from ..common.options import DEFAULT_SYNC_INTERVAL, LaunchOptions, build_argv
from ..common.s3paths import is_s3_url, url_scheme
from ..common.s3status import STATUS_FILE, read_status
from .forkclient import ForkServer
from .jobs import Job, JobStatus
from .output import OutputBuffer
from .state import load_state, process_identity, save_state
from .transport import free_port, http_status, port_is_free

# Variables a TensorBoard child must not inherit: Jupyter's own credentials.
_ENV_DENYLIST = ("JUPYTER_TOKEN", "JPY_API_TOKEN", "JUPYTERHUB_API_TOKEN", "JPY_SESSION_NAME")


class ManagerError(Exception):
    """Base of the errors a caller should show to the user."""


class JobNotFound(ManagerError):
    """No job has this id."""


class PortInUse(ManagerError):
    """The requested TCP port is taken."""


class QueueFull(ManagerError):
    """Too many jobs are waiting already; the caller should retry later."""


@dataclass
class ManagerSettings:
    """What the manager needs from configuration (see ``app.ForgatherTB`` for help text)."""

    base_url: str
    python: str
    max_running: int
    startup_timeout: float
    kill_grace: float
    output_buffer_size: int
    log_dir: str
    socket_dir: str | None
    max_finished: int
    max_queued: int = 64
    idle_timeout: float = 0.0
    state_file: str | None = None
    s3_cache_dir: str | None = None  # default: "s3-cache" next to log_dir
    s3_cache_max_bytes: int = 20 * 1024**3
    s3_keep_cache: bool = False
    s3_endpoint_url: str | None = None
    load_fast_auto_bytes: int = 0
    private_network: bool = False
    fork_server: bool = False


def _now() -> datetime:
    return datetime.now(UTC)


def _read_report(path: str) -> dict | None:
    """A runner's report, if it wrote a well-formed one."""
    report = read_json(path)
    if (
        isinstance(report, dict)
        and report.get("name") in ("rust", "python")
        and isinstance(report.get("private_network"), bool)
    ):
        return {"name": report["name"], "private_network": report["private_network"]}
    return None


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


class JobManager:
    """Owns every TensorBoard job of one Jupyter server."""

    def __init__(self, settings: ManagerSettings, log: logging.Logger | None = None):
        self.settings = settings
        self.log = log or logging.getLogger(__name__)
        self._jobs: dict[str, Job] = {}
        self._procs: dict[str, asyncio.subprocess.Process] = {}
        self._tasks: dict[str, asyncio.Task] = {}
        self._seq = 0
        self._culler: asyncio.Task | None = None
        self._stopping: set[asyncio.Future] = set()  # idle stops under way (kept referenced)
        self._end_listeners: list[Callable[[Job], None]] = []
        self._cleanups: set[asyncio.Future] = set()  # S3 caches being removed
        self._cache_root = settings.s3_cache_dir or os.path.join(
            os.path.dirname(settings.log_dir), "s3-cache"
        )
        os.makedirs(settings.log_dir, mode=0o700, exist_ok=True)
        # Sockets live in a private directory: only this user can connect, so
        # nobody can reach a TensorBoard without going through Jupyter's login.
        self._socket_dir = tempfile.mkdtemp(prefix="forgather-tb-", dir=settings.socket_dir)
        os.chmod(self._socket_dir, 0o700)
        #: Starts jobs warm (see forkserver.py); None when turned off.
        self.fork_server = (
            ForkServer(settings.python, os.path.join(settings.log_dir, "forkserver.log"), self.log)
            if settings.fork_server
            else None
        )
        self._restore()

    # -- persistence -----------------------------------------------------------

    def _save(self) -> None:
        if self.settings.state_file:
            try:
                save_state(self.settings.state_file, [job.to_record() for job in self.list()])
            except OSError as error:
                self.log.warning("Could not save the TensorBoard job table: %s", error)

    def _is_ours(self, job: Job) -> bool:
        """True if the job's pid is still the very process we started (not a reused pid)."""
        if not job.pid or job.proc_start_time is None or not job.argv:
            return False
        return process_identity(job.pid) == (job.proc_start_time, job.argv)

    def _restore(self) -> None:
        """Reload the job table a previous server left, re-adopting what still runs."""
        if not self.settings.state_file:
            return
        adopt = []
        for record in load_state(self.settings.state_file):
            try:
                job = Job.from_record(record, OutputBuffer(self.settings.output_buffer_size))
            except (KeyError, TypeError, ValueError):
                continue
            self._seq = max(self._seq, job.seq)
            if job.status in (JobStatus.STARTING, JobStatus.RUNNING):
                if self._is_ours(job):
                    job.status = JobStatus.STARTING  # until it answers again
                    job.adopted = True
                    adopt.append(job)
                else:
                    job.status = JobStatus.LOST
                    job.error = "the Jupyter server stopped while this job was live"
                    job.ended = job.ended or _now()
                    self._remove_stale_socket(job)
                    self._remove_cache(job)
            self._jobs[job.id] = job
        self._save()
        if adopt or self.queue():
            # The event loop may not run yet while the server initializes.
            IOLoop.current().add_callback(self._resume, adopt)

    @staticmethod
    def _remove_stale_socket(job: Job) -> None:
        """Remove a dead job's socket, and its private directory once empty."""
        if not job.unix_socket:
            return
        with contextlib.suppress(OSError):
            os.unlink(job.unix_socket)
        directory = os.path.dirname(job.unix_socket)
        if os.path.basename(directory).startswith("forgather-tb-"):
            with contextlib.suppress(OSError):
                os.rmdir(directory)

    async def _resume(self, adopt: list[Job]) -> None:
        for job in adopt:
            self._seed_output(job)
            self._tasks[job.id] = asyncio.ensure_future(self._watch_adopted(job))
        self._schedule()

    def _seed_output(self, job: Job) -> None:
        if job.log_file:
            with contextlib.suppress(OSError), open(job.log_file, "rb") as log_file:
                log_file.seek(0, os.SEEK_END)
                log_file.seek(max(0, log_file.tell() - self.settings.output_buffer_size))
                job.output.append(log_file.read())

    async def _watch_adopted(self, job: Job) -> None:
        """Confirm a re-adopted job answers, then watch it until it ends."""
        path = f"{self.settings.base_url}tb/{job.id}/"
        status = await http_status(path, unix_socket=job.unix_socket, port=job.port)
        if status == 200:
            job.status = JobStatus.RUNNING
            job.running_since = _now()
            self.log.info("Re-adopted TensorBoard job %s (pid %s)", job.id, job.pid)
        else:
            self.log.warning(
                "TensorBoard job %s still runs but does not answer: stopping it", job.id
            )
            _signal_group(job.pid, signal.SIGKILL)
        self._save()
        try:
            while self._is_ours(job):
                await asyncio.sleep(0.25)
        finally:
            self._tasks.pop(job.id, None)
        _signal_group(job.pid, signal.SIGKILL)
        if job.kill_requested:
            self._finish(job, JobStatus.KILLED, job.stop_reason)
        elif status != 200:
            self._finish(job, JobStatus.LOST, "re-adopted after a restart but did not answer")
        else:
            self._finish(job, JobStatus.FAILED, "TensorBoard ended; its exit code is unknown")
        self._schedule()

    # -- queries ---------------------------------------------------------------

    def get(self, job_id: str) -> Job:
        """The job with this id, or :class:`JobNotFound`."""
        try:
            return self._jobs[job_id]
        except KeyError:
            raise JobNotFound(f"no TensorBoard job with id {job_id!r}") from None

    def list(self) -> list[Job]:
        """All jobs, oldest first."""
        return sorted(self._jobs.values(), key=lambda job: job.seq)

    def queue(self) -> list[Job]:
        """Queued jobs in the order they will start: highest priority, then oldest."""
        queued = [job for job in self._jobs.values() if job.status == JobStatus.QUEUED]
        return sorted(queued, key=lambda job: (-job.options.priority, job.seq))

    def queue_position(self, job: Job) -> int | None:
        """1-based place of a queued job in the queue, else None."""
        if job.status != JobStatus.QUEUED:
            return None
        return self.queue().index(job) + 1

    def touch(self, job: Job) -> None:
        """Record that a request reached this job through the proxy."""
        job.last_activity = _now()

    def job_json(self, job: Job) -> dict:
        """A job's JSON, with its queue position and whether its log directory still exists."""
        data = job.to_json(self.queue_position(job))
        local = not url_scheme(job.options.logdir)
        live = job.status.is_live
        data["logdir_exists"] = os.path.isdir(job.options.logdir) if live and local else None
        data["mirror"] = self._mirror_json(job) if live else job.mirror_status
        return data

    # -- S3 mirror -------------------------------------------------------------

    def _cache_dir(self, job: Job) -> str | None:
        """The private directory an s3:// job mirrors into (None for other jobs)."""
        return os.path.join(self._cache_root, job.id) if is_s3_url(job.options.logdir) else None

    def _mirror_argv(self, job: Job) -> dict:
        """``build_argv`` arguments that make the runner mirror an s3:// log directory first."""
        cache = self._cache_dir(job)
        if cache is None:
            return {}
        os.makedirs(self._cache_root, mode=0o700, exist_ok=True)
        os.makedirs(cache, mode=0o700, exist_ok=True)
        interval = job.options.sync_interval or DEFAULT_SYNC_INTERVAL
        runner_args = ["--s3-mirror", job.options.logdir, "--cache-dir", cache]
        runner_args += ["--sync-interval", repr(interval)]
        runner_args += ["--max-cache-bytes", str(self.settings.s3_cache_max_bytes)]
        if self.settings.s3_endpoint_url:
            runner_args += ["--s3-endpoint-url", self.settings.s3_endpoint_url]
        return {"logdir": os.path.join(cache, "data"), "runner_args": runner_args}

    def _mirror_status(self, job: Job) -> dict | None:
        cache = self._cache_dir(job)
        return read_status(os.path.join(cache, STATUS_FILE)) if cache else None

    def _mirror_json(self, job: Job) -> dict | None:
        """The mirror's status as the REST API shows it (None for a job without one)."""
        if self._cache_dir(job) is None:
            return None
        status = self._mirror_status(job) or {}
        return {
            "last_sync": status.get("last_sync"),
            "objects": status.get("objects", 0),
            "bytes": status.get("bytes", 0),
            "bytes_fetched": status.get("bytes_fetched", 0),
            "syncs": status.get("syncs", 0),
            "last_error": status.get("last_error"),
        }

    def _remove_cache(self, job: Job) -> None:
        """Remove an ended job's mirror, in a worker thread when the event loop runs."""
        cache = self._cache_dir(job)
        if cache is None or self.settings.s3_keep_cache:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            shutil.rmtree(cache, ignore_errors=True)
            return
        cleanup = loop.run_in_executor(None, shutil.rmtree, cache, True)
        self._cleanups.add(cleanup)
        cleanup.add_done_callback(self._cleanups.discard)

    def _exit_error(self, job: Job, code: int) -> str:
        """Why a job that exited with this code failed: the mirror's fatal error if it had one."""
        status = self._mirror_status(job) or {}
        if status.get("fatal") and status.get("last_error"):
            return f"S3 mirror: {status['last_error']}"
        return f"TensorBoard {_describe_exit(code)}"

    # -- launching -------------------------------------------------------------

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
        port is taken, before anything starts.
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
        self._jobs[job.id] = job
        self.log.info("TensorBoard job %s queued for %s", job.id, options.logdir)
        if options.bind_all:
            self.log.warning(
                "TensorBoard job %s listens on all network interfaces (bind_all): "
                "anyone who can reach this machine can read its data without Jupyter's login",
                job.id,
            )
        self._schedule()
        self._save()
        return job, False

    def _check_port(self, options: LaunchOptions, job: Job | None = None) -> None:
        for other in self._jobs.values():
            if other is not job and other.status.is_live and other.port == options.port:
                raise PortInUse(
                    f"port {options.port} is already used by TensorBoard job {other.id}"
                )
        host = "0.0.0.0" if options.bind_all else (options.host or "127.0.0.1")
        if host == "localhost":
            host = "127.0.0.1"
        if not port_is_free(options.port, host):
            raise PortInUse(f"port {options.port} is already in use on this machine")

    def _schedule(self) -> None:
        if self.settings.idle_timeout > 0 and self._culler is None:
            self._culler = asyncio.ensure_future(self._cull_idle())
        active = sum(
            1
            for job in self._jobs.values()
            if job.status in (JobStatus.STARTING, JobStatus.RUNNING)
        )
        for job in self.queue()[: max(0, self.settings.max_running - active)]:
            job.status = JobStatus.STARTING
            self._tasks[job.id] = asyncio.ensure_future(self._run(job))

    # -- running ---------------------------------------------------------------

    def _argv(self, job: Job) -> list[str]:
        path_prefix = f"{self.settings.base_url}tb/{job.id}"
        if job.options.uses_tcp:
            if job.port is None:
                job.port = free_port()
            return build_argv(
                job.options,
                python=self.settings.python,
                path_prefix=path_prefix,
                port=job.port,
                **self._mirror_argv(job),
                fast_loader_above=self.settings.load_fast_auto_bytes,
                report_file=self._report_file(job),
            )
        job.unix_socket = os.path.join(self._socket_dir, f"{job.id}.sock")
        return build_argv(
            job.options,
            python=self.settings.python,
            path_prefix=path_prefix,
            unix_socket=job.unix_socket,
            **self._mirror_argv(job),
            fast_loader_above=self.settings.load_fast_auto_bytes,
            private_network=self.settings.private_network,
            report_file=self._report_file(job),
        )

    def _report_file(self, job: Job) -> str:
        """Where a job's runner says which loader and network it got."""
        return os.path.join(self._socket_dir, f"{job.id}.json")

    def _take_report(self, job: Job) -> None:
        """Read the runner's report into ``job.loader`` (once; it says it before serving)."""
        path = self._report_file(job)
        if job.loader is None:
            job.loader = _read_report(path)
        with contextlib.suppress(OSError):
            os.unlink(path)

    @staticmethod
    def _child_env() -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _ENV_DENYLIST}
        env["CUDA_VISIBLE_DEVICES"] = ""  # TensorBoard never needs a GPU
        env["PYTHONUNBUFFERED"] = "1"
        return env

    async def _run(self, job: Job) -> None:
        """Start a job's process, wait for it to answer, then watch it until it ends."""
        try:
            await self._run_process(job)
        except Exception as error:  # a bug here must not leave a job stuck in "starting"
            self.log.exception("TensorBoard job %s crashed the manager", job.id)
            self._finish(job, JobStatus.FAILED, f"internal error: {error}")
        finally:
            self._tasks.pop(job.id, None)
            self._schedule()

    async def _run_process(self, job: Job) -> None:
        argv = self._argv(job)
        if job.options.port is not None and not job.kill_requested:
            try:
                self._check_port(job.options, job)
            except PortInUse as error:
                self._finish(job, JobStatus.FAILED, str(error))
                return
        if job.kill_requested:
            self._finish(job, JobStatus.KILLED, "cancelled before it started")
            return
        self.log.info("Starting TensorBoard job %s: %s", job.id, argv)
        try:
            proc = await self._start_process(argv)
        except OSError as error:
            self._finish(job, JobStatus.FAILED, f"could not start TensorBoard: {error}")
            return
        self._procs[job.id] = proc
        job.pid = proc.pid
        job.started = _now()
        identity = process_identity(proc.pid)
        job.proc_start_time = identity[0] if identity else None
        # What /proc shows, which re-adoption compares: a forked job shows the fork server's.
        job.argv = identity[1] if identity else argv
        self._save()
        reader = asyncio.ensure_future(self._pump_output(job, proc))
        exited = asyncio.ensure_future(proc.wait())
        try:
            if job.kill_requested:
                self._signal(job, signal.SIGTERM)
            ready = await self._wait_ready(job, exited)
            if ready:
                job.status = JobStatus.RUNNING
                job.running_since = _now()
                self._take_report(job)
                self._save()
                self.log.info("TensorBoard job %s is running (pid %s)", job.id, proc.pid)
            elif not exited.done() and not job.kill_requested:
                self.log.warning("TensorBoard job %s did not answer in time", job.id)
                job.error = f"TensorBoard did not answer within {self.settings.startup_timeout:g} s"
                last_error = (self._mirror_status(job) or {}).get("last_error")
                if last_error:
                    job.error += f" (the S3 mirror's initial sync failed: {last_error})"
                self._signal(job, signal.SIGKILL)
            code = await exited
        finally:
            # The group may still hold TensorBoard's data-server child: end it too.
            self._signal(job, signal.SIGKILL)
            await reader
            self._procs.pop(job.id, None)
        job.exit_code = code
        if job.kill_requested:
            self._finish(job, JobStatus.KILLED, job.stop_reason)
        elif job.error:  # startup timeout
            self._finish(job, JobStatus.FAILED, job.error)
        elif code == 0:
            self._finish(job, JobStatus.EXITED, None)
        else:
            self._finish(job, JobStatus.FAILED, self._exit_error(job, code))

    async def _start_process(self, argv: list[str]):
        """A job's process: forked by the warm fork server when it can, else a plain subprocess."""
        env = self._child_env()
        if self.fork_server is not None:
            proc = await self.fork_server.spawn(argv, env)
            if proc is not None:
                return proc
        return await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )

    async def _wait_ready(self, job: Job, exited: asyncio.Future) -> bool:
        """Poll TensorBoard's index until it answers 200, it exits, or the startup timeout."""
        deadline = time.monotonic() + self.settings.startup_timeout
        path = f"{self.settings.base_url}tb/{job.id}/"
        delay = 0.02  # a warm (forked) job answers within about 0.1 s
        while not exited.done() and not job.kill_requested:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            status = await http_status(
                path, unix_socket=job.unix_socket, port=job.port, timeout=min(2.0, remaining)
            )
            if status == 200:
                return True
            await asyncio.wait({exited}, timeout=min(delay, max(0.0, remaining)))
            delay = min(delay * 1.5, 0.1)  # a 0.5 s step cost plain starts up to 0.3 s
        return False

    async def _pump_output(self, job: Job, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        with open(job.log_file, "ab") as log_file:
            while True:
                chunk = await proc.stdout.read(65536)
                if not chunk:
                    break
                job.output.append(chunk)
                # Small appends to a local file; not worth a thread per chunk.
                log_file.write(chunk)
                log_file.flush()

    def on_job_end(self, listener: Callable[[Job], None]) -> None:
        """Call ``listener(job)`` whenever a job ends (the proxy closes its client then)."""
        self._end_listeners.append(listener)

    def _finish(self, job: Job, status: JobStatus, error: str | None) -> None:
        job.status = status
        job.error = error
        job.ended = _now()
        job.output.close()
        job.mirror_status = self._mirror_json(job)  # kept: the cache goes now
        self._remove_cache(job)
        self._take_report(job)  # a job that failed at start may have said it too
        if job.unix_socket:
            with contextlib.suppress(OSError):
                os.unlink(job.unix_socket)
        self.log.info(
            "TensorBoard job %s %s%s", job.id, status.value, f": {error}" if error else ""
        )
        for listener in self._end_listeners:
            listener(job)
        self._prune_finished()
        self._save()

    def forget_ended(self) -> list[str]:
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

    def _signal(self, job: Job, sig: int) -> None:
        proc = self._procs.get(job.id)
        if proc is not None:
            _signal_group(proc.pid, sig)
        elif job.adopted and self._is_ours(job):
            _signal_group(job.pid, sig)

    # -- stopping --------------------------------------------------------------

    async def _cull_idle(self) -> None:
        """Stop running jobs that no proxied request has reached for ``idle_timeout``."""
        timeout = self.settings.idle_timeout
        while True:
            await asyncio.sleep(max(0.2, min(timeout / 4, 30.0)))
            now = _now()
            for job in self.list():
                if job.status != JobStatus.RUNNING or job.kill_requested:
                    continue
                since = max(filter(None, (job.last_activity, job.running_since)), default=None)
                if since and (now - since).total_seconds() >= timeout:
                    self.log.info("Stopping idle TensorBoard job %s", job.id)
                    stopping = asyncio.ensure_future(
                        self.kill(job.id, f"stopped after {timeout:g} s without requests")
                    )
                    self._stopping.add(stopping)
                    stopping.add_done_callback(self._stopping.discard)

    async def kill(self, job_id: str, reason: str | None = None) -> Job:
        """Stop a job (SIGTERM, then SIGKILL after the grace period) or cancel it if queued.

        Idempotent: killing an ended job changes nothing. ``reason`` is kept as
        the job's error text when the stop was not asked for by a user.
        """
        job = self.get(job_id)
        if not job.status.is_live:
            return job
        if job.status == JobStatus.QUEUED:
            job.kill_requested = True
            self._finish(job, JobStatus.KILLED, reason or "cancelled before it started")
            return job
        first = not job.kill_requested
        job.kill_requested = True
        job.stop_reason = job.stop_reason or reason
        task = self._tasks.get(job.id)
        if first:
            self._signal(job, signal.SIGTERM)
            self._signal(job, signal.SIGCONT)  # a stopped process only sees SIGTERM once continued
        if task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(task), self.settings.kill_grace)
            except TimeoutError:
                self.log.warning("TensorBoard job %s ignored SIGTERM; sending SIGKILL", job.id)
                self._signal(job, signal.SIGKILL)
                await asyncio.shield(task)
        return job

    async def shutdown(self) -> None:
        """Stop every job; called when the Jupyter server stops."""
        live = [job for job in self._jobs.values() if job.status.is_live]
        if live:
            self.log.info("Stopping %d TensorBoard job(s)", len(live))
        if self._culler is not None:
            self._culler.cancel()
        await asyncio.gather(
            *(self.kill(job.id, "the Jupyter server stopped") for job in live),
            return_exceptions=True,
        )
        if self._cleanups:
            await asyncio.gather(*self._cleanups, return_exceptions=True)
        if self.fork_server is not None:
            await self.fork_server.close()
        shutil.rmtree(self._socket_dir, ignore_errors=True)
