"""Scale to zero: idle jobs are suspended (no process, socket or cgroup) and wake on a request."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import urllib.request

import pytest
from conftest import (
    JupyterServerProcess,
    cookie_session,
    free_port,
    group_pids,
    raw_request,
    write_scalars,
)
from orphans import record_for
from s3_helpers import event_key, scalar_records
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from jupyter_forgather_tb.common.options import LaunchOptions
from jupyter_forgather_tb.server.host.procfs import process_identity
from jupyter_forgather_tb.server.jobs.job import new_job_id
from jupyter_forgather_tb.server.jobs.state import save_state

SCALARS = "data/plugin/scalars/scalars"
FAILED_VALIDATION = "not re-adopted: its record failed validation ("


def manager_of(api):
    return api.serverapp.web_app.settings["forgather_tb_manager"]


async def suspended_job(api, **options) -> dict:
    """A job launched, running, then suspended for want of requests."""
    job = await api.launch(**{"logdir": "logs", **options})
    await api.wait_status(job["id"], "running")
    return await api.wait_status(job["id"], "suspended", timeout=30)


async def run1_losses(api, job_id) -> list[float]:
    response = await api.proxied(job_id, SCALARS, params={"run": "run1", "tag": "loss"})
    assert response.code == 200, response.body[:500]
    return [value for _, _, value in json.loads(response.body)]


@pytest.mark.tb_config(suspend_after=2)
async def test_an_idle_job_is_suspended_and_a_request_wakes_it_with_tensorboards_answer(
    api, logdir
):
    job = await api.launch(logdir="logs")
    running = await api.wait_status(job["id"], "running")
    live = manager_of(api).get(job["id"])
    socket_path, cgroup_files = live.unix_socket, live.cgroup_files
    assert os.path.exists(socket_path)
    assert running["suspended_at"] is None and running["wakes"] == 0

    suspended = await api.wait_status(job["id"], "suspended", timeout=30)
    assert group_pids(running["pid"]) == []
    assert not os.path.exists(socket_path)
    for procs_file in cgroup_files or []:  # its control group is removed with it
        assert not os.path.exists(os.path.dirname(procs_file))
    assert suspended["pid"] is None and suspended["usage"] is None
    assert suspended["suspended_at"] is not None and suspended["wakes"] == 0
    assert (suspended["id"], suspended["url"], suspended["options"]) == (
        running["id"],
        running["url"],
        running["options"],
    )
    assert [j["id"] for j in await api.json("GET", "jobs")] == [job["id"]]

    assert await run1_losses(api, job["id"]) == [1.0, 0.5, 0.25]
    woken = await api.job(job["id"])
    assert woken["status"] == "running"
    assert woken["wakes"] == 1 and woken["suspended_at"] is None
    assert woken["pid"] != running["pid"] and group_pids(woken["pid"])
    assert woken["last_activity"] > suspended["suspended_at"]


@pytest.mark.tb_config(suspend_after=2)
async def test_ten_concurrent_requests_during_a_wake_all_succeed_with_one_wake(api, logdir):
    job = await suspended_job(api)
    paths = ["", "data/runs", "data/environment", SCALARS] * 3
    responses = await asyncio.gather(
        *(
            api.proxied(job["id"], path, params={"run": "run2", "tag": "loss"})
            for path in paths[:10]
        )
    )
    assert [r.code for r in responses] == [200] * 10
    assert b"tb-relative-root" in responses[0].body
    assert sorted(json.loads(responses[1].body)) == ["run1", "run2"]
    assert [v for _, _, v in json.loads(responses[3].body)] == [2.0, 1.5]
    woken = await api.job(job["id"])
    assert woken["status"] == "running" and woken["wakes"] == 1


@pytest.mark.tb_config(suspend_after=2)
async def test_a_suspended_compare_job_drops_its_folder_of_links_and_wakes_with_both(
    api, logdir, jp_root_dir
):
    write_scalars(jp_root_dir / "other" / "lr2", "loss", [3.0, 2.5])
    job = await suspended_job(api, logdir=None, logdirs={"a": "logs", "b": "other"})
    assert manager_of(api).get(job["id"]).logdir_tree is None
    assert not [p for p in os.listdir(manager_of(api).parts.socket_dir) if job["id"] in p]
    response = await api.proxied(job["id"], "data/runs")
    assert response.code == 200, response.body[:500]
    assert sorted(json.loads(response.body)) == ["a/run1", "a/run2", "b/lr2"]
    assert (await api.job(job["id"]))["wakes"] == 1


@pytest.mark.tb_config(suspend_after=2)
async def test_no_refused_websocket_handshake_wakes_a_suspended_job(
    echo_backend, api, logdir, jp_http_port, jp_base_url
):
    job = await suspended_job(api)
    session = await cookie_session(api)  # a browser's: the token would skip Origin checks
    here = f"127.0.0.1:{jp_http_port}"
    handshake = {
        **session,
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version": "13",
        "Origin": f"http://{here}",
    }
    target = f"{jp_base_url}tb/{job['id']}/echo"
    no_key = {k: v for k, v in handshake.items() if k != "Sec-WebSocket-Key"}
    no_origin = {k: v for k, v in handshake.items() if k != "Origin"}
    for headers, refused in (
        ({**handshake, "Origin": "http://evil.example"}, 403),
        ({**handshake, "Origin": "null"}, 403),
        ({**no_origin, "Sec-Fetch-Site": "cross-site"}, 403),
        ({**handshake, "Cookie": "", "Authorization": ""}, 403),  # not logged in
        ({**handshake, "Connection": "keep-alive"}, 400),
        ({**handshake, "Sec-WebSocket-Version": "12"}, 426),
        (no_key, 400),
    ):
        code, _ = await raw_request(jp_http_port, "GET", target, headers)
        assert code == refused, headers
    still = await api.job(job["id"])
    assert still["status"] == "suspended" and still["wakes"] == 0

    request = HTTPRequest(f"ws://{here}{target}", headers={**session, "Origin": f"http://{here}"})
    connection = await websocket_connect(request)
    await connection.write_message("awake")
    assert await connection.read_message() == "echo: awake"
    connection.close()
    assert (await api.job(job["id"]))["wakes"] == 1


@pytest.mark.tb_config(suspend_after=2)
async def test_killing_a_suspended_job_ends_it_for_good(api, logdir):
    job = await suspended_job(api)
    killed = await api.kill(job["id"])
    assert killed["status"] == "killed" and killed["error"] is None
    page = await api.proxied(job["id"], SCALARS)
    assert page.code == 503 and b"TensorBoard has stopped" in page.body
    refused = await api.call("POST", "jobs", job["id"], "resume", expect=409)
    assert "killed" in json.loads(refused.body)["message"]
    assert (await api.job(job["id"]))["wakes"] == 0


@pytest.mark.tb_config(suspend_after=1, idle_timeout=5)
async def test_idle_timeout_ends_a_job_that_stays_suspended(api, logdir):
    job = await suspended_job(api)
    ended = await api.wait_status(job["id"], "killed", timeout=30)
    assert ended["error"] == "stopped after 5 s without requests"
    assert ended["wakes"] == 0 and ended["suspended_at"] is None


@pytest.mark.tb_config(suspend_after=2)
async def test_resume_wakes_a_suspended_job_and_refuses_a_job_that_is_not(api, logdir):
    job = await api.launch(logdir="logs")
    await api.wait_status(job["id"], "running")
    refused = await api.call("POST", "jobs", job["id"], "resume", expect=409)
    assert json.loads(refused.body)["message"] == (
        f"TensorBoard job {job['id']} is running: it is not suspended, so there is nothing "
        "to resume"
    )
    await api.call("POST", "jobs", "no-such-job", "resume", expect=404)

    await api.wait_status(job["id"], "suspended", timeout=30)
    resumed = await api.json("POST", "jobs", job["id"], "resume", expect=200)
    assert resumed["status"] in ("queued", "starting") and resumed["wakes"] == 1
    assert (await api.wait_status(job["id"], "running"))["wakes"] == 1
    # A launch of the same options reuses the job, suspended or not.
    again = await api.launch(expect=200, logdir="logs")
    assert again["id"] == job["id"] and again["reused"] is True


@pytest.mark.tb_config(suspend_after=2)
async def test_jobs_followed_or_on_a_port_are_never_suspended(api, logdir, jp_http_port):
    followed = await api.launch(logdir="logs")
    on_port = await api.launch(logdir="logs", port=free_port())
    idle = await api.launch(logdir="logs/run1")
    for job in (followed, on_port, idle):
        await api.wait_status(job["id"], "running")
    token = api.serverapp.identity_provider.token
    reader, writer = await asyncio.open_connection("127.0.0.1", jp_http_port)
    try:
        writer.write(
            f"GET {api.serverapp.base_url}forgather-tb/api/jobs/{followed['id']}/output/stream "
            f"HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: token {token}\r\n\r\n".encode()
        )
        await writer.drain()
        assert (await reader.readline()).startswith(b"HTTP/1.1 200")
        await api.wait_status(idle["id"], "suspended", timeout=30)
        await asyncio.sleep(3)  # past suspend_after once more
        assert (await api.job(followed["id"]))["status"] == "running"
        assert (await api.job(on_port["id"]))["status"] == "running"
    finally:
        writer.close()
    # Once nobody follows its output, it is suspended like any other.
    await api.wait_status(followed["id"], "suspended", timeout=40)
    assert (await api.job(on_port["id"]))["status"] == "running"


@pytest.mark.tb_config(suspend_after=2, max_running=1)
async def test_a_wake_that_must_queue_answers_pages_that_retry_by_themselves(api, logdir):
    job = await suspended_job(api)
    holder = await api.launch(logdir="logs/run1", port=free_port())  # takes the one slot
    await api.wait_status(holder["id"], "running")

    page = await api.proxied(job["id"], "", headers={"Accept": "text/html,*/*;q=0.8"})
    assert page.code == 503
    assert page.headers["Retry-After"] == "2"
    assert page.headers["Content-Type"].startswith("text/html")
    text = page.body.decode()
    assert '<meta http-equiv="refresh" content="2">' in text
    assert "queued (waiting for a free slot: 1 of 1 jobs running)" in text
    data = await api.proxied(job["id"], "data/runs", headers={"Accept": "application/json"})
    assert data.code == 503 and data.headers["Retry-After"] == "2"
    assert "is starting again; it is queued" in json.loads(data.body)["message"]
    queued = await api.job(job["id"])
    assert queued["status"] == "queued" and queued["wakes"] == 1

    await api.kill(holder["id"])
    assert await run1_losses(api, job["id"]) == [1.0, 0.5, 0.25]
    assert (await api.job(job["id"]))["wakes"] == 1


@pytest.mark.tb_config(suspend_after=2, memory_limit="512M", total_memory_limit="600M")
async def test_a_wake_waits_for_the_memory_budget_like_a_launch(api, logdir):
    job = await suspended_job(api)
    holder = await api.launch(logdir="logs/run1", port=free_port())  # takes the budget
    await api.wait_status(holder["id"], "running")
    page = await api.proxied(job["id"], "", headers={"Accept": "text/html"})
    assert page.code == 503
    assert "waiting for memory: 512 MiB of 600 MiB in use, this job needs 512 MiB" in (
        page.body.decode()
    )
    await api.kill(holder["id"])
    assert await run1_losses(api, job["id"]) == [1.0, 0.5, 0.25]
    assert (await api.job(job["id"]))["wakes"] == 1


@pytest.mark.tb_config(suspend_after=2)
async def test_a_wake_that_fails_shows_the_error_page_with_the_jobs_reason(s3, api):
    s3.put(event_key("run1"), scalar_records("loss", [1.0, 0.5]))
    job = await api.launch(logdir=f"s3://{s3.bucket}")
    await api.wait_status(job["id"], "running")
    await api.wait_status(job["id"], "suspended", timeout=30)
    s3.client.delete_object(Bucket=s3.bucket, Key=event_key("run1"))
    s3.client.delete_bucket(Bucket=s3.bucket)

    page = await api.proxied(job["id"], "")
    reason = f"S3 mirror: bucket '{s3.bucket}' does not exist"
    assert page.code == 503
    assert "TensorBoard has stopped" in page.body.decode()
    assert reason.replace("'", "&#x27;") in page.body.decode()
    failed = await api.job(job["id"])
    assert failed["status"] == "failed" and failed["error"] == reason
    assert failed["wakes"] == 1


# -- restart survival ---------------------------------------------------------------------


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL])
def test_a_suspended_job_survives_a_server_restart_and_wakes_afterwards(stop, tmp_path):
    root, runtime = tmp_path / "root", tmp_path / "runtime"
    write_scalars(root / "logs" / "run1", "loss", [3.0, 2.0])
    runtime.mkdir()
    server = JupyterServerProcess(root, runtime)
    args = ("--ForgatherTB.suspend_after=2",)
    server.start(args=args)
    try:
        job = server.call("POST", "jobs", {"logdir": "logs"})
        server.wait_status(job["id"], "running")
        suspended = server.wait_status(job["id"], "suspended", timeout=30)
        server.stop(stop)
        server.start(args=args)
        after = server.call("GET", f"jobs/{job['id']}")
        assert after["status"] == "suspended"
        assert after["suspended_at"] == suspended["suspended_at"]
        assert after["url"] == suspended["url"]
        request = urllib.request.Request(
            f"http://127.0.0.1:{server.port}{after['url']}{SCALARS}?run=run1&tag=loss",
            headers={"Authorization": f"token {server.token}"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            assert [v for _, _, v in json.loads(response.read())] == [3.0, 2.0]
        woken = server.call("GET", f"jobs/{job['id']}")
        assert woken["status"] == "running" and woken["wakes"] == 1
    finally:
        server.stop(signal.SIGKILL)


@pytest.fixture
def planted(tb_config, tmp_path, jp_base_url, jp_root_dir):
    """A state file of suspended-job records: one sound, and forged ones naming more."""
    logdir = write_scalars(jp_root_dir / "logs" / "run1", "loss", [4.0, 3.0]).parent
    stranger = subprocess.Popen(["sleep", "600"], start_new_session=True)
    options = LaunchOptions(logdir=str(logdir), window_title="logs")
    when = "2026-12-01T10:00:00+00:00"

    def suspended(**fields):
        return record_for(new_job_id(), options, jp_base_url, status="suspended", **fields)

    records = {
        "sound": suspended(suspended_at=when, wakes=2),
        "with a process": suspended(
            suspended_at=when,
            pid=stranger.pid,
            proc_start_time=process_identity(stranger.pid)[0],
        ),
        "without a time": suspended(),
        "on a port": record_for(
            new_job_id(),
            LaunchOptions(logdir=str(logdir), window_title="logs", port=free_port()),
            jp_base_url,
            status="suspended",
            suspended_at=when,
        ),
        "running, yet suspended_at": record_for(
            new_job_id(), options, jp_base_url, suspended_at=when
        ),
    }
    state_file = tmp_path / "state" / "jobs.json"
    save_state(str(state_file), list(records.values()))
    tb_config.update(state_file=str(state_file), suspend_after=600)
    yield records, stranger
    stranger.kill()
    stranger.wait()


async def test_suspended_records_are_validated_strictly_and_the_sound_one_wakes(planted, api):
    records, stranger = planted
    jobs = {job["id"]: job for job in await api.json("GET", "jobs")}
    sound = jobs[records["sound"]["id"]]
    assert sound["status"] == "suspended" and sound["wakes"] == 2
    assert sound["suspended_at"] == "2026-12-01T10:00:00+00:00"
    reasons = {
        "with a process": "it is suspended, so it has no pid, but names one",
        "without a time": "it is suspended but does not say since when",
        "on a port": "it is suspended, which a job on a TCP port never is",
        "running, yet suspended_at": "it says when it was suspended, but it is running",
    }
    for name, why in reasons.items():
        lost = jobs[records[name]["id"]]
        assert lost["status"] == "lost", name
        assert lost["error"] == f"{FAILED_VALIDATION}{why})", name
    assert stranger.poll() is None  # never signalled
    assert await run1_losses(api, sound["id"]) == [4.0, 3.0]
    woken = await api.job(sound["id"])
    assert woken["status"] == "running" and woken["wakes"] == 3
