"""The job record: one TensorBoard process we were asked to run, and its states."""

from __future__ import annotations

import enum
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..common.options import LaunchOptions
from .output import OutputBuffer


class JobStatus(enum.StrEnum):
    """Where a job is in its life: queued -> starting -> running -> one of the ends."""

    QUEUED = "queued"
    STARTING = "starting"
    RUNNING = "running"
    EXITED = "exited"
    FAILED = "failed"
    KILLED = "killed"
    LOST = "lost"  # was live when the server died, and could not be re-adopted

    @property
    def is_live(self) -> bool:
        """True until the job has ended."""
        return self in (JobStatus.QUEUED, JobStatus.STARTING, JobStatus.RUNNING)


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
    """One TensorBoard job: its options, state, and where it listens."""

    options: LaunchOptions
    url: str
    output: OutputBuffer
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
    unix_socket: str | None = None
    log_file: str | None = None
    kill_requested: bool = False
    last_activity: datetime | None = None
    running_since: datetime | None = None  # when it last became running (idle timer start)
    stop_reason: str | None = None
    argv: list[str] | None = None
    proc_start_time: int | None = None
    adopted: bool = False
    mirror_status: dict | None = None  # an s3:// job's last mirror status, kept when it ends
    loader: dict | None = None  # what its runner reported: {"name", "private_network"}

    @property
    def label(self) -> str:
        """A short human name for lists."""
        return self.options.window_title or f"tensorboard:{self.port}"

    @property
    def network_exposed(self) -> bool:
        """True when TensorBoard listens beyond loopback, bypassing Jupyter's login."""
        return self.options.bind_all

    def to_record(self) -> dict[str, Any]:
        """Everything needed to recognise this job after a server restart."""
        return {
            "id": self.id,
            "options": self.options.to_json(),
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
            "unix_socket": self.unix_socket,
            "log_file": self.log_file,
            "argv": self.argv,
            "proc_start_time": self.proc_start_time,
            "loader": self.loader,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any], output: OutputBuffer) -> Job:
        """Rebuild a job saved by :meth:`to_record` (raises on a malformed record)."""

        def when(key: str) -> datetime | None:
            return datetime.fromisoformat(record[key]) if record.get(key) else None

        return cls(
            options=LaunchOptions(**record["options"]),
            url=str(record["url"]),
            output=output,
            id=str(record["id"]),
            status=JobStatus(record["status"]),
            seq=int(record["seq"]),
            created=when("created") or _now(),
            started=when("started"),
            ended=when("ended"),
            pid=record.get("pid"),
            exit_code=record.get("exit_code"),
            error=record.get("error"),
            port=record.get("port"),
            unix_socket=record.get("unix_socket"),
            log_file=record.get("log_file"),
            argv=record.get("argv"),
            proc_start_time=record.get("proc_start_time"),
            loader=record.get("loader"),
        )

    def to_json(self, queue_position: int | None = None) -> dict[str, Any]:
        """The job as the REST API shows it."""
        return {
            "id": self.id,
            "label": self.label,
            "status": self.status.value,
            "options": self.options.to_json(),
            "url": self.url,
            "pid": self.pid,
            "port": self.port,
            "transport": "tcp" if self.options.uses_tcp else "unix",
            "network_exposed": self.network_exposed,
            "loader": self.loader,
            "created": _iso(self.created),
            "started": _iso(self.started),
            "ended": _iso(self.ended),
            "exit_code": self.exit_code,
            "error": self.error,
            "output_tail": self.output.tail_lines(20) if self.status == JobStatus.FAILED else [],
            "queue_position": queue_position,
            "last_activity": _iso(self.last_activity),
            "adopted": self.adopted,
        }
