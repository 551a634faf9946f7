"""Uploading a local log directory to S3 while training runs: cost grows with the new bytes.

Event files only grow. Once an event file's copy in S3 has reached S3's 5 MiB
minimum part size, it is extended by a multipart upload whose first part(s) are
a server-side copy of the object already there (UploadPartCopy) and whose last
part(s) are the new bytes; smaller files are put whole. A multipart upload that
fails or is interrupted is aborted, so S3 keeps the previous whole object.

A training script can run it in a background thread::

    with S3Uploader("runs/exp1", "s3://bucket/exp1").running(interval=30):
        train()   # a final sync runs when the block ends
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from ..common.s3client import (
    S3Client,
    S3Error,
    describe_error,
    list_tensorboard_objects,
    make_client,
)
from ..common.sources import parse_source_url
from ..common.tbfiles import EVENT_FILE_MARK, key_prefix, tensorboard_path

MIN_PART_BYTES = 5 * 1024**2  # S3's minimum size of every part but the last
MAX_PART_BYTES = 5 * 1024**3  # S3's maximum part size (and copy range)
NEW_PART_BYTES = 64 * 1024**2  # new bytes go up in parts of at most this size
PUT_MAX_BYTES = NEW_PART_BYTES  # a new file up to this size is a single PUT

log = logging.getLogger(__name__)


@dataclass
class UploadStats:
    """What one or more syncs did."""

    files: int = 0
    bytes_sent: int = 0  # file bytes that crossed the network
    bytes_copied: int = 0  # bytes S3 copied server-side (UploadPartCopy)

    def add(self, other: UploadStats) -> None:
        """Add another sync's counts to these."""
        self.files += other.files
        self.bytes_sent += other.bytes_sent
        self.bytes_copied += other.bytes_copied


@dataclass
class _Remote:
    """What S3 holds of one file: its size and ETag, and the local mtime it was read at."""

    size: int
    etag: str
    mtime_ns: int | None = None  # None: found in S3, not uploaded by us


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


class S3Uploader:
    """Keeps ``s3://bucket/prefix`` a copy of a local log directory's TensorBoard files.

    Only event files (``*tfevents*``) and plugin assets (``plugins/``) go up,
    as the mirror on the read side takes only those.
    """

    def __init__(
        self,
        local_dir: str,
        url: str,
        client: S3Client | None = None,
        endpoint_url: str | None = None,
    ):
        source = parse_source_url(url)
        scheme, self.bucket, prefix = source.scheme, source.location, source.path
        if scheme != "s3":
            raise ValueError("the destination must be an s3://bucket/prefix URL")
        self.url = url
        self.prefix = key_prefix(prefix)
        self.local_dir = os.path.abspath(local_dir)
        self.client = client or make_client(endpoint_url)
        self.total = UploadStats()
        self.last_error: S3Error | None = None
        self._remote: dict[str, _Remote] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- one sync ----------------------------------------------------------------------------

    def _list_remote(self) -> dict[str, _Remote]:
        return {
            path: _Remote(item["Size"], item["ETag"])
            for path, item in list_tensorboard_objects(self.client, self.bucket, self.prefix)
        }

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

    def sync(self) -> UploadStats:
        """Upload what changed since the last sync; raises :class:`S3Error`."""
        stats = UploadStats()
        try:
            if self._remote is None:
                self._remote = self._list_remote()
            for path, info in self._local_files():
                have = self._remote.get(path)
                if (
                    have is not None
                    and have.size == info.st_size
                    and have.mtime_ns in (None, info.st_mtime_ns)
                ):
                    continue
                appendable = (
                    have is not None
                    and EVENT_FILE_MARK in path.rsplit("/", 1)[-1]
                    and MIN_PART_BYTES <= have.size < info.st_size
                )
                self._remote[path] = self._upload(path, info, have if appendable else None, stats)
                stats.files += 1
        except Exception as error:
            raise describe_error(error, self.url, self.bucket) from error
        finally:
            self.total.add(stats)
        return stats

    def _upload(
        self, path: str, info: os.stat_result, base: _Remote | None, stats: UploadStats
    ) -> _Remote:
        """Upload one file, appending to ``base`` (the object already in S3) when given."""
        key = self.prefix + path
        size = info.st_size
        with open(os.path.join(self.local_dir, path), "rb") as source:
            if base is None and size <= PUT_MAX_BYTES:
                body = source.read(size)
                etag = self.client.put_object(Bucket=self.bucket, Key=key, Body=body)["ETag"]
                stats.bytes_sent += len(body)
            else:
                etag = self._multipart(key, source, size, base, stats)
        return _Remote(size, etag, info.st_mtime_ns)

    def _multipart(
        self, key: str, source: BinaryIO, size: int, base: _Remote | None, stats: UploadStats
    ) -> str:
        copied = base.size if base else 0
        target = {"Bucket": self.bucket, "Key": key}
        parts: list[dict[str, Any]] = []
        try:
            with _signals_held():
                target["UploadId"] = self.client.create_multipart_upload(
                    Bucket=self.bucket, Key=key
                )["UploadId"]
            if base is not None:  # appending: the bytes already in S3 are copied there
                for start, end in _ranges(0, copied, MAX_PART_BYTES):
                    result = self.client.upload_part_copy(
                        **target,
                        PartNumber=len(parts) + 1,
                        CopySource={"Bucket": self.bucket, "Key": key},
                        CopySourceRange=f"bytes={start}-{end - 1}",
                        CopySourceIfMatch=base.etag,
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
                result = self.client.upload_part(**target, PartNumber=len(parts) + 1, Body=body)
                parts.append({"PartNumber": len(parts) + 1, "ETag": result["ETag"]})
                stats.bytes_sent += len(body)
            done = self.client.complete_multipart_upload(**target, MultipartUpload={"Parts": parts})
        except BaseException:
            # Also on KeyboardInterrupt: S3 would otherwise keep (and bill) the parts.
            if "UploadId" in target:
                with contextlib.suppress(Exception):
                    self.client.abort_multipart_upload(**target)
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
            except S3Error as error:
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
            with contextlib.suppress(S3Error):  # kept in last_error for stop() to raise
                self.follow(interval, self._stop)

        self._stop.clear()
        self._thread = threading.Thread(target=run, name="s3-upload", daemon=True)
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
    def running(self, interval: float = 30.0) -> Iterator[S3Uploader]:
        """Sync in the background while the block runs, and once more at its end."""
        self.start(interval)
        try:
            yield self
        finally:
            self.stop()
