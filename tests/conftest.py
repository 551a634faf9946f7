"""Shared fixtures: a Jupyter server with the extension, real event files, and job helpers."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from s3_helpers import TEST_ENV, UNSET_ENV, new_bucket, start_moto

pytest_plugins = ["pytest_jupyter.jupyter_server"]


def write_scalars(run_dir: Path, tag: str, values: list[float], start_step: int = 0) -> Path:
    """Write a real TensorBoard event file with one scalar per step, using tensorboard's writer."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    run_dir.mkdir(parents=True, exist_ok=True)
    writer = EventFileWriter(str(run_dir))
    for step, value in enumerate(values, start=start_step):
        summary = summary_pb2.Summary(
            value=[summary_pb2.Summary.Value(tag=tag, simple_value=value)]
        )
        writer.add_event(event_pb2.Event(wall_time=time.time(), step=step, summary=summary))
    writer.close()
    return run_dir


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "tb_config(**traits): c.ForgatherTB settings for the test's server"
    )


@pytest.fixture
def tb_config(request):
    """``c.ForgatherTB`` for the test's server: defaults, then the ``tb_config`` marker.

    A fixture that needs computed values may update this dict, as long as it is
    requested before the server starts.
    """
    config = {"startup_timeout": 60.0, "kill_grace": 3.0}
    marker = request.node.get_closest_marker("tb_config")
    if marker:
        config.update(marker.kwargs)
    return config


@pytest.fixture
def jp_server_config(tb_config):
    return {
        "ServerApp": {
            "jpserver_extensions": {
                "jupyter_forgather_tb": True,
                "jupyter_server_terminals": False,
            },
            "allow_unauthenticated_access": False,
        },
        "ForgatherTB": tb_config,
    }


@pytest.fixture
def logdir(jp_root_dir) -> Path:
    """A log directory inside the server root with two runs of real scalars."""
    top = jp_root_dir / "logs"
    write_scalars(top / "run1", "loss", [1.0, 0.5, 0.25])
    write_scalars(top / "run2", "loss", [2.0, 1.5])
    return top


class Api:
    """Small helper over jp_fetch for the extension's REST API."""

    def __init__(self, fetch, serverapp):
        self.fetch = fetch
        self.serverapp = serverapp

    async def call(self, method, *path, body=None, params=None, expect=None):
        kwargs = {"method": method, "raise_error": False}
        if body is not None:
            kwargs["body"] = body if isinstance(body, (str, bytes)) else json.dumps(body)
        elif method == "POST":
            kwargs["body"] = ""
        if params:
            kwargs["params"] = params
        response = await self.fetch("forgather-tb", "api", *path, **kwargs)
        if expect is not None:
            assert response.code == expect, (response.code, response.body[:2000])
        return response

    async def json(self, method, *path, **kwargs):
        response = await self.call(method, *path, **kwargs)
        return json.loads(response.body)

    async def launch(self, expect=201, **options):
        return await self.json("POST", "jobs", body=options, expect=expect)

    async def job(self, job_id):
        return await self.json("GET", "jobs", job_id, expect=200)

    async def wait_status(self, job_id, *statuses, timeout=60.0):
        deadline = time.monotonic() + timeout
        while True:
            job = await self.job(job_id)
            if job["status"] in statuses:
                return job
            if time.monotonic() > deadline:
                raise AssertionError(f"job stayed {job['status']}, wanted {statuses}: {job}")
            await asyncio.sleep(0.1)

    async def kill(self, job_id, expect=200):
        return await self.json("DELETE", "jobs", job_id, expect=expect)

    async def proxied(self, job_id, path="", **kwargs):
        kwargs.setdefault("raise_error", False)
        return await self.fetch("tb", f"{job_id}/{path}", **kwargs)


@pytest.fixture
def api(jp_fetch, jp_serverapp):
    return Api(jp_fetch, jp_serverapp)


@pytest.fixture
def fake_python(tmp_path):
    """Make a stand-in interpreter for faults real TensorBoard cannot be made to show.

    ``fake_python("sleep 600")`` returns the path of a script that ignores its
    arguments and runs the given shell command.
    """

    def make(command: str) -> str:
        path = tmp_path / f"fake-python-{abs(hash(command))}"
        path.write_text(f"#!/bin/sh\n{command}\n")
        path.chmod(0o755)
        return str(path)

    return make


def pid_alive(pid: int) -> bool:
    """True if a process with this pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def group_pids(pgid: int) -> list[int]:
    """Live (non-zombie) processes in a process group."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            pids.append(int(entry))
    return pids


def data_server_pids(pgid: int) -> list[int]:
    """TensorBoard's Rust data servers (started with --die-after-stdin) in a process group."""
    found = []
    for pid in group_pids(pgid):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                if b"--die-after-stdin" in cmdline.read():
                    found.append(pid)
        except OSError:
            continue
    return found


def free_port() -> int:
    """A loopback TCP port that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


#: Marks a test that needs ``::1`` (a kernel or container without IPv6 has none).
needs_ipv6 = pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback (::1)")


def lab_env(home: Path, base: dict | None = None) -> dict:
    """A test server's environment: JupyterLab settings and workspaces of its own under
    ``home`` (with no "get Jupyter news?" toast over the pages), on ``base`` (the
    process's environment by default)."""
    news = home / "settings" / "@jupyterlab" / "apputils-extension"
    news.mkdir(parents=True)
    (news / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    return {
        **(os.environ if base is None else base),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
    }


class JupyterServerProcess:
    """A real ``jupyter server`` in its own process (one that can be killed outright).

    ``app`` is the Jupyter command (``notebook`` runs Jupyter Notebook 7's server) and
    ``args`` are extra command-line options, such as ``--ForgatherTB.max_running=1``.
    """

    def __init__(
        self,
        root: Path,
        runtime: Path,
        base_url: str = "/base/",
        token: str = "t0ken",
        app: str = "server",
        args: tuple[str, ...] = (),
    ):
        self.root, self.runtime, self.base_url, self.token = root, runtime, base_url, token
        self.app, self.args = app, args
        self.port = free_port()
        self.proc = None

    def start(self, env: dict | None = None, log: Path | None = None, args: tuple = ()):
        """Start the server and wait until its API answers; ``log`` collects its output.

        ``args`` are more command-line options, such as ``--ForgatherTB.stall_after=4``.
        """
        env = {**(os.environ if env is None else env), "JUPYTER_RUNTIME_DIR": str(self.runtime)}
        output = log.open("ab") if log else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyter",
                self.app,
                "--allow-root",
                "--no-browser",
                f"--port={self.port}",
                "--port_retries=0",
                f"--IdentityProvider.token={self.token}",
                f"--ServerApp.root_dir={self.root}",
                f"--ServerApp.base_url={self.base_url}",
                *self.args,
                *args,
            ],
            env=env,
            stdin=subprocess.DEVNULL,  # never a terminal: no "Shut down?" prompt on SIGINT
            stdout=output,
            stderr=output,
        )
        if log:
            output.close()
        deadline = time.monotonic() + 60
        while True:
            try:
                self.call("GET", "jobs")
                return self
            except OSError:
                assert self.proc.poll() is None, "jupyter server exited"
                assert time.monotonic() < deadline, "jupyter server did not start"
                time.sleep(0.2)

    def call(self, method, path, body=None):
        """A REST call to our API on this server; the decoded JSON answer."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{self.base_url}forgather-tb/api/{path}",
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"token {self.token}"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def wait_status(self, job_id, status, timeout=60):
        """Poll a job until it has this status."""
        deadline = time.monotonic() + timeout
        while (job := self.call("GET", f"jobs/{job_id}"))["status"] != status:
            assert time.monotonic() < deadline, job
            time.sleep(0.1)
        return job

    def stop(self, sig=signal.SIGTERM):
        """Signal the server and wait for it to exit."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)


# -- S3: moto's server on loopback --------------------------------------------------------


@pytest.fixture(scope="session")
def moto_endpoint():
    server, endpoint = start_moto()
    yield endpoint
    server.stop()


@pytest.fixture
def aws_env(monkeypatch):
    """Test credentials in the environment (which the jobs' processes inherit)."""
    for name in UNSET_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in TEST_ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def s3(moto_endpoint, aws_env, tb_config, tmp_path):
    """A boto3 client on moto with a fresh bucket; the server under test uses the same endpoint.

    Request it before ``api`` so the server starts with this configuration.
    """
    tb_config.update(s3_endpoint_url=moto_endpoint, s3_cache_dir=str(tmp_path / "cache"))
    from jupyter_forgather_tb.common.s3client import make_client

    client = make_client(moto_endpoint)
    return Bucket(client, new_bucket(client), moto_endpoint)


@pytest.fixture
def dead_endpoint(aws_env, tb_config, tmp_path):
    """An S3 endpoint on a loopback port where nothing listens.

    An s3:// job's first sync then fails and is retried until the startup timeout.
    Request it before ``api``.
    """
    server, endpoint = start_moto()
    server.stop()
    tb_config.update(s3_endpoint_url=endpoint, s3_cache_dir=str(tmp_path / "cache"))
    return endpoint


@dataclass
class Bucket:
    """A fresh bucket on moto, and the client that made it."""

    client: object
    bucket: str
    endpoint: str

    def put(self, key: str, body: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=body)
