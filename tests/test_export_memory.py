"""A large export streams: the Jupyter server's memory stays flat whatever the job's size.

Measured on a Jupyter server in its own process (its peak resident memory, reset just
before the export), with a job of 200 runs x 5,000 points (a minute or two on 2 cores).
"""

from __future__ import annotations

import shutil
import time
import urllib.request

import pytest
from conftest import JupyterServerProcess, write_scalars

RUNS = 200
POINTS = 5000
MiB = 1024**2


def status_kib(pid: int, field: str) -> int:
    """A ``/proc/<pid>/status`` size field (``VmRSS``, ``VmHWM``) in KiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


def big_logdir(root) -> None:
    """RUNS runs of POINTS points each: one real event file written, then copied."""
    first = write_scalars(root / "big" / "run000", "loss", [1.0 / (s + 1) for s in range(POINTS)])
    (event_file,) = first.iterdir()
    for index in range(1, RUNS):
        run = root / "big" / f"run{index:03}"
        run.mkdir()
        shutil.copy(event_file, run / event_file.name)


@pytest.mark.timeout(600)
def test_a_200_run_export_keeps_the_servers_memory_flat(tmp_path):
    root, runtime = tmp_path / "root", tmp_path / "runtime"
    root.mkdir()
    big_logdir(root)
    server = JupyterServerProcess(root, runtime).start(log=tmp_path / "server.log")
    try:
        job = server.call(
            "POST", "jobs", {"logdir": "big", "samples_per_plugin": "scalars=1000000"}
        )
        server.wait_status(job["id"], "running", timeout=120)
        url = f"http://127.0.0.1:{server.port}{server.base_url}forgather-tb/api/jobs/{job['id']}"
        deadline = time.monotonic() + 300
        while True:  # until TensorBoard has read every run (it reads after it first answers)
            try:
                with urllib.request.urlopen(
                    urllib.request.Request(
                        f"{url}/scalars?format=csv&runs=run{RUNS - 1:03}",
                        headers={"Authorization": f"token {server.token}"},
                    ),
                    timeout=60,
                ) as response:
                    if response.read().count(b"\n") == POINTS + 1:
                        break
            except urllib.error.HTTPError as error:
                assert error.code == 400, error.read()
            assert time.monotonic() < deadline, "the job did not read its runs"
            time.sleep(1)
        pid = server.proc.pid
        with open(f"/proc/{pid}/clear_refs", "w") as clear:
            clear.write("5")  # resets the peak resident size (VmHWM) to the current one
        before = status_kib(pid, "VmRSS")
        rows = 0
        started = time.monotonic()
        request = urllib.request.Request(
            f"{url}/scalars?format=csv", headers={"Authorization": f"token {server.token}"}
        )
        with urllib.request.urlopen(request, timeout=300) as response:
            while chunk := response.read(1024 * 1024):
                rows += chunk.count(b"\n")
        seconds = time.monotonic() - started
        growth = (status_kib(pid, "VmHWM") - before) * 1024
        assert rows == 1 + RUNS * POINTS  # every point, none sampled away
        assert growth < 50 * MiB, f"peak resident memory grew by {growth / MiB:.1f} MiB"
        print(
            f"export of {rows - 1} points in {seconds:.1f} s: "
            f"server peak RSS +{growth / MiB:.1f} MiB"
        )
    finally:
        server.stop()
