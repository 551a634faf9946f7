"""Per-job memory and CPU limits through the REST API, on real TensorBoard and the real kernel."""

from __future__ import annotations

import asyncio
import json
import os
import socket
from pathlib import Path

import pytest
from conftest import free_port, group_pids, write_scalars
from test_cgroups import _scalars_logdir, needs_cgroup1

from jupyter_forgather_tb.server.host.cgroups import JOB_PREFIX

MiB = 1 << 20
GiB = 1 << 30


def _stat_fields(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()


def _session_pids(sid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = _stat_fields(int(entry))
            except (FileNotFoundError, ProcessLookupError):
                continue
            if int(fields[3]) == sid and fields[0] != "Z":
                pids.append(int(entry))
    return pids


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


@pytest.fixture
def big_logdir(jp_root_dir) -> Path:
    """300,000 scalar points: a job with the Rust loader needs about 200 MiB for them."""
    return _scalars_logdir(jp_root_dir / "big", 300, 1000)


async def _over_its_cap(api, big_logdir) -> dict:
    job = await api.launch(logdir="big", memory_limit="150M", load_fast="true")
    assert job["limits"]["memory_bytes"] == 150 * MiB
    job = await api.wait_status(job["id"], "failed", "exited", "killed", timeout=180)
    assert job["status"] == "failed", job
    assert job["error"].startswith("memory limit 150 MiB exceeded"), job["error"]
    assert group_pids(job["pid"]) == []
    return job


@needs_cgroup1
@pytest.mark.timeout(300)
async def test_a_job_over_its_cap_fails_with_the_reason_under_cgroup_v1(api, big_logdir):
    job = await _over_its_cap(api, big_logdir)
    assert job["limits"]["enforced_by"] == "cgroup1"
    assert "peak" in job["error"] and "the kernel's OOM killer ended it" in job["error"]


@pytest.mark.tb_config(limit_mechanism="watchdog")
@pytest.mark.timeout(300)
async def test_a_job_over_its_cap_fails_with_the_reason_under_the_watchdog(api, big_logdir):
    job = await _over_its_cap(api, big_logdir)
    assert job["limits"]["enforced_by"] == "watchdog"
    assert job["error"].endswith("ended by the watchdog")


async def test_a_job_under_its_cap_runs_and_reports_its_usage(api, logdir):
    job = await api.launch(logdir="logs", memory_limit="1G")
    job = await api.wait_status(job["id"], "running")
    assert job["limits"]["memory_bytes"] == GiB and job["limits"]["cpu_nice"] == 10
    for _ in range(100):
        job = await api.json("GET", "jobs", job["id"])
        if job["usage"] and job["usage"]["cpu_percent"] is not None:
            break
        await asyncio.sleep(0.2)
    usage = job["usage"]
    assert usage is not None and usage["rss_bytes"] > 20 * MiB
    assert usage["peak_bytes"] >= usage["rss_bytes"]
    # Within 10 % of what /proc says for every process of the job, read right after. A
    # job still loading grows between the two readings: read both again until it settles.
    for _ in range(20):
        measured = sum(_rss(pid) for pid in _session_pids(job["pid"]))
        if abs(usage["rss_bytes"] - measured) <= 0.1 * measured:
            break
        await asyncio.sleep(1.5)  # the usage is sampled about once a second
        usage = (await api.json("GET", "jobs", job["id"]))["usage"]
    assert abs(usage["rss_bytes"] - measured) <= 0.1 * measured


async def test_the_job_and_its_data_server_run_at_the_configured_niceness(api, logdir):
    job = await api.launch(logdir="logs", load_fast="true")
    job = await api.wait_status(job["id"], "running")
    pids = _session_pids(job["pid"])
    assert len(pids) >= 2  # the runner and TensorBoard's Rust data server
    assert {int(_stat_fields(pid)[16]) for pid in pids} == {10}


@pytest.mark.tb_config(total_memory_limit="1G", max_memory_limit="1G")
async def test_the_memory_budget_queues_a_job_until_memory_is_freed(api, logdir):
    first = await api.launch(logdir="logs", memory_limit="600M")
    second = await api.launch(logdir="logs/run1", memory_limit="600M")
    assert second["status"] == "queued"
    assert second["queue_reason"].startswith("waiting for memory: 600 MiB of 1 GiB in use")
    await api.wait_status(first["id"], "running")
    assert (await api.json("GET", "jobs", second["id"]))["status"] == "queued"
    await api.kill(first["id"])
    second = await api.wait_status(second["id"], "running")
    assert second["queue_reason"] is None


# No maximum: with one, no cap is refused by the maximum's rule first.
@pytest.mark.tb_config(total_memory_limit="1G", max_memory_limit=0)
async def test_a_budget_needs_a_cap_and_one_that_fits(api, logdir):
    for limit, words in ((0, "every job needs a memory limit"), ("2G", "more than the memory")):
        response = await api.call("POST", "jobs", body={"logdir": "logs", "memory_limit": limit})
        error = json.loads(response.body)
        assert response.code == 400 and error["field"] == "memory_limit"
        assert words in error["message"]


@pytest.mark.tb_config(max_memory_limit="1G")
@pytest.mark.parametrize("limit", [-1, "-1G", "12X", "lots", "5P", True, "2G", [1], 185, "1M"])
async def test_a_bad_memory_limit_is_a_400_naming_the_field(api, logdir, limit):
    response = await api.call("POST", "jobs", body={"logdir": "logs", "memory_limit": limit})
    assert response.code == 400, response.body
    assert json.loads(response.body)["field"] == "memory_limit"
    assert await api.json("GET", "jobs") == []


NO_CAP = [0, "0", "0G"]


@pytest.mark.tb_config(max_memory_limit="1G")
@pytest.mark.parametrize("limit", NO_CAP, ids=["0", "string 0", "0G"])
async def test_no_cap_is_refused_where_the_server_has_a_maximum(api, logdir, limit):
    response = await api.call("POST", "jobs", body={"logdir": "logs", "memory_limit": limit})
    error = json.loads(response.body)
    assert response.code == 400 and error["field"] == "memory_limit"
    assert "0 asks for no cap" in error["message"]
    assert "at most 1 GiB (max_memory_limit)" in error["message"]
    assert await api.json("GET", "jobs") == []


@pytest.mark.tb_config(max_memory_limit="1G")
async def test_a_relaunch_cannot_drop_the_cap_where_the_server_has_a_maximum(api, logdir):
    job = await api.launch(logdir="logs", memory_limit="512M")
    await api.kill(job["id"])
    for limit in NO_CAP:
        body = {"memory_limit": limit}
        response = await api.call("POST", "jobs", job["id"], "relaunch", body=body)
        error = json.loads(response.body)
        assert response.code == 400 and error["field"] == "memory_limit", limit
        assert "(max_memory_limit)" in error["message"]
    assert [j["id"] for j in await api.json("GET", "jobs")] == [job["id"]]
    again = await api.json("POST", "jobs", job["id"], "relaunch", body={})
    assert again["limits"]["memory_bytes"] == 512 * MiB


@pytest.fixture(params=[0, "2G"], ids=["no default cap", "a default above it"])
def maximum_and_default(request, tb_config):
    """A maximum of 1 GiB with a default cap that is none, or above it."""
    tb_config.update(max_memory_limit="1G", memory_limit=request.param)


async def test_a_launch_asking_for_no_cap_gets_one_within_the_maximum(
    maximum_and_default, api, logdir
):
    job = await api.launch(logdir="logs")
    assert job["limits"]["memory_bytes"] == GiB
    assert (await api.wait_status(job["id"], "running"))["limits"]["memory_bytes"] == GiB


async def test_relaunch_refuses_a_live_job_and_restarts_an_ended_one(api, logdir):
    job = await api.launch(logdir="logs", window_title="mine", memory_limit="512M")
    await api.wait_status(job["id"], "running")
    refused = await api.call("POST", "jobs", job["id"], "relaunch", body={})
    assert refused.code == 409 and "kill it first" in json.loads(refused.body)["message"]
    await api.kill(job["id"])
    again = await api.json("POST", "jobs", job["id"], "relaunch", body={"memory_limit": "1G"})
    assert again["id"] != job["id"] and again["limits"]["memory_bytes"] == GiB
    assert again["options"]["logdir"] == job["options"]["logdir"]
    assert again["options"]["window_title"] == "mine"
    assert (await api.wait_status(again["id"], "running"))["status"] == "running"
    missing = await api.call("POST", "jobs", "nope", "relaunch", body={})
    assert missing.code == 404
    bad = await api.call("POST", "jobs", job["id"], "relaunch", body={"memory_limit": "12X"})
    assert bad.code == 400 and json.loads(bad.body)["field"] == "memory_limit"


async def test_a_small_log_directory_fits_the_default_cap(api, jp_root_dir):
    write_scalars(jp_root_dir / "tiny" / "run", "loss", [1.0, 0.5])
    job = await api.launch(logdir="tiny")
    assert job["limits"]["memory_bytes"] == 2 * GiB
    assert (await api.wait_status(job["id"], "running"))["status"] == "running"


def _group_dirs(api, job_id: str) -> list[str]:
    """The job's control group directories that exist now, under the server's parents."""
    enforcer = api.serverapp.web_app.settings["forgather_tb_manager"].limits.enforcer
    names = [os.path.join(parent, JOB_PREFIX + job_id) for parent in enforcer.parents]
    return [name for name in names if os.path.isdir(name)]


@needs_cgroup1
@pytest.mark.tb_config(max_running=1)
async def test_a_job_whose_port_is_taken_when_it_starts_leaves_no_control_group(api, logdir):
    first = await api.launch(logdir="logs")
    port = free_port()
    waiting = await api.launch(logdir="logs/run1", port=port)
    assert waiting["status"] == "queued"
    with socket.socket() as taken:  # taken while the job waits: its start finds it so
        taken.bind(("127.0.0.1", port))
        taken.listen()
        await api.kill(first["id"])
        failed = await api.wait_status(waiting["id"], "failed")
    assert f"port {port}" in failed["error"] and failed["pid"] is None
    assert failed["limits"]["enforced_by"] == "cgroup1"  # its group was made, then released
    assert _group_dirs(api, waiting["id"]) == []


@needs_cgroup1
@pytest.mark.tb_config(tensorboard_python="/nonexistent/python", fork_server=False)
async def test_a_job_whose_process_cannot_start_leaves_no_control_group(api, logdir):
    job = await api.launch(logdir="logs")
    failed = await api.wait_status(job["id"], "failed")
    assert failed["error"].startswith("could not start TensorBoard") and failed["pid"] is None
    assert failed["limits"]["enforced_by"] == "cgroup1"
    assert _group_dirs(api, job["id"]) == []
