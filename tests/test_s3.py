"""s3:// log directories: a real TensorBoard job on a mirror of a real S3 API (moto's server)."""

from __future__ import annotations

import asyncio
import json
import os
from concurrent.futures import ThreadPoolExecutor
from importlib import resources

import pytest
from s3_helpers import boto3_client, event_key, new_bucket, scalar_records, start_moto

from jupyter_forgather_tb.common.options import OptionError, parse_launch
from jupyter_forgather_tb.common.remotefs import SourceError, open_source
from jupyter_forgather_tb.common.s3status import read_status
from jupyter_forgather_tb.common.sources import parse_source_url
from jupyter_forgather_tb.common.tbfiles import EVENT_FILE_FOLDER, FOLDER_CLASH, paths_to_skip
from jupyter_forgather_tb.job.mirror import (
    MAX_SKIPPED_REPORTED,
    OVERLAP_BYTES,
    Mirror,
    StatusFile,
)


async def scalars(api, job_id, run, tag="loss"):
    response = await api.proxied(
        job_id, "data/plugin/scalars/scalars", params={"run": run, "tag": tag}
    )
    assert response.code == 200, response.body[:500]
    return [(step, value) for _, step, value in json.loads(response.body)]


async def wait_for(predicate, timeout=30.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not (result := await predicate()):
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.2)
    return result


# -- options --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("s3://my-bucket/runs/exp1/", "s3://my-bucket/runs/exp1"),
        ("S3://my-bucket", "s3://my-bucket"),
        ("gs://my_bucket/runs", "gs://my_bucket/runs"),
    ],
)
def test_bucket_urls_are_accepted_in_their_canonical_spelling(given, canonical):
    options, _ = parse_launch({"logdir": given})
    assert options.logdir == canonical
    assert options.sync_interval == 5.0  # every remote source is mirrored


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"logdir": "http://example.com/logs"}, "logdir", "other URLs"),
        ({"logdir": "file:///etc"}, "logdir", "other URLs"),
        ({"logdir": "s3://Bad_Bucket/x"}, "logdir", "not a valid S3 bucket name"),
        ({"logdir": "s3://bucket/a/../b"}, "logdir", "'..'"),
        ({"logdir": "s3://bucket/a?versionId=1"}, "logdir", "query"),
        ({"logdir": "logs", "sync_interval": 5}, "sync_interval", "only to remote"),
        ({"logdir": "s3://bucket/x", "sync_interval": 0.1}, "sync_interval", "from 0.5"),
        ({"logdir": "s3://bucket/x", "sync_interval": "5"}, "sync_interval", "number"),
        ({"logdir": "s3://bucket/x", "sync_interval": True}, "sync_interval", "number"),
    ],
)
def test_bad_bucket_urls_and_sync_intervals_are_refused(body, field, words):
    with pytest.raises(OptionError) as caught:
        parse_launch(body)
    assert caught.value.field == field
    assert words in caught.value.message


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"logdir": "ftp://host/logs"}, 400, "logdir"),
        ({"logdir": "logs", "sync_interval": 2}, 400, "sync_interval"),
        ({"logdir": "s3://bucket/x", "sync_interval": -1}, 400, "sync_interval"),
    ],
)
async def test_api_refuses_other_schemes_and_bad_sync_intervals(api, body, status, field):
    response = await api.call("POST", "jobs", body=body, expect=status)
    assert json.loads(response.body)["field"] == field


# -- a job on an s3:// log directory ------------------------------------------------------


async def test_s3_logdir_is_mirrored_and_served_through_the_proxy(s3, api, tmp_path):
    s3.put(event_key("exp/run1"), scalar_records("loss", [1.0, 0.5]))
    s3.put(event_key("exp/run2"), scalar_records("loss", [2.0]))
    s3.put("exp/run1/model.ckpt", b"x" * 1000)  # not mirrored
    s3.put("exp2/" + event_key("run9"), b"not under exp/")

    job = await api.launch(logdir=f"s3://{s3.bucket}/exp/")
    assert job["options"]["logdir"] == f"s3://{s3.bucket}/exp"
    assert job["options"]["sync_interval"] == 5.0
    assert job["label"] == "exp"
    job = await api.wait_status(job["id"], "running")
    assert await scalars(api, job["id"], "run1") == [(0, 1.0), (1, 0.5)]
    assert await scalars(api, job["id"], "run2") == [(0, 2.0)]

    mirror = job["mirror"]
    assert mirror["objects"] == 2
    assert mirror["bytes"] == mirror["bytes_fetched"] > 0
    assert mirror["last_sync"] and mirror["last_error"] is None and mirror["syncs"] >= 1
    assert job["logdir_exists"] is None
    cache = tmp_path / "cache" / job["id"]
    assert sorted(p.name for p in (cache / "data").rglob("*") if p.is_file()) == sorted(
        [os.path.basename(event_key("run1"))] * 2
    )
    assert oct((tmp_path / "cache").stat().st_mode & 0o777) == "0o700"

    ended = await api.kill(job["id"])
    assert ended["mirror"]["objects"] == 2  # the last status outlives the cache
    await wait_for(lambda: asyncio.sleep(0, not cache.exists()))  # removed in a worker thread


async def test_points_appended_in_s3_appear_after_the_next_sync_fetching_only_new_bytes(s3, api):
    key = event_key("run")
    first = scalar_records("loss", [float(i) for i in range(200)])
    s3.put(key, first)
    job = await api.launch(logdir=f"s3://{s3.bucket}", sync_interval=0.5, reload_interval=0.5)
    job = await api.wait_status(job["id"], "running")
    assert len(await scalars(api, job["id"], "run")) == 200
    before = (await api.job(job["id"]))["mirror"]["bytes_fetched"]
    assert before == len(first)

    more = scalar_records("loss", [-1.0, -2.0], start_step=200, header=False)
    s3.put(key, first + more)

    async def appended():
        points = await scalars(api, job["id"], "run")
        return points[-2:] == [(200, -1.0), (201, -2.0)]

    await wait_for(appended)
    mirror = (await api.job(job["id"]))["mirror"]
    # Only the new bytes (and the few re-read to check the old ones) were fetched again.
    assert mirror["bytes_fetched"] - before == len(more) + OVERLAP_BYTES
    assert mirror["bytes"] == len(first) + len(more)


async def test_missing_bucket_fails_the_job_with_a_clear_message(s3, api):
    job = await api.launch(logdir="s3://no-such-bucket-here/runs")
    job = await api.wait_status(job["id"], "failed")
    assert job["error"] == "S3 mirror: bucket 'no-such-bucket-here' does not exist"
    assert job["mirror"]["last_error"] == "bucket 'no-such-bucket-here' does not exist"


async def test_bad_credentials_fail_the_job_with_a_clear_message(s3, api, monkeypatch):
    from moto.core.authorization import enable_iam_authentication

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIANOTAREALKEY00000")
    with enable_iam_authentication():  # moto's server runs in this process
        job = await api.launch(logdir=f"s3://{s3.bucket}/runs")
        job = await api.wait_status(job["id"], "failed")
    assert job["error"] == "S3 mirror: the AWS access key is not valid for this endpoint"


async def test_a_user_without_permission_fails_the_job_with_access_denied(s3, api, monkeypatch):
    from moto.core.authorization import enable_iam_authentication

    iam = boto3_client(s3.endpoint, "iam")
    iam.create_user(UserName="no-rights")
    key = iam.create_access_key(UserName="no-rights")["AccessKey"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    with enable_iam_authentication():
        job = await api.launch(logdir=f"s3://{s3.bucket}/runs")
        job = await api.wait_status(job["id"], "failed")
    assert job["error"] == f"S3 mirror: access to s3://{s3.bucket}/runs is denied"


async def test_missing_credentials_fail_the_job_with_a_clear_message(s3, api, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    job = await api.launch(logdir=f"s3://{s3.bucket}/runs")
    job = await api.wait_status(job["id"], "failed")
    assert job["error"].startswith("S3 mirror: no AWS credentials found")


@pytest.mark.parametrize(
    "setting",
    [
        pytest.param(
            "mirror_cache_max_bytes", marks=pytest.mark.tb_config(mirror_cache_max_bytes=1000)
        ),
        # The setting's old name, still read.
        pytest.param("s3_cache_max_bytes", marks=pytest.mark.tb_config(s3_cache_max_bytes=1000)),
    ],
)
async def test_a_prefix_larger_than_the_cache_bound_fails_the_job(s3, api, setting):
    s3.put(event_key("run"), b"\0" * 1001)
    job = await api.launch(logdir=f"s3://{s3.bucket}")
    job = await api.wait_status(job["id"], "failed")
    assert "holds 1001 bytes" in job["error"] and "mirror_cache_max_bytes" in job["error"]


@pytest.mark.tb_config(mirror_cache_max_objects=3, keep_mirror_cache=True)
async def test_a_prefix_with_more_objects_than_the_cap_fails_the_job_having_fetched_nothing(
    s3, api, tmp_path
):
    for i in range(4):
        s3.put(event_key(f"run{i}"), b"")  # empty: nothing toward mirror_cache_max_bytes
    s3.put("run0/model.ckpt", b"")  # not TensorBoard's: does not count
    job = await api.launch(logdir=f"s3://{s3.bucket}")
    job = await api.wait_status(job["id"], "failed")
    assert job["error"] == (
        f"S3 mirror: s3://{s3.bucket} holds more TensorBoard files than the cache may hold "
        "(3 objects, c.ForgatherTB.mirror_cache_max_objects)"
    )
    assert job["mirror"]["objects"] == 0
    assert not list((tmp_path / "cache" / job["id"] / "data").iterdir())


@pytest.mark.tb_config(mirror_cache_max_objects=3)
async def test_objects_beyond_the_cap_are_never_mirrored_by_a_running_job(s3, api, tmp_path):
    s3.put(event_key("run"), scalar_records("loss", [1.0]))
    s3.put(event_key("empty1"), b"")
    s3.put(event_key("empty2"), b"")
    job = await api.launch(logdir=f"s3://{s3.bucket}", sync_interval=0.5)
    job = await api.wait_status(job["id"], "running")
    assert job["mirror"]["objects"] == 3  # at the cap is allowed
    for i in range(10):
        s3.put(event_key(f"more{i}"), b"")

    async def capped():
        mirror = (await api.job(job["id"]))["mirror"]
        return mirror["last_error"] and mirror

    mirror = await wait_for(capped)
    assert "mirror_cache_max_objects" in mirror["last_error"]
    assert mirror["objects"] == 3
    data = tmp_path / "cache" / job["id"] / "data"
    assert sorted(p.parent.name for p in data.rglob("*") if p.is_file()) == [
        "empty1",
        "empty2",
        "run",
    ]
    assert (await api.job(job["id"]))["status"] == "running"
    assert await scalars(api, job["id"], "run") == [(0, 1.0)]


async def test_a_file_and_a_folder_named_like_it_never_stop_the_mirror(s3, api):
    # Every sync failed on this pair ("File exists"); the folder, named like an event
    # file, also made TensorBoard's Python loader fail every request for the run list.
    event_file = "a/events.out.tfevents.1"
    inner = f"{event_file}/events.out.tfevents.2"
    s3.put(event_file, scalar_records("loss", [9.0]))
    s3.put(inner, scalar_records("loss", [3.0]))
    s3.put(f"{event_file}/x", b"not TensorBoard's: never mirrored")
    s3.put(event_key("b"), scalar_records("loss", [1.0, 2.0]))
    job = await api.launch(logdir=f"s3://{s3.bucket}", load_fast="false")
    job = await api.wait_status(job["id"], "running")
    assert await scalars(api, job["id"], "b") == [(0, 1.0), (1, 2.0)]
    assert await scalars(api, job["id"], "a") == [(0, 9.0)]
    runs = await api.proxied(job["id"], "data/runs")
    assert runs.code == 200 and sorted(json.loads(runs.body)) == ["a", "b"]
    mirror = job["mirror"]
    assert mirror["skipped"] == [{"key": inner, "reason": EVENT_FILE_FOLDER}]
    assert mirror["skipped_count"] == 1
    assert mirror["objects"] == 2 and mirror["last_error"] is None
    document = resources.files("jupyter_forgather_tb.server.web").joinpath("openapi.json")
    published = json.loads(document.read_text())["components"]["schemas"]["Job"]
    assert set(published["properties"]["mirror"]["required"]) == set(mirror)
    output = await api.json("GET", "jobs", job["id"], "output", expect=200)
    assert f"Not mirrored: 1 file(s), such as {inner!r}" in output["text"]


@pytest.mark.tb_config(keep_mirror_cache=True)
async def test_the_cache_is_kept_when_configured(s3, api, tmp_path):
    s3.put(event_key("run"), scalar_records("loss", [1.0]))
    job = await api.launch(logdir=f"s3://{s3.bucket}")
    await api.wait_status(job["id"], "running")
    await api.kill(job["id"])
    await asyncio.sleep(0.5)
    assert (tmp_path / "cache" / job["id"] / "data" / event_key("run")).is_file()


# -- the mirror itself, counting what crosses the wire --------------------------------------


class Wire:
    """Counts the S3 requests a source's s3fs client sends, by operation, and their ranges."""

    def __init__(self, source):
        self.calls: dict[str, int] = {}
        self.ranges: list[str] = []
        source.fs.connect()
        source.fs.s3.meta.events.register("before-send.s3.*", self._count)

    def _count(self, request, event_name, **_):
        operation = event_name.rsplit(".", 1)[-1]
        self.calls[operation] = self.calls.get(operation, 0) + 1
        if "Range" in request.headers:
            self.ranges.append(request.headers["Range"].decode())


@pytest.fixture
def mirror(s3, tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "partial").mkdir()
    source = open_source(parse_source_url(f"s3://{s3.bucket}/top"), None, s3.endpoint)
    return Mirror(
        source,
        str(tmp_path / "data"),
        str(tmp_path / "partial"),
        max_bytes=10**9,
        max_objects=10**6,
    )


def test_listing_follows_pagination_past_a_thousand_keys(s3, mirror, tmp_path):
    # S3 lists at most 1,000 keys a page: the event file, last in key order, is on page 2.
    keys = [f"top/run/model.ckpt-{i:04d}" for i in range(1000)] + [f"top/{event_key('z')}"]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda key: s3.put(key, b"e"), keys))
    mirror.sync()  # the first sync also checks the bucket and the prefix once
    wire = Wire(mirror.source)
    s3.put(f"top/{event_key('z')}", b"f")
    mirror.sync()
    assert wire.calls == {"ListObjectsV2": 2, "GetObject": 1}
    assert mirror.objects == 1
    assert (tmp_path / "data" / event_key("z")).read_bytes() == b"f"


def test_a_grown_object_is_fetched_with_a_range_and_a_rewritten_one_whole(s3, mirror, tmp_path):
    key = f"top/{event_key('run')}"
    local = tmp_path / "data" / event_key("run")
    s3.put(key, b"a" * 1000)
    mirror.sync()
    wire = Wire(mirror.source)

    s3.put(key, b"a" * 1000 + b"b" * 500)
    mirror.sync()
    assert wire.ranges == [f"bytes={1000 - OVERLAP_BYTES}-1499"]
    assert mirror.bytes_fetched == 1000 + 500 + OVERLAP_BYTES
    assert local.read_bytes() == b"a" * 1000 + b"b" * 500

    mirror.sync()  # nothing changed: a listing, no fetch
    assert wire.calls == {"ListObjectsV2": 2, "GetObject": 1}

    s3.put(key, b"c" * 2000)  # grown, but old bytes differ
    mirror.sync()
    assert local.read_bytes() == b"c" * 2000
    s3.put(key, b"d" * 10)  # shrank
    mirror.sync()
    assert local.read_bytes() == b"d" * 10
    s3.put(key, b"e" * 10)  # same size, new ETag
    mirror.sync()
    assert local.read_bytes() == b"e" * 10

    s3.client.delete_object(Bucket=s3.bucket, Key=key)
    mirror.sync()
    assert not local.exists() and mirror.objects == 0
    assert not list((tmp_path / "partial").iterdir())


def test_bytes_left_by_an_append_cut_short_are_dropped(s3, mirror, tmp_path):
    key = f"top/{event_key('run')}"
    local = tmp_path / "data" / event_key("run")
    s3.put(key, b"a" * 100)
    mirror.sync()
    with open(local, "ab") as out:
        out.write(b"half an append")  # as a sync killed mid-transfer leaves it
    s3.put(key, b"a" * 100 + b"b" * 50)
    mirror.sync()
    assert local.read_bytes() == b"a" * 100 + b"b" * 50


def test_one_object_failing_does_not_hold_back_the_others(s3, mirror, tmp_path):
    for run in ("a", "b", "c"):
        s3.put(f"top/{event_key(run)}", run.encode())
    (tmp_path / "data" / "b").write_text("a file where the run's directory should be")
    with pytest.raises(SourceError) as caught:
        mirror.sync()
    assert "could not be read or written" in caught.value.message
    assert not caught.value.fatal
    assert (tmp_path / "data" / event_key("a")).read_bytes() == b"a"
    assert (tmp_path / "data" / event_key("c")).read_bytes() == b"c"


def test_only_event_files_and_plugin_assets_are_mirrored(s3, mirror, tmp_path):
    for key in (
        event_key("run"),
        "run/plugins/projector/projector_config.pbtxt",
        "run/model.ckpt-100.data",
        "run/checkpoint",
        "run/../escape.tfevents",
        "run//x.tfevents",
        "run/" + "x" * 250 + ".tfevents",
    ):
        s3.put(f"top/{key}", b"x")
    mirror.sync()
    files = sorted(
        str(p.relative_to(tmp_path / "data")) for p in (tmp_path / "data").rglob("*") if p.is_file()
    )
    assert files == sorted([event_key("run"), "run/plugins/projector/projector_config.pbtxt"])


@pytest.mark.parametrize(
    ("paths", "skipped"),
    [
        (["a/b", "a/b/c"], {"a/b": FOLDER_CLASH}),
        (["a/b", "a/b-x", "a/b/c/d"], {"a/b": FOLDER_CLASH}),  # "a/b-x" sorts before "a/b/"
        (["a", "a/b", "a/b/c"], {"a": FOLDER_CLASH, "a/b": FOLDER_CLASH}),
        (["a/b", "a/bc", "ab/c"], {}),
        (
            ["r/x.tfevents", "r/x.tfevents/y.tfevents"],
            {"r/x.tfevents/y.tfevents": EVENT_FILE_FOLDER},
        ),
        (["r/a.tfevents.d/p/q.tfevents"], {"r/a.tfevents.d/p/q.tfevents": EVENT_FILE_FOLDER}),
        (["r/plugins/p", "r/plugins/p/config.pbtxt"], {"r/plugins/p": FOLDER_CLASH}),
        ([], {}),
        (iter(["a", "a/b"]), {"a": FOLDER_CLASH}),  # any iterable, read once
    ],
)
def test_paths_that_would_break_the_mirror_or_tensorboard_are_skipped(paths, skipped):
    assert paths_to_skip(paths) == skipped


def test_a_file_and_a_folder_of_the_same_name_take_turns_without_a_failed_sync(
    s3, mirror, tmp_path
):
    name = "run/plugins/p"
    local = tmp_path / "data" / name
    s3.put(f"top/{name}", b"file")
    mirror.sync()
    assert local.read_bytes() == b"file" and mirror.skipped == []

    s3.put(f"top/{name}/config.pbtxt", b"inner")
    mirror.sync()  # the folder's object wins; the file goes
    assert (local / "config.pbtxt").read_bytes() == b"inner"
    assert mirror.skipped == [{"key": f"top/{name}", "reason": FOLDER_CLASH}]
    assert mirror.objects == 1 and mirror.bytes == len(b"inner")

    s3.client.delete_object(Bucket=s3.bucket, Key=f"top/{name}/config.pbtxt")
    mirror.sync()  # the emptied folder goes; the file comes back
    assert local.read_bytes() == b"file" and mirror.skipped == []
    assert mirror.objects == 1


def test_the_status_lists_the_first_skipped_keys_and_counts_them_all(s3, mirror, tmp_path):
    count = MAX_SKIPPED_REPORTED + 5
    files = [f"top/r{i:02d}/events.out.tfevents.1" for i in range(count)]
    inner = [f"{key}/x.tfevents" for key in files]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda key: s3.put(key, b"f"), files + inner))
    mirror.sync()
    status = StatusFile(str(tmp_path / "status.json"), mirror.url)
    status.update(mirror)
    written = read_status(str(tmp_path / "status.json"))
    assert written["skipped"] == [
        {"key": key, "reason": EVENT_FILE_FOLDER} for key in inner[:MAX_SKIPPED_REPORTED]
    ]
    assert written["skipped_count"] == count
    assert written["objects"] == count and written["last_error"] is None


def test_more_files_than_the_object_cap_fail_the_sync_having_fetched_nothing(s3, tmp_path):
    keys = [f"top/{event_key(f'r{i:04d}')}" for i in range(1001)]  # two listing pages
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda key: s3.put(key, b""), keys))
    (tmp_path / "data").mkdir()
    (tmp_path / "partial").mkdir()
    url = f"s3://{s3.bucket}/top"
    source = open_source(parse_source_url(url), None, s3.endpoint)
    capped = Mirror(source, str(tmp_path / "data"), str(tmp_path / "partial"), 10**9, 3)
    wire = Wire(capped.source)
    with pytest.raises(SourceError) as caught:
        capped.sync()
    assert caught.value.fatal
    assert caught.value.message == (
        f"{url} holds more TensorBoard files than the cache may hold "
        "(3 objects, c.ForgatherTB.mirror_cache_max_objects)"
    )
    assert "GetObject" not in wire.calls
    assert capped.objects == 0 and not list((tmp_path / "data").iterdir())


@pytest.fixture
def own_s3(aws_env, tb_config, tmp_path):
    """An S3 server of this test's own, which it may stop and start again on the same port.

    moto keeps its buckets in this process, so a server started again serves the same data.
    """
    server, endpoint = start_moto()
    tb_config.update(s3_endpoint_url=endpoint, mirror_cache_dir=str(tmp_path / "cache"))
    client = boto3_client(endpoint)
    bucket = new_bucket(client)
    port = int(endpoint.rsplit(":", 1)[1])
    yield client, bucket, server, port
    server.stop()


async def test_a_lost_endpoint_is_retried_while_the_job_keeps_serving(own_s3, api):
    from moto.server import ThreadedMotoServer

    client, bucket, server, port = own_s3
    client.put_object(Bucket=bucket, Key=event_key("run"), Body=scalar_records("loss", [1.0]))
    job = await api.launch(logdir=f"s3://{bucket}", sync_interval=0.5)
    job = await api.wait_status(job["id"], "running")
    server.stop()

    async def failing():
        mirror = (await api.job(job["id"]))["mirror"]
        return mirror["last_error"] and mirror

    mirror = await wait_for(failing)
    assert mirror["last_error"].startswith("S3 request failed: Could not connect")
    assert (await api.job(job["id"]))["status"] == "running"
    assert await scalars(api, job["id"], "run") == [(0, 1.0)]  # still serves what it has

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        client.put_object(Bucket=bucket, Key=event_key("run2"), Body=scalar_records("loss", [5.0]))

        async def recovered():
            mirror = (await api.job(job["id"]))["mirror"]
            return mirror["last_error"] is None and mirror["objects"] == 2

        await wait_for(recovered, timeout=60)
    finally:
        server.stop()


async def test_the_cli_launches_an_s3_logdir_on_a_discovered_server(s3, api, jp_serverapp):
    from test_cli import clean_env, cli

    s3.put(event_key("runs/r"), scalar_records("loss", [4.0]))
    if not os.path.exists(jp_serverapp.info_file):
        jp_serverapp.write_server_info_file()
    env = clean_env(JUPYTER_RUNTIME_DIR=jp_serverapp.runtime_dir)
    url = f"s3://{s3.bucket}/runs"
    code, out, err = await cli("launch", url, "--sync_interval", "2", "--wait", env=env)
    assert code == 0, err
    assert out.strip().endswith("/")
    (job,) = await api.json("GET", "jobs")
    assert job["options"]["logdir"] == url  # not taken as a path below the current directory
    assert job["options"]["sync_interval"] == 2.0
    assert await scalars(api, job["id"], "r") == [(0, 4.0)]


# Long enough for the job (at nice 10) to import s3fs (1.5 s on an idle machine) and fail
# one sync, even on a busy machine.
@pytest.mark.tb_config(startup_timeout=30.0)
async def test_an_unreachable_endpoint_at_start_says_why_the_job_timed_out(dead_endpoint, api):
    job = await api.launch(logdir="s3://some-bucket/runs")
    job = await api.wait_status(job["id"], "failed")
    assert job["error"].startswith(
        "TensorBoard did not answer within 30 s (the S3 mirror's initial sync failed: "
        "S3 request failed: Could not connect to the endpoint URL"
    )
