"""Load through the proxy and the API: loopback only, bounded in count and time.

The Jupyter server runs inside the test process, so ``/proc/self`` is the server's fds and
memory. The load itself runs in a child process (this file run as a script) so that it
neither shares the server's event loop and GIL nor adds its own sockets and buffers to
what we measure. Unlike ``load_client.py`` (the benchmarks' generator, which checks
lengths), it compares every body's hash with TensorBoard's own answer, reports latency
per kind of request, and can run until told to stop. Figures are printed (``pytest -s``),
not asserted, except the one latency bound the hardening issue asks of a test.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import hashlib
import json
import logging
import os
import re
import signal
import sys
import time
from urllib.parse import quote

import pytest
from conftest import write_scalars
from jupyter_server_proxy.unixsock import UnixResolver
from tornado.httpclient import HTTPRequest
from tornado.simple_httpclient import SimpleAsyncHTTPClient

CLIENTS = 50
# Per client, in order: see test_fifty_clients_... for the mix.
REQUESTS_PER_CLIENT = 100
# Hard bound on any one load run; the client reports going over it as an error.
LOAD_SECONDS = 90


# ---------------------------------------------------------------------------
# The load generator (child process).


async def _client(http, spec, latencies, errors, stop):
    """One client: the request list in order (repeated until told to stop if ``repeat``).

    Each entry is ``[label, url, extra_headers, [length, sha256] or None]``. With
    ``interval``, the client paces itself to one request per interval (an open load
    that stays below capacity, so latency is not just the length of the server's queue).
    """
    deadline = time.monotonic() + spec["seconds"]
    interval = spec.get("interval")
    while True:
        for label, url, headers, expected in spec["requests"]:
            if stop.is_set():
                return
            if time.monotonic() > deadline:
                errors.append("time budget exceeded")
                return
            started = time.monotonic()
            request = HTTPRequest(
                url,
                headers={**spec["headers"], **headers},
                # The raw bytes, compressed or not, to compare with TensorBoard's own.
                decompress_response=False,
                request_timeout=60,
            )
            try:
                response = await http.fetch(request, raise_error=False)
            except Exception as error:  # a connection error is a result here
                errors.append(f"{label} {url}: {error!r}")
                continue
            elapsed = time.monotonic() - started
            latencies.setdefault(label, []).append(elapsed)
            body = response.body or b""
            if response.code != 200:
                errors.append(f"{label} {url}: HTTP {response.code} {body[:200]!r}")
            elif expected and [len(body), hashlib.sha256(body).hexdigest()] != expected:
                errors.append(f"{label} {url}: {len(body)} bytes, not the {expected[0]} expected")
            if interval:
                await asyncio.sleep(max(0.0, interval - elapsed))
        if not spec.get("repeat"):
            return


async def _load(spec):
    http = SimpleAsyncHTTPClient(force_instance=True, max_clients=spec["clients"])
    latencies, errors = {}, []
    stop = asyncio.Event()
    if spec.get("repeat"):
        # Repeat until the parent closes our stdin.
        stdin_closed = asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        stdin_closed.add_done_callback(lambda _: stop.set())

    async def staggered(index):
        if spec.get("interval"):
            await asyncio.sleep(spec["interval"] * index / spec["clients"])
        await _client(http, spec, latencies, errors, stop)

    started = time.monotonic()
    await asyncio.gather(*(staggered(i) for i in range(spec["clients"])))
    elapsed = time.monotonic() - started
    http.close()

    def summary(values):
        values = sorted(values)

        def at(p):
            return round(values[min(len(values) - 1, int(p * len(values)))] * 1000, 1)

        return {"count": len(values), "p50_ms": at(0.50), "p99_ms": at(0.99), "max_ms": at(1)}

    count = sum(len(values) for values in latencies.values())
    return {
        "requests": count,
        "seconds": round(elapsed, 2),
        "per_second": round(count / elapsed, 1),
        "all": summary([v for values in latencies.values() for v in values]) if count else None,
        **{label: summary(values) for label, values in sorted(latencies.items())},
        "error_count": len(errors),
        "errors": errors[:20],
    }


# ---------------------------------------------------------------------------
# The tests (server side).


async def start_load(spec: dict):
    """Start the load generator; ``finish_load`` collects its report."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        json.dumps(spec),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )


async def finish_load(proc, name: str) -> dict:
    """Tell a repeating load to stop (closing its stdin), then read its report."""
    out, _ = await proc.communicate()
    assert proc.returncode == 0, out
    report = json.loads(out)
    print(f"\n{name}: {json.dumps(report)}")
    return report


async def run_load(spec: dict, name: str) -> dict:
    return await finish_load(await start_load(spec), name)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def _malloc_trim():
    # Not glibc: nothing to call, and RSS then includes the allocator's free lists.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).malloc_trim(0)


async def settled_rss_and_fds() -> tuple[int, float]:
    """fds and RSS once in-flight work is done, garbage collected and free heap returned.

    malloc_trim gives glibc's free heap pages back to the system, so RSS is live memory
    rather than the high-water mark of the last burst of 6 MB bodies.
    """
    for _ in range(10):
        await asyncio.sleep(0.05)
    gc.collect()
    _malloc_trim()
    return open_fds(), rss_mib()


class PeakRss:
    """Samples RSS every 50 ms on the server's loop while a load runs."""

    def __init__(self):
        self.peak = rss_mib()
        self._task = asyncio.ensure_future(self._sample())

    async def _sample(self):
        while True:
            self.peak = max(self.peak, rss_mib())
            await asyncio.sleep(0.05)

    def stop(self) -> float:
        self._task.cancel()
        return self.peak


@pytest.fixture
def quiet_logs():
    """pytest keeps every captured log record, and the test server logs each request:
    thousands of records would look like a leak. Quiet them for the load, then restore."""
    names = ("ServerApp", "ForgatherTB", "tornado.access", "tornado.application")
    levels = {name: logging.getLogger(name).level for name in names}
    for name in names:
        logging.getLogger(name).setLevel(logging.WARNING)
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def socket_of(api, job_id) -> str:
    return api.serverapp.web_app.settings["forgather_tb_manager"].get(job_id).unix_socket


async def direct_fetch(socket_path: str, path: str, headers: dict) -> bytes:
    """Ask TensorBoard itself, on its socket, bypassing the proxy.

    ``path`` is the one the browser asks the proxy for; the proxy quotes it once more
    on the way (so ``%40`` in the base URL arrives as ``%2540``, matching TensorBoard's
    literal ``--path_prefix``), and so do we.
    """
    path = quote(path, safe=":/?#[]@!$&'()*+,;=-._~")  # as jupyter-server-proxy does
    http = SimpleAsyncHTTPClient(force_instance=True, resolver=UnixResolver(socket_path))
    try:
        response = await http.fetch(
            HTTPRequest(f"http://localhost{path}", headers=headers, decompress_response=False)
        )
        return response.body
    finally:
        http.close()


def fingerprint(body: bytes) -> list:
    return [len(body), hashlib.sha256(body).hexdigest()]


async def wait_for_data(api, job_id, run, last_step):
    """TensorBoard's loader reads event files after it starts serving: wait until it has
    read all of ``run`` so that its answers no longer change during the load. (It keeps
    a sample of 1,000 scalars per tag, always including the last.)"""
    deadline = time.monotonic() + 60
    while True:
        response = await api.proxied(job_id, f"data/plugin/scalars/scalars?run={run}&tag=loss")
        points = json.loads(response.body) if response.code == 200 else []
        if points and points[-1][1] == last_step:  # [wall_time, step, value]
            return
        assert time.monotonic() < deadline, (response.code, response.body[-200:])
        await asyncio.sleep(0.2)


GZIP = {"Accept-Encoding": "gzip"}
IDENTITY = {"Accept-Encoding": "identity"}


@pytest.mark.timeout(150)
async def test_fifty_clients_through_the_proxy_without_errors_or_leaks(api, logdir, quiet_logs):
    write_scalars(logdir / "big", "loss", [float(i) for i in range(2000)])
    job = await api.wait_status((await api.launch(logdir="logs"))["id"], "running")
    await wait_for_data(api, job["id"], "big", 1999)
    socket_path = socket_of(api, job["id"])

    # The large response: the script TensorBoard's own page loads (its ~6 MB bundle,
    # ~1.9 MB gzipped), fetched both ways a browser or a script might.
    page = await direct_fetch(socket_path, job["url"], {})
    script = re.search(rb'<script src="([^"]+)"', page).group(1).decode()
    small_paths = [
        "data/environment",
        "data/runs",
        "data/plugins_listing",
        "data/plugin/scalars/tags",
        "data/plugin/scalars/scalars?run=big&tag=loss",  # 1,000 points, ~35 KB of JSON
    ]
    entries = [("large", script, IDENTITY), ("large", script, GZIP)]
    entries += [("small", path, GZIP) for path in small_paths]
    expected = {}
    for _, path, headers in entries:
        expected[path, headers["Accept-Encoding"]] = fingerprint(
            await direct_fetch(socket_path, job["url"] + path, headers)
        )
    assert expected[script, "identity"][0] >= 1024 * 1024
    assert expected[script, "gzip"][0] >= 1024 * 1024

    server = f"http://127.0.0.1:{api.serverapp.port}"

    def request(entry):
        label, path, headers = entry
        fp = expected[path, headers["Accept-Encoding"]]
        return [label, f"{server}{job['url']}{path}", headers, fp]

    # Per client: the two large requests at 1/3 and 2/3 of the way, small ones around them.
    smalls = [request(entries[2 + i % len(small_paths)]) for i in range(REQUESTS_PER_CLIENT)]
    requests = smalls[: REQUESTS_PER_CLIENT - 2]
    requests.insert(REQUESTS_PER_CLIENT // 3, request(entries[0]))
    requests.insert(2 * REQUESTS_PER_CLIENT // 3, request(entries[1]))
    spec = {
        "clients": CLIENTS,
        "headers": {"Authorization": f"token {api.serverapp.identity_provider.token}"},
        "seconds": LOAD_SECONDS,
    }

    # A warm-up of the same shape (50 clients, both large bodies at once, 20 requests
    # each), so that the baseline includes what the server keeps once it has seen such a
    # load (imports, caches, Python's own arenas). Measured: after 10 requests per client
    # the first full round still added ~6 MiB; after 20, ~1.7 MiB; a second full round
    # then adds under 0.1 MiB, so the growth is one-time, not per request.
    warm_up = [request(entries[0]), *smalls[:9], request(entries[1]), *smalls[9:18]]
    report = await run_load({**spec, "requests": warm_up}, "warm-up")
    assert report["error_count"] == 0, report["errors"]
    fds_before, rss_before = await settled_rss_and_fds()

    peak = PeakRss()
    report = await run_load({**spec, "requests": requests}, "load")
    peak_rss = peak.stop()
    fds_after, rss_after = await settled_rss_and_fds()
    print(
        f"fds {fds_before} -> {fds_after}; RSS {rss_before:.1f} -> {rss_after:.1f} MiB "
        f"(peak during the load {peak_rss:.1f} MiB)"
    )

    assert report["error_count"] == 0, report["errors"]
    assert report["requests"] == CLIENTS * REQUESTS_PER_CLIENT
    # Tolerances: an fd or two for anything the server opens lazily; 16 MiB of RSS, about
    # ten times what we measure, is 3.3 KiB per request: an HTTP client, a socket or a
    # body kept per request (the leaks a proxy could have) would exceed it.
    assert fds_after <= fds_before + 2
    assert rss_after <= rss_before + 16


@pytest.mark.timeout(120)
async def test_api_stays_responsive_while_a_job_crashes_and_is_relaunched(api, logdir, quiet_logs):
    steady = await api.wait_status((await api.launch(logdir="logs/run1"))["id"], "running")
    crashing = await api.wait_status((await api.launch(logdir="logs/run2"))["id"], "running")
    server = f"http://127.0.0.1:{api.serverapp.port}"
    api_url = f"{server}{api.serverapp.base_url}forgather-tb/api/jobs"
    proxied_url = f"{server}{steady['url']}data/environment"
    # 50 concurrent clients, each pacing itself to 2 requests/s: 100/s in all, a little
    # over half of what this server did with these requests on 2 cores busy with other
    # work (~175/s). At 200/s offered it saturated, and the p99 (300-700 ms) was then the
    # length of its queue (50 clients / throughput), not the responsiveness this tests:
    # whether crashing and relaunching a job stalls the API.
    load = await start_load(
        {
            "clients": CLIENTS,
            "requests": [["api", api_url, {}, None], ["proxied", proxied_url, GZIP, None]],
            "headers": {"Authorization": f"token {api.serverapp.identity_provider.token}"},
            "seconds": LOAD_SECONDS,
            "interval": 0.5,
            "repeat": True,
        }
    )
    try:
        await asyncio.sleep(1)  # the load is under way before the first crash
        started = time.monotonic()
        crashes = 3
        for _ in range(crashes):  # crash, see it fail, relaunch, see it run
            os.kill(crashing["pid"], signal.SIGKILL)
            await api.wait_status(crashing["id"], "failed")
            crashing = await api.launch(logdir="logs/run2")
            crashing = await api.wait_status(crashing["id"], "running")
        # Warm (forked) relaunches take a fraction of a second: keep the load on long
        # enough that both kinds of request are measured.
        await asyncio.sleep(max(0.0, 3.0 - (time.monotonic() - started)))
    except BaseException:
        load.kill()  # do not leave it running against a server that is going away
        await load.wait()
        raise
    print(f"\n{crashes} crashes and relaunches in {time.monotonic() - started:.1f} s")
    load.stdin.close()
    report = await finish_load(load, "load during crashes")
    assert report["error_count"] == 0, report["errors"]
    assert report["api"]["count"] > 0 and report["proxied"]["count"] > 0
    # The one timing bound the hardening issue asks of a test, and a generous one: the
    # job list answers in a few milliseconds when idle (see docs/performance.md); 250 ms
    # at the 99th percentile only fails if something stalls the event loop (a blocking
    # call in crash handling or launch) or the proxy starves the API.
    assert report["api"]["p99_ms"] < 250


if __name__ == "__main__":
    print(json.dumps(asyncio.run(_load(json.loads(sys.argv[1])))))
