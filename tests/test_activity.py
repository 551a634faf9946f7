"""Each job's activity: runs, event files and freshness, scanned only while someone asks."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime

import pytest
from conftest import write_scalars
from s3_helpers import event_key, scalar_records

from jupyter_forgather_tb.clients.activity import activity_text
from jupyter_forgather_tb.common.s3status import summarize_events
from jupyter_forgather_tb.server.jobs.activity import (
    RESCAN_AFTER,
    ActivitySettings,
    activity_json,
    mirror_scan,
)
from jupyter_forgather_tb.server.logdirs.find import EventScan


async def wait_activity(api, job_id, check, timeout=60.0):
    """Poll a job until its activity passes ``check``; the job."""
    deadline = time.monotonic() + timeout
    while True:
        job = await api.job(job_id)
        if job["activity"] is not None and check(job["activity"]):
            return job
        assert time.monotonic() < deadline, job["activity"]
        await asyncio.sleep(0.2)


def event_files(top):
    return [path for path in top.rglob("*") if "tfevents" in path.name]


def age_files(top, seconds):
    """Make every event file under ``top`` look last written ``seconds`` ago."""
    then = time.time() - seconds
    for path in event_files(top):
        os.utime(path, (then, then))


async def test_an_empty_folder_waits_then_goes_live_with_the_runs_written(api, jp_root_dir):
    top = jp_root_dir / "training"
    top.mkdir()
    job = await api.launch(logdir="training")
    assert job["activity"] is None  # not scanned yet: the scan runs beside the answer
    waiting = await wait_activity(api, job["id"], lambda a: True)
    assert waiting["activity"] == {
        "runs": 0,
        "event_files": 0,
        "event_bytes": 0,
        "last_write": None,
        "state": "waiting",
        "stalled": False,
    }

    write_scalars(top / "lr1", "loss", [1.0, 0.5])
    write_scalars(top / "lr2" / "eval", "loss", [2.0])
    write_scalars(top / "lr2" / "eval", "accuracy", [0.1])
    live = await wait_activity(api, job["id"], lambda a: a["state"] == "live")
    files = event_files(top)
    newest = max(path.stat().st_mtime for path in files)
    assert live["activity"] == {
        "runs": 2,
        "event_files": 3,
        "event_bytes": sum(path.stat().st_size for path in files),
        "last_write": datetime.fromtimestamp(newest, UTC).isoformat(),
        "state": "live",
        "stalled": False,
    }
    await api.kill(job["id"])


@pytest.mark.tb_config(live_window=1.0)
async def test_a_folder_nobody_writes_to_turns_idle_after_the_live_window(api, logdir):
    job = await api.launch(logdir="logs")
    idle = await wait_activity(api, job["id"], lambda a: a["state"] == "idle")
    assert idle["activity"]["runs"] == 2 and idle["activity"]["event_files"] == 2
    assert idle["activity"]["stalled"] is False  # stall_after is 10 minutes by default
    await api.kill(job["id"])


@pytest.mark.tb_config(stall_after=60.0)
async def test_a_running_job_without_new_events_for_stall_after_is_stalled(api, logdir):
    age_files(logdir, 30)
    job = await api.launch(logdir="logs")
    job = await api.wait_status(job["id"], "running")
    fresh = await wait_activity(api, job["id"], lambda a: True)
    assert fresh["activity"]["state"] == "live" and fresh["activity"]["stalled"] is False

    age_files(logdir, 3600)
    stalled = await wait_activity(api, job["id"], lambda a: a["stalled"])
    assert stalled["activity"]["state"] == "idle"

    write_scalars(logdir / "run3", "loss", [0.1])  # training writes again
    resumed = await wait_activity(api, job["id"], lambda a: not a["stalled"])
    assert resumed["activity"]["state"] == "live" and resumed["activity"]["runs"] == 3
    await api.kill(job["id"])


@pytest.mark.tb_config(stall_after=0.0)
async def test_stall_after_zero_never_marks_a_job_stalled(api, logdir):
    age_files(logdir, 10 * 24 * 3600)
    job = await api.launch(logdir="logs")
    await api.wait_status(job["id"], "running")
    idle = await wait_activity(api, job["id"], lambda a: a["state"] == "idle")
    assert idle["activity"]["stalled"] is False
    await api.kill(job["id"])


@pytest.mark.tb_config(max_running=0, stall_after=60.0)
async def test_a_job_that_is_not_running_is_never_stalled(api, logdir):
    age_files(logdir, 3600)
    job = await api.launch(logdir="logs")
    queued = await wait_activity(api, job["id"], lambda a: a["state"] == "idle")
    assert queued["status"] == "queued"
    assert queued["activity"]["stalled"] is False
    assert queued["activity"]["runs"] == 2  # a queued job's folder is watched too
    await api.kill(job["id"])


@pytest.mark.tb_config(max_running=0)
async def test_nobody_asking_means_no_scan_and_a_request_brings_a_fresh_one(api, logdir):
    job = await api.launch(logdir="logs")
    await wait_activity(api, job["id"], lambda a: a["runs"] == 2)
    manager = api.serverapp.web_app.settings["forgather_tb_manager"]
    record = manager.live(manager.get(job["id"]))  # where its last scan is kept
    scanned_at = record.events_at
    await asyncio.sleep(RESCAN_AFTER + 1.0)  # due again, but nobody asks
    assert record.events_at == scanned_at
    write_scalars(logdir / "run3", "loss", [0.1])
    await api.json("GET", "jobs", expect=200)  # the list asks too
    await wait_activity(api, job["id"], lambda a: a["runs"] == 3)
    assert record.events_at != scanned_at
    await api.kill(job["id"])


@pytest.mark.tb_config(max_running=0, logdir_scan_max_dirs=2)
async def test_a_scan_keeps_the_run_finders_limits(api, jp_root_dir):
    for name in ("a", "b", "c", "d"):
        write_scalars(jp_root_dir / "many" / name, "loss", [1.0])
    job = await api.launch(logdir="many")
    bounded = await wait_activity(api, job["id"], lambda a: a["state"] != "waiting")
    assert bounded["activity"]["runs"] == 1  # the top, then one run: two directories
    await api.kill(job["id"])


async def test_an_ended_job_keeps_its_last_activity(api, logdir):
    job = await api.launch(logdir="logs")
    await wait_activity(api, job["id"], lambda a: a["runs"] == 2)
    ended = await api.kill(job["id"])
    assert ended["activity"]["runs"] == 2 and ended["activity"]["stalled"] is False
    write_scalars(logdir / "run3", "loss", [0.1])
    await asyncio.sleep(RESCAN_AFTER + 0.5)
    assert (await api.job(job["id"]))["activity"]["runs"] == 2  # ended: not scanned again


async def test_an_s3_job_takes_its_activity_from_its_mirror(s3, api):
    s3.put(event_key("exp/run1"), scalar_records("loss", [1.0, 0.5]))
    s3.put(event_key("exp/run2/eval"), scalar_records("loss", [2.0]))
    s3.put("exp/run1/model.ckpt", b"x" * 1000)  # not an event file
    listed = s3.client.list_objects_v2(Bucket=s3.bucket, Prefix="exp/")["Contents"]
    events = [item for item in listed if "tfevents" in item["Key"]]
    job = await api.launch(logdir=f"s3://{s3.bucket}/exp", sync_interval=1.0)
    await api.wait_status(job["id"], "running")
    live = await wait_activity(api, job["id"], lambda a: a["runs"] == 2)
    assert live["activity"] == {
        "runs": 2,
        "event_files": 2,
        "event_bytes": sum(item["Size"] for item in events),
        "last_write": max(item["LastModified"] for item in events).isoformat(),
        "state": "live",
        "stalled": False,
    }
    await api.kill(job["id"])


@pytest.mark.tb_config(max_running=0)
async def test_a_gs_job_has_no_activity(api):
    job = await api.launch(logdir="gs://some-bucket/runs")
    await asyncio.sleep(0.5)
    assert (await api.job(job["id"]))["activity"] is None
    await api.kill(job["id"])


# -- the pure parts ---------------------------------------------------------------------

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def _job(state, seconds_ago=None, runs=3, stalled=False):
    last_write = (
        None if seconds_ago is None else datetime.fromtimestamp(NOW.timestamp() - seconds_ago, UTC)
    )
    return {
        "activity": {
            "runs": runs,
            "event_files": runs,
            "event_bytes": 100,
            "last_write": last_write.isoformat() if last_write else None,
            "state": state,
            "stalled": stalled,
        }
    }


@pytest.mark.parametrize(
    ("job", "text"),
    [
        ({"activity": None}, None),
        ({}, None),
        (_job("waiting", runs=0), "waiting for event files"),
        (_job("live", 12), "live, 3 runs, 12 s ago"),
        (_job("live", 90, runs=1), "live, 1 run, 1 min ago"),
        (_job("idle", 2 * 3600 + 5), "idle for 2 h, 3 runs"),
        (_job("idle", 3 * 86400), "idle for 3 d, 3 runs"),
        (_job("idle", 900, stalled=True), "idle for 15 min, 3 runs, stalled"),
    ],
)
def test_activity_in_words(job, text):
    assert activity_text(job, NOW) == text


def _scan(files=2, last_write=1000.0):
    return EventScan(runs=1, event_files=files, event_bytes=10, last_write=last_write)


SETTINGS = ActivitySettings(
    live_window=120.0, stall_after=600.0, scan_depth=4, scan_max_dirs=10, scan_max_entries=10
)


@pytest.mark.parametrize(
    ("scan", "now", "running", "state", "stalled"),
    [
        (_scan(files=0, last_write=None), 5000.0, True, "waiting", False),
        (_scan(), 1000.0 + 119.9, True, "live", False),
        (_scan(), 1000.0 + 120.0, True, "idle", False),
        (_scan(), 1000.0 + 599.9, True, "idle", False),
        (_scan(), 1000.0 + 600.0, True, "idle", True),
        (_scan(), 1000.0 + 600.0, False, "idle", False),
    ],
)
def test_state_and_stall_are_judged_when_asked(scan, now, running, state, stalled):
    shown = activity_json(scan, now, running, SETTINGS)
    assert (shown["state"], shown["stalled"]) == (state, stalled)


def test_stall_after_zero_turns_stalls_off():
    off = ActivitySettings(120.0, 0.0, 4, 10, 10)
    assert activity_json(_scan(), 1e9, True, off)["stalled"] is False


def test_the_mirrors_event_summary_is_read_leniently():
    written = summarize_events(
        [
            ("run1/events.out.tfevents.1", 10, datetime(2026, 1, 1, tzinfo=UTC)),
            ("run1/events.out.tfevents.2", 5, datetime(2026, 1, 2, tzinfo=UTC)),
            ("run2/eval/events.out.tfevents.3", 7, None),
            ("run2/plugins/profile/x.pb", 99, datetime(2027, 1, 1, tzinfo=UTC)),
        ]
    )
    assert written == {
        "runs": 2,
        "event_files": 3,
        "event_bytes": 22,
        "last_write": "2026-01-02T00:00:00+00:00",
    }
    scan = mirror_scan({"events": written})
    assert scan == EventScan(2, 3, 22, datetime(2026, 1, 2, tzinfo=UTC).timestamp())
    for status in (None, {}, {"events": None}, {"events": {"runs": -1}}, {"events": "x"}):
        assert mirror_scan(status) is None
    assert mirror_scan({"events": {**written, "last_write": "yesterday"}}) is None
