"""Run folders of a remote source for the picker, listed by a short-lived process.

The server imports no fsspec filesystem: ``job/listing.py`` runs in a child process
with the job side's Python, takes its request (and a connection's settings) on stdin,
and is killed when it outlasts its time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from dataclasses import dataclass
from typing import Any

from ...common.connections import Connection
from ...common.processes import inherited_env

LISTING_MODULE = "jupyter_forgather_tb.job.listing"


class RemoteListError(Exception):
    """A remote listing failed: ``message`` in words, ``status`` the HTTP status that fits."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class ListLimits:
    """How far a remote listing may go: levels, listings, entries, results and seconds."""

    max_depth: int
    max_dirs: int
    max_entries: int
    max_results: int
    timeout: float


def listing_request(
    url: str, connection: Connection | None, limits: ListLimits, s3_endpoint_url: str | None
) -> bytes:
    """The JSON request the listing process reads on stdin."""
    conn = None
    if connection is not None:
        conn = {
            "name": connection.name,
            "entry": {"protocol": connection.protocol, **connection.settings},
        }
    return json.dumps(
        {
            "url": url,
            "connection": conn,
            "s3_endpoint_url": s3_endpoint_url,
            "max_depth": limits.max_depth,
            "max_dirs": limits.max_dirs,
            "max_entries": limits.max_entries,
            "max_results": limits.max_results,
        }
    ).encode()


def read_answer(
    stdout: bytes, stderr: bytes, code: int | None
) -> tuple[list[dict[str, Any]], bool]:
    """``(entries, truncated)`` from the listing process's output, or :class:`RemoteListError`."""
    try:
        answer = json.loads(stdout) if stdout else None
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        last = stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [f"exit {code}"]
        raise RemoteListError(f"the remote listing failed: {last[0][:300]}", 502)
    if "message" in answer:
        raise RemoteListError(str(answer["message"]), 400 if answer.get("fatal") else 502)
    return list(answer["logdirs"]), bool(answer["truncated"])


async def list_remote(
    python: str,
    url: str,
    connection: Connection | None,
    limits: ListLimits,
    s3_endpoint_url: str | None = None,
) -> tuple[list[dict[str, Any]], bool]:
    """The run folders of ``url`` as the picker shows them, and whether the list is cut short.

    Raises :class:`RemoteListError`: 400 for what retrying cannot fix (no such
    bucket, bad credentials, a missing extra), 502 for a failure of the store, 504
    when the listing outlasts ``limits.timeout`` seconds. ``s3_endpoint_url`` is the
    server's default S3 endpoint (a connection's own wins).
    """
    env = inherited_env(os.environ)
    proc = await asyncio.create_subprocess_exec(
        python,
        "-m",
        LISTING_MODULE,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
        env=env,
    )
    try:
        stdout, stderr = await asyncio.wait_for(
            proc.communicate(listing_request(url, connection, limits, s3_endpoint_url)),
            limits.timeout,
        )
    except TimeoutError:
        raise RemoteListError(
            f"listing {url} took longer than {limits.timeout:g} s: the store is slow or "
            "unreachable, or the prefix holds too much (pick a deeper one)",
            504,
        ) from None
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # its group: anything it started too
            await proc.wait()
    return read_answer(stdout, stderr, proc.returncode)
