"""What a remote job (s3, gs, az, ssh) has beyond other jobs: its mirror's cache, flags, status.

A job's named connection reaches its runner through a 0600 file in the server's
private run directory, never on its command line, in its environment or in the
state file; the file is removed when the job ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from typing import Any

from ...common.connections import Connection
from ...common.jobwire import MirrorArgs, write_connection_file
from ...common.options import DEFAULT_SYNC_INTERVAL
from ...common.s3status import STATUS_FILE, read_status
from ...common.sources import is_remote, url_scheme
from .job import Job

#: Each scheme's name in messages.
LABELS = {"s3": "S3", "gs": "GCS", "az": "Azure", "ssh": "SSH"}


class UnknownConnection(ValueError):
    """A job names a connection this server does not have (any more)."""


class MirrorCaches:
    """The private caches remote jobs mirror into, one directory per job under ``cache_root``.

    ``run_dir`` is the server's private run directory, where connection files go.
    """

    def __init__(
        self,
        cache_root: str,
        max_bytes: int,
        max_objects: int,
        keep: bool,
        endpoint_url: str | None,
        connections: dict[str, Connection] | None = None,
        run_dir: str = "",
    ) -> None:
        self.connections = connections or {}
        self.run_dir = run_dir
        self.cache_root = cache_root
        self.max_bytes = max_bytes
        self.max_objects = max_objects
        self.keep = keep
        self.endpoint_url = endpoint_url
        self._cleanups: set[asyncio.Future[None]] = set()  # caches being removed

    def cache_dir(self, job: Job) -> str | None:
        """The private directory a remote job mirrors into (None for other jobs)."""
        return os.path.join(self.cache_root, job.id) if is_remote(job.options.logdir) else None

    def make_cache(self, job: Job) -> None:
        """Create a remote job's cache directory (private) before it starts."""
        cache = self.cache_dir(job)
        if cache is not None:
            os.makedirs(self.cache_root, mode=0o700, exist_ok=True)
            os.makedirs(cache, mode=0o700, exist_ok=True)

    def mirror_argv(self, job: Job) -> dict[str, Any]:
        """``build_argv`` arguments that make the runner mirror a remote log directory first.

        Writes the job's connection file; raises :class:`UnknownConnection`.
        """
        cache = self.cache_dir(job)
        if cache is None:
            return {}
        connection_file = None
        if (name := job.options.connection) is not None:
            conn = self.connections.get(name)
            if conn is None:
                raise UnknownConnection(f"connection {name!r} is not configured on this server")
            connection_file = self.connection_file(job)
            write_connection_file(connection_file, conn)
        mirror = MirrorArgs(
            url=job.options.logdir,
            cache_dir=cache,
            sync_interval=job.options.sync_interval or DEFAULT_SYNC_INTERVAL,
            max_cache_bytes=self.max_bytes,
            max_cache_objects=self.max_objects,
            endpoint_url=self.endpoint_url,
            connection_file=connection_file,
        )
        return {"logdir": os.path.join(cache, "data"), "mirror": mirror}

    def connection_file(self, job: Job) -> str:
        """Where a job's connection goes for its runner (in the private run directory)."""
        return os.path.join(self.run_dir, f"{job.id}.connection.json")

    def label(self, job: Job) -> str:
        """The job's source kind in messages: ``S3``, ``GCS``, ``Azure``, ``SSH``."""
        return LABELS.get(url_scheme(job.options.logdir) or "", "remote")

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
            "next_sync": status.get("next_sync"),
            "requests": status.get("requests", 0),
            "progress": status.get("progress"),
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
            return f"{self.label(job)} mirror: {status['last_error']}"
        return None

    def remove_cache(self, job: Job) -> None:
        """Remove an ended job's connection file, and its mirror (in a worker thread)."""
        with contextlib.suppress(OSError):
            os.unlink(self.connection_file(job))
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
