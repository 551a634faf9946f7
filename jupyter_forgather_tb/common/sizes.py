"""Sizes in bytes: parsing "512M"-style settings and formatting byte counts for people.

Suffixes are binary multiples (K = 1024), as JupyterHub's ``mem_limit`` takes them;
"512M", "512 MiB" and "512m" are the same size. Pure: no I/O.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal

#: The largest size accepted: 1 PiB, far above any machine's memory.
MAX_SIZE = 1 << 50

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
_MULTIPLES = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
# [0-9], not \d: \d also matches non-ASCII digits. An optional "B" or "iB" may follow
# the suffix ("512MiB"), and a bare "B" means bytes.
_SIZE_RE = re.compile(
    r"\s*(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(?:(?P<suffix>[kmgt])(?:i?b)?|b)?\s*",
    re.IGNORECASE,
)
_HELP = "a number of bytes, or a number with a K, M, G or T suffix (binary multiples)"


def parse_size(value: object) -> int:
    """Bytes from an int, a float, or a string such as "512M", "1.5G", "2g" or "100".

    Raises :class:`ValueError` for anything else: negative or non-finite numbers,
    booleans, unknown suffixes, and sizes above 1 PiB. Fractions of a byte are
    dropped.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"size must be {_HELP}, not {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"size must be a finite number, not {value}")
    if isinstance(value, str):
        if value.strip().startswith("-"):
            raise ValueError(f"size must not be negative, not {value!r}")
        match = _SIZE_RE.fullmatch(value)
        if match is None:
            raise ValueError(f"size {value!r} is not {_HELP}")
        multiple = _MULTIPLES[(match["suffix"] or "").lower()]
        size = int(Decimal(match["number"]) * multiple)
    else:
        size = int(value)
    if size < 0:
        raise ValueError(f"size must not be negative, not {value!r}")
    if size > MAX_SIZE:
        raise ValueError(f"size {value!r} is larger than 1 PiB")
    return size


def format_size(size: int) -> str:
    """A byte count in binary units, with one decimal below 100: "512 MiB", "1.5 GiB"."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ValueError(f"a size is a non-negative integer, not {size!r}")
    power = 0
    while power < len(_UNITS) - 1 and size >= 1 << (10 * (power + 1)):
        power += 1
    value = size / (1 << (10 * power))
    text = f"{value:.1f}" if value < 100 else f"{value:.0f}"
    if power < len(_UNITS) - 1 and float(text) >= 1024:
        # 1023.97 MiB would round to "1024 MiB": say "1 GiB" instead.
        return f"1 {_UNITS[power + 1]}"
    text = text.removesuffix(".0")
    return f"{text} {_UNITS[power]}"
