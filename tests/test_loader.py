"""TensorBoard's loader per job: load_fast true, false and auto, with real data servers."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time

import pytest
from conftest import data_server_pids, group_pids, pid_alive, write_scalars

from jupyter_forgather_tb.job.loader import (
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
def test_auto_without_a_private_network_picks_rust_only_at_the_threshold(
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
    flag, why = load_fast_flag(str(tmp_path), 1, private_network=False)
    assert flag == "--load_fast=true" and "Rust" in why
    flag, why = load_fast_flag(str(tmp_path), 10**9, private_network=False)
    assert flag == "--load_fast=false" and "below" in why
    flag, why = load_fast_flag(str(tmp_path), 0, private_network=False)
    assert (flag, why) == ("--load_fast=false", "no private network: Python loader (opens no port)")
    flag, why = load_fast_flag(str(tmp_path), 0, private_network=True)
    assert (flag, why) == ("--load_fast=true", "private network: Rust data server")


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
    assert job["loader"] == {"name": "rust", "private_network": True}
    servers = data_server_pids(job["pid"])
    assert len(servers) == 1
    deadline = time.monotonic() + 30
    while await _scalars_answer(api, job) != [1.0, 0.5, 0.25]:
        assert time.monotonic() < deadline, "the Rust loader never served the scalars"
        await asyncio.sleep(0.2)
    await api.kill(job["id"])
    assert not pid_alive(servers[0])
    assert group_pids(job["pid"]) == []


def _netns(pid: int) -> str:
    return os.readlink(f"/proc/{pid}/ns/net")


def _listening_ports(pid: int) -> set[int]:
    """TCP ports ``pid`` listens on, read in its own network namespace."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        target = os.readlink(f"/proc/{pid}/fd/{fd}")
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("tcp", "tcp6"):
        with open(f"/proc/{pid}/net/{table}") as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and fields[9] in inodes:
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


async def test_the_default_auto_serves_with_rust_in_a_private_network(api, logdir):
    launched = await api.launch(logdir="logs")
    assert launched["loader"] is None  # not said yet
    job = await api.wait_status(launched["id"], "running")
    assert job["options"]["load_fast"] == "auto"
    assert job["loader"] == {"name": "rust", "private_network": True}
    servers = data_server_pids(job["pid"])
    assert len(servers) == 1
    # The job and its data server share a network namespace that is not ours ...
    assert _netns(job["pid"]) == _netns(servers[0]) != _netns(os.getpid())
    (port,) = _listening_ports(servers[0])
    # ... so the data server's loopback port, open in there, cannot be reached from here.
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    deadline = time.monotonic() + 30
    while await _scalars_answer(api, job) != [1.0, 0.5, 0.25]:
        assert time.monotonic() < deadline, "the Rust loader never served the scalars"
        await asyncio.sleep(0.2)
    output = await api.json("GET", "jobs", job["id"], "output")
    assert "load_fast auto: private network: Rust data server" in output["text"]
    await api.kill(job["id"])
    assert group_pids(job["pid"]) == []


async def test_false_starts_no_data_server_and_keeps_the_network(api, logdir):
    job = await _running(api, load_fast="false")
    assert job["loader"] == {"name": "python", "private_network": False}
    assert await _scalars_answer(api, job) == [1.0, 0.5, 0.25]
    assert data_server_pids(job["pid"]) == []
    assert _netns(job["pid"]) == _netns(os.getpid())
    await api.kill(job["id"])


@pytest.mark.tb_config(private_network=False)
async def test_without_private_networks_auto_stays_on_python(api, logdir):
    job = await _running(api)
    assert job["loader"] == {"name": "python", "private_network": False}
    assert await _scalars_answer(api, job) == [1.0, 0.5, 0.25]
    assert data_server_pids(job["pid"]) == []
    assert _netns(job["pid"]) == _netns(os.getpid())
    output = await api.json("GET", "jobs", job["id"], "output")
    assert "no private network: Python loader" in output["text"]
    await api.kill(job["id"])


@pytest.mark.tb_config(private_network=False)
async def test_load_fast_true_without_a_private_network_says_its_port_is_open(api, logdir):
    job = await _running(api, load_fast="true")
    assert job["loader"] == {"name": "rust", "private_network": False}
    assert _netns(job["pid"]) == _netns(os.getpid())
    output = await api.json("GET", "jobs", job["id"], "output")
    assert "loopback port is open to local users" in output["text"]
    await api.kill(job["id"])


@pytest.mark.tb_config(load_fast_auto_bytes=1, private_network=False)
async def test_auto_above_the_threshold_picks_rust_and_says_so(api, logdir):
    job = await _running(api)
    assert job["loader"] == {"name": "rust", "private_network": False}
    assert len(data_server_pids(job["pid"])) == 1
    output = await api.json("GET", "jobs", job["id"], "output")
    assert "load_fast auto:" in output["text"] and "Rust data server" in output["text"]
    await api.kill(job["id"])


@pytest.mark.tb_config(load_fast_auto_bytes=10**9, private_network=False)
async def test_auto_below_the_threshold_stays_on_python(api, logdir):
    job = await _running(api)
    assert data_server_pids(job["pid"]) == []
    output = await api.json("GET", "jobs", job["id"], "output")
    assert "Python loader" in output["text"]
    await api.kill(job["id"])


def test_no_namespace_without_the_rust_loader(tmp_path):
    # A stand-in for a platform without tensorboard-data-server (it cannot be
    # uninstalled from under the other tests): its server_binary() finds nothing.
    stand_in = tmp_path / "stand-in" / "tensorboard_data_server"
    stand_in.mkdir(parents=True)
    (stand_in / "__init__.py").write_text("def server_binary():\n    return None\n")
    write_scalars(tmp_path / "logs" / "run1", "loss", [1.0])
    runner = subprocess.Popen(
        [sys.executable, "-m", "jupyter_forgather_tb.runner",
         "--unix-socket", str(tmp_path / "tb.sock"), "--private-network",
         "--fast-loader-above", "0", "--", "--logdir", str(tmp_path / "logs")],
        stdin=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(stand_in.parent)},
    )  # fmt: skip
    try:
        said = []
        while not said or not said[-1].startswith("TensorBoard serving at"):
            said.append(runner.stderr.readline())
            assert said[-1], f"the runner ended: {said}"
        assert "load_fast auto: the Rust data server is not installed: Python loader\n" in said
        assert _netns(runner.pid) == _netns(os.getpid())
    finally:
        runner.stdin.close()
        runner.wait(timeout=30)


def test_event_file_bytes_follows_a_compare_jobs_links_but_no_deeper(tmp_path):
    write_scalars(tmp_path / "a" / "run", "loss", [1.0] * 50)
    write_scalars(tmp_path / "b" / "run", "loss", [1.0] * 50)
    tree = tmp_path / "tree"
    tree.mkdir()
    os.symlink(tmp_path / "a", tree / "a")
    os.symlink(tmp_path / "b", tree / "b")
    os.symlink(tree, tmp_path / "a" / "loop")  # a link below a member is not followed
    sizes = [p.stat().st_size for p in (tmp_path / "a").rglob("*tfevents*")]
    sizes += [p.stat().st_size for p in (tmp_path / "b").rglob("*tfevents*")]
    assert event_file_bytes(str(tree), 10**9) == sum(sizes)
