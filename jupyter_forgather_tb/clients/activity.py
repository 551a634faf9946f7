"""A job's activity in words, for the CLI and the magic (pure functions)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def duration_text(seconds: float) -> str:
    """A rough length of time: ``12 s``, ``5 min``, ``2 h``, ``3 d``."""
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit}"
    return f"{int(seconds)} s"


def _runs(count: int) -> str:
    return f"{count} run" if count == 1 else f"{count} runs"


def activity_text(job: dict[str, Any], now: datetime | None = None) -> str | None:
    """What a job's event files show, in words; None before the server has scanned them.

    ``live, 3 runs, 12 s ago``, ``waiting for event files``, ``idle for 2 h, 3 runs``;
    ``, stalled`` is added for a running job that stopped writing (``stall_after``).
    """
    activity = job.get("activity")
    if not activity:
        return None
    if activity["state"] == "waiting":
        text = "waiting for event files"
    else:
        when = datetime.fromisoformat(activity["last_write"])
        ago = duration_text(((now or datetime.now(UTC)) - when).total_seconds())
        runs = _runs(activity["runs"])
        text = (
            f"live, {runs}, {ago} ago" if activity["state"] == "live" else f"idle for {ago}, {runs}"
        )
    return f"{text}, stalled" if activity.get("stalled") else text
