"""Small JSON files shared between processes: written whole, read leniently."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from typing import Any


def write_json(path: str, data: Any) -> None:
    """Write ``data`` so that a reader sees the old file or the new one, never half.

    No fsync: it would stall the Jupyter server's event loop, and these files
    describe processes that cannot outlive a machine crash anyway; the rename
    alone keeps a file whole when its writer dies.
    """
    fd, tmp_path = tempfile.mkstemp(prefix=".tmp-", dir=os.path.dirname(path) or ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as tmp:
            json.dump(data, tmp)
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_path)
        raise


def read_json(path: str) -> Any:
    """The JSON value in ``path``, or None if it is absent, unreadable or not JSON."""
    try:
        with open(path, encoding="utf-8") as source:
            return json.load(source)
    except (OSError, ValueError):
        return None
