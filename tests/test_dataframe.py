"""A job's scalars as a pandas DataFrame and as files, through the Jupyter server."""

from __future__ import annotations

import asyncio
import io
import math
import os
import sys

import pyarrow.parquet as pq
import pytest
from conftest import write_scalars
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from test_remote_sources import remote  # noqa: F401 (a fixture)
from test_scalars_export import curves, event_values  # noqa: F401 (a fixture)

import jupyter_forgather_tb
from jupyter_forgather_tb.clients.cli import main as cli_main
from jupyter_forgather_tb.clients.client import ClientError


@pytest.fixture
def server(api, jp_base_url):
    """``server=`` and ``token=`` of the test's Jupyter server."""
    url = f"http://127.0.0.1:{api.serverapp.port}{jp_base_url}"
    return {"server": url, "token": api.serverapp.identity_provider.token}


async def off_loop(function, *args, **kwargs):
    """Run a blocking client call off the event loop (the server under test runs on it)."""
    return await asyncio.get_running_loop().run_in_executor(None, lambda: function(*args, **kwargs))


def frame_rows(frame) -> list[tuple]:
    return [
        (run, tag, int(step), "nan" if math.isnan(value) else value)
        for run, tag, step, value in frame[["run", "tag", "step", "value"]].itertuples(index=False)
    ]


def file_rows(top, runs) -> list[tuple]:
    rows = []
    for run in runs:
        for tag, points in sorted(event_values(top / run).items()):
            rows += [(run, tag, s, "nan" if math.isnan(v) else v) for s, v in points]
    return rows


async def test_a_dataframe_of_a_logdir_holds_every_point_of_its_event_files(
    api,
    server,
    curves,  # noqa: F811
):
    frame = await off_loop(jupyter_forgather_tb.scalars, "curves", **server)
    assert list(frame.columns) == ["run", "tag", "step", "wall_time", "value"]
    assert frame_rows(frame) == file_rows(curves, ["a", "b", "c"])  # 1,500 points: none dropped
    (job,) = await api.json("GET", "jobs")
    again = await off_loop(jupyter_forgather_tb.scalars, "curves", tags=["accuracy"], **server)
    assert len(await api.json("GET", "jobs")) == 1  # the job launched for its data, reused
    assert sorted(set(again["tag"])) == ["accuracy"]
    await api.kill(job["id"])


async def test_a_dataframe_of_a_compare_job_by_id_names_runs_by_folder(api, server, jp_root_dir):
    write_scalars(jp_root_dir / "x" / "lr1", "loss", [1.0, 0.5])
    write_scalars(jp_root_dir / "y" / "lr2", "loss", [3.0])
    job = await api.launch(logdirs={"A": "x", "B": "y"})
    await api.wait_status(job["id"], "running")
    frame = await off_loop(jupyter_forgather_tb.scalars, job["id"], **server)
    for _ in range(50):  # TensorBoard reads the runs after it first answers
        if len(frame) == 3:
            break
        await asyncio.sleep(0.2)
        frame = await off_loop(jupyter_forgather_tb.scalars, job["id"], **server)
    assert frame_rows(frame) == [
        ("A/lr1", "loss", 0, 1.0),
        ("A/lr1", "loss", 1, 0.5),
        ("B/lr2", "loss", 0, 3.0),
    ]
    await api.kill(job["id"])


def written_rows(top, runs) -> list[tuple]:
    """Every point of the event files under ``top/<run>``, as TensorBoard's own loader reads
    them back: ``(run, tag, step, wall_time, value)``, with NaN as ``"nan"``."""
    rows = []
    for run in runs:
        accumulator = EventAccumulator(str(top / run), size_guidance={"scalars": 0})
        accumulator.Reload()
        for tag in sorted(accumulator.Tags()["scalars"]):
            rows += [
                (run, tag, e.step, e.wall_time, "nan" if math.isnan(e.value) else e.value)
                for e in accumulator.Scalars(tag)
            ]
    return rows


def rows_with_time(frame) -> list[tuple]:
    return [
        (run, tag, int(step), wall_time, "nan" if math.isnan(value) else value)
        for run, tag, step, wall_time, value in frame[
            ["run", "tag", "step", "wall_time", "value"]
        ].itertuples(index=False)
    ]


@pytest.mark.parametrize(
    "remote",
    [pytest.param(("s3", ""), id="s3"), pytest.param(("ssh", ""), id="ssh", marks=pytest.mark.ssh)],
    indirect=True,
)
async def test_a_dataframe_of_a_remote_source_job_equals_the_event_files_it_mirrored(
    remote,  # noqa: F811 (before api: the server starts with its connection)
    api,
    server,
    tmp_path,
):
    written = tmp_path / "written"
    write_scalars(written / "a", "train/loss", [1.0, 0.1, 0.01, math.nan, 1e-30])
    write_scalars(written / "a", "accuracy", [0.25, math.inf], start_step=10)
    write_scalars(written / "b", "train/loss", [3.5, -2.0, 7.0])
    for path in sorted(written.rglob("*tfevents*")):
        remote.put(f"runs/{path.relative_to(written).as_posix()}", path.read_bytes())
    want = written_rows(written, ["a", "b"])
    assert len(want) == 10 and all(row[3] > 1e9 for row in want)

    job = await api.launch(logdir=remote.url("runs"), connection="conn")
    job = await api.wait_status(job["id"], "running")
    assert job["mirror"]["objects"] == 3 and job["mirror"]["progress"]["done"]
    frame = await off_loop(jupyter_forgather_tb.scalars, job["id"], **server)
    for _ in range(100):  # TensorBoard reads the mirrored runs after it first answers
        if len(frame) >= len(want):
            break
        await asyncio.sleep(0.2)
        frame = await off_loop(jupyter_forgather_tb.scalars, job["id"], **server)
    assert rows_with_time(frame) == want  # run, tag, step, wall_time and value, exactly
    await api.kill(job["id"])


async def test_without_pyarrow_the_dataframe_comes_from_csv_with_the_same_values(
    api,
    server,
    curves,  # noqa: F811
    monkeypatch,
):
    with_arrow = await off_loop(jupyter_forgather_tb.scalars, "curves", **server)
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    from_csv = await off_loop(jupyter_forgather_tb.scalars, "curves", **server)
    assert frame_rows(from_csv) == frame_rows(with_arrow)
    assert list(from_csv["wall_time"]) == list(with_arrow["wall_time"])
    for job in await api.json("GET", "jobs"):
        await api.kill(job["id"])


async def test_errors_say_what_is_wrong_in_words(api, server, curves):  # noqa: F811
    with pytest.raises(ClientError, match="'zz'"):
        await off_loop(jupyter_forgather_tb.scalars, "curves", runs=["zz"], **server)
    with pytest.raises(ClientError, match="is not an existing directory"):
        await off_loop(jupyter_forgather_tb.scalars, "no-such-dir", **server)
    for job in await api.json("GET", "jobs"):
        await api.kill(job["id"])


async def test_cli_exports_parquet_to_a_file_and_csv_to_stdout(
    api,
    server,
    curves,  # noqa: F811
    tmp_path,
):
    frame = await off_loop(jupyter_forgather_tb.scalars, "curves", **server)
    (job,) = await api.json("GET", "jobs")
    flags = ["--server", server["server"], "--token", server["token"]]
    target = tmp_path / "out.parquet"
    code = await off_loop(
        cli_main, ["export", job["id"], "--format", "parquet", "-o", str(target), *flags]
    )
    assert code == 0
    assert frame_rows(pq.read_table(target).to_pandas()) == frame_rows(frame)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "jupyter_forgather_tb.clients.cli",
        "export",
        job["id"],
        "--tag",
        "accuracy",
        "-o",
        "-",
        *flags,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    out, _ = await process.communicate()
    assert process.returncode == 0
    lines = io.StringIO(out.decode()).read().splitlines()
    assert lines[0] == "run,tag,step,wall_time,value"
    assert len(lines) == 1 + 3 + 3 + 1  # accuracy: 3 points in a and b, 1 in c
    missing = await off_loop(cli_main, ["export", "nope", "-o", str(tmp_path / "x"), *flags])
    assert missing == 1 and not (tmp_path / "x").exists()
    await api.kill(job["id"])
