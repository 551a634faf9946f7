"""A log directory on a file system that stops answering never holds up the server."""

from __future__ import annotations

import asyncio
import os
import threading
import time

from jupyter_forgather_tb.server.logdirs.dirchecks import CHECK_TIMEOUT, RECHECK_AFTER


async def until_exists_is(api, job_id, value):
    """Poll the job until its ``logdir_exists`` is ``value``; the job."""
    deadline = time.monotonic() + 30
    while (job := await api.job(job_id))["logdir_exists"] is not value:
        assert time.monotonic() < deadline, job
        await asyncio.sleep(0.1)
    return job


async def test_a_log_directory_whose_file_system_hangs_never_holds_up_the_job_list(
    api, logdir, monkeypatch
):
    job = await api.launch(logdir="logs")
    job = await api.wait_status(job["id"], "running")
    await until_exists_is(api, job["id"], True)
    # A fake, for a fault this machine cannot cause: a network file system (NFS, a FUSE
    # mount) whose server stopped answering, where stat() blocks for minutes. Here
    # os.path.isdir blocks on the job's log directory until the test releases it.
    release, blocked = threading.Event(), threading.Event()
    real_isdir = os.path.isdir

    def hung_isdir(path):
        if os.path.realpath(path) == os.path.realpath(logdir):
            blocked.set()
            release.wait()
        return real_isdir(path)

    monkeypatch.setattr(os.path, "isdir", hung_isdir)
    # Released after 30 s whatever happens: a server that blocks its event loop on the
    # check would otherwise hang the test run (and then fails below).
    safety = threading.Timer(30, release.set)
    safety.start()
    try:
        await asyncio.sleep(RECHECK_AFTER)  # so the next request checks again
        first = await api.job(job["id"])
        assert await asyncio.to_thread(blocked.wait, 10), "no check of the log directory began"
        assert first["logdir_exists"] is True  # the last answer, while the check hangs
        await asyncio.sleep(CHECK_TIMEOUT)
        listed = await api.json("GET", "jobs")
        assert not release.is_set(), "the server answered only once the file system did"
        (shown,) = [entry for entry in listed if entry["id"] == job["id"]]
        assert shown["logdir_exists"] is None  # unknown: the check has not answered in time
        assert shown["status"] == "running"
    finally:
        release.set()
        safety.cancel()
    await until_exists_is(api, job["id"], True)
    await api.kill(job["id"])
