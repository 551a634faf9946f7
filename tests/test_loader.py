"""TensorBoard's loader per job: load_fast true, false and auto, with real data servers."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from conftest import data_server_pids, group_pids, pid_alive, write_scalars

from jupyter_forgather_tb.loader import (
    choose_load_fast,
    event_file_bytes,
    load_fast_flag,
    rust_loader_installed,
)


@pytest.mark.parametrize(
    ("size", "threshold", "installed", "rust"),
    [(10, 0, True, False), (10**12, 0, True, False), (99, 100, True, False),
     (100, 100, True, True), (10**9, 100, True, True), (10**9, 100, False, False)],
)  # fmt: skip
def test_auto_picks_rust_only_at_the_threshold_when_enabled_and_installed(
    size, threshold, installed, rust
):
    assert choose_load_fast(size, threshold, installed) is rust


def test_event_file_bytes_counts_only_event_files_and_stops_early(tmp_path):
    first = write_scalars(tmp_path / "a", "loss", [1.0] * 50)
    write_scalars(tmp_path / "b" / "c", "loss", [1.0] * 50)
    (tmp_path / "notes.txt").write_text("x" * 10_000)
    sizes = [p.stat().st_size for p in tmp_path.rglob("*tfevents*")]
    assert event_file_bytes(str(tmp_path), 10**9) == sum(sizes)
    assert event_file_bytes(str(tmp_path), 1) in sizes  # stopped at the first file
    assert event_file_bytes(str(first / "missing"), 10) == 0


def test_load_fast_flag_says_why(tmp_path):
    write_scalars(tmp_path / "run", "loss", [1.0] * 20)
    assert rust_loader_installed(), "tensorboard-data-server comes with tensorboard"
    flag, why = load_fast_flag(str(tmp_path), 1)
    assert flag == "--load_fast=true" and "Rust" in why
    flag, why = load_fast_flag(str(tmp_path), 10**9)
    assert flag == "--load_fast=false" and "below" in why


async def _running(api, **options):
    job = await api.launch(**{"logdir": "logs", **options})
    return await api.wait_status(job["id"], "running")


async def _scalars_answer(api, job):
    response = await api.proxied(job["id"], "data/plugin/scalars/scalars?run=run1&tag=loss")
    assert response.code == 200
    return [point[2] for point in json.loads(response.body)]


async def test_load_fast_true_runs_the_rust_data_server_and_cleans_it_up(api, logdir):
    job = await _running(api, load_fast="true")
    assert job["options"]["load_fast"] == "true"
    servers = data_server_pids(job["pid"])
    assert len(servers) == 1
    deadline = time.monotonic() + 30
    while await _scalars_answer(api, job) != [1.0, 0.5, 0.25]:
        assert time.monotonic() < deadline, "the Rust loader never served the scalars"
        await asyncio.sleep(0.2)
    await api.kill(job["id"])
    assert not pid_alive(servers[0])
    assert group_pids(job["pid"]) == []


@pytest.mark.parametrize("value", ["false", None])
async def test_false_and_the_default_auto_start_no_data_server(api, logdir, value):
    job = await _running(api, **({} if value is None else {"load_fast": value}))
    assert job["options"]["load_fast"] == (value or "auto")
    assert await _scalars_answer(api, job) == [1.0, 0.5, 0.25]
    assert data_server_pids(job["pid"]) == []
    await api.kill(job["id"])


@pytest.mark.tb_config(load_fast_auto_bytes=1)
async def test_auto_above_the_threshold_picks_rust_and_says_so(api, logdir):
    job = await _running(api)
    assert len(data_server_pids(job["pid"])) == 1
    output = await api.json("GET", "jobs", job["id"], "output")
    assert "load_fast auto:" in output["text"] and "Rust data server" in output["text"]
    await api.kill(job["id"])


@pytest.mark.tb_config(load_fast_auto_bytes=10**9)
async def test_auto_below_the_threshold_stays_on_python(api, logdir):
    job = await _running(api)
    assert data_server_pids(job["pid"]) == []
    output = await api.json("GET", "jobs", job["id"], "output")
    assert "Python loader" in output["text"]
    await api.kill(job["id"])
