"""Run folders of a remote source, for the server's picker: ``python -m ...job.listing``.

The Jupyter server imports no fsspec filesystem: it starts this module as a short-lived
process, writes one JSON request on its stdin (the URL, the connection's settings, the
limits) and reads one JSON answer on its stdout, ``{"logdirs": [...], "truncated": bool}``
or ``{"message": ..., "fatal": bool}``, killing it when it takes too long. The settings
travel on stdin, never on the command line or in the environment, where other local
users could read a secret.
"""

from __future__ import annotations

import json
import posixpath
import sys
from datetime import datetime
from typing import Any

from ..common.connections import parse_connection
from ..common.remotefs import describe_error, open_source
from ..common.sources import parse_source_url
from ..common.tbfiles import EVENT_FILE_MARK


def _mtime(info: dict[str, Any]) -> float:
    """A listed file's modification time in epoch seconds (0 when the store gives none)."""
    for key in ("LastModified", "last_modified", "mtime", "updated", "time"):
        value = info.get(key)
        if isinstance(value, datetime):
            return value.timestamp()
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
    return 0.0


def list_runs(
    fs: Any, root: str, max_depth: int, max_dirs: int, max_entries: int
) -> tuple[dict[str, float], bool]:
    """``{folder below root: newest event file's mtime}`` of the folders holding event files.

    Walks at most ``max_depth`` levels below ``root``, ``max_dirs`` listings and
    ``max_entries`` entries; the second value says the walk was cut short.
    """
    runs: dict[str, float] = {}
    base = root.rstrip("/")
    dirs_left, entries_left = max_dirs, max_entries
    truncated = False
    walk = fs.walk(root, maxdepth=max_depth + 1, detail=True)
    for directory, dirs, files in walk:
        if dirs_left == 0 or entries_left <= 0:
            truncated = True
            break
        dirs_left -= 1
        entries_left -= len(dirs) + len(files)
        for name in [n for n in dirs if n.startswith(".")]:
            del dirs[name]  # hidden folders (our own upload parts among them) are not runs
        times = [_mtime(info) for name, info in files.items() if EVENT_FILE_MARK in name]
        if times:
            relative = directory.rstrip("/")[len(base) :].strip("/")
            runs[relative] = max(times)
    return runs, truncated


def folders(url: str, runs: dict[str, float]) -> list[dict[str, Any]]:
    """The picker's entries: every folder above a run (the top included), with its run count."""
    totals: dict[str, dict[str, Any]] = {}
    for run, mtime in runs.items():
        current = run
        while True:
            shown = f"{url.rstrip('/')}/{current}" if current else url.rstrip("/")
            entry = totals.setdefault(shown, {"path": shown, "runs": 0, "last_modified": 0.0})
            entry["runs"] += 1
            entry["last_modified"] = max(entry["last_modified"], mtime)
            if not current:
                break
            current = posixpath.dirname(current)
    return sorted(totals.values(), key=lambda entry: entry["path"])


def answer(request: dict[str, Any]) -> dict[str, Any]:
    """The answer to one listing request (see the module's docstring)."""
    source = parse_source_url(request["url"])
    conn = request.get("connection")
    connection = parse_connection(conn["name"], conn["entry"]) if conn else None
    try:
        remote = open_source(source, connection, request.get("s3_endpoint_url"))
        remote.check()
        runs, truncated = list_runs(
            remote.fs,
            remote.root or ".",
            int(request["max_depth"]),
            int(request["max_dirs"]),
            int(request["max_entries"]),
        )
    except Exception as error:
        described = describe_error(error, source)
        return {"message": described.message, "fatal": described.fatal}
    entries = folders(str(source), runs)
    most = int(request["max_results"])
    return {"logdirs": entries[:most], "truncated": truncated or len(entries) > most}


def main() -> None:
    """Read the request on stdin, write the answer on stdout."""
    result = answer(json.loads(sys.stdin.read()))
    sys.stdout.write(json.dumps(result))


if __name__ == "__main__":
    main()
