"""Faults and limits: hung, stubborn and idle TensorBoards, vanished log directories, floods."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import time

import pytest
from conftest import data_server_pids, group_pids, pid_alive
from test_dirchecks import until_exists_is


async def running_job(api, **options):
    job = await api.launch(**{"logdir": "logs", **options})
    return await api.wait_status(job["id"], "running")


@pytest.mark.tb_config(proxy_request_timeout=1.0, kill_grace=1.0)
async def test_hung_tensorboard_gives_504_and_can_still_be_killed(api, logdir):
    job = await running_job(api)
    os.kill(job["pid"], signal.SIGSTOP)
    try:
        started = time.monotonic()
        response = await api.proxied(job["id"], "data/environment")
        assert response.code == 504
        assert time.monotonic() - started < 10
        killed = await api.kill(job["id"])
        assert killed["status"] == "killed"
        assert not pid_alive(job["pid"])
    finally:
        if pid_alive(job["pid"]):
            os.kill(job["pid"], signal.SIGKILL)


@pytest.fixture
def stubborn_tb(tb_config, fake_python):
    # Stands in for a TensorBoard that ignores SIGTERM, which real TensorBoard does not do.
    tb_config["tensorboard_python"] = fake_python("trap '' TERM; echo ignoring; sleep 600")
    tb_config["startup_timeout"] = 30.0
    tb_config["kill_grace"] = 1.0


async def test_delete_finishes_after_the_grace_period_when_sigterm_is_ignored(
    stubborn_tb, api, logdir
):
    job = await api.launch(logdir="logs")
    deadline = time.monotonic() + 10
    while "ignoring" not in (await api.json("GET", "jobs", job["id"], "output"))["text"]:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    job = await api.job(job["id"])
    started = time.monotonic()
    killed = await api.kill(job["id"])
    elapsed = time.monotonic() - started
    assert killed["status"] == "killed"
    assert 0.9 <= elapsed < 10
    assert group_pids(job["pid"]) == []


async def test_deleted_log_directory_is_reported_and_job_stays_up(api, logdir):
    job = await running_job(api)
    await until_exists_is(api, job["id"], True)
    shutil.rmtree(logdir)
    job = await until_exists_is(api, job["id"], False)  # checked in a thread: soon, not at once
    assert job["status"] == "running"
    assert (await api.proxied(job["id"], "data/environment")).code == 200
    assert (await api.kill(job["id"]))["status"] == "killed"


async def test_concurrent_deletes_kill_once_and_never_fail(api, logdir):
    job = await running_job(api)
    responses = await asyncio.gather(*(api.call("DELETE", "jobs", job["id"]) for _ in range(10)))
    assert [r.code for r in responses] == [200] * 10
    ended = {json.loads(r.body)["ended"] for r in responses}
    assert len(ended) == 1 and None not in ended
    assert group_pids(job["pid"]) == []


@pytest.mark.tb_config(max_running=2, max_queued=5)
async def test_a_flood_of_launches_queues_then_gets_429(api, logdir):
    for i in range(50):
        (logdir / f"d{i}").mkdir()
    responses = await asyncio.gather(
        *(api.call("POST", "jobs", body={"logdir": f"logs/d{i}"}) for i in range(50))
    )
    codes = sorted(r.code for r in responses)
    assert codes == [201] * 7 + [429] * 43
    refused = next(r for r in responses if r.code == 429)
    assert refused.headers["Retry-After"] == "5"
    assert "waiting" in json.loads(refused.body)["message"]
    jobs = await api.json("GET", "jobs")
    assert sum(j["status"] in ("starting", "running") for j in jobs) == 2
    assert sum(j["status"] == "queued" for j in jobs) == 5


@pytest.mark.tb_config(idle_timeout=1.5)
async def test_idle_job_is_stopped_and_says_why(api, logdir):
    job = await running_job(api)
    busy = await running_job(api, logdir="logs/run1")
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:  # keep one job busy through its proxy
        assert (await api.proxied(busy["id"], "data/environment")).code == 200
        await asyncio.sleep(0.3)
    idle = await api.wait_status(job["id"], "killed", timeout=10)
    assert "without requests" in idle["error"]
    assert (await api.job(busy["id"]))["status"] == "running"
    assert (await api.job(busy["id"]))["last_activity"] is not None


@pytest.mark.parametrize("how", ["delete", "crash"])
async def test_fast_loader_data_server_never_outlives_its_job(api, logdir, how):
    job = await running_job(api, load_fast="true")
    data_servers = data_server_pids(job["pid"])
    assert data_servers, "the Rust data server should be running in the job's group"
    if how == "delete":
        await api.kill(job["id"])
    else:
        os.kill(job["pid"], signal.SIGKILL)
        await api.wait_status(job["id"], "failed", timeout=10)
    deadline = time.monotonic() + 5
    while any(pid_alive(pid) for pid in data_servers):
        assert time.monotonic() < deadline, "data server outlived its job"
        await asyncio.sleep(0.05)
    assert group_pids(job["pid"]) == []
