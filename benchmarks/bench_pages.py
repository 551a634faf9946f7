"""Page load in headless Chromium: opening a TensorBoard page until its first scalar chart is drawn.

``make bench``'s ``pages`` part (``bench.py --only pages``), or run alone:
``python benchmarks/bench_pages.py``. A job through Jupyter's ``/tb/<id>/`` (default
settings) against bare ``tensorboard --logdir X`` direct (default settings), on the same
log directory, alternated, medians: cold (a fresh browser context, so an empty cache)
and warm (a reload of that page).

When is a chart drawn? TensorBoard 2.21 draws its line charts with WebGL on an
OffscreenCanvas in a worker (``chart_worker.js``): no DOM change says when the lines are
on screen. The worker says it itself: after each repaint it posts ``ON_REDRAW_END`` on
the chart's message port. A script injected before TensorBoard's own notes, per port,
when the page posts series data with points, and the time (``performance.now()``, from
the start of the navigation) of the first repaint that follows. Where WebGL is missing,
TensorBoard draws SVG paths instead, and the first series path counts.

Where the browser runs. A user's browser runs on their own machine, not on the one that
serves Jupyter and TensorBoard. With two CPUs or more the benchmark keeps them apart, as
they are in use: the servers (Jupyter with its jobs, bare TensorBoard) on the first half
of the CPUs it may use, Chromium on the other half (``--same-cpus`` shares them all).
And a network lies between them: each target is loaded over loopback and over a
modelled link to a cloud machine (Chromium's DevTools network emulation: 50 Mbit/s down,
10 up, a 20 ms round trip).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import harness
from harness import AUTH, TOKEN, Jupyter, wait_http, write_logdir

CHROMIUM = os.environ.get("FORGATHER_TB_CHROMIUM") or shutil.which("chromium") or ""
# As in tests/test_lab_ui.py: headless as root, on a machine with no network to speak of.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Message types of TensorBoard 2.21's line chart worker protocol (its enums): from the
# page, SERIES_DATA_UPDATED; from the worker, ON_REDRAW_END.
_CHART_SIGNAL = """
(() => {
  const SERIES_DATA_UPDATED = 0, ON_REDRAW_END = 0;
  const fed = new WeakSet();
  window.__chartDrawn = null;
  window.__chartRenderer = null;
  const drawn = (renderer) => {
    if (window.__chartDrawn === null) {
      window.__chartDrawn = performance.now();
      window.__chartRenderer = renderer;
    }
  };
  const post = MessagePort.prototype.postMessage;
  MessagePort.prototype.postMessage = function (message, ...rest) {
    const series = message && message.type === SERIES_DATA_UPDATED && message.compactDataSeries;
    if (series && series.flattenedSeries && series.flattenedSeries.byteLength > 0) {
      fed.add(this);
    }
    return post.call(this, message, ...rest);
  };
  const onmessage = Object.getOwnPropertyDescriptor(MessagePort.prototype, "onmessage");
  Object.defineProperty(MessagePort.prototype, "onmessage", {
    get() {
      return onmessage.get.call(this);
    },
    set(handler) {
      const port = this;
      onmessage.set.call(this, handler && function (event) {
        if (fed.has(port) && event.data && event.data.type === ON_REDRAW_END) {
          drawn("webgl-worker");
        }
        return handler.call(this, event);
      });
    },
  });
  new MutationObserver(() => {
    if (document.querySelector("line-chart .series-view svg path[d]")) drawn("svg");
  }).observe(document, { subtree: true, childList: true, attributes: true });
})();
"""


def split_cpus() -> tuple[set[int], set[int]] | None:
    """The CPUs this process may use, split in two: the servers', the browser's."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    half = len(cpus) // 2
    return set(cpus[:half]), set(cpus[half:])


def _descendants(pid: int) -> list[int]:
    """``pid`` and every process below it, from ``/proc``."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                # The parent's pid is the second field after the command's closing ")".
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        found.append(todo.pop())
        todo += children.get(found[-1], [])
    return found


def pin_tree(pid: int, cpus: set[int]) -> None:
    """Keep ``pid``, its threads and its descendants (and theirs to come) on ``cpus``.

    ``sched_setaffinity`` acts on one thread, so every thread of every process is set;
    a process forked later inherits its parent's CPUs.
    """
    for process in _descendants(pid):
        try:
            tasks = [int(t.name) for t in Path(f"/proc/{process}/task").iterdir()]
        except OSError:
            continue
        for task in tasks:
            with contextlib.suppress(OSError):  # the thread has ended
                os.sched_setaffinity(task, cpus)


def _login_state(browser, url: str) -> dict:
    """Cookies of a browser logged in to Jupyter (as a user who opened Lab), for new contexts."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{url}api/status?token={TOKEN}")
    state = context.storage_state()
    context.close()
    return state


# Milestones of a load, in ms from the start of its navigation: the page's scripts have
# run (DOMContentLoaded), its chart data has arrived (the time series answer), the chart
# is drawn; the time between the first two (the page waits on the server's answers: the
# part a proxy or a busy server shows in); the bytes it fetched (0 for what came from the
# cache, headers only for a 304).
_MILESTONES = """() => {
  const navigation = performance.getEntriesByType("navigation")[0];
  const resources = performance.getEntriesByType("resource");
  const series = resources.filter((e) => e.name.endsWith("/timeseries/timeSeries"));
  const data = series.length ? series[0].responseEnd : null;
  return {
    scripts_run: navigation.domContentLoadedEventEnd,
    data,
    data_wait: data === null ? null : data - navigation.domContentLoadedEventEnd,
    drawn: window.__chartDrawn,
    renderer: window.__chartRenderer,
    bytes: [navigation, ...resources].reduce((sum, e) => sum + e.transferSize, 0),
  };
}"""


def _drawn(page, timeout_ms: float) -> dict:
    page.wait_for_function("window.__chartDrawn !== null", timeout=timeout_ms)
    return page.evaluate(_MILESTONES)


@dataclass(frozen=True)
class Link:
    """A network between the browser and the servers, as Chromium's DevTools model it."""

    name: str
    mbit_down: float = 0  # 0: loopback, unthrottled
    mbit_up: float = 0
    rtt_ms: float = 0

    def apply(self, context, page) -> None:
        if not self.mbit_down:
            return
        session = context.new_cdp_session(page)
        session.send("Network.enable")
        session.send(
            "Network.emulateNetworkConditions",
            {
                "offline": False,
                "latency": self.rtt_ms,
                "downloadThroughput": self.mbit_down * 1e6 / 8,
                "uploadThroughput": self.mbit_up * 1e6 / 8,
            },
        )


LOOPBACK = Link("loopback")
# A cloud machine seen from an office or home connection.
REMOTE = Link("remote (50/10 Mbit/s, 20 ms)", mbit_down=50, mbit_up=10, rtt_ms=20)


def load_twice(
    browser, url: str, state: dict | None, link: Link = LOOPBACK, timeout_ms: float = 60_000
) -> dict:
    """One cold load of ``url`` in a fresh context, then a reload: the milestones of each."""
    context = browser.new_context(storage_state=state, viewport={"width": 1280, "height": 800})
    try:
        context.add_init_script(_CHART_SIGNAL)
        page = context.new_page()
        link.apply(context, page)
        statuses: list[tuple[int, str]] = []
        page.on("response", lambda r: statuses.append((r.status, r.url)))
        page.goto(url)
        cold = _drawn(page, timeout_ms)
        page.reload()
        warm = _drawn(page, timeout_ms)
    finally:
        context.close()
    failed = [(status, where) for status, where in statuses if status >= 400]
    return {"cold": cold, "warm": warm, "failed": failed}


MILESTONES = ("drawn", "scripts_run", "data", "data_wait", "bytes")


def page_loads(
    servers: dict[str, Jupyter],
    logdir: Path,
    rounds: int,
    results: dict,
    same_cpus: bool = False,
    links: tuple[Link, ...] = (LOOPBACK, REMOTE),
) -> None:
    """Jobs through ``/tb/<id>/`` (one per server) against bare TensorBoard direct.

    ``servers`` names the Jupyter servers to measure (``ours``: default settings);
    ``logdir`` is absolute, inside their root. The targets are loaded in turn over each
    of ``links``, in an order rotated every round. Unless ``same_cpus``, the servers
    and the browser run on CPUs of their own (:func:`split_cpus`).
    """
    from playwright.sync_api import sync_playwright

    split = None if same_cpus else split_cpus()
    mine = os.sched_getaffinity(0)
    if split:
        for server in servers.values():
            pin_tree(server.proc.pid, split[0])

    jobs, urls = {}, {}
    for name, server in servers.items():
        # A new job with the default settings, whatever jobs an earlier part left running.
        jobs[name] = server.api("POST", "jobs", {"logdir": str(logdir), "force_new": True})
        urls[name] = f"http://127.0.0.1:{server.port}{jobs[name]['url']}"
        wait_http(urls[name], headers=AUTH)
    bare, port, _ = harness.bare_tensorboard(logdir, [])
    if split:
        pin_tree(bare.pid, split[0])
        os.sched_setaffinity(0, split[1])  # for the browser, which this process starts
    urls["bare"] = f"http://localhost:{port}/"
    loads: dict[Link, dict[str, list[dict]]] = {link: {name: [] for name in urls} for link in links}
    failed = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                logins = {name: _login_state(browser, s.url) for name, s in servers.items()}
                names = list(urls)
                # Each once, unmeasured: the data is loaded and each server has served once.
                for name in names:
                    load_twice(browser, urls[name], logins.get(name))
                for round_ in range(rounds):
                    for link in links:
                        turn = round_ % len(names)
                        for name in names[turn:] + names[:turn]:
                            loaded = load_twice(browser, urls[name], logins.get(name), link)
                            loads[link][name].append(loaded)
                            failed += [(link.name, name, *f) for f in loaded["failed"]]
            finally:
                browser.close()
    finally:
        os.sched_setaffinity(0, mine)
        harness.stop_group(bare)
        for name, server in servers.items():
            server.api("DELETE", f"jobs/{jobs[name]['id']}")
            if split:
                pin_tree(server.proc.pid, mine)
    results["page_load_ms"] = {
        "cpus": (
            {"servers": sorted(split[0]), "browser": sorted(split[1])}
            if split
            else {"shared": sorted(mine)}
        ),
        "links": {link.name: _link_figures(loads[link]) for link in links},
        "renderer": sorted(
            {
                load[kind]["renderer"]
                for by_name in loads.values()
                for done in by_name.values()
                for load in done
                for kind in ("cold", "warm")
            }
        ),
        "failed_responses": failed,
    }


def _link_figures(loads: dict[str, list[dict]]) -> dict:
    """Summaries of each target's loads over one link, and their paired ratios."""
    return {
        "loads": {
            name: {
                kind: {m: harness.summary([load[kind][m] for load in done]) for m in MILESTONES}
                for kind in ("cold", "warm")
            }
            for name, done in loads.items()
        },
        # Ratios paired within a round (against bare) or a load (warm against cold), so
        # that slow drifts in the machine's other work cancel out: median and quartiles.
        "paired_ratios": {
            name: {
                "cold_vs_bare": _paired(done, loads["bare"], "cold"),
                "warm_vs_bare": _paired(done, loads["bare"], "warm"),
                "cold_data_wait_vs_bare": _paired(done, loads["bare"], "cold", "data_wait"),
                "warm_data_wait_vs_bare": _paired(done, loads["bare"], "warm", "data_wait"),
                "warm_vs_cold": _quartiles(
                    [load["warm"]["drawn"] / load["cold"]["drawn"] for load in done]
                ),
            }
            for name, done in loads.items()
        },
    }


def _quartiles(values: list[float]) -> dict:
    """Median and quartiles, and a 95 % bootstrap interval of the median."""
    q1, median, q3 = statistics.quantiles(values, n=4) if len(values) > 1 else values * 3
    draw = random.Random(0)  # the same interval for the same loads
    medians = sorted(
        statistics.median(draw.choices(values, k=len(values))) for _ in range(_RESAMPLES)
    )
    low, high = medians[int(0.025 * _RESAMPLES)], medians[int(0.975 * _RESAMPLES) - 1]
    return {"median": median, "q1": q1, "q3": q3, "ci95": [low, high]}


_RESAMPLES = 2000


def _paired(loads: list[dict], baseline: list[dict], kind: str, milestone: str = "drawn") -> dict:
    return _quartiles(
        [
            load[kind][milestone] / base[kind][milestone]
            for load, base in zip(loads, baseline, strict=True)
        ]
    )


def _ratio(q: dict) -> str:
    low, high = q["ci95"]
    return (
        f"{q['median']:.2f}x (95% CI of the median {low:.2f}-{high:.2f}; "
        f"IQR {q['q1']:.2f}-{q['q3']:.2f})"
    )


def print_page_loads(r: dict) -> None:
    """The page-load figures, as ratios against bare TensorBoard measured in the same run."""
    p = r["page_load_ms"]
    cpus = p["cpus"]
    where = (
        f"servers on CPUs {cpus['servers']}, browser on {cpus['browser']}"
        if "servers" in cpus
        else f"servers and browser sharing CPUs {cpus['shared']}"
    )
    print(f"  page load to the first scalar chart drawn ({', '.join(p['renderer'])}; {where}):")
    for link, figures in p["links"].items():
        print(f"   over {link}:")
        for name, by_kind in figures["loads"].items():
            for kind in ("cold", "warm"):
                m = {k: v["median"] for k, v in by_kind[kind].items()}
                drawn = by_kind[kind]["drawn"]
                print(
                    f"    {name} {kind}: drawn {m['drawn']:.0f} ms ({drawn['min']:.0f}-"
                    f"{drawn['max']:.0f}); scripts run {m['scripts_run']:.0f} ms, chart data "
                    f"{m['data']:.0f} ms (waited {m['data_wait']:.0f} ms for it); "
                    f"{m['bytes'] / 1024:.0f} KiB fetched"
                )
        for name, ratio in figures["paired_ratios"].items():
            against = (
                ""
                if name == "bare"
                else f"cold {_ratio(ratio['cold_vs_bare'])} bare, warm "
                f"{_ratio(ratio['warm_vs_bare'])} bare (waiting for data "
                f"{ratio['cold_data_wait_vs_bare']['median']:.2f}x, "
                f"{ratio['warm_data_wait_vs_bare']['median']:.2f}x); "
            )
            warm_cold = _ratio(ratio["warm_vs_cold"])
            print(f"    {name} (paired ratios): {against}warm / cold {warm_cold}")
    if p["failed_responses"]:
        print(f"    failed responses: {p['failed_responses']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10, help="alternated loads of each")
    parser.add_argument("--points", type=int, default=2000, help="scalar points in the run")
    parser.add_argument(
        "--also-nice",
        type=int,
        metavar="N",
        help="also measure a second Jupyter server whose jobs run at niceness N (cpu_nice)",
    )
    parser.add_argument(
        "--same-cpus",
        action="store_true",
        help="run the browser on the servers' CPUs (by default each has CPUs of its own)",
    )
    parser.add_argument(
        "--loopback-only",
        action="store_true",
        help=f"measure over loopback only, not also over a modelled {REMOTE.name} link",
    )
    args = parser.parse_args()
    if not CHROMIUM:
        sys.exit("no chromium found (apt-get install chromium, or set FORGATHER_TB_CHROMIUM)")
    work = Path(tempfile.mkdtemp(prefix="forgather-bench-pages-"))
    root = work / "root"
    logdir = root / "logs"
    write_logdir(logdir, args.points)
    results: dict = {}
    servers: dict[str, Jupyter] = {}
    try:
        servers["ours"] = Jupyter(root, work / "runtime", extension=True)
        if args.also_nice is not None:
            nice = f"--ForgatherTB.cpu_nice={args.also_nice}"
            servers[f"ours_nice{args.also_nice}"] = Jupyter(
                root, work / "runtime2", extension=True, extra=(nice,)
            )
        started = time.monotonic()
        links = (LOOPBACK,) if args.loopback_only else (LOOPBACK, REMOTE)
        page_loads(servers, logdir, args.rounds, results, args.same_cpus, links)
        print(f"measured in {time.monotonic() - started:.0f} s")
    finally:
        for server in servers.values():
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
    print_page_loads(results)


if __name__ == "__main__":
    main()
