"""An incremental local mirror of the TensorBoard files of a remote source (s3, gs, az, ssh).

Runs in the runner process (never in the Jupyter server, which must not import
fsspec): one full sync before TensorBoard starts, then syncs in a thread. Event
files are append-only, so a file that grew is read from the last mirrored byte
with a ranged read; a new file, one that shrank, or one whose old bytes changed
is fetched whole. Paths that would break the mirror or TensorBoard (see
``paths_to_skip``) are skipped and reported. A source that does not change is
polled less and less often, up to :data:`MAX_IDLE_INTERVAL`; a suspended job's
process is stopped, so it polls nothing. The status goes to a JSON file the job
manager reads.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ..common.jsonfile import write_json
from ..common.remotefs import RemoteFile, RemoteSource, SourceError, describe_error
from ..common.s3status import summarize_events
from ..common.tbfiles import paths_to_skip

#: Bytes re-read before the mirrored end of a grown file, compared with the local
#: copy: a cheap check that the file was appended to rather than rewritten.
OVERLAP_BYTES = 64
MAX_BACKOFF_SECONDS = 300.0
#: The longest wait between two syncs of a source that has not changed (seconds); the
#: wait doubles after each unchanged sync from the job's sync interval up to this.
MAX_IDLE_INTERVAL = 60.0
#: Whole files fetched at once during a sync (reads of one file stay sequential).
FETCH_WORKERS = 8
#: Skipped paths listed in the status file; ``skipped_count`` says how many there are in all.
MAX_SKIPPED_REPORTED = 20


@dataclass
class _Local:
    """What the mirror holds of one file: its size and the version it had."""

    size: int
    version: str


class Progress:
    """The first copy's progress: files and bytes done of the total, and when it began."""

    def __init__(self) -> None:
        self.files_total = 0
        self.bytes_total = 0
        self.files = 0
        self.bytes = 0
        self.started = time.monotonic()
        self.done = False

    def to_json(self) -> dict[str, Any]:
        """``{files, files_total, bytes, bytes_total, eta_seconds, done}`` for the status."""
        elapsed = time.monotonic() - self.started
        eta = None
        if not self.done and self.bytes and self.bytes_total:
            eta = round(elapsed * (self.bytes_total - self.bytes) / self.bytes, 1)
        return {
            "files": self.files,
            "files_total": self.files_total,
            "bytes": self.bytes,
            "bytes_total": self.bytes_total,
            "eta_seconds": 0.0 if self.done else eta,
            "done": self.done,
        }


class Mirror:
    """Keeps ``dest`` a copy of the event files and plugin assets of ``source``.

    ``scratch`` is a directory outside ``dest`` on the same file system for
    whole downloads in progress (TensorBoard must never see half a file under
    a new name). Not thread-safe: one thread calls :meth:`sync`.
    """

    def __init__(
        self, source: RemoteSource, dest: str, scratch: str, max_bytes: int, max_objects: int
    ):
        self.source = source
        self.url = str(source.url)
        self.dest = dest
        self.scratch = scratch
        self.max_bytes = max_bytes
        self.max_objects = max_objects
        self._local: dict[str, _Local] = {}
        #: ``{"key", "reason"}`` of each path the last listing left out, sorted by path.
        self.skipped: list[dict[str, str]] = []
        self.bytes_fetched = 0
        self.syncs = 0
        self.checked = False
        #: What the last listing's event files add up to (see ``summarize_events``).
        self.events: dict[str, Any] | None = None
        self.progress = Progress()
        self._lock = threading.Lock()

    @property
    def objects(self) -> int:
        """How many files the mirror holds."""
        return len(self._local)

    @property
    def bytes(self) -> int:
        """How many bytes the mirror holds."""
        return sum(entry.size for entry in self._local.values())

    def _list(self) -> dict[str, RemoteFile]:
        """``{local path: file}`` of the files TensorBoard reads; stops above ``max_objects``."""
        listing: dict[str, RemoteFile] = {}
        for item in self.source.list():
            if len(listing) == self.max_objects:
                raise SourceError(
                    f"{self.url} holds more TensorBoard files than the cache may hold "
                    f"({self.max_objects} objects, c.ForgatherTB.mirror_cache_max_objects)",
                    fatal=True,
                )
            listing[item.path] = item
        return listing

    def sync(self) -> bool:
        """Bring the mirror up to date once; True if anything changed. Raises SourceError."""
        try:
            try:
                listing = self._list()
            except FileNotFoundError:
                if self.checked:
                    raise
                self.source.check()  # why, in words
                raise
            if not listing and not self.checked:
                self.source.check()
            self.checked = True
            total = sum(item.size for item in listing.values())
            if total > self.max_bytes:
                raise SourceError(
                    f"{self.url} holds {total} bytes of TensorBoard files, more than the cache "
                    f"may hold ({self.max_bytes} bytes, c.ForgatherTB.mirror_cache_max_bytes)",
                    fatal=True,
                )
        except Exception as error:
            raise describe_error(error, self.source.url) from error
        self._skip(listing)
        self.events = summarize_events(
            (path, item.size, item.modified) for path, item in listing.items()
        )
        changed = False
        failure = None
        # What went goes first: a folder may take the place of a file, or the other way round.
        for path in set(self._local) - set(listing):
            changed = True
            try:
                self._remove(path)
            except OSError as error:
                failure = failure or describe_error(error, self.source.url)
        todo = [
            item
            for path, item in sorted(listing.items())
            if (have := self._local.get(path)) is None
            or have.size != item.size
            or have.version != item.version
        ]
        if not self.progress.done:
            self.progress.files_total = len(listing)
            self.progress.bytes_total = total
        if todo:
            changed = True
            with ThreadPoolExecutor(min(FETCH_WORKERS, len(todo))) as pool:
                for problem in pool.map(self._update, todo):
                    # One file that cannot be fetched must not hold back the others.
                    failure = failure or problem
        if failure is not None:
            raise failure
        self.progress.done = True
        self.syncs += 1
        return changed

    def _update(self, item: RemoteFile) -> SourceError | None:
        """Fetch what changed of one file; the error in words if that failed."""
        have = self._local.get(item.path)
        try:
            if have is None or item.size <= have.size or not self._append(item, have):
                self._fetch_whole(item)
        except Exception as error:
            return describe_error(error, self.source.url)
        with self._lock:
            if not self.progress.done:
                self.progress.files += 1
                self.progress.bytes += item.size
        return None

    def _skip(self, listing: dict[str, RemoteFile]) -> None:
        """Take the paths to skip out of ``listing``, noting them and why."""
        skipped = paths_to_skip(listing)
        self.skipped = [
            {"key": self.source.key(path), "reason": reason}
            for path, reason in sorted(skipped.items())
        ]
        for path in skipped:
            del listing[path]

    def _remove(self, path: str) -> None:
        """Remove a mirrored file, and the folders it leaves empty."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(self.dest, path))
        del self._local[path]
        folder = os.path.dirname(path)
        while folder:
            try:
                os.rmdir(os.path.join(self.dest, folder))
            except OSError:  # not empty: it holds other mirrored files
                break
            folder = os.path.dirname(folder)

    def _count(self, size: int) -> None:
        with self._lock:
            self.bytes_fetched += size

    def _append(self, item: RemoteFile, have: _Local) -> bool:
        """Fetch only what was appended; False when the file's old bytes changed."""
        overlap = min(OVERLAP_BYTES, have.size)
        start = have.size - overlap
        chunks = self.source.read(item.path, start, item.size)
        head = b""
        with open(os.path.join(self.dest, item.path), "r+b") as local:
            local.seek(start)
            old = local.read(overlap)
            size = have.size
            for chunk in chunks:
                self._count(len(chunk))
                if len(head) < overlap:
                    take = overlap - len(head)
                    head, chunk = head + chunk[:take], chunk[take:]
                    if len(head) < overlap:
                        continue
                    if head != old:
                        chunks.close()
                        return False
                    # Drop what an append cut short last time may have left after the end.
                    local.truncate(have.size)
                    local.seek(have.size)
                if chunk:
                    local.write(chunk)
                    size += len(chunk)
            if len(head) < overlap:
                return False  # the file shrank while we read it: fetch it whole
        self._local[item.path] = _Local(size, item.version)
        return True

    def _fetch_whole(self, item: RemoteFile) -> None:
        local_path = os.path.join(self.dest, item.path)
        fd, part = tempfile.mkstemp(dir=self.scratch)
        size = 0
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in self.source.read(item.path, 0, item.size):
                    out.write(chunk)
                    size += len(chunk)
                    self._count(len(chunk))
            os.makedirs(os.path.dirname(local_path), exist_ok=True)
            os.replace(part, local_path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(part)
            raise
        self._local[item.path] = _Local(size, item.version)


def _iso(moment: datetime | None = None) -> str:
    return (moment or datetime.now(UTC)).isoformat()


class StatusFile:
    """The mirror's status as a JSON file, replaced atomically on each write."""

    def __init__(self, path: str, source: str):
        self.path = path
        self.status: dict[str, Any] = {
            "source": source,
            "last_sync": None,
            "next_sync": None,
            "objects": 0,
            "bytes": 0,
            "bytes_fetched": 0,
            "requests": 0,
            "syncs": 0,
            "skipped": [],
            "skipped_count": 0,
            "last_error": None,
            "fatal": False,
            "events": None,
            "progress": None,
        }

    def update(
        self,
        mirror: Mirror | None,
        error: SourceError | None = None,
        next_in: float | None = None,
    ) -> None:
        """Record the mirror's counters, the error of the last sync if it failed, the next one."""
        if mirror is not None:
            self.status.update(
                objects=mirror.objects,
                bytes=mirror.bytes,
                bytes_fetched=mirror.bytes_fetched,
                requests=mirror.source.requests,
                syncs=mirror.syncs,
                skipped=mirror.skipped[:MAX_SKIPPED_REPORTED],
                skipped_count=len(mirror.skipped),
                events=mirror.events,
                progress=mirror.progress.to_json(),
            )
        self.status.update(last_error=error.message if error else None)
        self.status.update(fatal=bool(error and error.fatal))
        if error is None and mirror is not None and mirror.progress.done:
            self.status["last_sync"] = _iso()
        self.status["next_sync"] = (
            _iso(datetime.now(UTC) + timedelta(seconds=next_in)) if next_in is not None else None
        )
        with contextlib.suppress(OSError):  # a full disk: the next sync writes it again
            write_json(self.path, self.status)


def backoff(interval: float, failures: int) -> float:
    """Seconds to wait after ``failures`` failed syncs in a row."""
    return min(interval * 2.0 ** min(failures, 16), max(interval, MAX_BACKOFF_SECONDS))


def idle_wait(interval: float, unchanged: int) -> float:
    """Seconds to wait after ``unchanged`` syncs in a row that found nothing new.

    Doubles from ``interval`` up to :data:`MAX_IDLE_INTERVAL` (or ``interval`` if longer).
    """
    return min(interval * 2.0 ** min(unchanged, 16), max(interval, MAX_IDLE_INTERVAL))


def initial_sync(
    mirror: Mirror,
    status: StatusFile,
    interval: float,
    give_up: Callable[[], bool],
) -> None:
    """Sync until it works once, retrying transient errors; raises a fatal :class:`SourceError`.

    The job manager's startup timeout bounds how long this may retry; so does
    ``give_up``, asked before each retry. The status shows the copy's progress
    while it runs.
    """
    failures = 0
    reporter = _ProgressReporter(mirror, status)
    try:
        while True:
            try:
                mirror.sync()
            except SourceError as error:
                status.update(mirror, error)
                if error.fatal or give_up():
                    raise
                failures += 1
                time.sleep(backoff(min(interval, 1.0), failures))
                continue
            status.update(mirror, next_in=interval)
            return
    finally:
        reporter.stop()


class _ProgressReporter:
    """Writes the status about once a second while the first copy runs."""

    def __init__(self, mirror: Mirror, status: StatusFile):
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(mirror, status), name="mirror-progress", daemon=True
        )
        self._thread.start()

    def _run(self, mirror: Mirror, status: StatusFile) -> None:
        while not self._stop.wait(1.0):
            if mirror.progress.files_total:
                status.update(mirror, next_in=None)

    def stop(self) -> None:
        """Stop writing (the caller writes the final status)."""
        self._stop.set()
        self._thread.join()


def keep_syncing(mirror: Mirror, status: StatusFile, interval: float) -> threading.Thread:
    """Sync in a daemon thread: every ``interval`` while the source changes, less often when not.

    After TensorBoard has started, every error only shows in the status: the
    job keeps serving what it has and tries again, backing off.
    """

    def loop() -> None:
        failures = unchanged = 0
        wait = interval
        while True:
            time.sleep(wait)
            try:
                changed = mirror.sync()
            except SourceError as error:
                failures += 1
                wait = backoff(interval, failures)
                # Not fatal any more: the job goes on serving what it has.
                status.update(mirror, SourceError(error.message, fatal=False), next_in=wait)
                continue
            failures = 0
            unchanged = 0 if changed else unchanged + 1
            wait = idle_wait(interval, unchanged)
            status.update(mirror, next_in=wait)

    thread = threading.Thread(target=loop, name="mirror", daemon=True)
    thread.start()
    return thread
