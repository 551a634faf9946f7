"""Jobs with a TCP port: only the job's own listener is ever asked, and the port is marked.

The impostor is a real listener of another Unix user (nobody), forked from the test
process as tests/test_netns.py does, that records every connection it accepts and
answers any request with a page of its own.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest
from conftest import free_port, group_pids, needs_ipv6, write_scalars
from test_cli import clean_env, cli

from jupyter_forgather_tb.common.options import LaunchOptions, build_argv
from jupyter_forgather_tb.server.host.listeners import PortCheck, check_port, listeners_on
from jupyter_forgather_tb.server.host.procfs import process_identity
from jupyter_forgather_tb.server.jobs.job import new_job_id
from jupyter_forgather_tb.server.jobs.state import save_state

NOBODY = 65534


class Impostor:
    """A process of user nobody listening on ``ip:port``, recording what reaches it."""

    def __init__(self, ip: str, port: int):
        if os.geteuid() != 0:
            pytest.skip("needs root to become another user")
        reports_r, reports_w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:  # pragma: no cover - the child's coverage is not collected
            try:
                os.close(reports_r)
                os.setgroups([])
                os.setgid(NOBODY)
                os.setuid(NOBODY)
                self._serve(ip, port, reports_w)
            except BaseException as error:
                os.write(reports_w, json.dumps({"error": repr(error)}).encode() + b"\n")
            finally:
                os._exit(0)
        os.close(reports_w)
        self._reports = os.fdopen(reports_r)
        self._seen: list[dict] | None = None
        first = json.loads(self._reports.readline() or '{"error": "no report"}')
        assert first == {"listening": [ip, port]}, first

    @staticmethod
    def _serve(ip: str, port: int, reports: int) -> None:
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        server = socket.socket(family)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind((ip, port))
        server.listen()
        os.write(reports, json.dumps({"listening": [ip, port]}).encode() + b"\n")
        while True:
            connection, peer = server.accept()
            os.write(reports, json.dumps({"connection": str(peer)}).encode() + b"\n")
            connection.settimeout(2.0)
            try:
                data = connection.recv(65536)
            except OSError:
                data = b""
            os.write(reports, json.dumps({"bytes": data.decode("latin-1")}).encode() + b"\n")
            if data:
                page = b"<script>/* the impostor's */</script>"
                head = f"HTTP/1.0 200 OK\r\nContent-Length: {len(page)}\r\n\r\n".encode()
                connection.sendall(head + page)
            connection.close()

    def stop(self) -> list[dict]:
        """End the impostor (once); everything it recorded after it started listening."""
        if self._seen is None:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
            with self._reports:
                self._seen = [json.loads(line) for line in self._reports]
        return self._seen


@pytest.fixture
def impostors():
    """Start impostors with ``impostors(ip, port)``; they are stopped after the test."""
    started: list[Impostor] = []

    def start(ip: str, port: int) -> Impostor:
        started.append(Impostor(ip, port))
        return started[-1]

    yield start
    for impostor in started:
        impostor.stop()


async def _index(api, job_id):
    response = await api.proxied(job_id, "")
    return response.code, response.body


def _listening_ips(port: int) -> set[str]:
    return {str(entry.ip) for entry in listeners_on("::", port)}


@needs_ipv6
async def test_impostor_on_ipv4_never_gets_a_request_while_the_job_serves_on_ipv6(
    api, logdir, impostors
):
    port = free_port()
    impostor = impostors("127.0.0.1", port)
    job = await api.launch(logdir="logs", port=port, host="::1")
    job = await api.wait_status(job["id"], "running", "failed")
    assert job["status"] == "running", job  # [::1]:port was free: the job has it
    code, body = await _index(api, job["id"])
    assert code == 200 and b"tb-relative-root" in body and b"impostor" not in body
    scalars = await api.proxied(
        job["id"], "data/plugin/scalars/scalars", params={"run": "run1", "tag": "loss"}
    )
    assert [row[1:] for row in json.loads(scalars.body)] == [[0, 1.0], [1, 0.5], [2, 0.25]]
    assert _listening_ips(port) == {"127.0.0.1", "::1"}
    await api.kill(job["id"])
    assert impostor.stop() == []  # not a connection, let alone a request


async def test_impostor_that_takes_the_port_during_a_slow_start_fails_the_job(
    dead_endpoint, api, impostors
):
    port = free_port()
    job = await api.launch(logdir="s3://some-bucket/runs", port=port)

    def first_sync_failed(current):
        return current["status"] == "starting" and (current["mirror"] or {}).get("last_error")

    while not first_sync_failed(await api.job(job["id"])):
        await asyncio.sleep(0.1)
    # The job's runner is up and retrying its first sync: the port is not bound yet.
    impostor = impostors("127.0.0.1", port)
    job = await api.wait_status(job["id"], "failed", "running")
    assert job["status"] == "failed"
    assert job["error"] == (
        f"port {port} on 127.0.0.1 is taken by another process of user nobody (uid {NOBODY})"
    )
    assert group_pids(job["pid"]) == []  # the job's runner was stopped
    assert impostor.stop() == []


@pytest.fixture
def port_orphan(tb_config, jp_root_dir, jp_base_url, tmp_path, impostors):
    """A TensorBoard on [::1]:port left running by a previous server, and an impostor.

    The impostor listens on 127.0.0.1 at the same port; both are there before the new
    server starts.
    """
    logdir = write_scalars(jp_root_dir / "logs" / "run1", "loss", [3.0, 2.0]).parent
    job_id, port = new_job_id(), free_port()
    options = LaunchOptions(logdir=str(logdir), window_title="logs", port=port, host="::1")
    # As a server with default settings builds it, with its report file in a run directory.
    run_dir = tempfile.mkdtemp(prefix="forgather-tb-")
    report_file = os.path.join(run_dir, f"{job_id}.json")
    argv = build_argv(
        options,
        python=sys.executable,
        path_prefix=f"{jp_base_url}tb/{job_id}",
        port=port,
        private_network=True,
        report_file=report_file,
    )
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while not listeners_on("::1", port):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    impostor = impostors("127.0.0.1", port)
    record = {
        "id": job_id,
        "options": options.to_json(),
        "url": f"{jp_base_url}tb/{job_id}/",
        "status": "running",
        "seq": 1,
        "pid": proc.pid,
        "port": port,
        "host": "::1",
        "argv": argv,
        "report_file": report_file,
        "proc_start_time": process_identity(proc.pid)[0],
    }
    state_file = tmp_path / "state" / "jobs.json"
    save_state(str(state_file), [record])
    tb_config["state_file"] = str(state_file)
    yield record, impostor
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    shutil.rmtree(run_dir, ignore_errors=True)


@needs_ipv6
async def test_a_restarted_server_re_adopts_a_port_job_on_its_own_address_only(port_orphan, api):
    record, impostor = port_orphan
    job = await api.wait_status(record["id"], "running", "lost", timeout=30)
    assert job["status"] == "running" and job["adopted"] is True
    response = await api.proxied(
        job["id"], "data/plugin/scalars/scalars", params={"run": "run1", "tag": "loss"}
    )
    assert [v for _, _, v in json.loads(response.body)] == [3.0, 2.0]
    await api.kill(job["id"])
    assert group_pids(record["pid"]) == []
    assert impostor.stop() == []


async def test_a_job_on_127_0_0_2_runs_and_is_proxied(api, logdir):
    port = free_port()
    job = await api.launch(logdir="logs", port=port, host="127.0.0.2")
    job = await api.wait_status(job["id"], "running", "failed")
    assert job["status"] == "running", job
    code, body = await _index(api, job["id"])
    assert code == 200 and b"tb-relative-root" in body
    assert _listening_ips(port) == {"127.0.0.2"}


@pytest.mark.tb_config(allow_port=False)
async def test_allow_port_false_refuses_ports_naming_the_field(api, logdir):
    for body, field in (
        ({"logdir": "logs", "port": free_port()}, "port"),
        ({"logdir": "logs", "port": free_port(), "bind_all": True}, "port"),
        ({"logdir": "logs", "bind_all": True}, "bind_all"),
    ):
        response = await api.call("POST", "jobs", body=body)
        assert response.code == 400, response.body
        error = json.loads(response.body)
        assert error["field"] == field
        assert "administrator has disabled TCP ports" in error["message"]
    assert await api.json("GET", "jobs") == []
    job = await api.launch(logdir="logs")  # no port: served through Jupyter only
    assert job["transport"] == "unix"


async def test_port_jobs_are_marked_open_to_local_users_and_socket_jobs_are_not(api, logdir):
    socket_job = await api.launch(logdir="logs")
    port_job = await api.launch(logdir="logs/run1", port=free_port())
    assert socket_job["exposure"] == "none" and socket_job["network_exposed"] is False
    assert port_job["exposure"] == "local" and port_job["network_exposed"] is False
    await api.wait_status(port_job["id"], "running")
    listed = {job["id"]: job["exposure"] for job in await api.json("GET", "jobs")}
    assert listed == {socket_job["id"]: "none", port_job["id"]: "local"}
    bind_all = await api.launch(logdir="logs/run2", bind_all=True)
    assert bind_all["exposure"] == "network" and bind_all["network_exposed"] is True


async def test_the_cli_warns_that_a_port_job_is_open_to_local_users(
    api, logdir, jp_serverapp, jp_base_url
):
    port = free_port()
    job = await api.launch(logdir="logs", port=port)
    await api.wait_status(job["id"], "running")
    env = clean_env(
        FORGATHER_TB_SERVER=f"http://127.0.0.1:{jp_serverapp.port}{jp_base_url}",
        FORGATHER_TB_TOKEN=jp_serverapp.identity_provider.token,
    )
    warning = (
        f"listens on port {port} of 127.0.0.1: every user of this machine can open it "
        "without Jupyter's login"
    )
    code, out, _ = await cli("show", job["id"], env=env)
    assert code == 0 and f"warning:  {warning}" in out
    code, out, err = await cli("list", env=env)
    assert code == 0 and out.splitlines()[0].split() == [
        "ID",
        "STATUS",
        "AGE",
        "MEM",
        "CPU",
        "ACTIVITY",
        "LABEL",
        "LOGDIR",
    ]
    assert f"warning: {job['id']} {warning}" in err


@needs_ipv6
def test_the_owner_of_a_listener_is_told_apart_by_its_socket():
    port = free_port()
    with socket.socket(socket.AF_INET6) as mine:
        mine.bind(("::1", port))
        mine.listen()
        (entry,) = listeners_on("::1", port)
        assert entry.inode == os.fstat(mine.fileno()).st_ino and entry.uid == os.geteuid()
        assert check_port(os.getpgid(0), "::1", port).ours
        # For a job without these processes, it is someone else's.
        assert check_port(None, "::1", port) == PortCheck(ours=False, foreign=entry)
        # A listener on ::1 is not one on 127.0.0.1, and does not stand in its way.
        assert check_port(os.getpgid(0), "127.0.0.1", port) == PortCheck(ours=False, foreign=None)
        # One on every interface would.
        assert check_port(None, "::", port).foreign == entry
