"""Shared fixtures: a Jupyter server with the extension, real event files, and job helpers."""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import os
import signal
import socket
import subprocess
import sys
import time
import types
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from s3_helpers import TEST_ENV, UNSET_ENV, boto3_client, new_bucket, start_moto
from tornado.httputil import HTTPHeaders, parse_response_start_line

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


# -- Kinds of test: unit, server, browser, ssh, hub (the markers in pyproject.toml) --------

#: The kinds, in the order they are looked for: a test gets the first that fits.
KINDS = ("hub", "ssh", "browser", "server", "unit")
#: The names (or whole string constants) in the code of a test of each kind, compared
#: without case, in the test, the fixtures it uses, and the functions and classes of
#: tests/ that these name, followed from one to the next.
SIGNS = {
    "hub": {"jupyterhub"},
    "ssh": {"sshd"},
    "browser": {"playwright"},
    "server": {
        "subprocess",
        "popen",
        "create_subprocess_exec",
        "create_subprocess_shell",
        "fork",
        "forkpty",
        "posix_spawn",
        "listen",
        "create_server",
        "start_server",
        "bind_sockets",
        "make_server",
        "tcpsite",
        "tcpserver",
        "httpserver",
        "threadinghttpserver",
        "threadedmotoserver",
    },
}
#: pytest-jupyter's fixtures that start a Jupyter server inside the test's process.
SERVER_FIXTURES = {"jp_serverapp", "jp_fetch", "jp_ws_fetch", "http_server"}
TESTS_DIR = Path(__file__).parent


def _names(code: types.CodeType) -> set[str]:
    """The global and attribute names a function's code uses, nested functions included."""
    names = set(code.co_names)
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            names |= _names(constant)
    return names


def _words(code: types.CodeType) -> set[str]:
    """The names a function's code uses (globals, attributes, the parts of imported
    modules) and its string constants, nested functions included, docstrings left out."""
    flag = getattr(inspect, "CO_HAS_DOCSTRING", None)  # Python 3.14 and later
    constants = code.co_consts
    if constants and isinstance(constants[0], str) and (flag is None or code.co_flags & flag):
        constants = constants[1:]  # the docstring (before 3.14 there is None if none)
    words = {part for name in code.co_names for part in name.split(".")}
    for constant in constants:
        if isinstance(constant, str):
            words.add(constant)
        elif isinstance(constant, types.CodeType):
            words |= _words(constant)
    return words


@functools.cache
def _signs_and_helpers(obj) -> tuple[frozenset[str], tuple]:
    """The kinds a function or class of tests/ shows signs of, and what else of ours it names."""
    try:
        if not Path(inspect.getsourcefile(obj)).is_relative_to(TESTS_DIR):
            return frozenset(), ()
    except TypeError:
        return frozenset(), ()
    members = vars(obj).values() if inspect.isclass(obj) else [obj]
    functions = [f for f in (getattr(m, "__func__", m) for m in members) if inspect.isfunction(f)]
    words = {word.lower() for function in functions for word in _words(function.__code__)}
    kinds = frozenset(kind for kind, signs in SIGNS.items() if signs & words)
    helpers = []
    for function in functions:
        for name in _names(function.__code__):
            target = function.__globals__.get(name)
            if inspect.isfunction(target) or inspect.isclass(target):
                helpers.append(target)
    return kinds, tuple(helpers)


def _kind(item) -> str:
    """The kind of a collected test, from the fixtures it uses and what its code starts."""
    fixtures = set(getattr(item, "fixturenames", ())) - {"_unit_tests_start_nothing"}
    found = {"server"} if SERVER_FIXTURES & fixtures else set()
    todo = [inspect.unwrap(item.function)] if hasattr(item, "function") else []
    definitions = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
    for name in fixtures:
        todo += [fixturedef.func for fixturedef in definitions.get(name, ())]
    seen = set()
    while todo:
        obj = todo.pop()
        if obj not in seen:
            seen.add(obj)
            kinds, helpers = _signs_and_helpers(obj)
            found |= kinds
            todo += helpers
    return next(kind for kind in KINDS if kind in found or kind == "unit")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    """Mark each test with its kind, unless it or its module already names one."""
    for item in items:
        if not any(item.get_closest_marker(kind) for kind in KINDS):
            item.add_marker(_kind(item))


@pytest.fixture(autouse=True)
def _unit_tests_start_nothing(request, monkeypatch):
    """Fail a test marked ``unit`` that starts a process or listens on a socket all the same.

    Its kind was missed: mark it ``server`` (on the test, or in its module's ``pytestmark``).
    """
    if request.node.get_closest_marker("unit") is None:
        yield
        return
    tried = []

    def refuse(what):
        def refused(*args, **kwargs):
            tried.append(what)
            raise AssertionError(f"{request.node.nodeid} is marked unit but tried to {what}")

        return refused

    monkeypatch.setattr(subprocess.Popen, "_execute_child", refuse("start a process"))
    for name in ("fork", "forkpty", "posix_spawn", "posix_spawnp"):
        monkeypatch.setattr(os, name, refuse(f"call os.{name}"))
    monkeypatch.setattr(socket.socket, "listen", refuse("listen on a socket"))
    yield
    if tried:  # also when the test caught the error
        pytest.fail(
            f"{request.node.nodeid} is marked unit but tried to {', '.join(tried)}: "
            "mark it pytest.mark.server",
            pytrace=False,
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


async def raw_request(
    port: int, method: str, target: str, headers: dict | None = None
) -> tuple[int, HTTPHeaders]:
    """Send one request with its target exactly as written (tabs, backslashes and all,
    which HTTP clients would escape or refuse); the answer's status and headers."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    fields = {"Host": f"127.0.0.1:{port}", "Connection": "close", **(headers or {})}
    lines = [f"{method} {target} HTTP/1.1", *(f"{k}: {v}" for k, v in fields.items())]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin1"))
    head = await reader.readuntil(b"\r\n\r\n")
    writer.close()
    start, _, fields_text = head.decode("latin1").partition("\r\n")
    return parse_response_start_line(start).code, HTTPHeaders.parse(fields_text)


async def cookie_session(api) -> dict:
    """Headers of a browser logged in with a session cookie (not the token, which
    would skip Jupyter's Origin checks)."""
    token = api.serverapp.identity_provider.token
    no_auth = {"Authorization": ""}
    login = await api.fetch("login", headers=dict(no_auth), raise_error=False)
    xsrf = login.headers["Set-Cookie"].split("_xsrf=", 1)[1].split(";", 1)[0]
    posted = await api.fetch(
        "login",
        method="POST",
        body=f"password={token}&_xsrf={xsrf}",
        headers={**no_auth, "Cookie": f"_xsrf={xsrf}"},
        follow_redirects=False,
        raise_error=False,
    )
    assert posted.code == 302, posted.code
    cookies = "; ".join(c.split(";", 1)[0] for c in posted.headers.get_list("Set-Cookie"))
    return {**no_auth, "Cookie": f"{cookies}; _xsrf={xsrf}"}


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


@pytest.fixture
def echo_backend(tb_config, fake_python):
    """Jobs run ``ws_echo_backend.py`` instead of TensorBoard (request it before ``api``)."""
    backend = Path(__file__).with_name("ws_echo_backend.py")
    tb_config["tensorboard_python"] = fake_python(f'exec {sys.executable} {backend} "$@"')


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
    tb_config.update(s3_endpoint_url=moto_endpoint, mirror_cache_dir=str(tmp_path / "cache"))
    client = boto3_client(moto_endpoint)
    return Bucket(client, new_bucket(client), moto_endpoint)


@pytest.fixture
def dead_endpoint(aws_env, tb_config, tmp_path):
    """An S3 endpoint on a loopback port where nothing listens.

    An s3:// job's first sync then fails and is retried until the startup timeout.
    Request it before ``api``.
    """
    server, endpoint = start_moto()
    server.stop()
    tb_config.update(s3_endpoint_url=endpoint, mirror_cache_dir=str(tmp_path / "cache"))
    return endpoint


@dataclass
class Bucket:
    """A fresh bucket on moto, and the client that made it."""

    client: object
    bucket: str
    endpoint: str

    def put(self, key: str, body: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=body)


# -- Other remote sources: GCS emulator, Azurite, a private sshd (tests/source_servers.py) ---


@pytest.fixture(scope="session")
def gcs_server(tmp_path_factory):
    """gcp-storage-emulator on loopback for the session."""
    from source_servers import start_gcs

    server = start_gcs(tmp_path_factory.mktemp("gcs"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def azurite_server(tmp_path_factory):
    """Azurite's blob service on loopback for the session (skips if it is not installed)."""
    from source_servers import azurite_available, start_azurite

    if not azurite_available():
        if os.environ.get("CI"):
            raise RuntimeError("Azure tests need Azurite: make install puts it in the venv")
        pytest.skip("Azurite is not installed (make install, or npm install azurite)")
    server = start_azurite(tmp_path_factory.mktemp("azurite"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sshd_server(tmp_path_factory):
    """A private sshd with SFTP on loopback for the session (skips without OpenSSH)."""
    from source_servers import sshd_available, start_sshd

    if not sshd_available():
        if os.environ.get("CI"):
            raise RuntimeError("SSH tests need OpenSSH: .ci/run installs it with apt-get")
        pytest.skip("OpenSSH is not installed (apt-get install openssh-server)")
    server = start_sshd(tmp_path_factory.mktemp("sshd"))
    yield server
    server.stop()
