"""A job's scalars as a CSV, JSON or Parquet download, streamed from its TensorBoard."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import math
import socket
import sys
from array import array

import pyarrow.parquet as pq
import pytest
from conftest import write_scalars
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from jupyter_forgather_tb.common.scalarwire import decode_series, request_body
from jupyter_forgather_tb.server.web.scalars import ParquetEncoder, Series, plan


def event_values(run_dir) -> dict[str, list[tuple[int, float]]]:
    """What the event files hold, read by TensorBoard's own loader: ``{tag: [(step, value)]}``."""
    accumulator = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    accumulator.Reload()
    return {
        tag: [(event.step, event.value) for event in accumulator.Scalars(tag)]
        for tag in accumulator.Tags()["scalars"]
    }


@pytest.fixture
def curves(jp_root_dir):
    """Runs a and b with 1,500 points of train/loss (over TensorBoard's default sample of
    1,000) and 3 of accuracy, and run c with accuracy only."""
    top = jp_root_dir / "curves"
    for run, scale in (("a", 1.0), ("b", 2.0)):
        write_scalars(top / run, "train/loss", [scale / (step + 1) for step in range(1500)])
        write_scalars(top / run, "accuracy", [0.1, math.nan, math.inf])
    write_scalars(top / "c", "accuracy", [0.9])
    return top


def expected_rows(top, runs=("a", "b", "c")) -> list[tuple[str, str, int, float]]:
    rows = []
    for run in runs:
        for tag, points in sorted(event_values(top / run).items()):
            rows += [(run, tag, step, value) for step, value in points]
    return sorted(rows, key=lambda row: (row[0], row[1]))


def same_values(got, want) -> bool:
    def key(row):
        run, tag, step, value = row
        return (run, tag, step, "nan" if math.isnan(value) else value)

    return [key(row) for row in got] == [key(row) for row in want]


def chunked_body_is_complete(body: bytes) -> bool:
    """Whether a chunked HTTP body ends with its last (empty) chunk."""
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            return True
        body = rest[size + 2 :]
    return False


async def loaded(api, job_id, runs: int, tag: str = "accuracy", timeout: float = 60.0):
    """Wait until the job's TensorBoard has loaded ``runs`` runs with ``tag`` (it loads in
    the background after it first answers)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        answer = await api.json("GET", "jobs", job_id, "preview", params={"tag": tag})
        if len(answer.get("runs", {})) >= runs:
            return
        assert asyncio.get_running_loop().time() < deadline, answer
        await asyncio.sleep(0.2)


async def running_job(api, logdir="curves", runs=3, tag="accuracy", **options):
    options.setdefault("samples_per_plugin", "scalars=1000000")
    job = await api.launch(logdir=logdir, **options)
    await api.wait_status(job["id"], "running")
    await loaded(api, job["id"], min(runs, 5), tag)
    return job


async def export(api, job_id, expect=200, **params):
    response = await api.call("GET", "jobs", job_id, "scalars", params=params or None)
    assert response.code == expect, response.body[:500]
    return response


@pytest.mark.parametrize("load_fast", ["auto", "false"])
async def test_csv_holds_every_point_of_every_run_and_tag(api, curves, load_fast):
    job = await running_job(api, load_fast=load_fast)
    response = await export(api, job["id"], format="csv")
    assert response.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in response.headers["Content-Disposition"]
    reader = csv.reader(io.StringIO(response.body.decode()))
    assert next(reader) == ["run", "tag", "step", "wall_time", "value"]
    rows = [(run, tag, int(step), float(value)) for run, tag, step, _, value in reader]
    assert same_values(rows, expected_rows(curves))
    await api.kill(job["id"])


async def test_parquet_round_trips_through_pyarrow(api, curves):
    job = await running_job(api)
    response = await export(api, job["id"], format="parquet")
    table = pq.read_table(io.BytesIO(response.body))
    assert table.column_names == ["run", "tag", "step", "wall_time", "value"]
    columns = table.to_pydict()
    rows = list(zip(columns["run"], columns["tag"], columns["step"], columns["value"], strict=True))
    assert same_values(rows, expected_rows(curves))
    assert all(wall_time > 1e9 for wall_time in columns["wall_time"])
    await api.kill(job["id"])


async def test_json_carries_series_in_columns_and_nan_as_tensorboard_writes_it(api, curves):
    job = await running_job(api)
    response = await export(api, job["id"], format="json", runs="c", tags="accuracy")
    [series] = json.loads(response.body)
    assert (series["run"], series["tag"], series["step"]) == ("c", "accuracy", [0])
    assert [round(v, 6) for v in series["value"]] == [0.9]
    response = await export(api, job["id"], format="json", runs="a", tags="accuracy")
    [series] = json.loads(response.body)
    assert series["value"][1:] == ["NaN", "Infinity"]
    await api.kill(job["id"])


async def test_runs_and_tags_choose_what_is_exported(api, curves):
    job = await running_job(api)
    params = [("format", "csv"), ("runs", "b"), ("runs", "c"), ("tags", "accuracy")]
    response = await api.call("GET", "jobs", job["id"], "scalars", params=params, expect=200)
    rows = list(csv.reader(io.StringIO(response.body.decode())))[1:]
    assert sorted({(run, tag) for run, tag, *_ in rows}) == [("b", "accuracy"), ("c", "accuracy")]
    await api.kill(job["id"])


async def test_a_compare_job_exports_each_folder_under_its_name(api, jp_root_dir):
    write_scalars(jp_root_dir / "x" / "lr1", "loss", [1.0, 0.5])
    write_scalars(jp_root_dir / "y" / "lr2", "loss", [3.0])
    job = await api.launch(logdirs={"A": "x", "B": "y"}, samples_per_plugin="scalars=1000000")
    await api.wait_status(job["id"], "running")
    await loaded(api, job["id"], 2, "loss")
    response = await export(api, job["id"], format="csv")
    rows = [
        (r, t, int(s), float(v))
        for r, t, s, _, v in csv.reader(io.StringIO(response.body.decode()))
        if r != "run"
    ]
    assert rows == [("A/lr1", "loss", 0, 1.0), ("A/lr1", "loss", 1, 0.5), ("B/lr2", "loss", 0, 3.0)]
    await api.kill(job["id"])


async def test_unknown_job_run_tag_and_format_are_refused_in_words(api, curves):
    missing = await export(api, "nope", expect=404)
    assert "nope" in json.loads(missing.body)["message"]
    job = await running_job(api)
    run = json.loads((await export(api, job["id"], expect=400, runs="zz")).body)
    assert run["field"] == "runs" and "'zz'" in run["message"]
    tag = json.loads((await export(api, job["id"], expect=400, tags="val/loss")).body)
    assert tag["field"] == "tags" and "'val/loss'" in tag["message"]
    fmt = json.loads((await export(api, job["id"], expect=400, format="xlsx")).body)
    assert fmt["field"] == "format" and "parquet" in fmt["message"]
    await api.kill(job["id"])


@pytest.mark.tb_config(max_running=0)
async def test_a_job_that_is_not_running_answers_409(api, logdir):
    job = await api.launch(logdir="logs")
    queued = json.loads((await export(api, job["id"], expect=409)).body)
    assert "queued" in queued["message"]
    await api.kill(job["id"])


async def test_parquet_without_pyarrow_in_the_server_says_which_pip_install(
    api, curves, monkeypatch
):
    job = await running_job(api)
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # the import fails as when not installed
    answer = json.loads((await export(api, job["id"], expect=501, format="parquet")).body)
    assert "pip install 'jupyter-forgather-tb[data]'" in answer["message"]
    await api.kill(job["id"])


@pytest.mark.timeout(300)
async def test_an_abandoned_download_stops_its_work(api, jp_serverapp, jp_root_dir):
    for index in range(40):
        write_scalars(
            jp_root_dir / "big" / f"run{index:02}", "loss", [float(i) for i in range(5000)]
        )
    job = await running_job(api, logdir="big", runs=40, tag="loss")
    exports = jp_serverapp.web_app.settings["forgather_tb_exports"]
    port = jp_serverapp.port
    token = jp_serverapp.identity_provider.token
    path = f"{jp_serverapp.base_url}forgather-tb/api/jobs/{job['id']}/scalars?format=csv"
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: token {token}\r\n\r\n"
    writer.write(request.encode())
    assert b"200 OK" in await reader.readuntil(b"\r\n\r\n")
    await reader.read(1000)
    assert exports.active == {job["id"]: 1}
    writer.close()
    for _ in range(200):
        if not exports.active:
            break
        await asyncio.sleep(0.05)
    assert exports.active == {}
    await api.kill(job["id"])


@pytest.mark.timeout(300)
async def test_a_job_that_ends_during_an_export_cuts_the_download_short(
    api, jp_serverapp, jp_root_dir
):
    for index in range(40):
        write_scalars(jp_root_dir / "big" / f"run{index:02}", "loss", [1.0] * 5000)
    job = await running_job(api, logdir="big", runs=40, tag="loss")
    # One series per batch: the job's end falls between two of them.
    jp_serverapp.web_app.settings["forgather_tb_exports"].batch_series = 1
    token = jp_serverapp.identity_provider.token
    path = f"{jp_serverapp.base_url}forgather-tb/api/jobs/{job['id']}/scalars?format=csv"
    reader, writer = await asyncio.open_connection("127.0.0.1", jp_serverapp.port)
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: token {token}\r\n\r\n"
    writer.write(request.encode())
    head = await reader.readuntil(b"\r\n\r\n")
    assert b"200 OK" in head and b"chunked" in head.lower()
    await api.kill(job["id"])
    body = await asyncio.wait_for(reader.read(), timeout=60)  # until the server closes
    writer.close()
    assert not chunked_body_is_complete(body)  # no last chunk: the client sees it cut short
    assert jp_serverapp.web_app.settings["forgather_tb_exports"].active == {}


def test_the_plan_goes_run_by_run_and_names_what_is_missing():
    index = {"loss": ["a", "b"], "acc": ["b"]}
    assert plan(index, [], []) == [("a", "loss"), ("b", "acc"), ("b", "loss")]
    assert plan(index, ["b"], ["loss"]) == [("b", "loss")]
    with pytest.raises(Exception, match="no run 'z'"):
        plan(index, ["z"], [])


def test_parquet_rows_come_in_row_groups_as_they_fill():
    encoder = ParquetEncoder(row_group_rows=4)
    pieces = [encoder.start()]
    for run in ("a", "b", "c"):
        series = Series(
            run, "t", array("q", [0, 1, 2]), array("d", [1.0] * 3), array("d", [0.5, 1.5, 2.5])
        )
        pieces.append(encoder.series(series))
    pieces.append(encoder.end())
    assert pieces[1] == b"" and pieces[2] != b""  # written once 4 rows were pending
    parquet = pq.ParquetFile(io.BytesIO(b"".join(pieces)))
    assert parquet.metadata.num_row_groups == 2
    assert parquet.read().column("run").to_pylist() == ["a"] * 3 + ["b"] * 3 + ["c"] * 3


async def test_batches_too_large_for_one_answer_are_asked_again_in_halves(
    api, curves, jp_serverapp
):
    job = await running_job(api)
    # Each 1,500-point series packs into 36,000 bytes: a batch of them is over this cap.
    jp_serverapp.web_app.settings["forgather_tb_previews"].max_bytes = 40_000
    rows = list(csv.reader(io.StringIO((await export(api, job["id"])).body.decode())))[1:]
    got = [(run, tag, int(step), float(value)) for run, tag, step, _, value in rows]
    assert same_values(got, expected_rows(curves))
    await api.kill(job["id"])


async def test_the_job_export_plugin_answers_the_server_but_not_through_the_proxy(
    api, curves, jp_serverapp
):
    job = await running_job(api)
    settings = jp_serverapp.web_app.settings
    backend = settings["forgather_tb_manager"].get(job["id"])
    client = settings["forgather_tb_backends"].client_for(backend)
    pairs = [("a", "accuracy"), ("c", "accuracy"), ("a", "nothing")]
    answer = await settings["forgather_tb_previews"].export_batch(
        client, backend, request_body(pairs), 60.0
    )
    series = list(decode_series(b"".join(answer)))
    assert [(run, tag, len(steps)) for run, tag, steps, _, _ in series] == [
        ("a", "accuracy", 3),
        ("c", "accuracy", 1),
        ("a", "nothing", 0),
    ]
    assert list(series[1][4]) == [v for _, v in event_values(curves / "c")["accuracy"]]
    for path in (
        "data/plugin/forgather_export/scalars",
        "data//plugin/./forgather_export/scalars",
        "data/x/../plugin/forgather_export/scalars",
        "data%2Fplugin%2Fforgather_export%2Fscalars",
    ):
        response = await api.proxied(
            job["id"],
            path,
            method="POST",
            body=request_body(pairs),
            headers={"X-XSRF-Protected": "1"},
        )
        assert response.code == 404, (path, response.code)
    await api.kill(job["id"])
