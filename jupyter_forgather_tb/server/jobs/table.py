"""The job table: every job of one server by id, its queue order, and its copy on disk.

Beside each job's record it keeps what this server process holds of it, its
:class:`~.live.JobLive`, for as long as the record is held: a job dropped from the
table still answers with its output while a request holds it.
"""

from __future__ import annotations

import builtins
import logging
import weakref
from datetime import UTC, datetime

from ...common.options import LaunchOptions
from .errors import JobNotFound
from .job import Job, JobStatus
from .live import JobLive
from .output import OutputBuffer
from .scheduling import queue_order
from .settings import ManagerSettings
from .state import StateFile


def now() -> datetime:
    """The current time, in UTC (job timestamps)."""
    return datetime.now(UTC)


class JobTable:
    """Every job of one Jupyter server by id, saved to the state file after each change."""

    def __init__(self, settings: ManagerSettings, state: StateFile | None, log: logging.Logger):
        self.settings = settings
        self.state = state
        self.log = log
        self.jobs: dict[str, Job] = {}
        # Keyed by the record itself, weakly: it goes with the last reference to the job.
        self._live: weakref.WeakKeyDictionary[Job, JobLive] = weakref.WeakKeyDictionary()
        self.seq = 0  # the last job's number: jobs are listed in this order

    def get(self, job_id: str) -> Job:
        """The job with this id, or :class:`JobNotFound`."""
        try:
            return self.jobs[job_id]
        except KeyError:
            raise JobNotFound(f"no TensorBoard job with id {job_id!r}") from None

    def live(self, job: Job) -> JobLive:
        """What this server process holds of a job that was put in the table."""
        return self._live[job]

    def add(self, job: Job) -> None:
        """Put a job in the table (a new one, or one restored from the state file)."""
        self.seq = max(self.seq, job.seq)
        self.jobs[job.id] = job
        self._live[job] = JobLive(OutputBuffer(self.settings.output_buffer_size))

    def list(self) -> builtins.list[Job]:
        """All jobs, oldest first."""
        return sorted(self.jobs.values(), key=lambda job: job.seq)

    def queue(self) -> builtins.list[Job]:
        """Queued jobs in the order they will start: highest priority, then oldest."""
        return queue_order(self.jobs.values())

    def queue_position(self, job: Job) -> int | None:
        """1-based place of a queued job in the queue, else None."""
        if job.status != JobStatus.QUEUED:
            return None
        return self.queue().index(job) + 1

    def find_reusable(self, options: LaunchOptions) -> Job | None:
        """A live job started with the same options, if any."""
        key = options.reuse_key()
        for job in self.list():
            if job.status.is_live and job.options.reuse_key() == key:
                return job
        return None

    def suspended(self) -> builtins.list[Job]:
        """The jobs that are suspended now."""
        return [job for job in self.list() if job.status == JobStatus.SUSPENDED]

    def forget_ended(self) -> builtins.list[str]:
        """Drop every ended job from the table (their log files stay); the ids dropped."""
        ended = [job.id for job in self.list() if not job.status.is_live]
        for job_id in ended:
            del self.jobs[job_id]
        if ended:
            self.save()
        return ended

    def prune_finished(self) -> None:
        """Keep only the last ``max_finished`` ended jobs."""
        finished = [job for job in self.list() if not job.status.is_live]
        for job in finished[: max(0, len(finished) - self.settings.max_finished)]:
            del self.jobs[job.id]

    def save(self) -> None:
        """Write the table to the state file, if this server has one."""
        if self.state is not None:
            try:
                self.state.save([job.to_record() for job in self.list()])
            except OSError as error:
                self.log.warning("Could not save the TensorBoard job table: %s", error)

    def close(self) -> None:
        """Release the state file's lock."""
        if self.state is not None:
            self.state.close()
