"""What a user waits for when a job was suspended, and what suspending frees (``make bench``).

Part ``suspend`` of ``bench.py``. On a Jupyter server with ``suspend_after=2`` and the
fork server warm, for a small log directory and the 200-run one of ``bench_loaders.py``,
in rotating order: from a request to a suspended job's URL until the first 200 and
until every run's last point is served through the proxy, against a fresh launch
(``POST jobs`` to the same) and against a job that never slept (kept awake by an open
output stream, as the sidebar's Output view keeps one), each a second after the last
job's teardown. Then the memory of 8 running
jobs against the same 8 suspended: their processes, the Jupyter server and the fork
server (PSS), and the machine's ``MemAvailable``.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
import urllib.parse
from pathlib import Path

from bench_loaders import SIZES, logdir_for
from harness import (
    AUTH,
    Jupyter,
    cpu_seconds,
    group_pids,
    pss_mib,
    rss_mib,
    summary,
    wait_http,
)

#: Short, so that a job is suspended again soon after each measured wake.
SUSPEND_AFTER_S = 2
#: The log directories measured, from bench_loaders' sizes.
LOGDIRS = ("small", "many-runs")
MEMORY_JOBS = 8
#: Before each measured request: a real wake comes long after the suspension, once the
#: stopped job's processes and network namespace are gone, and so does a launch.
SETTLE_S = 1.0


class Follower:
    """An open output stream on a job, read in a thread: the job is not suspended meanwhile."""

    def __init__(self, server: Jupyter, job_id: str):
        self.connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=None)
        path = f"/forgather-tb/api/jobs/{job_id}/output/stream"
        self.connection.request("GET", path, headers=AUTH)
        self.response = self.connection.getresponse()
        assert self.response.status == 200, self.response.status
        self.thread = threading.Thread(target=self._drain, daemon=True)
        self.thread.start()

    def _drain(self) -> None:
        try:
            while self.response.read1(65536):
                pass
        except (OSError, ValueError, AttributeError):  # closed under it by close()
            pass

    def close(self) -> None:
        sock = self.connection.sock
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)
        self.connection.close()
        self.thread.join(timeout=10)


def _status(server: Jupyter, job_id: str) -> dict:
    return server.api("GET", f"jobs/{job_id}")


def _wait_status(server: Jupyter, job_id: str, status: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while (job := _status(server, job_id))["status"] != status:
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} stayed {job['status']}, not {status}")
        time.sleep(0.05)
    return job


def _get(server: Jupyter, path: str) -> int:
    """One GET through the server, on a new connection; its status."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    try:
        connection.request("GET", path, headers=AUTH)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def _wait_served(server: Jupyter, job_url: str, runs: int, points: int) -> None:
    """Until every run's last point is served through the proxy, one run per poll."""
    pending = [f"run{run:03d}" for run in range(runs)]
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    deadline = time.monotonic() + 300
    while pending:
        assert time.monotonic() < deadline, f"{len(pending)} runs never served"
        query = urllib.parse.urlencode({"run": pending[0], "tag": "loss"})
        connection.request("GET", f"{job_url}data/plugin/scalars/scalars?{query}", headers=AUTH)
        response = connection.getresponse()
        body = response.read()
        points_served = json.loads(body) if response.status == 200 else []
        if points_served and points_served[-1][1] == points - 1:
            pending.pop(0)
        else:
            time.sleep(0.05)
    connection.close()


def _job_cpu(pid: int | None) -> float:
    """CPU seconds the job's processes have used (0 for none)."""
    return sum(cpu_seconds(member) for member in group_pids(pid)) if pid else 0.0


def _request_until_served(server: Jupyter, job_url: str, runs: int, points: int):
    """Seconds from one GET of the job's page until its 200, and until every run is served."""
    began = time.monotonic()
    assert _get(server, job_url) == 200
    first = time.monotonic() - began
    _wait_served(server, job_url, runs, points)
    return first, time.monotonic() - began


def _forked(pid: int) -> bool:
    """True if the process was forked by the fork server (its command line is the server's)."""
    with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
        return b"jupyter_forgather_tb.forkserver" in cmdline.read()


def _fork_server_pid(server: Jupyter, logdir: str) -> int:
    """Launch until a job is forked (the fork server is warm); the fork server's pid."""
    deadline = time.monotonic() + 120
    while True:
        job = server.api("POST", "jobs", {"logdir": logdir, "force_new": True})
        wait_http(f"{server.url}{job['url'].lstrip('/')}", headers=AUTH)
        pid = _status(server, job["id"])["pid"]
        forked = _forked(pid)
        with open(f"/proc/{pid}/stat") as stat:
            parent = int(stat.read().rsplit(")", 1)[1].split()[1])
        server.api("DELETE", f"jobs/{job['id']}")
        if forked:
            return parent
        assert time.monotonic() < deadline, "the fork server never got ready"
        time.sleep(1)


def _latencies(server: Jupyter, name: str, rounds: int) -> dict:
    """Request-to-first-200 and to-data-served: suspended, fresh launch, never slept."""
    runs, points = SIZES[name]
    logdir = str(logdir_for(name))
    sleeper = server.api("POST", "jobs", {"logdir": logdir, "force_new": True})
    awake = server.api("POST", "jobs", {"logdir": logdir, "force_new": True})
    for job in (sleeper, awake):
        _wait_status(server, job["id"], "running")
    follower = Follower(server, awake["id"])
    _wait_served(server, awake["url"], runs, points)
    times: dict[str, dict[str, list[float]]] = {
        kind: {"first_200_s": [], "served_s": [], "job_cpu_s": []}
        for kind in ("suspended", "fresh", "never_slept")
    }

    def suspended() -> tuple[float, float, float]:
        first, served = _request_until_served(server, sleeper["url"], runs, points)
        pid = _status(server, sleeper["id"])["pid"]
        assert _forked(pid), "the wake was not a warm start"
        return first, served, _job_cpu(pid)

    def fresh() -> tuple[float, float, float]:
        began = time.monotonic()
        launched = server.api("POST", "jobs", {"logdir": logdir, "force_new": True})
        wait_http(f"{server.url}{launched['url'].lstrip('/')}", headers=AUTH, timeout=300)
        first = time.monotonic() - began
        _wait_served(server, launched["url"], runs, points)
        served = time.monotonic() - began
        cpu = _job_cpu(_status(server, launched["id"])["pid"])
        server.api("DELETE", f"jobs/{launched['id']}")
        return first, served, cpu

    def never_slept() -> tuple[float, float, float]:
        first, served = _request_until_served(server, awake["url"], runs, points)
        return first, served, 0.0

    kinds = {"suspended": suspended, "fresh": fresh, "never_slept": never_slept}
    names = list(kinds)
    for round_ in range(rounds):
        for kind in names[round_ % len(names) :] + names[: round_ % len(names)]:
            if kind == "suspended":
                _wait_status(server, sleeper["id"], "suspended")
            time.sleep(SETTLE_S)
            first, served, cpu = kinds[kind]()
            times[kind]["first_200_s"].append(first)
            times[kind]["served_s"].append(served)
            times[kind]["job_cpu_s"].append(cpu)
            print(f"  {name} {kind}: first 200 {first:.3f} s, served {served:.3f} s", flush=True)
    awake_now = _status(server, awake["id"])
    result = {
        kind: {key: summary(values) for key, values in measured.items()}
        for kind, measured in times.items()
    }
    result["running_job_pss_mib"] = pss_mib(group_pids(awake_now["pid"]))
    result["running_job_rss_mib"] = rss_mib(group_pids(awake_now["pid"]))
    result["running_job_private_mib"] = _private_mib(group_pids(awake_now["pid"]))
    result["wakes"] = _status(server, sleeper["id"])["wakes"]
    follower.close()
    for job in (sleeper, awake):
        server.api("DELETE", f"jobs/{job['id']}")
    return result


def _mem_available_mib() -> float:
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _private_mib(pids: list[int]) -> float:
    """Pages only these processes map (freed when they exit), summed, in MiB."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as rollup:
                for line in rollup:
                    if line.startswith(("Private_Clean:", "Private_Dirty:")):
                        total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def _memory_now(server: Jupyter, jobs: list[dict], fork_server: int) -> dict:
    pids = [pid for job in jobs if (pid := _status(server, job["id"])["pid"])]
    members = [member for pid in pids for member in group_pids(pid)]
    ours = [*members, server.proc.pid, fork_server]
    return {
        "job_processes": len(members),
        "jobs_pss_mib": pss_mib(members),
        "jobs_rss_mib": rss_mib(members),
        "jobs_private_mib": _private_mib(members),
        "server_pss_mib": pss_mib([server.proc.pid]),
        "fork_server_pss_mib": pss_mib([fork_server]),
        "total_pss_mib": pss_mib(ours),
        "mem_available_mib": _mem_available_mib(),
    }


def _memory(server: Jupyter, fork_server: int, rounds: int) -> dict:
    """8 jobs running (kept awake by their output streams) against the same 8 suspended."""
    logdir = str(logdir_for("small"))
    jobs = [
        server.api("POST", "jobs", {"logdir": logdir, "force_new": True})
        for _ in range(MEMORY_JOBS)
    ]
    samples: dict[str, list[dict]] = {"running": [], "suspended": []}
    for _ in range(rounds):
        for job in jobs:
            if _status(server, job["id"])["status"] == "suspended":
                server.api("POST", f"jobs/{job['id']}/resume")
            _wait_status(server, job["id"], "running")
        followers = [Follower(server, job["id"]) for job in jobs]
        for job in jobs:  # one request each, as a user's first view
            _wait_served(server, job["url"], *SIZES["small"])
        time.sleep(3)  # settle
        samples["running"].append(_memory_now(server, jobs, fork_server))
        for follower in followers:
            follower.close()
        for job in jobs:
            _wait_status(server, job["id"], "suspended", timeout=120)
        time.sleep(3)
        samples["suspended"].append(_memory_now(server, jobs, fork_server))
    for job in jobs:
        server.api("DELETE", f"jobs/{job['id']}")
    return {
        state: {key: summary([s[key] for s in taken]) for key in taken[0]}
        for state, taken in samples.items()
    }


def suspend_section(root: Path, runtime: Path, rounds: int, results: dict) -> None:
    """The ``suspend`` part: its own server, with ``suspend_after`` short."""
    roots = [str(root), str(logdir_for("small").parent)]
    server = Jupyter(
        root,
        runtime / "suspend",
        extension=True,
        extra=(
            f"--ForgatherTB.suspend_after={SUSPEND_AFTER_S}",
            *(f"--ForgatherTB.allowed_roots={path}" for path in roots),
        ),
    )
    try:
        logdir_for("many-runs")
        fork_server = _fork_server_pid(server, str(logdir_for("small")))
        section = {name: _latencies(server, name, rounds) for name in LOGDIRS}
        section["memory"] = _memory(server, fork_server, 2)
        section["fork_server_pid_alive"] = bool(group_pids(fork_server))
    finally:
        server.stop()
    results["suspend"] = section


def print_suspend(section: dict) -> None:
    """Headline lines of the ``suspend`` part."""
    for name in LOGDIRS:
        r = section[name]
        s, f, n = r["suspended"], r["fresh"], r["never_slept"]
        print(
            f"  {name}, request to a suspended job: first 200 {s['first_200_s']['median']:.3f} s "
            f"({s['first_200_s']['min']:.3f}-{s['first_200_s']['max']:.3f}) vs fresh launch "
            f"{f['first_200_s']['median']:.3f} s vs never slept "
            f"{n['first_200_s']['median']:.3f} s; data served {s['served_s']['median']:.3f} s vs "
            f"fresh {f['served_s']['median']:.3f} s "
            f"({s['served_s']['median'] / f['served_s']['median']:.2f}x) vs never slept "
            f"{n['served_s']['median']:.3f} s; a wake costs the job "
            f"{s['job_cpu_s']['median']:.2f} s of CPU; a running job holds "
            f"{r['running_job_pss_mib']:.0f} MiB PSS ({r['running_job_rss_mib']:.0f} MiB RSS, "
            f"{r['running_job_private_mib']:.0f} MiB private)"
        )
    m = section["memory"]
    run, sus = m["running"], m["suspended"]
    print(
        f"  {MEMORY_JOBS} jobs running vs suspended: jobs, Jupyter server and fork server "
        f"together {run['total_pss_mib']['median']:.0f} vs {sus['total_pss_mib']['median']:.0f} "
        f"MiB PSS (freed {run['total_pss_mib']['median'] - sus['total_pss_mib']['median']:.0f} "
        f"MiB); the jobs' private memory {run['jobs_private_mib']['median']:.0f} MiB"
    )
    print(
        f"  {MEMORY_JOBS} jobs running vs suspended: jobs' PSS "
        f"{run['jobs_pss_mib']['median']:.0f} vs {sus['jobs_pss_mib']['median']:.0f} MiB "
        f"(RSS {run['jobs_rss_mib']['median']:.0f} vs {sus['jobs_rss_mib']['median']:.0f}); "
        f"Jupyter server {run['server_pss_mib']['median']:.0f} vs "
        f"{sus['server_pss_mib']['median']:.0f} MiB; fork server "
        f"{run['fork_server_pss_mib']['median']:.0f} vs "
        f"{sus['fork_server_pss_mib']['median']:.0f} MiB; MemAvailable "
        f"+{sus['mem_available_mib']['median'] - run['mem_available_mib']['median']:.0f} MiB "
        "when suspended"
    )
