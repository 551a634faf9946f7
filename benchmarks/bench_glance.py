"""Activity scans, previews and compare jobs (``make bench`` parts ``activity``,
``preview`` and ``compare``; ``python benchmarks/bench.py --only activity preview compare``).

Each figure is measured beside a baseline in the same run, alternated:

- ``activity``: one activity scan of the 200-run generated log directory (bench-loaders'
  ``many-runs``) against the log directory picker's own scan of it, in this process;
  and the Jupyter server's CPU while a client reads the job list every 2 s (as the
  sidebar does) with 8 jobs on that directory, against 8 jobs on empty folders. The
  jobs are queued (``max_running=0``), so 8 TensorBoards loading 200 runs each do not
  compete with the server for the 2 cores; a queued job is watched like a running one.
- ``preview``: a preview against TensorBoard's own scalars request for the same data
  through the proxy (one run of 2,000 points: its ``scalars`` request; 5 runs of 5,000
  points out of 200: the ``scalars_multirun`` request TensorBoard's charts make).
- ``compare``: launch until every run's last point is served, a compare job over two
  folders of 100 runs each against one folder holding the same 200 runs (the same run
  names, the same files), both with the default loader; and the CPU time the job's
  processes used until then, which other work on the machine sways far less.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import statistics
import time
import urllib.parse
from pathlib import Path

from bench_loaders import logdir_for
from harness import AUTH, Jupyter, cpu_seconds, group_pids, summary, wait_http

from jupyter_forgather_tb.server.logdirs.find import MAX_SCAN_ENTRIES, find_logdirs, scan_events

PARTS = ("activity", "preview", "compare")
MANY_RUNS, MANY_POINTS = 200, 5000
#: The picker's default limits (logdir_scan_depth and _max_dirs), which scans keep.
DEPTH, MAX_DIRS = 4, 5000
WATCH_WINDOW_S = 20.0
POLL_EVERY_S = 2.0


def prepare(root: Path) -> None:
    """The 200-run directory in the server root, and the same runs split in two folders."""
    many = logdir_for("many-runs")
    runs = sorted(p for p in many.iterdir() if p.is_dir())
    if not (root / "many").exists():
        shutil.copytree(many, root / "many")
    halves = {"a": runs[: len(runs) // 2], "b": runs[len(runs) // 2 :]}
    split = {"a": root / "split-a" / "runs", "b": root / "split-b" / "other"}
    for name, half in halves.items():
        for run in half:
            source = next((root / "many" / run.name).iterdir())
            for target in (root / "one" / name / run.name, split[name] / run.name):
                target.mkdir(parents=True, exist_ok=True)
                if not (target / source.name).exists():
                    os.link(source, target / source.name)
    for i in range(8):
        (root / "empty" / f"e{i}").mkdir(parents=True, exist_ok=True)


def scan_cost(root: Path, rounds: int, results: dict) -> None:
    """One activity scan of the 200-run directory against the picker's scan of it."""
    top = str(root / "many")
    scan = scan_events([top], DEPTH, MAX_DIRS, MAX_SCAN_ENTRIES)
    assert scan.runs == MANY_RUNS, scan
    ours, picker = [], []
    for _ in range(rounds * 10):
        started = time.perf_counter()
        scan_events([top], DEPTH, MAX_DIRS, MAX_SCAN_ENTRIES)
        ours.append(time.perf_counter() - started)
        started = time.perf_counter()
        find_logdirs(top, DEPTH, MAX_DIRS, MAX_SCAN_ENTRIES)
        picker.append(time.perf_counter() - started)
    results["activity_scan_ms"] = {
        "scan": {k: v * 1000 for k, v in summary(ours).items()},
        "picker": {k: v * 1000 for k, v in summary(picker).items()},
    }


def watch_cost(root: Path, runtime: Path, results: dict) -> None:
    """Server CPU while 8 jobs are read every 2 s: on the 200-run directory, or empty ones."""
    taken: dict[str, list[float]] = {"many": [], "empty": []}
    for round_ in range(2):
        for name in ("empty", "many"):
            extra = ("--ForgatherTB.max_running=0",)
            server = Jupyter(root, runtime / f"watch-{name}{round_}", extension=True, extra=extra)
            try:
                for i in range(8):
                    logdir = "many" if name == "many" else f"empty/e{i}"
                    server.api("POST", "jobs", {"logdir": logdir, "window_title": f"w{i}"})
                time.sleep(3.0)  # the server settles
                before, started = cpu_seconds(server.proc.pid), time.monotonic()
                while time.monotonic() - started < WATCH_WINDOW_S:
                    jobs = server.api("GET", "jobs")
                    time.sleep(POLL_EVERY_S)
                cpu = (cpu_seconds(server.proc.pid) - before) / (time.monotonic() - started)
                expected = MANY_RUNS if name == "many" else 0
                assert all(j["activity"]["runs"] == expected for j in jobs), jobs[0]["activity"]
                taken[name].append(cpu * 100)
            finally:
                server.stop()
    results["activity_watch_server_cpu_percent"] = {
        name: statistics.median(values) for name, values in taken.items()
    }


def _timed(server: Jupyter, method: str, path: str, body: str | None, count: int) -> list[float]:
    """Sequential requests on one keep-alive connection; seconds each."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    headers = dict(AUTH)
    if body is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    times = []
    for _ in range(count):
        started = time.perf_counter()
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        data = response.read()
        assert response.status == 200, (path, response.status, data[:200])
        times.append(time.perf_counter() - started)
    connection.close()
    return times


def _job(server: Jupyter, body: dict) -> dict:
    job = server.api("POST", "jobs", {**body, "force_new": True})
    wait_http(f"http://127.0.0.1:{server.port}{job['url']}", headers=AUTH, timeout=120)
    return job


def _wait_loaded(server: Jupyter, job: dict, runs: list[str], last_step: int) -> None:
    """Until every run's last point is served, checking one run per poll (stays light)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    pending = list(runs)
    deadline = time.monotonic() + 300
    while pending:
        assert time.monotonic() < deadline, f"{len(pending)} runs not loaded"
        query = urllib.parse.urlencode({"run": pending[0], "tag": "loss"})
        path = f"{job['url']}data/plugin/scalars/scalars?{query}"
        connection.request("GET", path, headers=AUTH)
        response = connection.getresponse()
        data = response.read()
        points = json.loads(data) if response.status == 200 else []
        if points and points[-1][1] == last_step:
            pending.pop(0)
        else:
            time.sleep(0.05)
    connection.close()


def preview_latency(root: Path, runtime: Path, count: int, results: dict) -> None:
    """A preview against TensorBoard's own scalars request for the same data, proxied."""
    server = Jupyter(root, runtime / "preview", extension=True)
    out = {}
    try:
        small = _job(server, {"logdir": "logs"})
        many = _job(server, {"logdir": "many"})
        runs = [f"run{i:03d}" for i in range(MANY_RUNS)]
        _wait_loaded(server, small, ["run"], 1999)
        _wait_loaded(server, many, runs, MANY_POINTS - 1)
        form = urllib.parse.urlencode([("tag", "loss"), *(("runs", run) for run in runs[:5])])
        cases = {
            "one_run_2000_points": (
                f"/forgather-tb/api/jobs/{small['id']}/preview",
                ("GET", f"{small['url']}data/plugin/scalars/scalars?run=run&tag=loss", None),
            ),
            "five_of_200_runs_5000_points": (
                f"/forgather-tb/api/jobs/{many['id']}/preview",
                ("POST", f"{many['url']}data/plugin/scalars/scalars_multirun", form),
            ),
        }
        for name, (preview, (method, path, body)) in cases.items():
            answer = json.loads(_body(server, preview))
            last = 1999 if small["id"] in preview else MANY_POINTS - 1
            assert all(points[-1][0] == last for points in answer["runs"].values()), answer
            ours, theirs = [], []
            block = max(1, count // 10)
            for _ in range(10):
                ours += _timed(server, "GET", preview, None, block)
                theirs += _timed(server, method, path, body, block)
            out[name] = {
                "preview_ms": {k: v * 1000 for k, v in summary(ours).items()},
                "tensorboard_ms": {k: v * 1000 for k, v in summary(theirs).items()},
                "ratio_p50": statistics.median(ours) / statistics.median(theirs),
            }
    finally:
        server.stop()
    results["preview"] = out


def _body(server: Jupyter, path: str) -> bytes:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    connection.request("GET", path, headers=AUTH)
    data = connection.getresponse().read()
    connection.close()
    return data


def compare_load(root: Path, runtime: Path, rounds: int, results: dict) -> None:
    """Launch to every run served: a compare job over two folders vs one folder, alternated."""
    server = Jupyter(root, runtime / "compare", extension=True)
    runs = [f"a/run{i:03d}" for i in range(MANY_RUNS // 2)]
    runs += [f"b/run{i:03d}" for i in range(MANY_RUNS // 2, MANY_RUNS)]
    bodies = {
        "compare": {"logdirs": {"a": "split-a/runs", "b": "split-b/other"}},
        "one_folder": {"logdir": "one"},
    }
    times: dict[str, list[float]] = {name: [] for name in bodies}
    cpu: dict[str, list[float]] = {name: [] for name in bodies}
    loaders: dict[str, str] = {}
    try:
        server.api("DELETE", f"jobs/{_job(server, {'logdir': 'logs'})['id']}")  # warm fork server
        for _ in range(rounds):
            for name, body in bodies.items():
                started = time.monotonic()
                job = _job(server, body)
                _wait_loaded(server, job, runs, MANY_POINTS - 1)
                times[name].append(time.monotonic() - started)
                job = server.api("GET", f"jobs/{job['id']}")
                # CPU time is far less swayed than wall time by other work on the machine.
                cpu[name].append(sum(cpu_seconds(pid) for pid in group_pids(job["pid"])))
                loaders[name] = job["loader"]["name"]
                server.api("DELETE", f"jobs/{job['id']}")
    finally:
        server.stop()
    results["compare_load_s"] = {
        **{name: summary(values) for name, values in times.items()},
        "loaders": loaders,
        "ratio_p50": statistics.median(times["compare"]) / statistics.median(times["one_folder"]),
    }
    results["compare_load_cpu_s"] = {
        **{name: summary(values) for name, values in cpu.items()},
        "ratio_p50": statistics.median(cpu["compare"]) / statistics.median(cpu["one_folder"]),
    }


def run(parts: list[str], args, root: Path, runtime: Path, results: dict) -> None:
    """Measure the parts asked for."""
    prepare(root)
    if "activity" in parts:
        scan_cost(root, args.rounds, results)
        watch_cost(root, runtime, results)
    if "preview" in parts:
        preview_latency(root, runtime, args.requests, results)
    if "compare" in parts:
        compare_load(root, runtime, args.rounds, results)


def print_ratios(r: dict) -> None:
    """The headline figures of these parts."""
    if "activity_scan_ms" in r:
        scan = r["activity_scan_ms"]
        print(
            f"  activity scan of 200 runs: {scan['scan']['median']:.2f} ms (p99 "
            f"{scan['scan']['p99']:.2f}) vs the picker's scan {scan['picker']['median']:.2f} ms = "
            f"{scan['scan']['median'] / scan['picker']['median']:.2f}x"
        )
    if "activity_watch_server_cpu_percent" in r:
        cpu = r["activity_watch_server_cpu_percent"]
        print(
            f"  server CPU, 8 watched jobs on 200 runs each vs on empty folders: "
            f"{cpu['many']:.2f} % vs {cpu['empty']:.2f} % of a core"
        )
    for name, p in r.get("preview", {}).items():
        print(
            f"  preview, {name}: {p['preview_ms']['median']:.1f} ms (p99 "
            f"{p['preview_ms']['p99']:.1f}) vs TensorBoard's own request "
            f"{p['tensorboard_ms']['median']:.1f} ms = {p['ratio_p50']:.2f}x"
        )
    if "compare_load_s" in r:
        c = r["compare_load_s"]
        print(
            f"  load of 200 runs, compare job over 2 folders {c['compare']['median']:.2f} s "
            f"({c['compare']['min']:.2f}-{c['compare']['max']:.2f}) vs one folder "
            f"{c['one_folder']['median']:.2f} s = {c['ratio_p50']:.2f}x ({c['loaders']})"
        )
        c = r["compare_load_cpu_s"]
        print(
            f"  CPU of the job until loaded, compare {c['compare']['median']:.2f} s vs one "
            f"folder {c['one_folder']['median']:.2f} s = {c['ratio_p50']:.2f}x"
        )
