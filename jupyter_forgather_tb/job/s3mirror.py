"""An incremental local mirror of the TensorBoard files under an S3 prefix.

Runs in the runner process (never in the Jupyter server, which must not
import boto3): one full sync before TensorBoard starts, then a sync every
``sync_interval`` seconds in a thread. Event files are append-only, so an
object that grew is fetched from the last mirrored byte with a ranged GET; a
new object, one that shrank, or one whose old bytes changed is fetched whole.
Keys that would break the mirror or TensorBoard (see ``paths_to_skip``) are
skipped and reported. The mirror's status goes to a JSON file the job manager reads.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..common.jsonfile import write_json
from ..common.s3client import S3Client, S3Error, describe_error, list_tensorboard_objects
from ..common.s3status import summarize_events
from ..common.sources import parse_source_url
from ..common.tbfiles import key_prefix, paths_to_skip

#: Bytes re-read before the mirrored end of a grown object, compared with the local
#: copy: a cheap check that the object was appended to rather than rewritten.
OVERLAP_BYTES = 64
CHUNK_BYTES = 1024 * 1024
MAX_BACKOFF_SECONDS = 300.0
#: Skipped keys listed in the status file; ``skipped_count`` says how many there are in all.
MAX_SKIPPED_REPORTED = 20


@dataclass
class _Local:
    """What the mirror holds of one object: its size and the ETag it had."""

    size: int
    etag: str


class S3Mirror:
    """Keeps ``dest`` a copy of the event files and plugin assets under ``url``.

    ``scratch`` is a directory outside ``dest`` on the same file system for
    whole downloads in progress (TensorBoard must never see half a file under
    a new name). Not thread-safe: one thread calls :meth:`sync`.
    """

    def __init__(
        self, url: str, dest: str, scratch: str, client: S3Client, max_bytes: int, max_objects: int
    ):
        source = parse_source_url(url)
        self.bucket, prefix = source.location, source.path
        self.url = url
        self.prefix = key_prefix(prefix)
        self.dest = dest
        self.scratch = scratch
        self.client = client
        self.max_bytes = max_bytes
        self.max_objects = max_objects
        self._local: dict[str, _Local] = {}
        #: ``{"key", "reason"}`` of each key the last listing left out, sorted by key.
        self.skipped: list[dict[str, str]] = []
        self.bytes_fetched = 0
        self.syncs = 0
        #: What the last listing's event files add up to (see ``summarize_events``).
        self.events: dict[str, Any] | None = None
        self._modified: dict[str, datetime | None] = {}

    @property
    def objects(self) -> int:
        """How many objects the mirror holds."""
        return len(self._local)

    @property
    def bytes(self) -> int:
        """How many bytes the mirror holds."""
        return sum(entry.size for entry in self._local.values())

    def _list(self) -> dict[str, tuple[str, int, str]]:
        """``{local path: (key, size, etag)}`` of the objects TensorBoard reads.

        Stops listing as soon as there are more than ``max_objects`` of them.
        """
        listing: dict[str, tuple[str, int, str]] = {}
        self._modified = {}
        for path, item in list_tensorboard_objects(self.client, self.bucket, self.prefix):
            if len(listing) == self.max_objects:
                raise S3Error(
                    f"{self.url} holds more TensorBoard files than the cache may hold "
                    f"({self.max_objects} objects, c.ForgatherTB.s3_cache_max_objects)",
                    fatal=True,
                )
            listing[path] = (item["Key"], item["Size"], item["ETag"])
            self._modified[path] = item.get("LastModified")
        return listing

    def sync(self) -> None:
        """Bring the mirror up to date once; raises :class:`S3Error`."""
        try:
            listing = self._list()
            total = sum(size for _, size, _ in listing.values())
            if total > self.max_bytes:
                raise S3Error(
                    f"{self.url} holds {total} bytes of TensorBoard files, more than the "
                    f"cache may hold ({self.max_bytes} bytes, c.ForgatherTB.s3_cache_max_bytes)",
                    fatal=True,
                )
        except Exception as error:
            raise describe_error(error, self.url, self.bucket) from error
        self._skip(listing)
        self.events = summarize_events(
            (path, size, self._modified.get(path)) for path, (_, size, _) in listing.items()
        )
        failure = None
        # What went goes first: a folder may take the place of a file, or the other way round.
        for path in set(self._local) - set(listing):
            try:
                self._remove(path)
            except OSError as error:
                failure = failure or describe_error(error, self.url, self.bucket)
        for path, (key, size, etag) in sorted(listing.items()):
            have = self._local.get(path)
            if have is not None and have.size == size and have.etag == etag:
                continue
            try:
                if have is None or size <= have.size or not self._append(path, key, have):
                    self._fetch_whole(path, key)
            except Exception as error:
                # One object that cannot be fetched must not hold back the others.
                failure = failure or describe_error(error, self.url, self.bucket)
        if failure is not None:
            raise failure
        self.syncs += 1

    def _skip(self, listing: dict[str, tuple[str, int, str]]) -> None:
        """Take the paths to skip out of ``listing``, noting their keys and why."""
        skipped = paths_to_skip(listing)
        self.skipped = [
            {"key": listing[path][0], "reason": reason} for path, reason in sorted(skipped.items())
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

    def _append(self, path: str, key: str, have: _Local) -> bool:
        """Fetch only what was appended; False when the object's old bytes changed."""
        overlap = min(OVERLAP_BYTES, have.size)
        start = have.size - overlap
        response = self.client.get_object(Bucket=self.bucket, Key=key, Range=f"bytes={start}-")
        body = response["Body"]
        head = body.read(overlap)
        self.bytes_fetched += len(head)
        with open(os.path.join(self.dest, path), "r+b") as local:
            local.seek(start)
            if local.read(overlap) != head:
                body.close()
                return False
            # Drop what an append cut short last time may have left after the mirrored end.
            local.truncate(have.size)
            local.seek(have.size)
            size = have.size
            for chunk in body.iter_chunks(CHUNK_BYTES):
                local.write(chunk)
                size += len(chunk)
                self.bytes_fetched += len(chunk)
        self._local[path] = _Local(size, response["ETag"])
        return True

    def _fetch_whole(self, path: str, key: str) -> None:
        response = self.client.get_object(Bucket=self.bucket, Key=key)
        local_path = os.path.join(self.dest, path)
        os.makedirs(os.path.dirname(local_path), exist_ok=True)
        fd, part = tempfile.mkstemp(dir=self.scratch)
        size = 0
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in response["Body"].iter_chunks(CHUNK_BYTES):
                    out.write(chunk)
                    size += len(chunk)
                    self.bytes_fetched += len(chunk)
            os.replace(part, local_path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(part)
            raise
        self._local[path] = _Local(size, response["ETag"])


def _iso_now() -> str:
    return datetime.now(UTC).isoformat()


class StatusFile:
    """The mirror's status as a JSON file, replaced atomically on each write."""

    def __init__(self, path: str, source: str):
        self.path = path
        self.status: dict[str, Any] = {
            "source": source,
            "last_sync": None,
            "objects": 0,
            "bytes": 0,
            "bytes_fetched": 0,
            "syncs": 0,
            "skipped": [],
            "skipped_count": 0,
            "last_error": None,
            "fatal": False,
            "events": None,
        }

    def update(self, mirror: S3Mirror | None, error: S3Error | None = None) -> None:
        """Record the mirror's counters, and the error of the last sync if it failed."""
        if mirror is not None:
            self.status.update(
                objects=mirror.objects,
                bytes=mirror.bytes,
                bytes_fetched=mirror.bytes_fetched,
                syncs=mirror.syncs,
                skipped=mirror.skipped[:MAX_SKIPPED_REPORTED],
                skipped_count=len(mirror.skipped),
                events=mirror.events,
            )
        self.status.update(last_error=error.message if error else None)
        self.status.update(fatal=bool(error and error.fatal))
        if error is None:
            self.status["last_sync"] = _iso_now()
        with contextlib.suppress(OSError):  # a full disk: the next sync writes it again
            write_json(self.path, self.status)


def backoff(interval: float, failures: int) -> float:
    """Seconds to wait after ``failures`` failed syncs in a row."""
    return min(interval * 2.0 ** min(failures, 16), max(interval, MAX_BACKOFF_SECONDS))


def initial_sync(
    mirror: S3Mirror, status: StatusFile, interval: float, give_up: Callable[[], bool]
) -> None:
    """Sync until it works once, retrying transient errors; raises a fatal :class:`S3Error`.

    The job manager's startup timeout bounds how long this may retry; so does
    ``give_up``, asked before each retry.
    """
    failures = 0
    while True:
        try:
            mirror.sync()
        except S3Error as error:
            status.update(mirror, error)
            if error.fatal or give_up():
                raise
            failures += 1
            time.sleep(backoff(min(interval, 1.0), failures))
            continue
        status.update(mirror)
        return


def keep_syncing(mirror: S3Mirror, status: StatusFile, interval: float) -> threading.Thread:
    """Sync every ``interval`` seconds in a daemon thread, backing off while syncs fail.

    After TensorBoard has started, every error only shows in the status: the
    job keeps serving what it has and tries again.
    """

    def loop() -> None:
        failures = 0
        while True:
            time.sleep(backoff(interval, failures) if failures else interval)
            try:
                mirror.sync()
            except S3Error as error:
                failures += 1
                # Not fatal any more: the job goes on serving what it has.
                status.update(mirror, S3Error(error.message, fatal=False))
                continue
            failures = 0
            status.update(mirror)

    thread = threading.Thread(target=loop, name="s3-mirror", daemon=True)
    thread.start()
    return thread
