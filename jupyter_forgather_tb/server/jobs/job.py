"""The job record: one TensorBoard process we were asked to run, and its states.

A :class:`Job` holds what the state file keeps (see :meth:`Job.to_record`); what this
server process alone knows of it is its :class:`~.live.JobLive`.
"""

from __future__ import annotations

import enum
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing import TypeGuard  # Python 3.10+; annotations only

    from .live import JobLive

from ...common.options import LaunchOptions


class JobStatus(enum.StrEnum):
    """Where a job is in its life: queued -> starting -> running -> one of the ends.

    A running job left without requests may be ``suspended``: its processes are gone,
    the job stays, and the next request queues it to start again.
    """

    QUEUED = "queued"
    STARTING = "starting"
    RUNNING = "running"
    SUSPENDED = "suspended"
    EXITED = "exited"
    FAILED = "failed"
    KILLED = "killed"
    LOST = "lost"  # was live when the server died, and could not be re-adopted

    @property
    def is_live(self) -> bool:
        """True until the job has ended."""
        return self in (
            JobStatus.QUEUED,
            JobStatus.STARTING,
            JobStatus.RUNNING,
            JobStatus.SUSPENDED,
        )


# What new_job_id makes: 22 URL-safe base64 characters, the first not "-".
_JOB_ID_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{21}")


def is_job_id(value: object) -> TypeGuard[str]:
    """True if ``value`` has the form of an id :func:`new_job_id` makes."""
    return isinstance(value, str) and _JOB_ID_RE.fullmatch(value) is not None


def new_job_id() -> str:
    """A random, URL-safe job id from 16 random bytes that does not start with "-".

    An id starting with "-" would read as an option on a command line
    (``jupyter forgather-tb show -x...``); 1 in 64 random ids would.
    """
    while (job_id := secrets.token_urlsafe(16)).startswith("-"):
        pass
    return job_id


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


@dataclass(eq=False)
class Job:
    """One TensorBoard job's saved record: its options, state, and where it listens."""

    options: LaunchOptions
    url: str
    id: str = field(default_factory=new_job_id)
    status: JobStatus = JobStatus.QUEUED
    seq: int = 0
    created: datetime = field(default_factory=_now)
    started: datetime | None = None
    ended: datetime | None = None
    pid: int | None = None
    exit_code: int | None = None
    error: str | None = None
    port: int | None = None
    host: str | None = None  # the IP its TCP listener bound, once proved to be the job's own
    unix_socket: str | None = None
    report_file: str | None = None  # where its runner says which loader it got
    log_file: str | None = None
    last_activity: datetime | None = None
    argv: list[str] | None = None
    proc_start_time: int | None = None
    loader: dict[str, Any] | None = None  # what its runner reported: {"name", "private_network"}
    memory_limit: int | None = None  # its memory cap in bytes (None: no cap)
    cpu_nice: int | None = None
    cpu_limit: float | None = None  # cores, where the machine enforces it
    enforced_by: str | None = None  # "cgroup2", "cgroup1" or "watchdog" once started
    cgroup_files: list[str] | None = None  # the cgroup.procs files its runner joins
    logdir_tree: str | None = None  # a compare job's folder of links (see compare.py)
    suspended_at: datetime | None = None  # when it was last suspended, while it is
    wakes: int = 0  # how many times it was woken from suspension

    @property
    def label(self) -> str:
        """A short human name for lists."""
        return self.options.window_title or f"tensorboard:{self.port}"

    @property
    def exposure(self) -> str:
        """Who can read the job without Jupyter's login: ``none``, ``local`` users, ``network``.

        ``local``: TensorBoard listens on a loopback TCP port, or its Rust data server does
        outside a private network; any user of this machine can connect to either.
        """
        if self.options.bind_all:
            return "network"
        rust_shared = self.loader == {"name": "rust", "private_network": False}
        return "local" if self.options.uses_tcp or rust_shared else "none"

    @property
    def network_exposed(self) -> bool:
        """True when TensorBoard listens beyond loopback (``bind_all``): see :attr:`exposure`."""
        return self.exposure == "network"

    def to_record(self) -> dict[str, Any]:
        """Everything needed to recognise this job after a server restart."""
        return {
            "id": self.id,
            "options": self.options.to_body(),
            "url": self.url,
            "status": self.status.value,
            "seq": self.seq,
            "created": _iso(self.created),
            "started": _iso(self.started),
            "ended": _iso(self.ended),
            "pid": self.pid,
            "exit_code": self.exit_code,
            "error": self.error,
            "port": self.port,
            "host": self.host,
            "unix_socket": self.unix_socket,
            "report_file": self.report_file,
            "log_file": self.log_file,
            "argv": self.argv,
            "proc_start_time": self.proc_start_time,
            "loader": self.loader,
            "memory_limit": self.memory_limit,
            "cpu_nice": self.cpu_nice,
            "cpu_limit": self.cpu_limit,
            "enforced_by": self.enforced_by,
            "cgroup_files": self.cgroup_files,
            "logdir_tree": self.logdir_tree,
            "last_activity": _iso(self.last_activity),
            "suspended_at": _iso(self.suspended_at),
            "wakes": self.wakes,
        }

    def to_json(self, live: JobLive, queue_position: int | None = None) -> dict[str, Any]:
        """The job as the REST API shows it, with what this server holds of it (``live``)."""
        return {
            "id": self.id,
            "label": self.label,
            "status": self.status.value,
            "options": self.options.to_json(),
            "logdirs": dict(self.options.logdirs) if self.options.logdirs else None,
            "url": self.url,
            "pid": self.pid,
            "port": self.port,
            "transport": "tcp" if self.options.uses_tcp else "unix",
            "network_exposed": self.network_exposed,
            "exposure": self.exposure,
            "loader": self.loader,
            "created": _iso(self.created),
            "started": _iso(self.started),
            "ended": _iso(self.ended),
            "exit_code": self.exit_code,
            "error": self.error,
            "output_tail": live.output.tail_lines(20) if self.status == JobStatus.FAILED else [],
            "queue_position": queue_position,
            "last_activity": _iso(self.last_activity),
            "adopted": live.adopted,
            "limits": {
                "memory_bytes": self.memory_limit,
                "cpu_nice": self.cpu_nice,
                "cpu_limit": self.cpu_limit,
                "enforced_by": self.enforced_by,
            },
            "usage": live.usage if self.status == JobStatus.RUNNING else None,
            "queue_reason": live.queue_reason if self.status == JobStatus.QUEUED else None,
            "suspended_at": _iso(self.suspended_at),
            "wakes": self.wakes,
        }
