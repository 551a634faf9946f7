"""A job's resource limits and use as text, for the CLI and the magic (pure functions)."""

from __future__ import annotations

import re
from typing import Any

from .client import ENDED

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
_ENFORCEMENT = {"cgroup2": "cgroup v2", "cgroup1": "cgroup v1", "watchdog": "a watchdog"}


def _scaled(count: float) -> tuple[str, int]:
    """A byte count as a short number and the index of its binary unit."""
    value, unit = max(0.0, float(count)), 0
    while value >= 1024 and unit < len(_UNITS) - 1:
        value /= 1024
        unit += 1
    if unit == 0:
        return str(round(value)), 0
    # One decimal below 10, none above: about three significant digits.
    shown = round(value, 1) if value < 10 else round(value)
    if shown >= 1024 and unit < len(_UNITS) - 1:
        shown, unit = 1, unit + 1  # 1023.7 MiB rounds up into the next unit
    text = f"{shown:g}" if isinstance(shown, float) else str(shown)
    return text, unit


def size_text(count: float) -> str:
    """Bytes in binary units, as the server writes them: ``512 MiB``, ``1.5 GiB``."""
    number, unit = _scaled(count)
    return f"{number} {_UNITS[unit]}"


def short_size(count: float) -> str:
    """Bytes for a narrow column: ``312M``, ``1G``, ``1.5G``, ``812B``."""
    number, unit = _scaled(count)
    return f"{number}{_UNITS[unit][0]}"


def _running_usage(job: dict[str, Any]) -> dict[str, Any] | None:
    return job.get("usage") if job.get("status") == "running" else None


def memory_column(job: dict[str, Any]) -> str:
    """A running job's memory against its limit, ``312M/1G`` (``312M`` without one); else ``-``."""
    usage = _running_usage(job)
    if not usage:
        return "-"
    used = short_size(usage["rss_bytes"])
    limit = (job.get("limits") or {}).get("memory_bytes")
    return used if limit is None else f"{used}/{short_size(limit)}"


def cpu_column(job: dict[str, Any]) -> str:
    """A running job's CPU use in percent of one core, ``4%``; else ``-``."""
    usage = _running_usage(job)
    if not usage or usage.get("cpu_percent") is None:  # none yet on a job's first sample
        return "-"
    return f"{round(usage['cpu_percent'])}%"


def limits_text(limits: dict[str, Any] | None) -> str:
    """A job's limits in a line: ``memory 1 GiB, CPU nice 10, enforced by cgroup v1``."""
    limits = limits or {}
    parts = []
    if limits.get("memory_bytes") is not None:
        parts.append(f"memory {size_text(limits['memory_bytes'])}")
    if limits.get("cpu_nice") is not None:
        parts.append(f"CPU nice {limits['cpu_nice']}")
    if limits.get("cpu_limit") is not None:
        parts.append(f"CPU {limits['cpu_limit']:g} cores")
    if not parts:
        return "none"
    by = _ENFORCEMENT.get(limits.get("enforced_by") or "")
    return ", ".join(parts) + (f", enforced by {by}" if by else "")


def usage_text(job: dict[str, Any]) -> str | None:
    """A running job's use in a line, with its limit; None when there is no sample.

    ``312 MiB of 1 GiB resident (proportional 280 MiB, peak 400 MiB), CPU 4 %``.
    """
    usage = _running_usage(job)
    if not usage:
        return None
    limit = (job.get("limits") or {}).get("memory_bytes")
    memory = size_text(usage["rss_bytes"])
    if limit is not None:
        memory += f" of {size_text(limit)}"
    details = []
    if usage.get("pss_bytes") is not None:
        details.append(f"proportional {size_text(usage['pss_bytes'])}")
    details.append(f"peak {size_text(usage['peak_bytes'])}")
    text = f"{memory} resident ({', '.join(details)})"
    if usage.get("cpu_percent") is not None:  # none yet on a job's first sample
        text += f", CPU {round(usage['cpu_percent'])} %"
    return text


def size_argument(count: int) -> str:
    """Bytes as a ``--memory_limit`` value, exact: ``1G``, ``1536M``, ``1000`` (bytes)."""
    for letter, power in (("T", 4), ("G", 3), ("M", 2), ("K", 1)):
        if count >= 1024**power and count % 1024**power == 0:
            return f"{count // 1024**power}{letter}"
    return str(count)


def doubled_memory_limit(job: dict[str, Any]) -> int | None:
    """Twice an ended job's memory limit when its error says it went over it; else None."""
    limit = (job.get("limits") or {}).get("memory_bytes")
    if job.get("status") not in ENDED or limit is None:
        return None
    return 2 * limit if re.search(r"memory limit", job.get("error") or "", re.I) else None
