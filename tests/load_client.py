"""A load generator run as its own process, so it does not share the server's event loop.

Usage: python load_client.py SPEC_JSON  -> prints a JSON report on stdout.
SPEC: {"clients": 50, "requests": [[url, expected_length_or_null], ...],
       "headers": {...}, "seconds": 120}
Each client sends the whole request list in order; loopback only.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.simple_httpclient import SimpleAsyncHTTPClient


async def client(http, spec, latencies, errors, deadline):
    for url, expected_length in spec["requests"]:
        if time.monotonic() > deadline:
            errors.append("time budget exceeded")
            return
        started = time.monotonic()
        try:
            response = await http.fetch(
                HTTPRequest(url, headers=spec["headers"], request_timeout=60), raise_error=False
            )
        except Exception as error:  # a connection error is a result here, not a crash
            errors.append(f"{url}: {error!r}")
            continue
        latencies.append(time.monotonic() - started)
        if response.code != 200:
            errors.append(f"{url}: HTTP {response.code}")
        elif expected_length is not None and len(response.body) != expected_length:
            errors.append(f"{url}: {len(response.body)} bytes, expected {expected_length}")


async def main(spec):
    AsyncHTTPClient.configure(SimpleAsyncHTTPClient, max_clients=spec["clients"])
    http = AsyncHTTPClient()
    latencies, errors = [], []
    deadline = time.monotonic() + spec["seconds"]
    started = time.monotonic()
    await asyncio.gather(
        *(client(http, spec, latencies, errors, deadline) for _ in range(spec["clients"]))
    )
    elapsed = time.monotonic() - started
    latencies.sort()

    def pct(p):
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] if latencies else None

    return {
        "requests": len(latencies),
        "errors": errors[:20],
        "error_count": len(errors),
        "seconds": elapsed,
        "per_second": len(latencies) / elapsed if elapsed else 0,
        "p50": pct(0.50),
        "p99": pct(0.99),
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(json.loads(sys.argv[1])))))
