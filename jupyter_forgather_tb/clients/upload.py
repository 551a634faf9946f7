"""Uploading a local log directory to a remote source while training runs: cost grows with the
new bytes.

Any source a job reads (``s3://``, ``gs://``, ``az://``, ``ssh://``) through fsspec. Event files
only grow, so a grown one is extended where the store allows it without sending again what is
already there:

- S3: once its copy has reached S3's 5 MiB minimum part size, by a multipart upload whose
  first part(s) are a server-side copy of the object already there (UploadPartCopy) and whose
  last part(s) are the new bytes; smaller files are put whole. A multipart upload that fails
  or is interrupted is aborted, so S3 keeps the previous whole object.
- GCS: the new bytes go up as a temporary object that GCS composes onto the end of the copy.
- Azure: event files are append blobs, to which the new bytes are appended.
- SSH: the new bytes are appended to the remote file (SFTP's append mode).

A training script can run it in a background thread::

    with Uploader("runs/exp1", "gs://bucket/exp1").running(interval=30):
        train()   # a final sync runs when the block ends
"""

from __future__ import annotations

import contextlib
import logging
import os
import posixpath
import signal
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from ..common.connections import Connection
from ..common.remotefs import RemoteSource, SourceError, describe_error, open_source
from ..common.sources import parse_source_url
from ..common.tbfiles import EVENT_FILE_MARK, tensorboard_path

MIN_PART_BYTES = 5 * 1024**2  # S3's minimum size of every part but the last
MAX_PART_BYTES = 5 * 1024**3  # S3's maximum part size (and copy range)
NEW_PART_BYTES = 64 * 1024**2  # new bytes go up in parts of at most this size
PUT_MAX_BYTES = NEW_PART_BYTES  # a new file up to this size is a single PUT
CHUNK_BYTES = 8 * 1024**2  # what a stream to GCS, Azure or SSH reads from the file at once
#: Where GCS appends put their temporary objects, below the destination (no run is named so).
PARTS_FOLDER = ".forgather-tb-parts"

log = logging.getLogger(__name__)

#: ``(files done, files to do, bytes done, bytes to do)`` while a sync runs.
Progress = Callable[[int, int, int, int], None]


@dataclass
class UploadStats:
    """What one or more syncs did."""

    files: int = 0
    bytes_sent: int = 0  # file bytes that crossed the network
    bytes_copied: int = 0  # bytes the store copied itself (S3 UploadPartCopy, GCS compose)

    def add(self, other: UploadStats) -> None:
        """Add another sync's counts to these."""
        self.files += other.files
        self.bytes_sent += other.bytes_sent
        self.bytes_copied += other.bytes_copied


@dataclass
class _Remote:
    """What the store holds of one file: its size and ETag, and the local mtime it was read at."""

    size: int
    etag: str | None
    mtime_ns: int | None = None  # None: found there, not uploaded by us


def _ranges(start: int, end: int, most: int) -> list[tuple[int, int]]:
    """``[start, end)`` cut into ranges of at most ``most`` bytes, as even as possible.

    Even cuts make every range longer than ``most / 2`` when there are several,
    so with ``most`` of 10 MiB or more each is above S3's 5 MiB part minimum.
    """
    if end <= start:
        return []
    count = -(-(end - start) // most)
    size = -(-(end - start) // count)
    return [(offset, min(offset + size, end)) for offset in range(start, end, size)]


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back until the block ends (in the main thread; elsewhere
    they never arrive): an upload interrupted before its id is known could not be aborted.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


def _copy(source: BinaryIO, out: Any, length: int) -> int:
    """Copy ``length`` bytes from ``source``'s position to ``out``; the bytes copied."""
    sent = 0
    while sent < length:
        chunk = source.read(min(CHUNK_BYTES, length - sent))
        if not chunk:
            raise OSError(f"{source.name} shrank while it was uploaded")
        out.write(chunk)
        sent += len(chunk)
    return sent


class Uploader:
    """Keeps a remote source a copy of a local log directory's TensorBoard files.

    Only event files (``*tfevents*``) and plugin assets (``plugins/``) go up,
    as the mirror on the read side takes only those. ``connection`` is a named
    connection's settings (None: the standard credential chains); ``endpoint_url``
    an S3 endpoint for ``s3://`` without one. Raises ``ValueError`` for a URL that
    is not a remote source, :class:`SourceError` when the store cannot be opened
    (its package missing, say).
    """

    def __init__(
        self,
        local_dir: str,
        url: str,
        connection: Connection | None = None,
        endpoint_url: str | None = None,
    ):
        self.source = parse_source_url(url)
        self.url = str(self.source)
        self.local_dir = os.path.abspath(local_dir)
        self.remote: RemoteSource = open_source(self.source, connection, endpoint_url)
        self.fs = self.remote.fs
        self.root = self.remote.root
        self.total = UploadStats()
        self.last_error: SourceError | None = None
        self.on_progress: Progress | None = None
        self._remote: dict[str, _Remote] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- one sync ----------------------------------------------------------------------------

    def _full(self, path: str) -> str:
        return self.remote.full_path(path)

    def _list_remote(self) -> dict[str, _Remote]:
        """What the destination holds already (an SSH folder is made when missing)."""
        if self.source.scheme == "ssh":
            self.fs.makedirs(self.root or ".", exist_ok=True)
        self.remote.check()
        return {item.path: _Remote(item.size, item.version or None) for item in self.remote.list()}

    def _local_files(self) -> Iterator[tuple[str, os.stat_result]]:
        for directory, dirs, files in os.walk(self.local_dir):
            dirs.sort()
            for name in sorted(files):
                full = os.path.join(directory, name)
                path = tensorboard_path(os.path.relpath(full, self.local_dir).replace(os.sep, "/"))
                if path is None:
                    continue
                with contextlib.suppress(FileNotFoundError):
                    yield path, os.stat(full)

    def _appendable(self, path: str, have: _Remote | None, size: int) -> bool:
        if have is None or EVENT_FILE_MARK not in path.rsplit("/", 1)[-1] or have.size >= size:
            return False
        return have.size >= MIN_PART_BYTES if self.source.scheme == "s3" else have.size > 0

    def sync(self) -> UploadStats:
        """Upload what changed since the last sync; raises :class:`SourceError`."""
        stats = UploadStats()
        try:
            if self._remote is None:
                self._remote = self._list_remote()
            todo = []
            for path, info in self._local_files():
                have = self._remote.get(path)
                if (
                    have is not None
                    and have.size == info.st_size
                    and have.mtime_ns in (None, info.st_mtime_ns)
                ):
                    continue
                base = have if self._appendable(path, have, info.st_size) else None
                todo.append((path, info, base))
            total = sum(info.st_size - (base.size if base else 0) for _, info, base in todo)
            done = 0
            for count, (path, info, base) in enumerate(todo):
                if self.on_progress:
                    self.on_progress(count, len(todo), done, total)
                self._remote[path] = self._upload(path, info, base, stats)
                done += info.st_size - (base.size if base else 0)
                stats.files += 1
            if self.on_progress and todo:
                self.on_progress(len(todo), len(todo), done, total)
        except BaseException as error:
            # What a failed write left (an append cut short) is unknown: list again next time.
            self._remote = None
            if not isinstance(error, Exception):
                raise
            raise describe_error(error, self.source) from error
        finally:
            self.total.add(stats)
        return stats

    def _upload(
        self, path: str, info: os.stat_result, base: _Remote | None, stats: UploadStats
    ) -> _Remote:
        """Upload one file, appending to ``base`` (the copy already there) when given."""
        target = self._full(path)
        size = info.st_size
        with open(os.path.join(self.local_dir, path), "rb") as source:
            scheme = self.source.scheme
            etag = None
            if scheme == "s3":
                etag = self._s3_upload(target, source, size, base, stats)
            elif base is None:
                self._put(target, source, size, stats, EVENT_FILE_MARK in path.rsplit("/", 1)[-1])
            elif scheme == "gs":
                self._gcs_append(target, source, size, base, stats)
            else:  # az, ssh: the store appends itself
                source.seek(base.size)
                with self.fs.open(target, "ab") as out:
                    stats.bytes_sent += _copy(source, out, size - base.size)
        return _Remote(size, etag, info.st_mtime_ns)

    def _put(
        self, target: str, source: BinaryIO, size: int, stats: UploadStats, event_file: bool
    ) -> None:
        """Write a whole file; on Azure an event file as an append blob, to append to later."""
        mode = "wb"
        if self.source.scheme == "az" and event_file:
            if self.fs.exists(target):
                self.fs.rm_file(target)  # a block blob cannot become an append blob
            mode = "ab"
        elif self.source.scheme == "ssh" and posixpath.dirname(target):
            self.fs.makedirs(posixpath.dirname(target), exist_ok=True)
        with self.fs.open(target, mode) as out:
            stats.bytes_sent += _copy(source, out, size)

    def _gcs_append(
        self, target: str, source: BinaryIO, size: int, base: _Remote, stats: UploadStats
    ) -> None:
        """Append with GCS's compose: the new bytes as an object, composed onto the copy."""
        part = self._full(f"{PARTS_FOLDER}/{uuid.uuid4().hex}")
        source.seek(base.size)
        try:
            with self.fs.open(part, "wb") as out:
                stats.bytes_sent += _copy(source, out, size - base.size)
            self.fs.merge(target, [target, part])
            stats.bytes_copied += base.size
        finally:
            with contextlib.suppress(Exception):
                self.fs.rm_file(part)

    # -- S3: single PUTs, and multipart uploads that copy what is already there ---------------

    def _s3(self, method: str, **kwargs: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.fs.call_s3(method, **kwargs)
        return result

    def _s3_upload(
        self, target: str, source: BinaryIO, size: int, base: _Remote | None, stats: UploadStats
    ) -> str:
        bucket, _, key = target.partition("/")
        if base is None and size <= PUT_MAX_BYTES:
            body = source.read(size)
            etag = self._s3("put_object", Bucket=bucket, Key=key, Body=body)["ETag"]
            stats.bytes_sent += len(body)
            return str(etag)
        return self._multipart(bucket, key, source, size, base, stats)

    def _multipart(
        self,
        bucket: str,
        key: str,
        source: BinaryIO,
        size: int,
        base: _Remote | None,
        stats: UploadStats,
    ) -> str:
        copied = base.size if base else 0
        target: dict[str, Any] = {"Bucket": bucket, "Key": key}
        parts: list[dict[str, Any]] = []
        try:
            with _signals_held():
                target["UploadId"] = self._s3("create_multipart_upload", Bucket=bucket, Key=key)[
                    "UploadId"
                ]
            if base is not None:  # appending: the bytes already in S3 are copied there
                for start, end in _ranges(0, copied, MAX_PART_BYTES):
                    result = self._s3(
                        "upload_part_copy",
                        **target,
                        PartNumber=len(parts) + 1,
                        CopySource={"Bucket": bucket, "Key": key},
                        CopySourceRange=f"bytes={start}-{end - 1}",
                        **({"CopySourceIfMatch": base.etag} if base.etag else {}),
                    )
                    parts.append(
                        {"PartNumber": len(parts) + 1, "ETag": result["CopyPartResult"]["ETag"]}
                    )
                    stats.bytes_copied += end - start
            source.seek(copied)
            for start, end in _ranges(copied, size, NEW_PART_BYTES):
                body = source.read(end - start)
                if len(body) != end - start:
                    raise OSError(f"{source.name} shrank while it was uploaded")
                result = self._s3("upload_part", **target, PartNumber=len(parts) + 1, Body=body)
                parts.append({"PartNumber": len(parts) + 1, "ETag": result["ETag"]})
                stats.bytes_sent += len(body)
            done = self._s3("complete_multipart_upload", **target, MultipartUpload={"Parts": parts})
        except BaseException:
            # Also on KeyboardInterrupt: S3 would otherwise keep (and bill) the parts.
            if "UploadId" in target:
                with contextlib.suppress(Exception):
                    self._s3("abort_multipart_upload", **target)
            raise
        return str(done["ETag"])

    # -- continuous syncing ------------------------------------------------------------------

    def follow(self, interval: float, stop: threading.Event) -> None:
        """Sync every ``interval`` seconds until ``stop`` is set, then once more.

        A transient error is logged and retried at the next turn; a fatal one
        (missing bucket, bad credentials) raises.
        """
        while True:
            stopping = stop.is_set()
            try:
                self.sync()
                self.last_error = None
            except SourceError as error:
                self.last_error = error
                if error.fatal or stopping:
                    raise
                log.warning("Upload to %s failed, retrying: %s", self.url, error.message)
            if stopping:
                return
            stop.wait(interval)

    def start(self, interval: float = 30.0) -> None:
        """Sync in a background thread every ``interval`` seconds until :meth:`stop`."""
        if self._thread is not None:
            raise RuntimeError("the uploader is already running")

        def run() -> None:
            with contextlib.suppress(SourceError):  # kept in last_error for stop() to raise
                self.follow(interval, self._stop)

        self._stop.clear()
        self._thread = threading.Thread(target=run, name="upload", daemon=True)
        self._thread.start()

    def stop(self) -> UploadStats:
        """Stop the background thread after a final sync; raises the error that ended it."""
        if self._thread is None:
            raise RuntimeError("the uploader is not running")
        self._stop.set()
        self._thread.join()
        self._thread = None
        if self.last_error is not None:
            raise self.last_error
        return self.total

    @contextlib.contextmanager
    def running(self, interval: float = 30.0) -> Iterator[Uploader]:
        """Sync in the background while the block runs, and once more at its end."""
        self.start(interval)
        try:
            yield self
        finally:
            self.stop()
