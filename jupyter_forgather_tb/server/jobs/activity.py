"""Each job's activity: its runs and event files, and whether they still grow.

Scanned only while someone asks: reading a live job's JSON answers the last scan
and starts a new one in the scan threads when that one is older than
:data:`RESCAN_AFTER`. Nothing scans the jobs nobody looks at. A local log directory
(each folder of a compare job) is walked within the log directory picker's limits;
an ``s3://`` job's figures come from its mirror's status, which lists what S3 holds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ...common.sources import is_remote, url_scheme
from ..logdirs.find import EventScan, scan_events
from .job import Job, JobStatus
from .live import JobLive
from .mirrors import MirrorCaches

#: Seconds a job's scan is answered before a request for its JSON starts another.
RESCAN_AFTER = 3.0


@dataclass(frozen=True)
class ActivitySettings:
    """The traits activity follows (see ``app.ForgatherTB``)."""

    live_window: float
    stall_after: float  # 0: never stalled
    scan_depth: int
    scan_max_dirs: int
    scan_max_entries: int


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def activity_json(
    scan: EventScan, now: float, running: bool, settings: ActivitySettings
) -> dict[str, Any]:
    """A scan as the REST API shows it, its state judged at ``now`` (epoch seconds).

    ``waiting``: no event files yet; ``live``: one was written within
    ``live_window``; ``idle``: none since. ``stalled``: a running job whose newest
    write is ``stall_after`` old or older.
    """
    age = None if scan.last_write is None else now - scan.last_write
    if scan.event_files == 0 or age is None:
        state = "waiting"
    else:
        state = "live" if age < settings.live_window else "idle"
    stall_after = settings.stall_after
    return {
        "runs": scan.runs,
        "event_files": scan.event_files,
        "event_bytes": scan.event_bytes,
        "last_write": None if scan.last_write is None else _iso(scan.last_write),
        "state": state,
        "stalled": running and stall_after > 0 and age is not None and age >= stall_after,
    }


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def mirror_scan(status: dict[str, Any] | None) -> EventScan | None:
    """The event files an s3:// job's mirror last listed, from its status; None before that."""
    events = status.get("events") if status else None
    if not isinstance(events, dict):
        return None
    runs, files, size = (_count(events.get(key)) for key in ("runs", "event_files", "event_bytes"))
    if runs is None or files is None or size is None:
        return None
    last_write = None
    if isinstance(events.get("last_write"), str):
        try:
            last_write = datetime.fromisoformat(events["last_write"]).timestamp()
        except ValueError:
            return None
    return EventScan(runs, files, size, last_write)


class ActivityTracker:
    """Keeps each job's last scan in its :class:`~.live.JobLive`; scans again when asked and due."""

    def __init__(
        self,
        settings: ActivitySettings,
        mirrors: MirrorCaches,
        executor: Executor | None,
        log: logging.Logger,
    ):
        self.settings = settings
        self.mirrors = mirrors
        self.executor = executor  # None: asyncio's default threads
        self.log = log
        self._scanning: dict[str, asyncio.Future[EventScan | None]] = {}

    def json(self, job: Job, live: JobLive) -> dict[str, Any] | None:
        """A job's activity (None before its first scan); starts a scan of a live job if due."""
        if job.status.is_live:
            self._rescan_if_due(job, live)
        if live.events is None:
            return None
        return activity_json(
            live.events, time.time(), job.status == JobStatus.RUNNING, self.settings
        )

    def _rescan_if_due(self, job: Job, live: JobLive) -> None:
        scheme = url_scheme(job.options.logdir)
        if job.id in self._scanning or (scheme and not is_remote(job.options.logdir)):
            return  # one at a time; gs:// is read by TensorBoard alone
        if live.events_at is not None and time.monotonic() - live.events_at < RESCAN_AFTER:
            return
        loop = asyncio.get_running_loop()
        try:
            scan = loop.run_in_executor(self.executor, self._scan, job)
        except RuntimeError:  # the server is stopping: its scan threads are gone
            return
        self._scanning[job.id] = scan
        scan.add_done_callback(lambda done: self._scanned(job, live, done))

    def _scan(self, job: Job) -> EventScan | None:
        """The job's event files now (in a scan thread)."""
        if is_remote(job.options.logdir):
            return mirror_scan(self.mirrors.mirror_status(job))
        logdirs = job.options.logdirs
        tops = [path for _, path in logdirs] if logdirs else [job.options.logdir]
        limits = self.settings
        return scan_events(tops, limits.scan_depth, limits.scan_max_dirs, limits.scan_max_entries)

    def _scanned(self, job: Job, live: JobLive, done: asyncio.Future[EventScan | None]) -> None:
        del self._scanning[job.id]
        live.events_at = time.monotonic()
        if done.cancelled():
            return
        error = done.exception()
        if error is not None:
            self.log.warning("Scanning TensorBoard job %s's event files failed: %s", job.id, error)
            return
        live.events = done.result() or live.events
