"""Load through the proxy and the API, on loopback, bounded in count and time."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import signal
import sys
from pathlib import Path

import pytest
from conftest import write_scalars

LOAD_CLIENT = Path(__file__).with_name("load_client.py")


async def run_load(spec: dict) -> dict:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(LOAD_CLIENT),
        json.dumps(spec),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0
    report = json.loads(out)
    print(f"\nload: {json.dumps(report)}")
    return report


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


async def settle():
    for _ in range(20):
        await asyncio.sleep(0.05)
    gc.collect()


@pytest.mark.timeout(300)
async def test_fifty_clients_through_the_proxy_without_errors_or_leaks(api, logdir, jp_base_url):
    write_scalars(logdir / "big", "loss", [float(i) for i in range(2000)])
    job = await api.launch(logdir="logs")
    job = await api.wait_status(job["id"], "running")
    server = f"http://127.0.0.1:{api.serverapp.port}"
    prefix = f"{server}{job['url']}"
    large = await api.proxied(job["id"], "index.js")
    assert large.code == 200 and len(large.body) >= 1024 * 1024  # TensorBoard's bundle
    scalars_path = "data/plugin/scalars/scalars?run=big&tag=loss"
    scalars = await api.proxied(job["id"], scalars_path)
    small = [
        [f"{prefix}data/environment", None],
        [f"{prefix}{scalars_path}", len(scalars.body)],
        [f"{prefix}data/runs", None],
        [f"{prefix}data/plugins_listing", None],
    ]
    requests = [small[i % len(small)] for i in range(99)] + [[f"{prefix}index.js", len(large.body)]]
    headers = {"Authorization": f"token {api.serverapp.identity_provider.token}"}

    # pytest keeps every captured log record in memory, and the test server logs each
    # request at DEBUG: that would look like a leak of a few KiB per request.
    for name in ("ServerApp", "ForgatherTB", "tornado.access", "tornado.application"):
        logging.getLogger(name).setLevel(logging.WARNING)

    await run_load({"clients": 5, "requests": requests[:20], "headers": headers, "seconds": 60})
    await settle()
    fds, rss = open_fds(), rss_mib()

    after = []
    for _ in range(2):
        report = await run_load(
            {"clients": 50, "requests": requests, "headers": headers, "seconds": 150}
        )
        assert report["error_count"] == 0, report["errors"]
        assert report["requests"] == 50 * 100
        await settle()
        after.append((open_fds(), rss_mib()))
    print(f"fds {fds}, RSS {rss:.0f} MiB; after each round: {after}")
    assert all(count <= fds + 5 for count, _ in after)
    # The allocator keeps some of the first round's peak (whole bodies pass through
    # memory); a leak would show as the second round adding as much again.
    assert after[1][1] - after[0][1] < 16
    assert after[1][1] <= rss + 96


@pytest.mark.timeout(300)
async def test_api_stays_responsive_while_a_job_crashes_and_is_relaunched(api, logdir):
    steady = await api.wait_status((await api.launch(logdir="logs/run1"))["id"], "running")
    crashing = await api.wait_status((await api.launch(logdir="logs/run2"))["id"], "running")
    server = f"http://127.0.0.1:{api.serverapp.port}"
    headers = {"Authorization": f"token {api.serverapp.identity_provider.token}"}
    api_url = f"{server}{api.serverapp.base_url}forgather-tb/api/jobs"
    requests = [[api_url, None], [f"{server}{steady['url']}data/environment", None]] * 100
    # Ten clients keep the server busy without measuring only its queue (two cores).
    load = asyncio.ensure_future(
        run_load({"clients": 10, "requests": requests, "headers": headers, "seconds": 120})
    )
    for _ in range(3):  # crash, see it fail, relaunch, see it run
        os.kill(crashing["pid"], signal.SIGKILL)
        await api.wait_status(crashing["id"], "failed")
        crashing = await api.launch(logdir="logs/run2")
        crashing = await api.wait_status(crashing["id"], "running")
    report = await load
    assert report["error_count"] == 0, report["errors"]
    assert report["requests"] == 10 * 200
    # The one timing bound the hardening issue asks of a test, kept generous.
    assert report["p99"] < 0.250
