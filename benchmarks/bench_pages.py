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
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import bench
from bench import AUTH, TOKEN, Jupyter, wait_http, write_logdir

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
# is drawn; and the bytes it fetched (0 for what came from the cache; headers only for 304).
_MILESTONES = """() => {
  const navigation = performance.getEntriesByType("navigation")[0];
  const resources = performance.getEntriesByType("resource");
  const series = resources.filter((e) => e.name.endsWith("/timeseries/timeSeries"));
  return {
    scripts_run: navigation.domContentLoadedEventEnd,
    data: series.length ? series[0].responseEnd : null,
    drawn: window.__chartDrawn,
    renderer: window.__chartRenderer,
    bytes: [navigation, ...resources].reduce((sum, e) => sum + e.transferSize, 0),
  };
}"""


def _drawn(page, timeout_ms: float) -> dict:
    page.wait_for_function("window.__chartDrawn !== null", timeout=timeout_ms)
    return page.evaluate(_MILESTONES)


def load_twice(browser, url: str, state: dict | None, timeout_ms: float = 60_000) -> dict:
    """One cold load of ``url`` in a fresh context, then a reload: the milestones of each."""
    context = browser.new_context(storage_state=state, viewport={"width": 1280, "height": 800})
    try:
        context.add_init_script(_CHART_SIGNAL)
        page = context.new_page()
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


def page_loads(server: Jupyter, logdir: Path, rounds: int, results: dict) -> None:
    """Our job through ``/tb/<id>/`` against bare TensorBoard direct, alternated.

    ``logdir`` is absolute, inside the server's root.
    """
    from playwright.sync_api import sync_playwright

    # A new job with the default settings, whatever jobs an earlier part left running.
    job = server.api("POST", "jobs", {"logdir": str(logdir), "force_new": True})
    ours_url = f"http://127.0.0.1:{server.port}{job['url']}"
    wait_http(ours_url, headers=AUTH)
    bare, port, _ = bench.bare_tensorboard(logdir, [])
    bare_url = f"http://localhost:{port}/"
    samples: dict[str, dict[str, list[dict]]] = {
        name: {"cold": [], "warm": []} for name in ("ours", "bare")
    }
    renderers, failed = set(), []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                state = _login_state(browser, server.url)
                targets = {"ours": (ours_url, state), "bare": (bare_url, None)}
                # Both once, unmeasured: the data is loaded and each server has served once.
                for url, login in targets.values():
                    load_twice(browser, url, login)
                for round_ in range(rounds):
                    order = ("ours", "bare") if round_ % 2 == 0 else ("bare", "ours")
                    for name in order:
                        loaded = load_twice(browser, *targets[name])
                        for kind in ("cold", "warm"):
                            samples[name][kind].append(loaded[kind])
                            renderers.add(loaded[kind]["renderer"])
                        failed += [(name, *f) for f in loaded["failed"]]
            finally:
                browser.close()
    finally:
        bench.stop_group(bare)
        server.api("DELETE", f"jobs/{job['id']}")
    results["page_load_ms"] = {
        name: {
            kind: {
                milestone: bench.summary([load[milestone] for load in loads])
                for milestone in ("drawn", "scripts_run", "data", "bytes")
            }
            for kind, loads in kinds.items()
        }
        for name, kinds in samples.items()
    }
    results["page_load_ms"]["renderer"] = sorted(renderers)
    results["page_load_ms"]["failed_responses"] = failed


def print_page_loads(r: dict) -> None:
    """The page-load figures, as ratios against bare TensorBoard measured in the same run."""
    p = r["page_load_ms"]
    ours, bare = p["ours"], p["bare"]
    print(f"  page load to the first scalar chart drawn ({', '.join(p['renderer'])}), medians:")
    for kind in ("cold", "warm"):
        o, b = ours[kind]["drawn"], bare[kind]["drawn"]
        print(
            f"    {kind}: through Jupyter {o['median']:.0f} ms ({o['min']:.0f}-{o['max']:.0f}) "
            f"vs bare direct {b['median']:.0f} ms ({b['min']:.0f}-{b['max']:.0f}) "
            f"= {o['median'] / b['median']:.2f}x"
        )
        for name in ("ours", "bare"):
            m = {k: v["median"] for k, v in p[name][kind].items()}
            print(
                f"      {name}: scripts run {m['scripts_run']:.0f} ms, chart data "
                f"{m['data']:.0f} ms, drawn {m['drawn']:.0f} ms; "
                f"{m['bytes'] / 1024:.0f} KiB fetched"
            )
    for name, label in (("ours", "through Jupyter"), ("bare", "bare direct")):
        ratio = p[name]["warm"]["drawn"]["median"] / p[name]["cold"]["drawn"]["median"]
        print(f"    warm / cold, {label}: {ratio:.2f}")
    if p["failed_responses"]:
        print(f"    failed responses: {p['failed_responses']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10, help="alternated loads of each")
    parser.add_argument("--points", type=int, default=2000, help="scalar points in the run")
    parser.add_argument(
        "--server-arg",
        action="append",
        default=[],
        help="an extra argument for the Jupyter server (repeatable), to measure a setting",
    )
    args = parser.parse_args()
    if not CHROMIUM:
        sys.exit("no chromium found (apt-get install chromium, or set FORGATHER_TB_CHROMIUM)")
    work = Path(tempfile.mkdtemp(prefix="forgather-bench-pages-"))
    root = work / "root"
    logdir = root / "logs"
    write_logdir(logdir, args.points)
    results: dict = {}
    try:
        server = Jupyter(root, work / "runtime", extension=True, extra=tuple(args.server_arg))
        try:
            started = time.monotonic()
            page_loads(server, logdir, args.rounds, results)
            print(f"measured in {time.monotonic() - started:.0f} s")
        finally:
            server.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print_page_loads(results)


if __name__ == "__main__":
    main()
