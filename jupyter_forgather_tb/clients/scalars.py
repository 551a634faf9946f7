"""A job's scalars in the notebook or a file, through the Jupyter server's export route.

The numbers come from the job's running TensorBoard (``GET jobs/<id>/scalars``), so
they are read as fast as its loader reads them, for local, compare and remote log
directories alike, under the same login as everything else.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import itertools
import json
import os
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterable
from typing import IO, TYPE_CHECKING, Any

from .client import Client, ClientError, find_server

if TYPE_CHECKING:
    import pandas

#: What a job launched for its data keeps: every point (TensorBoard's default keeps a
#: random 1,000 per run and tag; its 0 would mean none for the scalars plugin).
FULL_SAMPLES = "scalars=1000000"
DATA_INSTALL = "pip install 'jupyter-forgather-tb[data]'"
#: Names one export request may carry per query parameter (the server's limit).
MAX_NAMES = 16
#: Seconds a job just launched may take to read its runs before its data is exported.
SETTLE_TIMEOUT = 60.0
#: Seconds an export may wait for its next bytes (a Parquet row group takes many series).
EXPORT_TIMEOUT = 300.0
COLUMNS = ["run", "tag", "step", "wall_time", "value"]
_CHUNK = 1024 * 1024


def _groups(names: Iterable[str] | None) -> list[list[str]]:
    """The names in groups the server takes in one request; ``[[]]`` for all."""
    if names is None:
        return [[]]
    unique = list(dict.fromkeys([names] if isinstance(names, str) else names))
    if not unique:
        return [[]]
    return [unique[i : i + MAX_NAMES] for i in range(0, len(unique), MAX_NAMES)]


def export_requests(
    job_id: str, fmt: str, runs: Iterable[str] | None = None, tags: Iterable[str] | None = None
) -> list[tuple[str, list[tuple[str, str]]]]:
    """``(path, query)`` of each export request covering every run and tag asked for."""
    path = f"forgather-tb/api/jobs/{urllib.parse.quote(job_id, safe='')}/scalars"
    return [
        (path, [("format", fmt), *(("runs", r) for r in rs), *(("tags", t) for t in ts)])
        for rs, ts in itertools.product(_groups(runs), _groups(tags))
    ]


def write_export(
    client: Client,
    job_id: str,
    fmt: str,
    out: IO[bytes],
    runs: Iterable[str] | None = None,
    tags: Iterable[str] | None = None,
) -> int:
    """Copy a job's export to ``out`` as it comes; returns the bytes written.

    More than :data:`MAX_NAMES` runs or tags take several requests, which CSV joins
    (one header) and Parquet and JSON cannot: those are refused.
    """
    requests = export_requests(job_id, fmt, runs, tags)
    if len(requests) > 1 and fmt != "csv":
        raise ClientError(
            f"name at most {MAX_NAMES} runs and {MAX_NAMES} tags for {fmt} (or all of them)"
        )
    written = 0
    for number, (path, query) in enumerate(requests):
        with client.open(path, query, EXPORT_TIMEOUT) as response:
            if number:
                response.readline()  # each CSV answer starts with the header
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                written += len(chunk)
    return written


def tag_index(client: Client, job: dict[str, Any]) -> dict[str, Any]:
    """The job's TensorBoard's ``{run: {tag: ...}}`` of scalars, through its proxied URL."""
    with client.open(_job_url(client, job)) as response:
        answer = json.loads(response.read())
    return answer if isinstance(answer, dict) else {}


def _job_url(client: Client, job: dict[str, Any]) -> str:
    # The job's url holds the server's base path; open() joins onto the server's URL.
    base = urllib.parse.urlsplit(client.server.url).path
    url = str(job["url"])
    relative = url[len(base) :] if url.startswith(base) else url
    return relative.lstrip("/") + "data/plugin/scalars/tags"


def wait_loaded(
    client: Client, job: dict[str, Any], timeout: float = SETTLE_TIMEOUT, interval: float = 0.5
) -> None:
    """Wait until a job's TensorBoard lists the same runs and tags twice in a row (it
    reads its log directory after it first answers), or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        index = tag_index(client, job)
        if index and index == last:
            return
        last = index
        time.sleep(interval)


def resolve_job(client: Client, job_or_logdir: Any) -> dict[str, Any]:
    """A running job: the job (its JSON or id) given, else one launched on the log
    directory (keeping every point) or the live one launched so before."""
    if isinstance(job_or_logdir, dict):
        return job_or_logdir
    given = os.fspath(job_or_logdir)
    if not isinstance(job_or_logdir, os.PathLike):
        try:
            return client.job(given)
        except ClientError as error:
            if error.status != 404:
                raise
    job, _ = client.launch({"logdir": given, "samples_per_plugin": FULL_SAMPLES})
    job = client.wait(job)
    if job["status"] != "running":
        raise ClientError(
            f"TensorBoard {job['label']} {job['status']}: {job.get('error') or 'no error given'}"
        )
    wait_loaded(client, job)
    return job


def _import_frame_libraries() -> None:
    with contextlib.suppress(ImportError):
        import pandas  # noqa: F401
        import pyarrow.parquet  # noqa: F401


def _pandas() -> Any:
    try:
        import pandas
    except ImportError:
        raise ImportError(f"a DataFrame needs pandas: {DATA_INSTALL}") from None
    return pandas


def _has_pyarrow() -> bool:
    try:
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        return False
    return True


def read_frame(
    client: Client,
    job_id: str,
    runs: Iterable[str] | None = None,
    tags: Iterable[str] | None = None,
) -> pandas.DataFrame:
    """A job's scalars as a long DataFrame (run, tag, step, wall_time, value).

    Parquet when pyarrow is installed here, else CSV.
    """
    pd = _pandas()
    if _has_pyarrow():
        import pyarrow as pa
        import pyarrow.parquet as pq

        tables = []
        for path, query in export_requests(job_id, "parquet", runs, tags):
            with client.open(path, query, EXPORT_TIMEOUT) as response:
                tables.append(pq.read_table(io.BytesIO(response.read())))
        return pa.concat_tables(tables).to_pandas() if tables else pd.DataFrame(columns=COLUMNS)
    body = io.BytesIO()
    write_export(client, job_id, "csv", body, runs, tags)
    body.seek(0)
    return pd.read_csv(
        body,
        dtype={"run": str, "tag": str, "step": "int64", "wall_time": "float64", "value": "float64"},
        keep_default_na=False,
        na_values={"wall_time": ["nan"], "value": ["nan"]},
    )


def scalars(
    job_or_logdir: Any,
    runs: Iterable[str] | None = None,
    tags: Iterable[str] | None = None,
    *,
    server: str | None = None,
    token: str | None = None,
) -> pandas.DataFrame:
    """A job's scalars as a pandas DataFrame in long form: run, tag, step, wall_time, value.

    ``job_or_logdir`` is a job id (or its JSON), or a log directory: then a job is
    launched on it that keeps every point (or the live one launched so is reused).
    ``runs`` and ``tags`` choose what to read (default: everything). The Jupyter
    server is found as the magic and the CLI find it (or given by ``server``, ``token``).
    """
    if importlib.util.find_spec("pandas") is None:
        _pandas()  # says which install brings it
    # pandas and pyarrow take a second or two to import: while the job starts.
    imports = threading.Thread(target=_import_frame_libraries, daemon=True)
    imports.start()
    client = Client(find_server(server, token))
    job = resolve_job(client, job_or_logdir)
    imports.join()
    return read_frame(client, job["id"], runs, tags)


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``export`` command's arguments."""
    parser.add_argument("id", help="job id (from 'list'); the job must be running")
    parser.add_argument(
        "--format", choices=("csv", "parquet", "json"), default="csv", help="default: csv"
    )
    parser.add_argument(
        "-o", "--output", required=True, metavar="FILE", help="file to write; - for stdout"
    )
    parser.add_argument(
        "--run", action="append", dest="runs", metavar="RUN", help="only this run (repeatable)"
    )
    parser.add_argument(
        "--tag", action="append", dest="tags", metavar="TAG", help="only this tag (repeatable)"
    )


def export_command(client: Client, args: argparse.Namespace) -> int:
    """``export``: write the job's scalars to ``args.output``; the exit code."""
    if args.output == "-":
        write_export(client, args.id, args.format, sys.stdout.buffer, args.runs, args.tags)
        sys.stdout.buffer.flush()
        return 0
    partial = f"{args.output}.part"
    try:
        with open(partial, "wb") as out:
            size = write_export(client, args.id, args.format, out, args.runs, args.tags)
        os.replace(partial, args.output)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    print(f"Wrote {size} bytes to {args.output}", file=sys.stderr)
    return 0
