"""A job's scalars as one CSV, JSON or Parquet download, streamed from its TensorBoard.

The server asks the job's own TensorBoard (as previews do: over the job's transport,
not through the proxy) for a bounded batch of series at a time, from our export
plugin in the job (``job/export_plugin.py``: one bulk read of TensorBoard's data
provider per batch, answered packed), turns each batch into the download's next
piece on a thread of its own and sends it before asking for the next but one:
whatever the size of the job, the server holds about two batches and one Parquet
row group at a time. A client that goes away stops the export at its next piece.

The long form has one row per point: ``run, tag, step, wall_time, value``.
"""

from __future__ import annotations

import csv
import io
import json
import math
from array import array
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ...common.options import OptionError
from ...common.scalarwire import WireError, decode_series
from ..jobs.errors import BackendFailed

COLUMNS = ("run", "tag", "step", "wall_time", "value")
#: Media types of the formats, by the ``format`` query value.
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "parquet": "application/vnd.apache.parquet",
}
#: Rows a Parquet row group holds at least (the last one excepted).
ROW_GROUP_ROWS = 65536
#: What brings Parquet to a Jupyter server without pyarrow.
PARQUET_INSTALL = "pip install 'jupyter-forgather-tb[data]'"
#: Runs (and tags) a query may name at most, and their length: the query stays within
#: the server's header size limit (64 KiB) even with every character percent-encoded.
MAX_NAMES = 16
MAX_NAME_LENGTH = 128


class ParquetUnavailable(Exception):
    """Parquet was asked for and pyarrow cannot be imported in the server."""


@dataclass(frozen=True)
class Series:
    """One run's one tag: its points in step order as TensorBoard keeps them."""

    run: str
    tag: str
    steps: array[int]  # int64
    wall_times: array[float]  # float64
    values: array[float]  # float64


def check_format(value: str | None) -> str:
    """The export format asked for (``csv`` when absent), or :class:`OptionError`."""
    if value is None:
        return "csv"
    if value not in MEDIA_TYPES:
        raise OptionError("format", "must be 'csv', 'parquet' or 'json'")
    return value


def check_names(field: str, values: list[str]) -> list[str]:
    """Runs or tags asked for (repeated query arguments), or :class:`OptionError`."""
    if len(values) > MAX_NAMES:
        raise OptionError(
            field, f"names more than {MAX_NAMES} values: leave it out to export them all"
        )
    for value in values:
        if not value or len(value) > MAX_NAME_LENGTH:
            raise OptionError(field, f"must be 1 to {MAX_NAME_LENGTH} characters long")
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise OptionError(field, "must not contain control characters")
    return list(dict.fromkeys(values))


def _shown(names: list[str]) -> str:
    listed = ", ".join(repr(n if len(n) <= 80 else n[:77] + "...") for n in names[:5])
    return listed + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def plan(index: dict[str, list[str]], runs: list[str], tags: list[str]) -> list[tuple[str, str]]:
    """``(run, tag)`` pairs to export, run by run, from the job's ``{tag: [run, ...]}``.

    Empty ``runs`` or ``tags`` mean all of them; a run or tag the job does not
    have is an :class:`OptionError` naming it.
    """
    all_runs = sorted({run for names in index.values() for run in names})
    missing_runs = [run for run in runs if run not in set(all_runs)]
    if missing_runs:
        raise OptionError(
            "runs",
            f"this job has no run {_shown(missing_runs)} with scalars "
            f"(it has {len(all_runs)} such runs)",
        )
    missing_tags = [tag for tag in tags if tag not in index]
    if missing_tags:
        raise OptionError(
            "tags",
            f"no run of this job has the scalar tag {_shown(missing_tags)} "
            f"(it has {len(index)} scalar tags)",
        )
    chosen_tags = sorted(tags or index)
    chosen_runs = set(runs or all_runs)
    pairs = [(run, tag) for tag in chosen_tags for run in index[tag] if run in chosen_runs]
    return sorted(pairs)


def parse_batch(pairs: list[tuple[str, str]], chunks: Iterable[bytes]) -> list[Series]:
    """The :class:`Series` of the job's answer for ``pairs``, in their order."""
    try:
        found = [Series(*parts) for parts in decode_series(b"".join(chunks))]
    except WireError as error:
        raise BackendFailed(f"TensorBoard's export answer is broken: {error}") from None
    if [(series.run, series.tag) for series in found] != pairs:
        raise BackendFailed("TensorBoard's export answer holds other series than asked")
    return found


class Encoder:
    """Turns series into one download's bytes: ``start()``, ``series()`` each, ``end()``."""

    def start(self) -> bytes:
        """The download's first bytes."""
        return b""

    def series(self, series: Series) -> bytes:
        """The bytes that carry one series (possibly none yet)."""
        raise NotImplementedError

    def end(self) -> bytes:
        """The download's last bytes."""
        return b""

    def close(self) -> None:
        """Release what the encoder holds (the download ended, or was abandoned)."""


class CsvEncoder(Encoder):
    """CSV with a header row; floats in Python's shortest exact form (``nan``, ``inf``)."""

    def start(self) -> bytes:
        """The header row."""
        return (",".join(COLUMNS) + "\r\n").encode()

    def series(self, series: Series) -> bytes:
        """One row per point."""
        out = io.StringIO()
        writer = csv.writer(out)
        for step, wall_time, value in zip(
            series.steps, series.wall_times, series.values, strict=True
        ):
            writer.writerow((series.run, series.tag, step, repr(wall_time), repr(value)))
        return out.getvalue().encode()


def _json_number(value: float) -> float | str:
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


class JsonEncoder(Encoder):
    """A JSON array of series objects, their points in columns; NaN as TensorBoard writes it."""

    def __init__(self) -> None:
        self.first = True

    def start(self) -> bytes:
        """The array's opening."""
        return b"["

    def series(self, series: Series) -> bytes:
        """One object: ``{"run", "tag", "step": [...], "wall_time": [...], "value": [...]}``."""
        obj = {
            "run": series.run,
            "tag": series.tag,
            "step": series.steps.tolist(),
            "wall_time": [_json_number(v) for v in series.wall_times],
            "value": [_json_number(v) for v in series.values],
        }
        text = ("" if self.first else ",") + json.dumps(obj, allow_nan=False)
        self.first = False
        return text.encode()

    def end(self) -> bytes:
        """The array's closing."""
        return b"]"


class _Drain(io.RawIOBase):
    """A write-only file whose written bytes are taken out as they come."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self.parts.append(chunk)
        self.position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self.position

    def take(self) -> bytes:
        data = b"".join(self.parts)
        self.parts.clear()
        return data


class ParquetEncoder(Encoder):
    """Parquet written row group by row group (at least :data:`ROW_GROUP_ROWS` rows each)."""

    def __init__(self, row_group_rows: int = ROW_GROUP_ROWS) -> None:
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise ParquetUnavailable(
                "Parquet needs pyarrow in the Jupyter server's environment: "
                f"{PARQUET_INSTALL} (or ask for format=csv or format=json)"
            ) from None
        self.pa = pa
        self.schema = pa.schema(
            [
                ("run", pa.string()),
                ("tag", pa.string()),
                ("step", pa.int64()),
                ("wall_time", pa.float64()),
                ("value", pa.float64()),
            ]
        )
        self.sink = _Drain()
        self.writer = pq.ParquetWriter(self.sink, self.schema)
        self.pending: list[Any] = []
        self.rows = 0
        self.row_group_rows = row_group_rows

    def series(self, series: Series) -> bytes:
        """A row group's bytes once enough rows are pending, else none."""
        count = len(series.steps)
        pa = self.pa

        def column(values: array[Any], kind: Any) -> Any:
            return pa.Array.from_buffers(kind, count, [None, pa.py_buffer(values)])

        self.pending.append(
            pa.table(
                [
                    pa.array([series.run] * count, pa.string()),
                    pa.array([series.tag] * count, pa.string()),
                    column(series.steps, pa.int64()),
                    column(series.wall_times, pa.float64()),
                    column(series.values, pa.float64()),
                ],
                schema=self.schema,
            )
        )
        self.rows += count
        return self._flush() if self.rows >= self.row_group_rows else b""

    def _flush(self) -> bytes:
        if self.pending:
            self.writer.write_table(self.pa.concat_tables(self.pending))
            self.pending.clear()
            self.rows = 0
        return self.sink.take()

    def end(self) -> bytes:
        """The last row group and the footer."""
        data = self._flush()
        self.writer.close()
        return data + self.sink.take()

    def close(self) -> None:
        """Drop what is pending (the footer is never written for an abandoned download)."""
        self.pending.clear()
        self.sink.parts.clear()


def make_encoder(fmt: str) -> Encoder:
    """The encoder of a checked format; :class:`ParquetUnavailable` without pyarrow."""
    if fmt == "parquet":
        return ParquetEncoder()
    return JsonEncoder() if fmt == "json" else CsvEncoder()
