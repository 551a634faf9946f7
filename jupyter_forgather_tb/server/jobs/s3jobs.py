"""What an s3:// job has beyond other jobs: its mirror's cache, runner flags and status."""

from __future__ import annotations

import asyncio
import os
import shutil
from typing import Any

from ...common.jobwire import S3MirrorArgs
from ...common.options import DEFAULT_SYNC_INTERVAL
from ...common.s3status import STATUS_FILE, read_status
from ...common.sources import is_remote
from .job import Job


class S3Caches:
    """The private caches s3:// jobs mirror into, one directory per job under ``cache_root``."""

    def __init__(
        self,
        cache_root: str,
        max_bytes: int,
        max_objects: int,
        keep: bool,
        endpoint_url: str | None,
    ) -> None:
        self.cache_root = cache_root
        self.max_bytes = max_bytes
        self.max_objects = max_objects
        self.keep = keep
        self.endpoint_url = endpoint_url
        self._cleanups: set[asyncio.Future[None]] = set()  # caches being removed

    def cache_dir(self, job: Job) -> str | None:
        """The private directory an s3:// job mirrors into (None for other jobs)."""
        return os.path.join(self.cache_root, job.id) if is_remote(job.options.logdir) else None

    def make_cache(self, job: Job) -> None:
        """Create an s3:// job's cache directory (private) before it starts."""
        cache = self.cache_dir(job)
        if cache is not None:
            os.makedirs(self.cache_root, mode=0o700, exist_ok=True)
            os.makedirs(cache, mode=0o700, exist_ok=True)

    def mirror_argv(self, job: Job) -> dict[str, Any]:
        """``build_argv`` arguments that make the runner mirror an s3:// log directory first."""
        cache = self.cache_dir(job)
        if cache is None:
            return {}
        mirror = S3MirrorArgs(
            url=job.options.logdir,
            cache_dir=cache,
            sync_interval=job.options.sync_interval or DEFAULT_SYNC_INTERVAL,
            max_cache_bytes=self.max_bytes,
            max_cache_objects=self.max_objects,
            endpoint_url=self.endpoint_url,
        )
        return {"logdir": os.path.join(cache, "data"), "s3_mirror": mirror}

    def mirror_status(self, job: Job) -> dict[str, Any] | None:
        """The status file the job's mirror last wrote, if any."""
        cache = self.cache_dir(job)
        return read_status(os.path.join(cache, STATUS_FILE)) if cache else None

    def mirror_json(self, job: Job) -> dict[str, Any] | None:
        """The mirror's status as the REST API shows it (None for a job without one)."""
        if self.cache_dir(job) is None:
            return None
        status = self.mirror_status(job) or {}
        return {
            "last_sync": status.get("last_sync"),
            "objects": status.get("objects", 0),
            "bytes": status.get("bytes", 0),
            "bytes_fetched": status.get("bytes_fetched", 0),
            "syncs": status.get("syncs", 0),
            "skipped": status.get("skipped", []),
            "skipped_count": status.get("skipped_count", 0),
            "last_error": status.get("last_error"),
        }

    def fatal_error(self, job: Job) -> str | None:
        """The mirror's fatal error, which explains why its job exited, if it had one."""
        status = self.mirror_status(job) or {}
        if status.get("fatal") and status.get("last_error"):
            return f"S3 mirror: {status['last_error']}"
        return None

    def remove_cache(self, job: Job) -> None:
        """Remove an ended job's mirror, in a worker thread when the event loop runs."""
        cache = self.cache_dir(job)
        if cache is None or self.keep:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            shutil.rmtree(cache, ignore_errors=True)
            return
        cleanup = loop.run_in_executor(None, shutil.rmtree, cache, True)
        self._cleanups.add(cleanup)
        cleanup.add_done_callback(self._cleanups.discard)

    async def wait_for_cleanups(self) -> None:
        """Wait until the caches being removed are gone."""
        if self._cleanups:
            await asyncio.gather(*self._cleanups, return_exceptions=True)
