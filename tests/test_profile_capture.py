"""The Profile plugin (xprof) captures from a training process through a job's private network.

A real training side: JAX's profiler server in a subprocess of the test, on a loopback
port of the machine. A real capture: xprof's own route, through the /tb/ proxy, into a
default job (Rust loader, private network namespace).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from importlib.util import find_spec
from pathlib import Path

import pytest
from conftest import free_port, group_pids

# Looked up, not imported: only the job's process and the training process import them.
MISSING = [name for name in ("xprof", "jax") if find_spec(name) is None]
pytestmark = pytest.mark.skipif(
    bool(MISSING), reason=f"not installed (they are in the test extra): {MISSING}"
)

CAPTURE = "data/plugin/profile/capture_profile"

TRAINING = textwrap.dedent(
    """
    import sys
    import time

    import jax
    import jax.numpy as jnp

    jax.profiler.start_server(int(sys.argv[1]))
    x = jnp.ones((64, 64))
    print("ready", flush=True)
    while True:  # some work to trace, until the test kills us
        x = (x @ x) / 64.0
        x.block_until_ready()
        time.sleep(0.01)
    """
)


@pytest.fixture
def profiler():
    """A JAX profiler server in another process, on a port of the machine: (port, pid)."""
    port = free_port()
    training = subprocess.Popen(
        [sys.executable, "-c", TRAINING, str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
    )
    try:
        assert training.stdout.readline().strip() == "ready"
        yield port, training.pid
    finally:
        training.kill()
        training.wait()


def _listening_here(pids: list[int]) -> set[str]:
    """Sockets of ``pids`` that listen for TCP in this (the machine's) network namespace."""
    inodes = set()
    for pid in pids:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    listening = set()
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        with open(table) as lines:
            listening |= {f[9] for f in map(str.split, list(lines)[1:]) if f[3] == "0A"}
    return inodes & listening


def _traces(logdir: Path) -> list[Path]:
    return sorted((logdir / "plugins" / "profile").glob("*/*.xplane.pb"))


async def _capture(api, job_id: str, address: str):
    params = {"service_addr": address, "duration": "500"}
    return await api.proxied(job_id, CAPTURE, params=params, request_timeout=120)


@pytest.mark.tb_config(startup_timeout=180.0)  # xprof's plugin loads slowly on a busy machine
async def test_a_capture_reaches_a_profiler_on_the_machines_loopback(api, logdir, profiler):
    profiler_port, profiler_pid = profiler
    job = await api.launch(logdir="logs")
    job = await api.wait_status(job["id"], "running", timeout=180)
    assert job["loader"] == {"name": "rust", "private_network": True}
    assert _traces(logdir) == []

    response = await _capture(api, job["id"], f"localhost:{profiler_port}")
    assert response.code == 200, response.body
    assert "error" not in json.loads(response.body), response.body
    # The training process wrote the trace into the job's log directory, as asked.
    (trace,) = _traces(logdir)
    assert trace.name == f"localhost_{profiler_port}.xplane.pb"
    assert trace.stat().st_size > 0
    # And the plugin lists it: browsing works on what was captured.
    runs = await api.proxied(job["id"], "data/plugin/profile/runs")
    assert runs.code == 200 and trace.parent.name in runs.body.decode()

    # The way out opened no port on the machine: the job's listeners are in its network
    # (where the training process's listener is seen from here).
    assert _listening_here(group_pids(job["pid"])) == set()
    assert _listening_here([profiler_pid]) != set()

    # A second capture goes through the same way.
    response = await _capture(api, job["id"], f"127.0.0.1:{profiler_port}")
    assert response.code == 200 and "error" not in json.loads(response.body), response.body
    assert len(_traces(logdir)) == 2
    await api.kill(job["id"])
    assert group_pids(job["pid"]) == []


@pytest.mark.tb_config(startup_timeout=180.0)
async def test_a_capture_from_another_host_is_refused_with_the_reason(api, logdir):
    job = await api.launch(logdir="logs")
    job = await api.wait_status(job["id"], "running", timeout=180)
    response = await _capture(api, job["id"], "192.0.2.1:9012")
    assert response.code == 400
    text = response.body.decode()
    assert "private network" in text and "localhost:PORT" in text and "load_fast" in text
    await api.kill(job["id"])
