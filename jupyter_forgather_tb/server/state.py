"""The job table on disk, so a restarted server knows what the last one left running."""

from __future__ import annotations

import os
from typing import Any

from ..common.jsonfile import read_json, write_json

STATE_VERSION = 1


def process_identity(pid: int) -> tuple[int, list[str]] | None:
    """A live process's start time (clock ticks after boot) and command line, or None.

    Together they tell our TensorBoard apart from an unrelated process that
    later got the same pid. Zombies count as gone.
    """
    try:
        with open(f"/proc/{pid}/stat") as stat_file:
            fields = stat_file.read().rsplit(")", 1)[1].split()
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline_file:
            cmdline = cmdline_file.read()
    except OSError:
        return None
    if fields[0] == "Z":
        return None
    # Field 22 of /proc/<pid>/stat is the start time; fields here start at field 3.
    start_time = int(fields[19])
    argv = [part.decode(errors="replace") for part in cmdline.split(b"\0")[:-1]]
    return start_time, argv


def load_state(path: str) -> list[dict[str, Any]]:
    """The job records saved at ``path``; an absent or unreadable file gives none."""
    data = read_json(path)
    if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
        return []
    jobs = data.get("jobs")
    return [job for job in jobs if isinstance(job, dict)] if isinstance(jobs, list) else []


def save_state(path: str, records: list[dict[str, Any]]) -> None:
    """Write the job records whole (see ``jsonfile.write_json``)."""
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    write_json(path, {"version": STATE_VERSION, "jobs": records})
