"""The S3 mirror's status file: written by the job's mirror loop, read by the Jupyter server."""

from __future__ import annotations

from typing import Any

from .jsonfile import read_json

STATUS_FILE = "status.json"


def read_status(path: str) -> dict[str, Any] | None:
    """The status a mirror last wrote, or None if there is none (yet)."""
    status = read_json(path)
    return status if isinstance(status, dict) else None
