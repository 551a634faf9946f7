"""What this server process holds of a job beyond its saved record.

A :class:`~.job.Job` is what the state file keeps and a restart reads back. Beside
each one the :class:`~.table.JobTable` keeps a :class:`JobLive`: its output, the
stop asked of its processes, the last samples of its usage and event files, why it
waits in the queue, and who follows it. None of it outlives the server process.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..logdirs.find import EventScan
from .output import OutputBuffer


@dataclass(eq=False)
class JobLive:
    """One job's state in this server process: never saved, started afresh after a restart."""

    output: OutputBuffer  # the end of its output, followed by byte offset
    kill_requested: bool = False
    stop_reason: str | None = None  # the error text of a stop no user asked for
    suspend_requested: bool = False  # its processes are being stopped to suspend it
    running_since: datetime | None = None  # when it last became running (idle timer start)
    adopted: bool = False  # its process was started by an earlier server and re-adopted
    queue_reason: str | None = None  # why a queued job waits
    usage: dict[str, Any] | None = None  # the last usage sample while it runs
    events: EventScan | None = None  # the last scan of its event files (see activity.py)
    events_at: float | None = None  # when that scan ended (time.monotonic)
    output_followers: int = 0  # open output streams (a followed job is never suspended)
    mirror_status: dict[str, Any] | None = None  # a remote job's last mirror status, once ended
