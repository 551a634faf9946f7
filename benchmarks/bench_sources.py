"""Remote source benchmarks (``make bench-sources``): requests and copy speed of the mirror.

Each scheme against its emulator on loopback (moto, the GCS emulator, Azurite, a
private sshd), so the figures are about our protocol, not a cloud's latency:

- requests per hour of an idle job (the mirror's adaptive schedule) against a naive
  poll that lists everything every reload interval (what TensorBoard's own cloud
  readers do; its reads of each file come on top, so the ratio is conservative);
- the initial mirror of ``--runs`` runs of ``--points`` scalars (the default, 200 x
  5,000, is the issue's full size: about 43 MB in 200 files; ``--runs 40 --points 1000``
  is a quick check): throughput against fsspec's own bulk ``get`` of the same tree, with
  fsspec's defaults (for SSH, sshfs with only the host, port, user, key and known_hosts);
- a live source: ``--appends`` appends of ``--append-points`` steps to one run while the
  mirror syncs every ``--sync-interval`` seconds as a job does; the time from each append
  to its last step being readable in the mirror (what TensorBoard reads), and the file
  bytes the syncs read against the bytes appended; with ``--quiet-spell S``, one more
  append after S seconds without any, when the schedule has backed off (up to
  ``MAX_IDLE_INTERVAL``), timed against that bound.

Writes a JSON summary to stdout (and each scheme's line to stderr as it ends);
``--schemes`` picks some.
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
from jupyter_forgather_tb.job.mirror import (  # noqa: E402
    MAX_IDLE_INTERVAL,
    Mirror,
    StatusFile,
    idle_wait,
    keep_syncing,
)

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


#: The private sshd's connection settings, for a plain sshfs as fsspec's baseline.
ssh_plain: dict = {}


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
        ssh_plain.update(conn)
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


def bench(scheme: str, store, options, work: Path) -> dict:
    conn, netloc, fs, base, _ = store
    runs = options.runs
    total = _fill(fs, base, runs, options.points)
    url = parse_source_url(f"{scheme}://{netloc}/runs")
    connection = parse_connection("bench", conn)

    source = open_source(url, connection)
    dest, scratch = work / f"{scheme}-mirror", work / f"{scheme}-scratch"
    dest.mkdir()
    scratch.mkdir()
    mirror = Mirror(source, str(dest), str(scratch), 10**12, 10**7)
    os.sync()  # the other copy's writeback must not slow this one
    start = time.perf_counter()
    mirror.sync()
    mirror_seconds = time.perf_counter() - start
    before = source.requests
    mirror.sync()
    per_idle_sync = source.requests - before

    bulk = _plain(url, connection)
    target = work / f"{scheme}-bulk"
    os.sync()  # the other copy's writeback must not slow this one
    start = time.perf_counter()
    # A list of files rather than recursive=True, which sshfs cannot do for folders.
    files = bulk.fs.find(bulk.root)
    prefix = len(bulk.root.rstrip("/")) + 1
    local = [str(target / name[prefix:]) for name in files]
    for path in local:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    bulk.fs.get(files, local)
    bulk_seconds = time.perf_counter() - start

    live = _live(mirror, fs, base, options, work / f"{scheme}-status.json")
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
        **live,
    }


def _plain(url, connection):
    """The source opened with fsspec's defaults: what a user's own ``fs.get`` would use."""
    if url.scheme != "ssh":
        return open_source(url, connection)
    import sshfs

    from jupyter_forgather_tb.common.remotefs import RemoteSource

    fs = sshfs.SSHFileSystem(
        "127.0.0.1",
        port=ssh_plain["port"],
        username=ssh_plain["username"],
        client_keys=ssh_plain["client_keys"],
        known_hosts=ssh_plain["known_hosts"],
        skip_instance_cache=True,
    )
    return RemoteSource(url, fs, "/" + url.path)


def _live(mirror: Mirror, fs, base: str, options, status_path: Path) -> dict:
    """Append to one run while the mirror syncs as a job's does: latency and bytes read."""
    if not options.appends:
        return {}
    key = event_key("runs/r0000")
    local = Path(mirror.dest) / "r0000" / Path(key).name
    keep_syncing(mirror, StatusFile(str(status_path), mirror.url), options.sync_interval)
    latencies, appended = [], 0
    before = mirror.source.bytes_read
    for round_ in range(options.appends):
        size = local.stat().st_size
        more = _append(fs, base, key, options.points + round_ * options.append_points, options)
        appended += len(more)
        latencies.append(_until_mirrored(local, size + len(more), more))
    read = mirror.source.bytes_read - before
    result = {
        "sync_interval_s": options.sync_interval,
        "append_bytes": len(more),
        "append_visible_s": [round(value, 2) for value in latencies],
        "append_visible_max_s": round(max(latencies), 2),
        "bytes_read_per_byte_appended": round(read / appended, 3),
    }
    if options.quiet_spell:
        time.sleep(options.quiet_spell)
        first = options.points + options.appends * options.append_points
        size = local.stat().st_size
        more = _append(fs, base, key, first, options)
        result["after_quiet_spell_s"] = options.quiet_spell
        result["after_quiet_visible_s"] = round(_until_mirrored(local, size + len(more), more), 2)
        result["after_quiet_bound_s"] = max(options.sync_interval, MAX_IDLE_INTERVAL)
    return result


def _append(fs, base: str, key: str, first: int, options) -> bytes:
    """Append ``--append-points`` steps from ``first`` to ``key`` as writers do."""
    values = [float(step) for step in range(first, first + options.append_points)]
    more = scalar_records("loss", values, start_step=first, header=False)
    # In place over SSH, a whole new object in a store.
    if fs is None:
        with open(Path(base) / key, "ab") as out:
            out.write(more)
    else:
        fs.pipe_file(f"{base}/{key}", fs.cat_file(f"{base}/{key}") + more)
    return more


def _until_mirrored(local: Path, size: int, more: bytes) -> float:
    """Seconds until the mirrored file is ``size`` bytes long and ends with ``more``."""
    start = time.perf_counter()
    while not _holds(local, size, more):
        time.sleep(0.01)
    return time.perf_counter() - start


def _holds(local: Path, size: int, tail: bytes) -> bool:
    with open(local, "rb") as mirrored:
        data = mirrored.read()
    return len(data) >= size and data[size - len(tail) : size] == tail


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Full size (the default) takes about a minute for SSH on 2 cores and several "
        "for GCS; --runs 40 --points 1000 --appends 2 is a quick check.",
    )
    parser.add_argument("--schemes", default="s3,gs,az,ssh", help="comma-separated")
    parser.add_argument("--runs", type=int, default=200, help="runs (one event file each)")
    parser.add_argument("--points", type=int, default=5000, help="scalar points per run")
    parser.add_argument("--appends", type=int, default=3, help="appends to time (0: none)")
    parser.add_argument("--append-points", type=int, default=100, help="steps per append")
    parser.add_argument(
        "--sync-interval", type=float, default=RELOAD_INTERVAL, help="the job's sync_interval"
    )
    parser.add_argument(
        "--quiet-spell",
        type=float,
        default=0.0,
        help="seconds without appends before one more timed append (0: none; 150 lets the "
        "schedule back off to its bound)",
    )
    args = parser.parse_args()
    schemes = args.schemes.split(",")
    work = Path(tempfile.mkdtemp(prefix="bench-sources-"))
    stores = _stores(schemes, work)
    results = {}
    try:
        for scheme, store in stores.items():
            results[scheme] = bench(scheme, store, args, work)
            print(scheme, json.dumps(results[scheme]), file=sys.stderr)
    finally:
        for store in stores.values():
            store[4]()
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
