"""Starting, watching and stopping a job's processes, and deciding which queued job starts."""

from __future__ import annotations

import asyncio
import builtins
import os
import shutil
import signal

from ...common.options import OptionError, build_argv
from ..host.procfs import process_identity
from ..host.transport import free_port
from ..logdirs.compare import TREE_SUFFIX, make_tree
from .admission import admit, confine
from .errors import PortInUse
from .forkclient import JobProcess
from .job import Job, JobStatus
from .mirrors import UnknownConnection
from .readiness import Readiness, taken
from .registry import now, signal_group
from .scheduling import plan

#: Seconds between two samples of the jobs' memory and CPU (the watchdog's period).
USAGE_INTERVAL = 1.0

# Variables a TensorBoard child must not inherit: Jupyter's own credentials.
_ENV_DENYLIST = ("JUPYTER_TOKEN", "JPY_API_TOKEN", "JUPYTERHUB_API_TOKEN", "JPY_SESSION_NAME")


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


class ProcessLifecycle(Readiness):
    """Runs queued jobs as processes: start, readiness, output, exit, kill."""

    _usage_task: asyncio.Task[None] | None

    def _schedule(self) -> None:
        if self._usage_task is None:
            self._usage_task = asyncio.ensure_future(self._watch_usage())
        decided = plan(
            self._jobs.values(), self.settings.max_running, self.settings.total_memory_limit
        )
        for job in self.queue():
            job.queue_reason = decided.waiting.get(job.id)
        for job in decided.start:
            job.status = JobStatus.STARTING
            self._tasks[job.id] = asyncio.ensure_future(self._run(job))

    def _requeue(self, job: Job) -> bool:
        """Queue a job that starts again (a wake, a restored queued job) under today's rules.

        It gets today's memory cap, niceness and CPU limit; if the rules refuse it (see
        :func:`~.admission.admit`), it ends failed, saying which rule, and False is returned.
        """
        try:
            job.memory_limit = admit(job.options, self.settings)
        except OptionError as error:
            self._finish(job, JobStatus.FAILED, f"not started again: {error}")
            return False
        job.cpu_nice = self.settings.cpu_nice
        job.cpu_limit = self.settings.cpu_limit or None
        job.status = JobStatus.QUEUED
        return True

    async def _confine(self, job: Job) -> bool:
        """Resolve and check a starting job's log directories again; it reads the paths found.

        False, and the job failed in words, if one now leads outside the allowed roots.
        """
        loop = asyncio.get_running_loop()
        try:
            job.options = await loop.run_in_executor(None, confine, job.options, self.settings)
        except OptionError as error:
            self._finish(job, JobStatus.FAILED, f"not started: {error}")
            return False
        return True

    async def _watch_usage(self) -> None:
        """Sample live jobs' usage about once a second; end those over their memory cap."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(USAGE_INTERVAL)
            live = [
                job
                for job in self._jobs.values()
                if job.status in (JobStatus.STARTING, JobStatus.RUNNING) and job.pid
            ]
            if not live:
                continue
            try:
                over = await loop.run_in_executor(self.limits.executor, self.limits.sample, live)
            except Exception:  # a bad reading must not stop the watch
                self.log.exception("Sampling TensorBoard jobs' usage failed")
                continue
            for job, why in over:
                self.log.warning("TensorBoard job %s: %s; ending it", job.id, why)
                if job.pid:
                    signal_group(job.pid, signal.SIGKILL)

    def _argv(self, job: Job) -> builtins.list[str]:
        """Give a job its socket (or port), report file and mirror cache; its command line."""
        if job.options.uses_tcp:
            if job.port is None:
                job.port = free_port()
        else:
            job.unix_socket = os.path.join(self._socket_dir, f"{job.id}.sock")
        job.report_file = os.path.join(self._socket_dir, f"{job.id}.json")
        if job.options.logdirs is not None:
            job.logdir_tree = os.path.join(self._socket_dir, f"{job.id}{TREE_SUFFIX}")
            make_tree(job.logdir_tree, job.options.logdirs)
        self.s3.make_cache(job)
        self.limits.prepare(job)
        return self._build_argv(job)

    def _build_argv(self, job: Job) -> builtins.list[str]:
        """The command line this server runs for a job, from its options and its own paths."""
        where = {"port": job.port} if job.options.uses_tcp else {"unix_socket": job.unix_socket}
        # A remote job reads its mirror, a compare job its folder of links.
        read = {"logdir": job.logdir_tree} if job.logdir_tree else self.s3.mirror_argv(job)
        return build_argv(
            job.options,
            python=self.settings.python,
            path_prefix=f"{self.settings.base_url}tb/{job.id}",
            **where,
            **read,
            fast_loader_above=self.settings.load_fast_auto_bytes,
            private_network=self.settings.private_network,
            report_file=job.report_file,
            **self.limits.argv(job),
        )

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
        if not await self._confine(job):
            return
        try:
            argv = self._argv(job)
        except UnknownConnection as error:
            self._finish(job, JobStatus.FAILED, str(error))
            return
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
        job.started = now()
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
                job.running_since = now()
                self._take_report(job)
                self._settle_wake(job)
                self._save()
                self.log.info("TensorBoard job %s is running (pid %s)", job.id, proc.pid)
            elif job.error:  # its port is taken
                self.log.warning("TensorBoard job %s: %s", job.id, job.error)
                self._signal(job, signal.SIGKILL)
            elif not exited.done() and not job.kill_requested:
                self.log.warning("TensorBoard job %s did not answer in time", job.id)
                job.error = f"TensorBoard did not answer within {self.settings.startup_timeout:g} s"
                last_error = (self.s3.mirror_status(job) or {}).get("last_error")
                if last_error:
                    label = self.s3.label(job)
                    job.error += f" (the {label} mirror's initial sync failed: {last_error})"
                self._signal(job, signal.SIGKILL)
            code = await exited
        finally:
            # The group may still hold TensorBoard's data-server child: end it too.
            self._signal(job, signal.SIGKILL)
            await reader
            self._procs.pop(job.id, None)
        job.exit_code = code
        over_memory = self.limits.ended(job)
        if code != 0 and job.options.uses_tcp and not job.error and not job.kill_requested:
            # Failed to listen, most likely: say who holds the port.
            foreign = (await self._check_listener(job, None, self._intended_ip(job))).foreign
            if foreign is not None:
                job.error = taken(job.port, foreign)
        if job.kill_requested:
            self._finish(job, JobStatus.KILLED, job.stop_reason)
        elif job.suspend_requested:
            self._suspended(job)
        elif over_memory:
            self._finish(job, JobStatus.FAILED, over_memory)
        elif job.error:  # startup timeout, or its port is taken
            self._finish(job, JobStatus.FAILED, job.error)
        elif code == 0:
            self._finish(job, JobStatus.EXITED, None)
        else:
            self._finish(
                job,
                JobStatus.FAILED,
                self.s3.fatal_error(job) or f"TensorBoard {_describe_exit(code)}",
            )

    async def _start_process(self, argv: builtins.list[str]) -> JobProcess:
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

    async def _pump_output(self, job: Job, proc: JobProcess) -> None:
        assert proc.stdout is not None
        assert job.log_file is not None  # set at launch, and kept in the job table
        with open(job.log_file, "ab") as log_file:
            while True:
                chunk = await proc.stdout.read(65536)
                if not chunk:
                    break
                job.output.append(chunk)
                # Small appends to a local file; not worth a thread per chunk.
                log_file.write(chunk)
                log_file.flush()

    async def kill(self, job_id: str, reason: str | None = None) -> Job:
        """Stop a job (SIGTERM, then SIGKILL after the grace period), or cancel it if queued.

        A suspended job ends at once. Idempotent: killing an ended job changes nothing.
        ``reason`` is kept as the job's error text when the stop was not asked for by a
        user.
        """
        job = self.get(job_id)
        if not job.status.is_live:
            return job
        if job.status in (JobStatus.QUEUED, JobStatus.SUSPENDED):  # no process
            job.kill_requested = True
            never_started = job.started is None
            self._finish(
                job,
                JobStatus.KILLED,
                reason or ("cancelled before it started" if never_started else None),
            )
            return job
        first = not job.kill_requested
        job.kill_requested = True
        job.stop_reason = job.stop_reason or reason
        await self._stop_process(job, first)
        return job

    async def _stop_process(self, job: Job, signal_it: bool) -> None:
        """End a starting or running job's processes and wait until its task has seen it."""
        task = self._tasks.get(job.id)
        if signal_it:
            self._signal(job, signal.SIGTERM)
            self._signal(job, signal.SIGCONT)  # a stopped process only sees SIGTERM once continued
        if task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(task), self.settings.kill_grace)
            except TimeoutError:
                self.log.warning("TensorBoard job %s ignored SIGTERM; sending SIGKILL", job.id)
                self._signal(job, signal.SIGKILL)
                await asyncio.shield(task)

    async def shutdown(self) -> None:
        """Stop every job's processes; called when the Jupyter server stops."""
        # Suspended jobs have no process, and stay suspended for the next server.
        live = [
            job
            for job in self._jobs.values()
            if job.status.is_live and job.status != JobStatus.SUSPENDED
        ]
        if live:
            self.log.info("Stopping %d TensorBoard job(s)", len(live))
        if self._usage_task is not None:
            self._usage_task.cancel()
        await asyncio.gather(
            *(self.kill(job.id, "the Jupyter server stopped") for job in live),
            return_exceptions=True,
        )
        await self.s3.wait_for_cleanups()
        self.limits.close()
        if self.fork_server is not None:
            await self.fork_server.close()
        shutil.rmtree(self._socket_dir, ignore_errors=True)
        if self._state is not None:
            self._state.close()
