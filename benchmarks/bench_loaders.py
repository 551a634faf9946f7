"""TensorBoard's loaders on generated log directories, small to large (``make bench-loaders``).

For each size, bare TensorBoard with ``--load_fast=false`` (the Python loader) and
``--load_fast=true`` (the Rust data server), and a job as we start it by default
(our runner on a Unix socket, ``load_fast`` auto, private network), started in
rotating order: time from start until every run's last point is served, steady
RSS of the whole process group, and p50/p99 of a scalars, a time-series (POST,
all runs of a tag) and a histogram request. Medians and spread over the rounds.
Loopback and Unix sockets only; no Jupyter server (bench.py measures the proxy).

Generated log directories are cached under ``build/bench-logdirs`` (one event
file is written per shape, with TensorBoard's record writer, then copied per run).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import free_port, group_pids, rss_mib, stop_group, summary, tensorboard_argv

CACHE = Path(__file__).resolve().parent.parent / "build" / "bench-logdirs"
HISTOGRAM_STEPS = 50
#: name: (runs, scalar points per run). Sizes are bounded so that one round of the
#: Python loader on the largest stays within a few minutes on 2 cores.
SIZES = {
    "small": (3, 2_000),
    "medium": (20, 20_000),
    "many-runs": (200, 5_000),
    "long-runs": (2, 500_000),
}


def _write_events(path: Path, points: int) -> None:
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.record_writer import RecordWriter

    def event(step, value):
        return event_pb2.Event(
            wall_time=1.7e9 + step, step=step, summary=summary_pb2.Summary(value=[value])
        ).SerializeToString()

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as out:
        writer = RecordWriter(out)
        writer.write(
            event_pb2.Event(wall_time=1.7e9, file_version="brain.Event:2").SerializeToString()
        )
        for step in range(points):
            writer.write(
                event(step, summary_pb2.Summary.Value(tag="loss", simple_value=1 / (step + 1)))
            )
        for step in range(HISTOGRAM_STEPS):
            buckets = list(range(1, 31))
            histo = summary_pb2.HistogramProto(
                min=0.0,
                max=30.0,
                num=sum(buckets),
                sum=float(sum(buckets)),
                sum_squares=float(sum(b * b for b in buckets)),
                bucket_limit=[float(i) for i in range(1, 31)],
                bucket=buckets,
            )
            value = summary_pb2.Summary.Value(tag="weights", histo=histo)
            writer.write(event(step * (points // HISTOGRAM_STEPS or 1), value))


def logdir_for(name: str) -> Path:
    """The cached log directory of one size, generated on first use."""
    runs, points = SIZES[name]
    top = CACHE / name
    if (top / ".complete").exists():
        return top
    shutil.rmtree(top, ignore_errors=True)
    template = CACHE / "templates" / f"{points}.tfevents"
    if not template.exists():
        started = time.monotonic()
        _write_events(template.with_suffix(".tmp"), points)
        template.with_suffix(".tmp").rename(template)
        print(f"  generated {points} points in {time.monotonic() - started:.1f} s", flush=True)
    for run in range(runs):
        (top / f"run{run:03d}").mkdir(parents=True)
        shutil.copyfile(template, top / f"run{run:03d}" / "events.out.tfevents.1700000000.bench")
    (top / ".complete").touch()
    return top


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over a Unix socket, where our jobs listen."""

    def __init__(self, path: str, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)


def _get(conn: http.client.HTTPConnection, method: str, path: str, body=None, headers=None):
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    data = response.read()
    if response.status != 200:
        raise RuntimeError(f"{path}: {response.status} {data[:200]!r}")
    return data


def _last_step(conn, run: str) -> int | None:
    query = urllib.parse.urlencode({"run": run, "tag": "loss"})
    try:
        points = json.loads(_get(conn, "GET", f"/data/plugin/scalars/scalars?{query}"))
    except RuntimeError:
        return None
    return points[-1][1] if points else None


def _wait_loaded(connect, runs: int, points: int, timeout: float) -> None:
    """Wait until every run's last point is served.

    Checks one run per poll, moving on only once it is complete, so the polling
    itself stays light (the Python loader shares a GIL with the requests).
    """
    pending = [f"run{run:03d}" for run in range(runs)]
    deadline = time.monotonic() + timeout
    conn = None
    while pending:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(pending)} runs not loaded after {timeout} s")
        try:
            conn = conn or connect()
            while pending and _last_step(conn, pending[0]) == points - 1:
                pending.pop(0)
        except OSError:  # not listening yet
            conn = None
        if pending:
            time.sleep(0.1)
    conn.close()


def _requests(connect, count: int) -> dict[str, list[float]]:
    """Sequential scalars, time-series and histogram requests on one connection; seconds."""
    conn = connect()
    series = urllib.parse.urlencode(
        {"requests": json.dumps([{"plugin": "scalars", "tag": "loss"}])}
    )
    form = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-XSRF-Protected": "1",
    }
    histo = "run=run000&tag=weights"
    calls = {
        "scalars": ("GET", "/data/plugin/scalars/scalars?run=run000&tag=loss", None, {}),
        "time_series": ("POST", "/data/plugin/timeseries/timeSeries", series, form),
        "histograms": ("GET", f"/data/plugin/histograms/histograms?{histo}", None, {}),
    }
    times = {name: [] for name in calls}
    for _ in range(count):
        for name, (method, path, body, headers) in calls.items():
            started = time.perf_counter()
            _get(conn, method, path, body, headers)
            times[name].append(time.perf_counter() - started)
    conn.close()
    return times


#: The loaders measured: bare TensorBoard's two, and a job as we start it by default.
VARIANTS = {"false": "Python", "true": "Rust", "ours": "Ours (Rust, private network)"}


def _start(logdir: Path, variant: str, work: str):
    """A process serving ``logdir`` as ``variant`` says, and how to connect to it."""
    if variant == "ours":
        path = os.path.join(work, "tb.sock")
        argv = [
            sys.executable,
            "-m",
            "jupyter_forgather_tb.runner",
            "--unix-socket",
            path,
            "--private-network",
            "--fast-loader-above",
            "0",
            "--",
            "--logdir",
            str(logdir),
        ]
        return argv, lambda: UnixHTTPConnection(path, timeout=120)
    port = free_port()
    argv = tensorboard_argv(logdir, port, [f"--load_fast={variant}"])
    return argv, lambda: http.client.HTTPConnection("127.0.0.1", port, timeout=120)


def measure(logdir: Path, variant: str, requests: int, timeout: float) -> dict:
    """One TensorBoard on ``logdir``: load time, steady RSS, request latencies."""
    runs, points = SIZES[logdir.name]
    with tempfile.TemporaryDirectory() as work:
        argv, connect = _start(logdir, variant, work)
        started = time.monotonic()
        # stdin stays open: our runner exits when it closes.
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            _wait_loaded(connect, runs, points, timeout)
            loaded = time.monotonic() - started
            time.sleep(1.0)
            rss = rss_mib(group_pids(proc.pid))
            latencies = _requests(connect, requests)
        finally:
            stop_group(proc)
    return {"load_s": loaded, "rss_mib": rss, "latency_s": latencies}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="alternated rounds per size")
    parser.add_argument("--requests", type=int, default=40, help="requests of each kind")
    parser.add_argument("--sizes", default=",".join(SIZES), help="comma-separated sizes")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per load at most")
    args = parser.parse_args()

    import tensorboard
    import tensorboard_data_server

    print(f"machine: {platform.platform()}, {os.cpu_count()} cores")
    print(f"Python {platform.python_version()}")
    print(
        f"tensorboard {tensorboard.__version__}, "
        f"tensorboard-data-server {tensorboard_data_server.__version__}"
    )
    results = {}
    for name in args.sizes.split(","):
        runs, points = SIZES[name]
        logdir = logdir_for(name)
        event_bytes = sum(p.stat().st_size for p in logdir.rglob("*tfevents*"))
        print(f"{name}: {runs} runs x {points} points, {event_bytes / 2**20:.1f} MiB", flush=True)
        samples = {variant: [] for variant in VARIANTS}
        names = list(VARIANTS)
        for round_ in range(args.rounds):
            for variant in names[round_ % len(names) :] + names[: round_ % len(names)]:
                result = measure(logdir, variant, args.requests, args.timeout)
                samples[variant].append(result)
                print(f"  {VARIANTS[variant]}: loaded in {result['load_s']:.2f} s", flush=True)
        results[name] = {"runs": runs, "points": points, "event_mib": event_bytes / 2**20}
        for load_fast, found in samples.items():
            latency = {
                kind: summary([t * 1000 for r in found for t in r["latency_s"][kind]])
                for kind in found[0]["latency_s"]
            }
            results[name][load_fast] = {
                "load_s": summary([r["load_s"] for r in found]),
                "rss_mib": summary([r["rss_mib"] for r in found]),
                "latency_ms": latency,
            }
        print_table({name: results[name]})  # each size as soon as it is done
    print(json.dumps(results, indent=2))
    print_table(results)


def print_table(results: dict) -> None:
    """A Markdown table of medians: Python loader, Rust loader, ours."""
    kinds = "scalars p50 / p99 | time series p50 / p99 | histograms p50 / p99"
    print(f"\n| Log directory | Loader | Loaded in | RSS | {kinds} |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, r in results.items():
        label = f"{name}: {r['runs']} x {r['points']:,} points ({r['event_mib']:.1f} MiB)"
        for variant, loader in VARIANTS.items():
            m = r[variant]
            lat = m["latency_ms"]
            cells = " | ".join(
                f"{lat[k]['median']:.1f} / {lat[k]['p99']:.1f} ms"
                for k in ("scalars", "time_series", "histograms")
            )
            spread = f"{m['load_s']['min']:.1f}-{m['load_s']['max']:.1f}"
            print(
                f"| {label} | {loader} | {m['load_s']['median']:.1f} s ({spread}) | "
                f"{m['rss_mib']['median']:.0f} MiB | {cells} |"
            )
            label = ""
    print("\n(medians over the rounds; load spread min-max in brackets)")


if __name__ == "__main__":
    main()
