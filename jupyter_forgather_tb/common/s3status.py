"""The S3 mirror's status file: written by the job's mirror loop, read by the Jupyter server."""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from .jsonfile import read_json
from .tbfiles import EVENT_FILE_MARK

STATUS_FILE = "status.json"


def read_status(path: str) -> dict[str, Any] | None:
    """The status a mirror last wrote, or None if there is none (yet)."""
    status = read_json(path)
    return status if isinstance(status, dict) else None


def summarize_events(objects: Iterable[tuple[str, int, datetime | None]]) -> dict[str, Any]:
    """The ``events`` a status reports, from ``(path, size, last modified)`` of what S3 holds.

    ``{"runs", "event_files", "event_bytes", "last_write"}``: the folders holding event
    files, the event files, their bytes, and when the newest was last written (an
    ISO time, or None without event files).
    """
    runs, files, size = set(), 0, 0
    newest: datetime | None = None
    for path, length, modified in objects:
        if EVENT_FILE_MARK not in posixpath.basename(path):
            continue
        runs.add(posixpath.dirname(path))
        files += 1
        size += length
        if modified is not None and (newest is None or modified > newest):
            newest = modified
    return {
        "runs": len(runs),
        "event_files": files,
        "event_bytes": size,
        "last_write": newest.isoformat() if newest else None,
    }
