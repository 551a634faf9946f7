"""Benchmarks against bare TensorBoard, measured in the same run (``make bench``).

Every figure is a ratio against a baseline measured here, runs alternated
(A B A B ...), with medians and spread. Loopback only; bounded in count and time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path

from harness import (
    AUTH,
    TOKEN,
    Jupyter,
    bare_tensorboard,
    cpu_seconds,
    free_port,
    group_pids,
    pss_mib,
    rss_mib,
    stop_group,
    summary,
    throughput,
    timed_fresh_gets,
    timed_gets,
    wait_http,
    write_logdir,
)

PARTS = [
    "start",
    "launch",
    "proxy",
    "memory",
    "scale",
    "usage",
    "activity",
    "preview",
    "compare",
    "pages",
    "suspend",
    "export",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="alternated runs per comparison")
    parser.add_argument("--requests", type=int, default=200, help="sequential requests per URL")
    parser.add_argument(
        "--page-rounds", type=int, default=10, help="alternated page loads of each (pages part)"
    )
    parser.add_argument(
        "--peer-python",
        help="Python of a separate venv with jupyterlab-tensorboard-pro, to measure beside ours",
    )
    parser.add_argument(
        "--export-runs", type=int, default=200, help="runs of 5,000 points (export part)"
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=PARTS,
        default=PARTS,
        help="measure only these parts (default: all)",
    )
    args = parser.parse_args()

    import jupyter_server
    import jupyter_server_proxy
    import tensorboard

    print(
        f"machine: {platform.platform()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )
    print(
        f"tensorboard {tensorboard.__version__}, jupyter_server {jupyter_server.__version__}, "
        f"jupyter-server-proxy {jupyter_server_proxy.__version__}"
    )
    work = Path(tempfile.mkdtemp(prefix="forgather-bench-"))
    root, runtime = work / "root", work / "runtime"
    logdir = root / "logs"
    write_logdir(logdir, 2000)
    results = {}
    try:
        if "start" in args.only:
            start_cost(args, root, runtime, results)
        server = Jupyter(root, runtime, extension=True)
        try:
            if "launch" in args.only:
                launch(args, server, logdir, results)
            if "proxy" in args.only:
                proxy_overhead(args, server, results)
            if "pages" in args.only:
                pages(server, logdir, args.page_rounds, results)
            if "memory" in args.only:
                memory(server, logdir, results)
            if "scale" in args.only:
                scale(server, logdir, results)
        finally:
            server.stop()  # and with it every job it started
        if "usage" in args.only:
            usage_cost(root, runtime, logdir, results)
        if "suspend" in args.only:
            from bench_suspend import suspend_section

            suspend_section(root, runtime, args.rounds, results)
        glance = [part for part in args.only if part in ("activity", "preview", "compare")]
        if glance:
            import bench_glance

            bench_glance.run(glance, args, root, runtime, results)
        if "export" in args.only:
            import bench_export

            bench_export.run(args, root, runtime, results)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(results, indent=2))
    print_ratios(results)


# Sequential runs are alternated in this many blocks (A B C A B C ...).
BLOCKS = 10
# Scalars requests per throughput run, shared among its clients.
THROUGHPUT_REQUESTS = 400


def pages(server: Jupyter, logdir: Path, rounds: int, results: dict) -> None:
    """Page load to the first chart drawn, in Chromium (``bench_pages.py``)."""
    import bench_pages

    if not bench_pages.CHROMIUM:
        print("pages: skipped, no chromium (apt-get install chromium)")
        return
    bench_pages.page_loads({"ours": server}, logdir, rounds, results)


def start_cost(args, root: Path, runtime: Path, results: dict) -> None:
    """4. Server start cost, with and without the extension, alternated."""
    starts = {"with": [], "without": []}
    rss = {"with": [], "without": []}
    for _ in range(args.rounds):
        for name in ("without", "with"):
            server = Jupyter(root, runtime, extension=name == "with")
            starts[name].append(server.ready - server.started)
            time.sleep(0.5)
            rss[name].append(rss_mib([server.proc.pid]))
            server.stop()
    results["server_start_s"] = {k: summary(v) for k, v in starts.items()}
    results["server_idle_rss_mib"] = {k: summary(v) for k, v in rss.items()}


def live_job(server: Jupyter, body: dict) -> dict:
    job = server.api("POST", "jobs", body)
    wait_http(f"http://127.0.0.1:{server.port}{job['url']}", headers=AUTH)
    return job


def launch(args, server: Jupyter, logdir: Path, results: dict) -> None:
    """1. Launch to ready against the bare tensorboard CLI, rotated: ours warm (the fork
    server, the default) and plain, and the in-process peer if given; then reuse."""
    work = logdir.parent.parent
    results["launch_to_ready_s"] = launch_section(server, logdir.parent, work, logdir, args)
    live_job(server, {"logdir": "logs"})
    reuse = []
    for _ in range(30):
        started = time.perf_counter()
        assert server.api("POST", "jobs", {"logdir": "logs"})["reused"]
        reuse.append(time.perf_counter() - started)
    results["reuse_ms"] = {k: v * 1000 for k, v in summary(reuse).items()}


def proxy_overhead(args, server: Jupyter, results: dict) -> None:
    """2. Proxy overhead: a job on a TCP port, reached directly and through the proxy.

    Also through the proxy to a job on its default Unix socket (same TensorBoard, so the
    same direct baseline), and Jupyter's own ``/api/status``: the cost of any
    authenticated request to this server, which no proxy can go below. Both jobs use
    the Python loader, so that only the way to them differs (a socket job's default
    loader is measured in the launch part and by bench_loaders.py).
    """
    python = {"logdir": "logs", "load_fast": "false"}
    tcp = live_job(server, {**python, "port": free_port()})
    sock = live_job(server, {**python, "force_new": True})
    targets = {
        "scalars": "data/plugin/scalars/scalars?run=run&tag=loss",
        "index.js": "index.js",
        "environment": "data/environment",
    }
    overhead = {}
    for name, path in targets.items():
        count = max(20, args.requests // (10 if name == "index.js" else 1))
        direct, proxied, via_socket = [], [], []
        cpu = 0.0  # the Jupyter server's CPU time for the proxied requests
        block = max(1, count // BLOCKS)
        for _ in range(BLOCKS):  # alternate, in blocks short enough to share the noise
            direct += timed_gets("127.0.0.1", tcp["port"], tcp["url"] + path, block, {})
            before = cpu_seconds(server.proc.pid)
            proxied += timed_gets("127.0.0.1", server.port, tcp["url"] + path, block, AUTH)
            via_socket += timed_gets("127.0.0.1", server.port, sock["url"] + path, block, AUTH)
            cpu += cpu_seconds(server.proc.pid) - before
        d, p, u = summary(direct), summary(proxied), summary(via_socket)
        overhead[name] = {
            "direct_ms": {k: v * 1000 for k, v in d.items()},
            "proxied_ms": {k: v * 1000 for k, v in p.items()},
            "socket_proxied_ms": {k: v * 1000 for k, v in u.items()},
            "ratio_p50": p["median"] / d["median"],
            "socket_ratio_p50": u["median"] / d["median"],
            # Less swayed by other work on the machine than latency is.
            "server_cpu_ms_per_request": cpu * 1000 / (len(proxied) + len(via_socket)),
        }
    before = cpu_seconds(server.proc.pid)
    floor = timed_gets("127.0.0.1", server.port, "/api/status", args.requests, AUTH)
    overhead["jupyter_api_status"] = {
        "ms": {k: v * 1000 for k, v in summary(floor).items()},
        "server_cpu_ms_per_request": (cpu_seconds(server.proc.pid) - before) * 1000 / len(floor),
    }
    results["proxy_overhead"] = overhead
    rates = {}
    for clients in (1, 10, 50):
        path = tcp["url"] + targets["scalars"]
        each = max(4, THROUGHPUT_REQUESTS // clients)  # the same total at every level
        direct = throughput([f"http://127.0.0.1:{tcp['port']}{path}"] * each, clients, 120, {})
        proxied = throughput([f"http://127.0.0.1:{server.port}{path}"] * each, clients, 120, AUTH)
        rates[clients] = {"direct_rps": direct, "proxied_rps": proxied, "ratio": proxied / direct}
    results["throughput_scalars"] = rates


def memory(server: Jupyter, logdir: Path, results: dict) -> None:
    """3. Memory of one job against bare TensorBoard on the same log directory.

    Both with their defaults, which pick the same loader (Rust: ours in its private
    network); the whole process group, the data server included.
    """
    job = live_job(server, {"logdir": "logs"})
    proc, port, _ = bare_tensorboard(logdir, [])
    for url in (f"http://127.0.0.1:{port}/data/plugin/scalars/scalars?run=run&tag=loss",):
        urllib.request.urlopen(url, timeout=30).read()
    time.sleep(1)
    job_now = server.api("GET", f"jobs/{job['id']}")
    results["job_rss_mib"] = {
        "ours": rss_mib(group_pids(job_now["pid"])),
        "bare_default": rss_mib(group_pids(proc.pid)),
    }
    results["job_pss_mib"] = {
        "ours": pss_mib(group_pids(job_now["pid"])),
        "bare_default": pss_mib(group_pids(proc.pid)),
    }
    stop_group(proc)


def scale(server: Jupyter, logdir: Path, results: dict) -> None:
    """5. Scale: 200 finished records and 8 live jobs."""
    for i in range(8):
        (logdir / f"live{i}").mkdir(exist_ok=True)
        server.api("POST", "jobs", {"logdir": f"logs/live{i}"})
    for _ in range(200):
        queued = server.api("POST", "jobs", {"logdir": "logs", "force_new": True, "priority": -1})
        server.api("DELETE", f"jobs/{queued['id']}")
    listing = []
    for _ in range(30):
        started = time.perf_counter()
        jobs = server.api("GET", "jobs")
        listing.append(time.perf_counter() - started)
    results["job_list"] = {
        "jobs": len(jobs),
        "ms": {k: v * 1000 for k, v in summary(listing).items()},
    }


USAGE_WINDOW_S = 20.0


def usage_cost(root: Path, runtime: Path, logdir: Path, results: dict) -> None:
    """6. Usage sampling: server CPU and job list time, 8 running jobs against 8 queued.

    The baseline is a server with ``max_running=0``: the same 8 jobs in its list, none
    running, so none sampled. Both kinds of server are otherwise idle for the window,
    after the same settling time, and alternate over two rounds (medians of the rounds).
    """
    for i in range(8):
        (logdir / f"live{i}").mkdir(exist_ok=True)
    runs: dict[str, list[tuple[float, list[float]]]] = {"queued": [], "running": []}
    for round_ in range(2):
        for name, extra in (("queued", ("--ForgatherTB.max_running=0",)), ("running", ())):
            server = Jupyter(root, runtime / f"{name}{round_}", extension=True, extra=extra)
            try:
                jobs = [server.api("POST", "jobs", {"logdir": f"logs/live{i}"}) for i in range(8)]
                if name == "running":
                    for job in jobs:
                        url = f"{server.url}{job['url'].lstrip('/')}"
                        wait_http(url, headers=AUTH, timeout=120)
                time.sleep(5.0)  # start-up settles; the running jobs' first samples
                before, started = cpu_seconds(server.proc.pid), time.monotonic()
                time.sleep(USAGE_WINDOW_S)
                cpu = (cpu_seconds(server.proc.pid) - before) / (time.monotonic() - started)
                listing = []
                for _ in range(200):
                    tick = time.perf_counter()
                    server.api("GET", "jobs")
                    listing.append(time.perf_counter() - tick)
                runs[name].append((cpu, listing))
            finally:
                server.stop()
    results["usage_sampling"] = {
        name: {
            "server_cpu_percent": statistics.median(cpu for cpu, _ in taken) * 100,
            "job_list_ms": {
                k: v * 1000
                for k, v in summary([t for _, listing in taken for t in listing]).items()
            },
        }
        for name, taken in runs.items()
    }


def _forked(pid: int) -> bool:
    with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
        return b"jupyter_forgather_tb.forkserver" in cmdline.read()


def _launch_ours(server: Jupyter) -> tuple[float, dict]:
    auth = {"Authorization": f"token {TOKEN}"}
    started = time.monotonic()
    job = server.api("POST", "jobs", {"logdir": "logs", "force_new": True})
    ready = wait_http(f"http://127.0.0.1:{server.port}{job['url']}", headers=auth)
    return ready - started, server.api("GET", f"jobs/{job['id']}")


def _launch_peer(peer: Jupyter) -> float:
    auth = {"Authorization": f"token {TOKEN}"}
    started = time.monotonic()
    entry = peer.api("POST", "tensorboard_pro", {"logdir": "logs"}, prefix="api/")
    ready = wait_http(f"{peer.url}tensorboard_pro/{entry['name']}/", headers=auth)
    peer.api("DELETE", f"tensorboard_pro/{entry['name']}", prefix="api/")
    return ready - started


def launch_section(server: Jupyter, root: Path, work: Path, logdir: Path, args) -> dict:
    """Launch to first 200: bare CLI, ours warm and plain, and the peer, in rotating order."""
    plain = Jupyter(root, work / "runtime-plain", True, ("--ForgatherTB.fork_server=False",))
    peer = None
    if args.peer_python:
        peer = Jupyter(root, work / "runtime-peer", False, python=args.peer_python)
    # The first launch starts the fork server; later ones fork once it is ready.
    deadline = time.monotonic() + 120
    while True:
        _, job = _launch_ours(server)
        forked = _forked(job["pid"])
        if forked:
            with open(f"/proc/{job['pid']}/stat") as stat:
                fork_server = int(stat.read().rsplit(")", 1)[1].split()[1])
        server.api("DELETE", f"jobs/{job['id']}")
        if forked:
            break
        assert time.monotonic() < deadline, "the fork server never got ready"
        time.sleep(1)

    def bare():
        proc, _, seconds = bare_tensorboard(logdir, [])
        stop_group(proc)
        return seconds

    def ours(on):
        def launch():
            seconds, job = _launch_ours(on)
            assert _forked(job["pid"]) is (on is server)
            on.api("DELETE", f"jobs/{job['id']}")
            return seconds

        return launch

    kinds = {"bare_cli": bare, "ours_warm": ours(server), "ours_plain": ours(plain)}
    if peer is not None:
        kinds["peer_in_process"] = lambda: _launch_peer(peer)
    times = {name: [] for name in kinds}
    names = list(kinds)
    for round_ in range(args.rounds):
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
            times[name].append(kinds[name]())
    result = {name: summary(values) for name, values in times.items()}
    result["fork_server_rss_mib"] = rss_mib([fork_server])
    result["scalars_warm_vs_plain_ms"] = _warm_vs_plain_scalars(server, plain, args.requests)
    if peer is not None:
        result["peer_scalars_ms"] = _peer_scalars(server, peer, args.requests)
        peer.stop()
    else:
        print("peer: not measured (give --peer-python, a venv with jupyterlab-tensorboard-pro)")
    plain.stop()
    return result


def _wait_scalars(url: str, headers: dict, last_step: int = 1999) -> None:
    """Wait until the run's last point is served, so requests time a loaded run."""
    deadline = time.monotonic() + 60
    while True:
        request = urllib.request.Request(url, headers=headers)
        with urllib.request.urlopen(request, timeout=30) as response:
            points = json.loads(response.read())
        if points and points[-1][1] == last_step:
            return
        assert time.monotonic() < deadline, url
        time.sleep(0.1)


def _warm_vs_plain_scalars(server: Jupyter, plain: Jupyter, count: int) -> dict:
    """Scalars p50/p99 of a forked job against a plain one, both proxied, alternated."""
    auth = {"Authorization": f"token {TOKEN}"}
    path = "data/plugin/scalars/scalars?run=run&tag=loss"
    jobs = {"warm": _launch_ours(server)[1], "plain": _launch_ours(plain)[1]}
    on = {"warm": server, "plain": plain}
    times = {"warm": [], "plain": []}
    for name, job in jobs.items():
        _wait_scalars(f"{on[name].url.rstrip('/')}{job['url']}{path}", auth)
    for _ in range(2):
        for name, job in jobs.items():
            port = on[name].port
            times[name] += timed_gets("127.0.0.1", port, job["url"] + path, count // 2, auth)
    for name, job in jobs.items():
        on[name].api("DELETE", f"jobs/{job['id']}")
    return {name: {k: v * 1000 for k, v in summary(t).items()} for name, t in times.items()}


def _peer_scalars(server: Jupyter, peer: Jupyter, count: int) -> dict:
    """Scalars p50/p99 through our proxy (a warm job) against the in-process peer, alternated."""
    auth = {"Authorization": f"token {TOKEN}"}
    job = server.api("POST", "jobs", {"logdir": "logs", "force_new": True})
    wait_http(f"{server.url.rstrip('/')}{job['url']}", headers=auth)
    entry = peer.api("POST", "tensorboard_pro", {"logdir": "logs"}, prefix="api/")
    peer_prefix = f"/tensorboard_pro/{entry['name']}/"
    wait_http(f"{peer.url}tensorboard_pro/{entry['name']}/", headers=auth)
    path = "data/plugin/scalars/scalars?run=run&tag=loss"
    _wait_scalars(f"{server.url.rstrip('/')}{job['url']}{path}", auth)
    _wait_scalars(f"{peer.url}tensorboard_pro/{entry['name']}/{path}", auth)
    ours, theirs = [], []
    for _ in range(2):
        ours += timed_fresh_gets("127.0.0.1", server.port, job["url"] + path, count // 2, auth)
        theirs += timed_fresh_gets("127.0.0.1", peer.port, peer_prefix + path, count // 2, auth)
    server.api("DELETE", f"jobs/{job['id']}")
    return {
        "ours": {k: v * 1000 for k, v in summary(ours).items()},
        "peer": {k: v * 1000 for k, v in summary(theirs).items()},
    }


def print_ratios(r: dict) -> None:
    """The headline figures, as ratios against the baselines measured in this run."""
    print("\nheadline (medians; ratio = ours / baseline):")
    if "suspend" in r:
        from bench_suspend import print_suspend

        print_suspend(r["suspend"])
    if "usage_sampling" in r:
        u = r["usage_sampling"]
        run, base = u["running"], u["queued"]
        print(
            f"  usage sampling, 8 running jobs vs 8 queued: server CPU "
            f"{run['server_cpu_percent']:.2f} % vs {base['server_cpu_percent']:.2f} % of a core; "
            f"job list p50 {run['job_list_ms']['median']:.2f} vs "
            f"{base['job_list_ms']['median']:.2f} ms = "
            f"{run['job_list_ms']['median'] / base['job_list_ms']['median']:.2f}x"
        )
    if "launch_to_ready_s" in r:
        launch = r["launch_to_ready_s"]
        for name in ("ours_warm", "ours_plain", "peer_in_process"):
            if name in launch:
                print(
                    f"  launch to ready, {name}: {launch[name]['median']:.2f} s "
                    f"({launch[name]['min']:.2f}-{launch[name]['max']:.2f}) vs bare CLI "
                    f"{launch['bare_cli']['median']:.2f} s = "
                    f"{launch[name]['median'] / launch['bare_cli']['median']:.2f}x"
                )
        print(f"  fork server idle RSS: {launch['fork_server_rss_mib']:.0f} MiB")
        w = launch["scalars_warm_vs_plain_ms"]
        print(
            f"  scalars p50, forked job {w['warm']['median']:.1f} ms vs plain job "
            f"{w['plain']['median']:.1f} ms (p99 {w['warm']['p99']:.1f} vs {w['plain']['p99']:.1f})"
        )
        if "peer_scalars_ms" in launch:
            p = launch["peer_scalars_ms"]
            print(
                f"  scalars p50, ours (warm job, proxied) {p['ours']['median']:.1f} ms vs peer "
                f"{p['peer']['median']:.1f} ms (p99 {p['ours']['p99']:.1f} vs "
                f"{p['peer']['p99']:.1f})"
            )
        print(f"  reuse of a live job: {r['reuse_ms']['median']:.1f} ms")
    if "proxy_overhead" in r:
        overhead = dict(r["proxy_overhead"])
        status = overhead.pop("jupyter_api_status")
        for name, o in overhead.items():
            print(
                f"  {name}: proxied {o['proxied_ms']['median']:.2f} ms vs direct "
                f"{o['direct_ms']['median']:.2f} ms = {o['ratio_p50']:.2f}x (p99 "
                f"{o['proxied_ms']['p99']:.1f} vs {o['direct_ms']['p99']:.1f} ms); "
                f"socket job {o['socket_proxied_ms']['median']:.2f} ms = "
                f"{o['socket_ratio_p50']:.2f}x; server CPU "
                f"{o['server_cpu_ms_per_request']:.2f} ms/request"
            )
        print(
            f"  Jupyter's own /api/status: {status['ms']['median']:.2f} ms "
            f"(p99 {status['ms']['p99']:.1f}), server CPU "
            f"{status['server_cpu_ms_per_request']:.2f} ms/request"
        )
        for clients, t in r["throughput_scalars"].items():
            print(
                f"  throughput, {clients} clients: {t['ratio']:.2f}x direct "
                f"({t['proxied_rps']:.0f} req/s)"
            )
    if "server_start_s" in r:
        start, rss = r["server_start_s"], r["server_idle_rss_mib"]
        print(
            f"  server start: {start['with']['median']:.2f} s with vs "
            f"{start['without']['median']:.2f} s "
            f"without (+{(start['with']['median'] - start['without']['median']) * 1000:.0f} ms)"
        )
        print(f"  server idle RSS: +{rss['with']['median'] - rss['without']['median']:.1f} MiB")
    if "job_rss_mib" in r:
        job = r["job_rss_mib"]
        pss = r["job_pss_mib"]
        print(
            f"  job RSS: {job['ours']:.0f} MiB vs bare {job['bare_default']:.0f} MiB "
            f"(PSS {pss['ours']:.0f} vs {pss['bare_default']:.0f} MiB)"
        )
    if "job_list" in r:
        print(f"  job list of {r['job_list']['jobs']} jobs: {r['job_list']['ms']['median']:.1f} ms")
    import bench_glance

    bench_glance.print_ratios(r)
    import bench_export

    bench_export.print_ratios(r)
    if "page_load_ms" in r:
        import bench_pages

        bench_pages.print_page_loads(r)


if __name__ == "__main__":
    main()
