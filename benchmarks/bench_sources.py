"""Remote source benchmarks (``make bench-sources``): requests and copy speed of the mirror.

Each scheme against its emulator on loopback (moto, the GCS emulator, Azurite, a
private sshd), so the figures are about our protocol, not a cloud's latency:

- requests per hour of an idle job (the mirror's adaptive schedule) against a naive
  poll that lists everything every reload interval (what TensorBoard's own cloud
  readers do; its reads of each file come on top, so the ratio is conservative);
- the initial mirror of ``--runs`` runs of ``--points`` scalars: throughput against
  fsspec's own bulk ``get`` of the same tree.

Writes a JSON summary to stdout; ``--schemes`` picks some.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent))
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
import source_servers  # noqa: E402
from s3_helpers import TEST_ENV, event_key, scalar_records, start_moto  # noqa: E402

from jupyter_forgather_tb.common.connections import parse_connection  # noqa: E402
from jupyter_forgather_tb.common.remotefs import open_source  # noqa: E402
from jupyter_forgather_tb.common.sources import parse_source_url  # noqa: E402
from jupyter_forgather_tb.job.mirror import Mirror, idle_wait  # noqa: E402

HOUR = 3600.0
RELOAD_INTERVAL = 5.0  # TensorBoard's default --reload_interval, and our sync_interval


def idle_syncs_per_hour(interval: float) -> int:
    """How many syncs an unchanged source gets in its first hour on the adaptive schedule."""
    elapsed, unchanged, syncs = 0.0, 0, 0
    while elapsed < HOUR:
        elapsed += idle_wait(interval, unchanged)
        unchanged += 1
        syncs += 1
    return syncs


def _stores(schemes: list[str], work: Path):
    """``{scheme: (connection settings, URL netloc, writer filesystem, base, stop)}``."""
    made = {}
    if "s3" in schemes:
        import s3fs

        os.environ.update(TEST_ENV)
        server, endpoint = start_moto()
        fs = s3fs.S3FileSystem(endpoint_url=endpoint, skip_instance_cache=True)
        bucket = f"bench-{uuid.uuid4().hex[:8]}"
        fs.mkdir(bucket)
        conn = {"protocol": "s3", "endpoint_url": endpoint}
        made["s3"] = (conn, bucket, fs, bucket, server.stop)
    if "gs" in schemes:
        from gcsfs.core import GCSFileSystem

        server = source_servers.start_gcs(work)
        endpoint = server.extra["endpoint"]
        fs = GCSFileSystem(endpoint_url=endpoint, token="anon", skip_instance_cache=True)
        fs.mkdir("bench")
        made["gs"] = (
            {"protocol": "gs", "endpoint_url": endpoint},
            "bench",
            fs,
            "bench",
            server.stop,
        )
    if "az" in schemes and source_servers.azurite_available():
        import adlfs

        server = source_servers.start_azurite(work)
        string = server.extra["connection_string"]
        fs = adlfs.AzureBlobFileSystem(connection_string=string, skip_instance_cache=True)
        fs.mkdir("bench")
        conn = {"protocol": "az", "connection_string": string}
        made["az"] = (conn, "bench", fs, "bench", server.stop)
    if "ssh" in schemes and source_servers.sshd_available():
        ssh_dir = work / "sshd"
        ssh_dir.mkdir()
        server = source_servers.start_sshd(ssh_dir)
        conn = source_servers.ssh_connection(server)
        folder = work / "ssh-data"
        folder.mkdir()
        made["ssh"] = (conn, f"127.0.0.1{folder}", None, str(folder), server.stop)
    return made


def _fill(fs, base: str, runs: int, points: int) -> int:
    records = scalar_records("loss", [float(i) for i in range(points)])
    keys = [event_key(f"runs/r{i:04d}") for i in range(runs)]
    if fs is None:
        for key in keys:
            path = Path(base) / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(records)
    else:
        workers = 1 if type(fs).__name__ == "GCSFileSystem" else 8
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(lambda key: fs.pipe_file(f"{base}/{key}", records), keys))
    return runs * len(records)


def bench(scheme: str, store, runs: int, points: int, work: Path) -> dict:
    conn, netloc, fs, base, _ = store
    total = _fill(fs, base, runs, points)
    url = parse_source_url(f"{scheme}://{netloc}/runs")
    connection = parse_connection("bench", conn)

    source = open_source(url, connection)
    dest, scratch = work / f"{scheme}-mirror", work / f"{scheme}-scratch"
    dest.mkdir()
    scratch.mkdir()
    mirror = Mirror(source, str(dest), str(scratch), 10**12, 10**7)
    start = time.perf_counter()
    mirror.sync()
    mirror_seconds = time.perf_counter() - start
    before = source.requests
    mirror.sync()
    per_idle_sync = source.requests - before

    bulk = open_source(url, connection)
    target = work / f"{scheme}-bulk"
    start = time.perf_counter()
    # A list of files rather than recursive=True, which sshfs cannot do for folders.
    files = bulk.fs.find(bulk.root)
    prefix = len(bulk.root.rstrip("/")) + 1
    local = [str(target / name[prefix:]) for name in files]
    for path in local:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    bulk.fs.get(files, local)
    bulk_seconds = time.perf_counter() - start

    ours = idle_syncs_per_hour(RELOAD_INTERVAL) * per_idle_sync
    naive = int(HOUR / RELOAD_INTERVAL) * per_idle_sync
    return {
        "runs": runs,
        "bytes": total,
        "initial_mirror_mb_s": round(total / mirror_seconds / 1e6, 2),
        "fsspec_get_mb_s": round(total / bulk_seconds / 1e6, 2),
        "mirror_vs_get": round(bulk_seconds / mirror_seconds, 2),
        "requests_per_idle_sync": per_idle_sync,
        "idle_requests_per_hour": ours,
        "naive_poll_requests_per_hour": naive,
        "idle_vs_naive": round(ours / naive, 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schemes", default="s3,gs,az,ssh")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--points", type=int, default=5000)
    args = parser.parse_args()
    schemes = args.schemes.split(",")
    work = Path(tempfile.mkdtemp(prefix="bench-sources-"))
    stores = _stores(schemes, work)
    results = {}
    try:
        for scheme, store in stores.items():
            results[scheme] = bench(scheme, store, args.runs, args.points, work)
            print(scheme, json.dumps(results[scheme]), file=sys.stderr)
    finally:
        for store in stores.values():
            store[4]()
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
