"""The wire format of the job's bulk scalars route (job side writes, server side reads).

The server POSTs ``{"series": [[run, tag], ...]}`` to the job's
``data/plugin/forgather_export/scalars``; the job answers, for each pair in the
order asked, one header line ``{"run": ..., "tag": ..., "points": N}\\n`` followed
by N little-endian int64 steps, N float64 wall times and N float64 values. A pair
the job no longer has comes back with no points.
"""

from __future__ import annotations

import json
import sys
from array import array
from collections.abc import Iterable, Iterator
from typing import Any

#: The job plugin's name: its routes are under ``data/plugin/<PLUGIN_NAME>/``.
PLUGIN_NAME = "forgather_export"
#: The route, under the plugin's prefix.
ROUTE = "scalars"
#: Points a read asks the loader for at most per series (more than any job keeps).
DOWNSAMPLE = 10**9


class WireError(ValueError):
    """An answer that does not follow the format."""


def _little(values: array[Any]) -> array[Any]:
    if sys.byteorder == "big":
        values.byteswap()
    return values


def encode_series(run: str, tag: str, points: int, columns: Iterable[bytes]) -> bytes:
    """One series' bytes: its header line, then its ``points`` steps, wall times and
    values (``columns``: those three, each already packed little-endian)."""
    header = json.dumps({"run": run, "tag": tag, "points": points}).encode() + b"\n"
    return header + b"".join(columns)


def decode_series(body: bytes) -> Iterator[tuple[str, str, array[int], array[float], array[float]]]:
    """``(run, tag, steps, wall_times, values)`` of each series in an answer."""
    view = memoryview(body)
    position = 0
    while position < len(body):
        end = body.find(b"\n", position)
        if end < 0:
            raise WireError("an answer ends inside a series' header")
        try:
            header = json.loads(bytes(view[position:end]))
            run, tag, count = header["run"], header["tag"], header["points"]
        except (ValueError, KeyError, TypeError):
            raise WireError("an answer holds a series header that is not one") from None
        if not (isinstance(run, str) and isinstance(tag, str) and isinstance(count, int)):
            raise WireError("an answer holds a series header that is not one")
        start, size = end + 1, 8 * count
        if count < 0 or start + 3 * size > len(body):
            raise WireError("an answer ends inside a series' points")
        columns: list[array[Any]] = []
        for typecode, offset in (("q", 0), ("d", size), ("d", 2 * size)):
            column = array(typecode)
            column.frombytes(view[start + offset : start + offset + size])
            columns.append(_little(column))
        position = start + 3 * size
        yield run, tag, columns[0], columns[1], columns[2]


def request_body(pairs: Iterable[tuple[str, str]]) -> bytes:
    """The request's JSON body for ``(run, tag)`` pairs."""
    return json.dumps({"series": [list(pair) for pair in pairs]}).encode()


def parse_request(body: bytes) -> list[tuple[str, str]]:
    """The ``(run, tag)`` pairs a request body asks for, or :class:`WireError`."""
    try:
        series = json.loads(body)["series"]
        pairs = [(run, tag) for run, tag in series]
    except (ValueError, KeyError, TypeError):
        raise WireError('the body must be {"series": [[run, tag], ...]}') from None
    if not all(isinstance(run, str) and isinstance(tag, str) for run, tag in pairs):
        raise WireError("runs and tags must be strings")
    return pairs
