"""S3 benchmarks (``make bench-s3``): freshness and bytes of s3:// jobs and of the uploader.

Against moto's S3 server on loopback, so the figures are about our protocol
(requests, bytes, intervals), not S3's network latency:

- freshness: seconds from a scalar appended to an event file in S3 until the proxy
  serves it, for several ``sync_interval``; baseline: the same append to a local log
  directory served by the same kind of job (TensorBoard's own reload delay);
- bytes fetched per sync against the bytes appended;
- upload bytes against new bytes for an event file grown from 1 MiB to 50 MiB in
  steps; baseline: putting the whole file again each time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import harness
from harness import TOKEN

HERE = Path(__file__).resolve().parent
# The tests' moto server and event-record writer (tensorboard's own RecordWriter).
sys.path.insert(0, str(HERE.parent / "tests"))
from s3_helpers import (  # noqa: E402
    TEST_ENV,
    UNSET_ENV,
    boto3_client,
    new_bucket,
    scalar_records,
    start_moto,
)

MIB = 1024 * 1024
RELOAD_INTERVAL = 1.0


class Jupyter(harness.Jupyter):
    """``harness.py``'s Jupyter server with the extension, pointed at the S3 endpoint."""

    def __init__(self, root: Path, runtime: Path, endpoint: str):
        super().__init__(root, runtime, True, (f"--ForgatherTB.s3_endpoint_url={endpoint}",))

    def launch(self, **options) -> dict:
        job = self.api("POST", "jobs", {**options, "force_new": True})
        while job["status"] in ("queued", "starting"):
            time.sleep(0.05)
            job = self.api("GET", f"jobs/{job['id']}")
        if job["status"] != "running":
            raise RuntimeError(f"job did not run: {job}")
        return job

    def last_step(self, job: dict, run: str) -> int | None:
        query = urllib.parse.urlencode({"run": run, "tag": "loss"})
        url = f"{self.url}tb/{job['id']}/data/plugin/scalars/scalars?{query}"
        request = urllib.request.Request(url, headers={"Authorization": f"token {TOKEN}"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                points = json.loads(response.read())
        except OSError:
            return None
        return points[-1][1] if points else None


def wait_for_step(jupyter: Jupyter, job: dict, run: str, step: int, timeout=60.0) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if jupyter.last_step(job, run) == step:
            return time.monotonic()
        time.sleep(0.02)
    raise TimeoutError(f"step {step} not served")


def freshness(jupyter, client, bucket, root: Path, intervals, repeats) -> dict:
    """Seconds from an append until it is served: per sync interval, and for a local run."""
    results = {}
    local_file = root / "local" / "run" / "events.out.tfevents.1.bench"
    local_file.parent.mkdir(parents=True)
    local_file.write_bytes(scalar_records("loss", [0.0]))
    local_job = jupyter.launch(logdir="local", reload_interval=RELOAD_INTERVAL)
    wait_for_step(jupyter, local_job, "run", 0)
    samples = []
    for step in range(1, repeats + 1):
        time.sleep(0.37 * step % 1.0)  # spread the appends over the reload cycle
        with open(local_file, "ab") as out:
            out.write(scalar_records("loss", [float(step)], start_step=step, header=False))
        start = time.monotonic()
        samples.append(wait_for_step(jupyter, local_job, "run", step) - start)
    results["local"] = samples
    jupyter.api("DELETE", f"jobs/{local_job['id']}")

    for interval in intervals:
        key = f"fresh-{interval}/run/events.out.tfevents.1.bench"
        content = scalar_records("loss", [0.0])
        client.put_object(Bucket=bucket, Key=key, Body=content)
        job = jupyter.launch(
            logdir=f"s3://{bucket}/fresh-{interval}",
            sync_interval=interval,
            reload_interval=RELOAD_INTERVAL,
        )
        wait_for_step(jupyter, job, "run", 0)
        samples = []
        for step in range(1, repeats + 1):
            time.sleep(0.37 * step % interval)
            content += scalar_records("loss", [float(step)], start_step=step, header=False)
            client.put_object(Bucket=bucket, Key=key, Body=content)
            start = time.monotonic()
            samples.append(wait_for_step(jupyter, job, "run", step) - start)
        results[interval] = samples
        jupyter.api("DELETE", f"jobs/{job['id']}")
    return results


def fetched_per_sync(jupyter, client, bucket, base_mib: int, appends: int) -> list[tuple]:
    """``(new bytes, bytes fetched)`` for appends to a large event file in S3."""
    key = "grow/run/events.out.tfevents.1.bench"
    content = scalar_records("loss", [0.0])
    step = 1
    while len(content) < base_mib * MIB:
        batch = [float(i) for i in range(step, step + 5000)]
        content += scalar_records("loss", batch, start_step=step, header=False)
        step += len(batch)
    client.put_object(Bucket=bucket, Key=key, Body=content)
    job = jupyter.launch(logdir=f"s3://{bucket}/grow", sync_interval=0.5)
    rows = []
    for _ in range(appends):
        before = jupyter.api("GET", f"jobs/{job['id']}")["mirror"]
        new = scalar_records("loss", [float(i) for i in range(step, step + 100)], step, False)
        step += 100
        content += new
        client.put_object(Bucket=bucket, Key=key, Body=content)
        while True:
            mirror = jupyter.api("GET", f"jobs/{job['id']}")["mirror"]
            if mirror["bytes"] == len(content):
                break
            time.sleep(0.05)
        rows.append((len(new), mirror["bytes_fetched"] - before["bytes_fetched"]))
    jupyter.api("DELETE", f"jobs/{job['id']}")
    return rows


def upload_growth(endpoint: str, bucket, root: Path, sizes_mib) -> list[tuple]:
    """``(size, new bytes, bytes sent, bytes copied, seconds)`` per step of a growing file."""
    from jupyter_forgather_tb.clients.upload import Uploader

    local = root / "upload" / "run"
    local.mkdir(parents=True)
    path = local / "events.out.tfevents.1.bench"
    uploader = Uploader(str(root / "upload"), f"s3://{bucket}/up", endpoint_url=endpoint)
    rows = []
    size = 0
    for target in sizes_mib:
        with open(path, "ab") as out:
            out.write(os.urandom(target * MIB - size))
        new, size = target * MIB - size, target * MIB
        start = time.monotonic()
        stats = uploader.sync()
        rows.append((size, new, stats.bytes_sent, stats.bytes_copied, time.monotonic() - start))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=6, help="appends per sync interval")
    parser.add_argument("--intervals", default="1,2,5", help="sync intervals to measure")
    args = parser.parse_args()
    intervals = [float(x) for x in args.intervals.split(",")]
    for name in UNSET_ENV:
        os.environ.pop(name, None)
    os.environ.update(TEST_ENV)

    import tensorboard

    python = sys.version.split()[0]
    print(f"Python {python}, {os.cpu_count()} CPUs, tensorboard {tensorboard.__version__}")
    server, endpoint = start_moto()
    client = boto3_client(endpoint)
    bucket = new_bucket(client)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "root"
        root.mkdir()
        jupyter = Jupyter(root, Path(tmp) / "runtime", endpoint)
        try:
            fresh = freshness(jupyter, client, bucket, root, intervals, args.repeats)
            fetched = fetched_per_sync(jupyter, client, bucket, base_mib=8, appends=5)
        finally:
            jupyter.stop()
        uploads = upload_growth(endpoint, bucket, root, [1, 2, 5, 10, 20, 35, 50])
    server.stop()

    print(
        "\nFreshness: append in S3 -> served through /tb/<id>/ "
        f"(reload_interval {RELOAD_INTERVAL:g} s, {args.repeats} appends each, median [min-max])"
    )
    local = statistics.median(fresh["local"])
    spread = f"[{min(fresh['local']):.2f}-{max(fresh['local']):.2f}]"
    print(f"  local log directory (baseline): {local:.2f} s {spread}")
    for interval in intervals:
        samples = fresh[interval]
        median = statistics.median(samples)
        spread = f"[{min(samples):.2f}-{max(samples):.2f}]"
        print(
            f"  s3:// sync_interval {interval:g} s: {median:.2f} s {spread}"
            f"  = {median / interval:.2f} x sync_interval, +{median - local:.2f} s over local"
        )
    print(f"\nBytes fetched per sync, appends of {fetched[0][0]} B to an 8 MiB event file in S3")
    for new, got in fetched:
        print(
            f"  new {new} B, fetched {got} B: {got / new:.3f} x new, {got / (8 * MIB):.5f} x file"
        )
    print("\nUpload of an event file grown 1 MiB -> 50 MiB (sent = bytes over the network)")
    print("  size MiB  new MiB  sent MiB  copied in S3 MiB  seconds")
    for size, new, sent, copied, seconds in uploads:
        sizes = f"  {size / MIB:8.0f}  {new / MIB:7.0f}  {sent / MIB:8.2f}"
        print(f"{sizes}  {copied / MIB:16.0f}  {seconds:7.2f}")
    total_new = sum(row[1] for row in uploads)
    total_sent = sum(row[2] for row in uploads)
    naive = sum(row[0] for row in uploads)
    print(
        f"  total: sent {total_sent / MIB:.0f} MiB for {total_new / MIB:.0f} MiB new "
        f"({total_sent / total_new:.2f} x new); putting the whole file each time: "
        f"{naive / MIB:.0f} MiB ({naive / total_new:.2f} x new)"
    )


if __name__ == "__main__":
    main()
