"""What the benchmarks share: a real Jupyter server, bare TensorBoard, timed requests, /proc.

``bench.py`` (``make bench``) and the ``bench_*.py`` scripts import these helpers; this
module runs no benchmark of its own.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
TOKEN = "bench-token"
AUTH = {"Authorization": f"token {TOKEN}"}


def free_port() -> int:
    """A loopback TCP port that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_logdir(top: Path, points: int) -> None:
    """One run ``top/run`` of ``points`` scalar points, with TensorBoard's own writer."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    writer = EventFileWriter(str(top / "run"))
    for step in range(points):
        value = summary_pb2.Summary.Value(tag="loss", simple_value=1.0 / (step + 1))
        writer.add_event(
            event_pb2.Event(
                wall_time=time.time(), step=step, summary=summary_pb2.Summary(value=[value])
            )
        )
    writer.close()


def wait_http(url: str, timeout: float = 60.0, headers: dict | None = None) -> float:
    """Poll until ``url`` answers 200; return when that happened (monotonic)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            request = urllib.request.Request(url, headers=headers or {})
            with urllib.request.urlopen(request, timeout=5) as response:
                if response.status == 200:
                    return time.monotonic()
        except OSError:
            pass
        time.sleep(0.01)
    raise TimeoutError(url)


def _summed_mib(pids: list[int], name: str, field: str) -> float:
    """A /proc/<pid>/<name> field in KiB, summed over processes, in MiB."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/{name}") as lines:
                total += next(int(line.split()[1]) for line in lines if line.startswith(field))
        except (OSError, StopIteration):
            pass
    return total / 1024


def rss_mib(pids: list[int]) -> float:
    """Resident memory of these processes, summed, in MiB."""
    return _summed_mib(pids, "status", "VmRSS:")


def pss_mib(pids: list[int]) -> float:
    """Proportional set size: shared pages (a forked job's, with its fork server) split."""
    return _summed_mib(pids, "smaps_rollup", "Pss:")


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def group_pids(pgid: int) -> list[int]:
    """The processes of a process group."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    if int(stat.read().rsplit(")", 1)[1].split()[2]) == pgid:
                        pids.append(int(entry))
            except OSError:
                pass
    return pids


class Jupyter:
    """A real ``jupyter server`` with or without the extension."""

    def __init__(
        self,
        root: Path,
        runtime: Path,
        extension: bool,
        extra: tuple[str, ...] = (),
        python: str = sys.executable,
    ):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        args = [
            python,
            "-m",
            "jupyter",
            "server",
            "--allow-root",
            "--no-browser",
            f"--port={self.port}",
            f"--IdentityProvider.token={TOKEN}",
            f"--ServerApp.root_dir={root}",
            "--ForgatherTB.max_running=16",
            "--ForgatherTB.max_finished=400",
            "--ForgatherTB.max_queued=400",
        ]
        if not extension:
            args.append('--ServerApp.jpserver_extensions={"jupyter_forgather_tb": False}')
        args += extra
        runtime.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(runtime)}
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.ready = wait_http(f"{self.url}api/status", headers={"Authorization": f"token {TOKEN}"})

    def api(self, method: str, path: str, body=None, prefix="forgather-tb/api/"):
        """A REST call with the benchmark's token; the decoded JSON answer, or None."""
        request = urllib.request.Request(
            f"{self.url}{prefix}{path}",
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"token {TOKEN}"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            body = response.read()
            return json.loads(body) if body else None

    def stop(self):
        """Stop the server (which stops every job it started) and wait for it to exit."""
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)


def summary(values: list[float]) -> dict:
    """Median, min, max and p99 of some measurements."""
    values = sorted(values)
    return {
        "median": statistics.median(values),
        "min": values[0],
        "max": values[-1],
        "p99": values[min(len(values) - 1, int(0.99 * len(values)))],
    }


def timed_gets(host: str, port: int, path: str, count: int, headers: dict) -> list[float]:
    """Sequential GETs on one keep-alive connection; seconds each."""
    connection = http.client.HTTPConnection(host, port, timeout=60)
    times = []
    for _ in range(count):
        started = time.perf_counter()
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        body = response.read()
        assert response.status == 200, (path, response.status, body[:200])
        times.append(time.perf_counter() - started)
    connection.close()
    return times


def timed_fresh_gets(host: str, port: int, path: str, count: int, headers: dict) -> list[float]:
    """Sequential GETs, each on a new connection (the peer's keep-alive bodies overrun)."""
    times = []
    for _ in range(count):
        started = time.perf_counter()
        connection = http.client.HTTPConnection(host, port, timeout=60)
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        body = response.read()
        connection.close()
        assert response.status == 200, (path, response.status, body[:200])
        times.append(time.perf_counter() - started)
    return times


def throughput(urls: list[str], clients: int, seconds: float, headers: dict) -> float:
    """Requests per second of concurrent clients on these URLs (``tests/load_client.py``)."""
    spec = {
        "clients": clients,
        "requests": [[u, None] for u in urls],
        "headers": headers,
        "seconds": seconds,
    }
    out = subprocess.run(
        [sys.executable, str(HERE.parent / "tests" / "load_client.py"), json.dumps(spec)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    report = json.loads(out)
    assert report["error_count"] == 0, report["errors"]
    return report["per_second"]


def tensorboard_argv(logdir: Path, port: int, extra: list[str]) -> list[str]:
    """Bare TensorBoard's command line, as a user would start it by hand."""
    logdir_and_port = ["--logdir", str(logdir), "--port", str(port)]
    return [sys.executable, "-m", "tensorboard.main", *logdir_and_port, *extra]


def bare_tensorboard(logdir: Path, extra: list[str]):
    """Bare TensorBoard in a session of its own: its process, port and seconds to ready."""
    port = free_port()
    started = time.monotonic()
    proc = subprocess.Popen(
        tensorboard_argv(logdir, port, extra),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    ready = wait_http(f"http://127.0.0.1:{port}/")
    return proc, port, ready - started


def stop_group(proc):
    """SIGTERM to a process's whole group, then wait for the process."""
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=30)
