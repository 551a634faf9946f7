"""The job record: one TensorBoard process we were asked to run, and its states."""

from __future__ import annotations

import enum
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .options import LaunchOptions
from .output import OutputBuffer


class JobStatus(str, enum.Enum):
    """Where a job is in its life: queued -> starting -> running -> one of the ends."""

    QUEUED = "queued"
    STARTING = "starting"
    RUNNING = "running"
    EXITED = "exited"
    FAILED = "failed"
    KILLED = "killed"

    @property
    def is_live(self) -> bool:
        """True until the job has ended."""
        return self in (JobStatus.QUEUED, JobStatus.STARTING, JobStatus.RUNNING)


def new_job_id() -> str:
    """A random, URL-safe job id carrying 128 bits."""
    return secrets.token_urlsafe(16)


def _now() -> datetime:
    return datetime.now(timezone.utc)


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
    stop_reason: str | None = None

    @property
    def label(self) -> str:
        """A short human name for lists."""
        return self.options.window_title or f"tensorboard:{self.port}"

    @property
    def network_exposed(self) -> bool:
        """True when TensorBoard listens beyond loopback, bypassing Jupyter's login."""
        return self.options.bind_all

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
            "created": _iso(self.created),
            "started": _iso(self.started),
            "ended": _iso(self.ended),
            "exit_code": self.exit_code,
            "error": self.error,
            "output_tail": self.output.tail_lines(20) if self.status == JobStatus.FAILED else [],
            "queue_position": queue_position,
            "last_activity": _iso(self.last_activity),
        }
