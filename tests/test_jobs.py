"""Job lifecycle through the REST API, against real TensorBoard processes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import stat
import sys

import pytest
from conftest import group_pids, pid_alive, write_scalars


async def scalars(api, job_id, run, tag="loss"):
    response = await api.proxied(
        job_id, "data/plugin/scalars/scalars", params={"run": run, "tag": tag}
    )
    assert response.code == 200, response.body[:500]
    return [(step, value) for _, step, value in json.loads(response.body)]


async def test_job_runs_on_a_private_unix_socket_and_serves_real_scalars(api, logdir, jp_base_url):
    job = await api.launch(logdir="logs")
    assert job["status"] in ("starting", "running")
    assert job["url"] == f"{jp_base_url}tb/{job['id']}/"
    assert job["label"] == "logs"
    assert job["options"]["logdir"] == str(logdir)
    job = await api.wait_status(job["id"], "running")
    assert job["transport"] == "unix" and job["port"] is None
    assert job["pid"] and job["started"] and job["network_exposed"] is False

    index = await api.proxied(job["id"], "")
    assert index.code == 200
    assert b"tb-relative-root" in index.body
    assert await scalars(api, job["id"], "run1") == [(0, 1.0), (1, 0.5), (2, 0.25)]
    assert await scalars(api, job["id"], "run2") == [(0, 2.0), (1, 1.5)]

    # Nobody else on the machine may connect to the socket.
    manager = api.serverapp.web_app.settings["forgather_tb_manager"]
    sock = manager.get(job["id"]).unix_socket
    assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(sock)).st_mode) == 0o700
    # No TCP listener belongs to the job's process group.
    assert not _tcp_listeners_of(group_pids(job["pid"]))


def _tcp_listeners_of(pids):
    inodes = set()
    for pid in pids:
        fd_dir = f"/proc/{pid}/fd"
        for fd in os.listdir(fd_dir):
            try:
                target = os.readlink(os.path.join(fd_dir, fd))
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    listening = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[3] == "0A":  # LISTEN
                    listening.add(fields[9])
    return inodes & listening


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_job_with_port_listens_on_loopback_and_is_proxied(api, logdir):
    port = _free_port()
    job = await api.launch(logdir="logs", port=port)
    job = await api.wait_status(job["id"], "running")
    assert job["transport"] == "tcp" and job["port"] == port
    assert job["options"]["host"] == "127.0.0.1"
    assert await scalars(api, job["id"], "run1") == [(0, 1.0), (1, 0.5), (2, 0.25)]
    # It answers directly on loopback, under the same path prefix.
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {job['url']} HTTP/1.0\r\n\r\n".replace("%40", "%2540").encode())
    status_line = await reader.readline()
    writer.close()
    assert b" 200 " in status_line


async def test_port_in_use_is_409_and_starts_nothing(api, logdir):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        response = await api.call("POST", "jobs", body={"logdir": "logs", "port": port})
    assert response.code == 409
    assert f"port {port}" in json.loads(response.body)["message"]
    assert await api.json("GET", "jobs", expect=200) == []


async def test_second_port_request_for_a_live_jobs_port_is_409(api, logdir):
    port = _free_port()
    first = await api.launch(logdir="logs", port=port)
    response = await api.call("POST", "jobs", body={"logdir": "logs/run1", "port": port})
    assert response.code == 409
    assert first["id"] in json.loads(response.body)["message"]


async def test_same_options_reuse_the_live_job_unless_forced(api, logdir):
    first = await api.launch(logdir="logs")
    again = await api.launch(expect=200, logdir="./logs/", priority=7)
    assert again["id"] == first["id"] and again["reused"] is True
    assert first["reused"] is False
    forced = await api.launch(logdir="logs", force_new=True)
    assert forced["id"] != first["id"] and forced["reused"] is False
    other = await api.launch(logdir="logs", window_title="Other")
    assert other["id"] not in (first["id"], forced["id"])
    await api.kill(first["id"])
    # A killed job is not reused; the live one with the same options is.
    after = await api.launch(expect=200, logdir="logs")
    assert after["id"] == forced["id"]
    await api.kill(forced["id"])
    fresh = await api.launch(logdir="logs")
    assert fresh["id"] not in (first["id"], forced["id"])


@pytest.mark.tb_config(max_running=1)
async def test_queue_runs_highest_priority_then_oldest_and_queued_jobs_cancel(api, logdir):
    (logdir / "other").mkdir()
    first = await api.launch(logdir="logs")
    low = await api.launch(logdir="logs/run1")
    high = await api.launch(logdir="logs/run2", priority=5)
    last = await api.launch(logdir="logs/other", priority=5)
    assert low["status"] == "queued" and high["status"] == "queued"
    positions = {j["id"]: j["queue_position"] for j in await api.json("GET", "jobs")}
    assert positions == {first["id"]: None, high["id"]: 1, last["id"]: 2, low["id"]: 3}

    await api.wait_status(first["id"], "running")
    killed = await api.kill(first["id"])
    assert killed["status"] == "killed"
    assert (await api.wait_status(high["id"], "starting", "running"))["queue_position"] is None
    assert (await api.job(last["id"]))["queue_position"] == 1
    assert (await api.job(low["id"]))["status"] == "queued"

    cancelled = await api.kill(low["id"])
    assert cancelled["status"] == "killed"
    assert "cancelled" in cancelled["error"]
    assert cancelled["pid"] is None
    assert (await api.job(last["id"]))["queue_position"] == 1

    await api.kill(high["id"])
    await api.wait_status(last["id"], "starting", "running")


async def test_kill_twice_is_a_no_op_and_leaves_no_process(api, logdir):
    job = await api.launch(logdir="logs")
    job = await api.wait_status(job["id"], "running")
    pid = job["pid"]
    assert pid_alive(pid)
    first = await api.kill(job["id"])
    second = await api.kill(job["id"])
    assert first["status"] == second["status"] == "killed"
    assert first["ended"] == second["ended"]
    assert not pid_alive(pid)
    assert group_pids(pid) == []


async def test_kill_while_starting_ends_killed(api, logdir):
    job = await api.launch(logdir="logs")
    killed = await api.kill(job["id"])
    assert killed["status"] == "killed"
    if killed["pid"]:
        assert group_pids(killed["pid"]) == []


async def test_crash_while_running_becomes_failed_with_exit_code_and_output(api, logdir):
    job = await api.launch(logdir="logs")
    job = await api.wait_status(job["id"], "running")
    os.kill(job["pid"], signal.SIGKILL)
    job = await api.wait_status(job["id"], "failed", timeout=10)
    assert job["exit_code"] == -signal.SIGKILL
    assert "SIGKILL" in job["error"]
    assert any("TensorBoard serving at" in line for line in job["output_tail"])
    assert group_pids(job["pid"]) == []
    page = await api.proxied(job["id"], "")
    assert page.code == 503 and b"ended (failed)" in page.body
    assert "Retry-After" not in page.headers


@pytest.fixture
def failing_tb(tb_config, fake_python):
    # Real TensorBoard, handed one flag it does not know.
    tb_config["tensorboard_python"] = fake_python(f'exec {sys.executable} "$@" --no_such_flag')


async def test_tensorboard_that_exits_at_start_is_failed_with_its_output(failing_tb, api, logdir):
    job = await api.launch(logdir="logs")
    job = await api.wait_status(job["id"], "failed", timeout=20)
    assert job["exit_code"] == 2
    assert job["error"] == "TensorBoard exited with code 2"
    assert any("unrecognized arguments: --no_such_flag" in line for line in job["output_tail"])
    assert group_pids(job["pid"]) == [] and not pid_alive(job["pid"])
    log_file = api.serverapp.web_app.settings["forgather_tb_manager"].get(job["id"]).log_file
    with open(log_file) as f:
        assert "unrecognized arguments" in f.read()


@pytest.fixture
def hanging_tb(tb_config, fake_python):
    # Stands in for a TensorBoard that never answers: a fault real TensorBoard won't show on demand.
    tb_config["tensorboard_python"] = fake_python("sleep 600 & sleep 600")
    tb_config["startup_timeout"] = 1.0


async def test_startup_timeout_fails_the_job_and_kills_its_whole_group(hanging_tb, api, logdir):
    job = await api.launch(logdir="logs")
    job = await api.wait_status(job["id"], "starting")
    # A starting job checks its log directories (in a thread) before its process starts.
    while not job["pid"]:
        assert job["status"] == "starting", job
        await asyncio.sleep(0.05)
        job = await api.job(job["id"])
    assert len(group_pids(job["pid"])) >= 2
    job = await api.wait_status(job["id"], "failed", timeout=10)
    assert "did not answer within 1 s" in job["error"]
    assert group_pids(job["pid"]) == []


async def test_output_can_be_read_from_an_offset(api, logdir):
    job = await api.launch(logdir="logs")
    job = await api.wait_status(job["id"], "running")
    whole = await api.json("GET", "jobs", job["id"], "output", expect=200)
    assert whole["offset"] == 0 and "TensorBoard serving at" in whole["text"]
    assert whole["next_offset"] == len(whole["text"].encode())
    assert whole["complete"] is False
    rest = await api.json(
        "GET", "jobs", job["id"], "output", params={"offset": whole["next_offset"]}, expect=200
    )
    assert rest["text"] == "" and rest["offset"] == whole["next_offset"]
    bad = await api.call("GET", "jobs", job["id"], "output", params={"offset": "-1"})
    assert bad.code == 400 and json.loads(bad.body)["field"] == "offset"


@pytest.fixture
def chatty_tb(tb_config, fake_python):
    tb_config["tensorboard_python"] = fake_python("echo one; sleep 1; echo two; exit 3")


async def test_output_stream_follows_live_output_to_the_end(chatty_tb, api, logdir):
    job = await api.launch(logdir="logs")
    chunks = []
    response = await api.fetch(
        "forgather-tb",
        "api",
        "jobs",
        job["id"],
        "output",
        "stream",
        streaming_callback=chunks.append,
        request_timeout=20,
    )
    assert response.headers["Content-Type"] == "text/event-stream"
    events = [e for e in b"".join(chunks).decode().split("\n\n") if e.startswith("event:")]
    outputs = [json.loads(e.split("data: ", 1)[1]) for e in events if e.startswith("event: output")]
    assert "".join(o["text"] for o in outputs) == "one\ntwo\n"
    assert len(outputs) >= 2, "the second line should arrive as its own event, live"
    assert events[-1].startswith("event: end")
    assert json.loads(events[-1].split("data: ", 1)[1])["status"] == "failed"


async def test_unknown_job_is_404_json(api):
    for method in ("GET", "DELETE"):
        response = await api.call(method, "jobs", "nope")
        assert response.code == 404
        assert "nope" in json.loads(response.body)["message"]
    response = await api.call("GET", "jobs", "nope", "output")
    assert response.code == 404


async def test_stopping_the_server_stops_every_job(api, logdir):
    job = await api.launch(logdir="logs")
    job = await api.wait_status(job["id"], "running")
    queued_and_running = [job["pid"]]
    await api.serverapp.extension_manager.stop_all_extensions()
    assert not any(pid_alive(pid) for pid in queued_and_running)
    assert group_pids(job["pid"]) == []
    assert (await api.job(job["id"]))["status"] == "killed"


async def test_finished_history_is_bounded(api, logdir, tb_config):
    manager = api.serverapp.web_app.settings["forgather_tb_manager"]
    manager.settings.max_finished = 2
    (logdir / "a").mkdir()
    ids = []
    for _ in range(4):
        job = await api.launch(logdir="logs/a", force_new=True)
        await api.kill(job["id"])
        ids.append(job["id"])
    listed = [j["id"] for j in await api.json("GET", "jobs")]
    assert listed == ids[-2:]


async def test_clearing_ended_jobs_keeps_live_ones_and_their_logs(api, logdir, tb_config):
    (logdir / "a").mkdir()
    ended = await api.launch(logdir="logs/a")
    # Started, so it has a log file (a job cancelled before its process starts has none).
    await api.wait_status(ended["id"], "running")
    await api.kill(ended["id"])
    live = await api.launch(logdir="logs")
    manager = api.serverapp.web_app.settings["forgather_tb_manager"]
    log_file = manager.get(ended["id"]).log_file

    cleared = await api.json("DELETE", "jobs")
    assert cleared == {"removed": [ended["id"]]}
    assert [j["id"] for j in await api.json("GET", "jobs")] == [live["id"]]
    assert (await api.call("GET", "jobs", ended["id"])).code == 404
    assert os.path.exists(log_file)
    assert await api.json("DELETE", "jobs") == {"removed": []}
    await api.kill(live["id"])


async def test_logdirs_lists_directories_with_runs(api, logdir, jp_root_dir):
    write_scalars(jp_root_dir / "other" / "deep" / "run", "x", [1.0])
    found = await api.json("GET", "logdirs", expect=200)
    by_path = {e["path"]: e for e in found["logdirs"]}
    assert by_path[""]["runs"] == 3
    assert by_path["logs"]["runs"] == 2
    assert by_path["logs/run1"]["runs"] == 1
    assert by_path["other/deep"]["runs"] == 1
    assert found["truncated"] is False
    inside = await api.json("GET", "logdirs", params={"path": "logs"}, expect=200)
    assert sorted(e["path"] for e in inside["logdirs"]) == ["logs", "logs/run1", "logs/run2"]
    outside = await api.call("GET", "logdirs", params={"path": "../.."})
    assert outside.code == 400 and json.loads(outside.body)["field"] == "path"
