"""client.py: server discovery, and REST errors mapped to ClientError with the server's words."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from jupyter_forgather_tb.clients.client import (
    NO_SERVER_HELP,
    Client,
    ClientError,
    NoServerFound,
    ServerInfo,
    find_server,
)


def server_file(runtime, name, root, port, token="t", **extra):
    """A jpserver file as a running server leaves it; our own pid keeps it 'running'."""
    info = {
        "url": f"http://localhost:{port}/",
        "base_url": "/",
        "token": token,
        "root_dir": str(root),
        "pid": os.getpid(),
        "port": port,
        **extra,
    }
    (runtime / f"jpserver-{name}.json").write_text(json.dumps(info))


@pytest.fixture
def two_servers(tmp_path):
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    (tmp_path / "home" / "project" / "runs").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    server_file(runtime, "1", tmp_path / "home", 8001, token="outer")
    server_file(runtime, "2", tmp_path / "home" / "project", 8002, token="inner")
    return tmp_path, str(runtime)


def test_the_deepest_root_holding_the_cwd_wins(two_servers):
    top, runtime = two_servers
    inner = find_server(cwd=str(top / "home" / "project" / "runs"), env={}, runtime_dir=runtime)
    assert (inner.url, inner.token, inner.local) == ("http://localhost:8002/", "inner", True)
    assert inner.source.startswith("the running server whose root holds")
    outer = find_server(cwd=str(top / "home"), env={}, runtime_dir=runtime)
    assert (outer.url, outer.token) == ("http://localhost:8001/", "outer")
    token = find_server(token="mine", cwd=str(top / "home"), env={}, runtime_dir=runtime)
    assert (token.url, token.token) == ("http://localhost:8001/", "mine")


def test_a_jupyter_terminal_uses_its_own_server(two_servers):
    top, runtime = two_servers
    env = {"JUPYTER_SERVER_URL": "http://localhost:8001/"}
    found = find_server(cwd=str(top / "home" / "project"), env=env, runtime_dir=runtime)
    assert found.url == "http://localhost:8001/"


def test_outside_every_root_the_only_server_or_an_error_naming_them(two_servers, tmp_path):
    top, runtime = two_servers
    with pytest.raises(NoServerFound, match="Several Jupyter servers are running") as error:
        find_server(cwd=str(top / "elsewhere"), env={}, runtime_dir=runtime)
    assert "localhost:8001" in error.value.message and "--server URL" in error.value.message
    os.remove(os.path.join(runtime, "jpserver-2.json"))
    only = find_server(cwd=str(top / "elsewhere"), env={}, runtime_dir=runtime)
    assert only.url == "http://localhost:8001/" and only.source == "the only running server"


def test_no_server_says_so_and_how_to_fix_it(tmp_path):
    with pytest.raises(NoServerFound) as error:
        find_server(env={}, runtime_dir=str(tmp_path))
    assert error.value.message == NO_SERVER_HELP
    assert (
        "--server URL --token TOKEN" in NO_SERVER_HELP and "FORGATHER_TB_SERVER" in NO_SERVER_HELP
    )


def test_explicit_server_and_variables_win_over_discovery(two_servers):
    _, runtime = two_servers
    env = {"FORGATHER_TB_SERVER": "http://h:1/x", "FORGATHER_TB_TOKEN": "env-token"}
    from_env = find_server(env=env, runtime_dir=runtime)
    assert (from_env.url, from_env.token, from_env.local) == ("http://h:1/x/", "env-token", False)
    given = find_server("h:2/y/", "flag-token", env=env, runtime_dir=runtime)
    assert (given.url, given.token, given.source) == ("http://h:2/y/", "flag-token", "--server")


@pytest.mark.parametrize(
    ("extra", "url"),
    [
        ({"JUPYTERHUB_SERVICE_URL": "http://127.0.0.1:41234/user/alice/"}, "127.0.0.1:41234"),
        ({"JUPYTERHUB_SERVICE_URL": "http://:8888/user/alice/"}, "127.0.0.1:8888"),
        ({"JUPYTERHUB_SERVICE_URL": "http://0.0.0.0:8888/"}, "127.0.0.1:8888"),
        ({"JUPYTERHUB_SERVICE_URL": "http://*:8888/user/alice/"}, "127.0.0.1:8888"),
        ({"JUPYTER_PORT": "9999"}, "127.0.0.1:9999"),
    ],
)
def test_inside_a_jupyterhub_server_its_variables_are_used(two_servers, extra, url):
    top, runtime = two_servers
    env = {
        "JUPYTERHUB_API_TOKEN": "hub-token",
        "JUPYTERHUB_SERVICE_PREFIX": "/user/alice/",
        "JUPYTERHUB_PUBLIC_URL": "https://hub.example.org/",
        **extra,
    }
    server = find_server(cwd=str(top / "home"), env=env, runtime_dir=runtime)
    assert server.url == f"http://{url}/user/alice/"
    assert (server.token, server.base_path) == ("hub-token", "/user/alice/")
    assert server.browser_url("/user/alice/tb/x/") == "https://hub.example.org/user/alice/tb/x/"
    del env["JUPYTERHUB_PUBLIC_URL"]  # a Hub without public_url: the server's own is no use
    server = find_server(cwd=str(top / "home"), env=env, runtime_dir=runtime)
    assert server.browser_url("/user/alice/tb/x/") == "/user/alice/tb/x/"


def test_servers_on_a_unix_socket_are_left_out(tmp_path):
    server_file(tmp_path, "1", tmp_path, 0, sock="/tmp/jupyter.sock")
    with pytest.raises(NoServerFound):
        find_server(env={}, runtime_dir=str(tmp_path))


def in_thread(fn, *args):
    """Run a blocking client call off the loop the server under test runs on."""
    return asyncio.get_running_loop().run_in_executor(None, fn, *args)


@pytest.fixture
def client(jp_serverapp, jp_base_url, jp_fetch):
    """A client of the test server (jp_fetch is what makes that server listen)."""
    url = f"http://127.0.0.1:{jp_serverapp.port}{jp_base_url}"
    return Client(ServerInfo(url, jp_serverapp.identity_provider.token, "test"), timeout=10)


async def test_refusals_carry_the_servers_message_field_and_status(client, logdir):
    with pytest.raises(ClientError) as error:
        await in_thread(client.launch, {"logdir": "logs", "reload_interval": -1})
    assert (error.value.status, error.value.field) == (400, "reload_interval")
    assert error.value.message.startswith("reload_interval: must be a number of seconds")
    with pytest.raises(ClientError) as error:
        await in_thread(client.job, "no-such-job")
    assert error.value.status == 404 and "no TensorBoard job with id" in error.value.message


async def test_relaunch_starts_a_new_job_with_the_old_options_and_the_given_memory_limit(
    client, api, logdir
):
    first, _ = await in_thread(
        client.launch, {"logdir": "logs", "window_title": "sweep", "memory_limit": "1G"}
    )
    first = await api.wait_status(first["id"], "running")
    assert first["limits"]["memory_bytes"] == 2**30
    with pytest.raises(ClientError) as error:
        await in_thread(client.relaunch, first["id"])  # still running: kill it first
    assert error.value.status == 409 and error.value.message
    assert len(await api.json("GET", "jobs")) == 1

    await api.kill(first["id"])
    second = await in_thread(client.relaunch, first["id"], "2G")
    assert second["id"] != first["id"]
    assert second["options"]["logdir"] == first["options"]["logdir"]
    assert second["options"]["window_title"] == "sweep"
    assert second["limits"]["memory_bytes"] == 2 * 2**30
    await api.wait_status(second["id"], "running")
    await api.kill(second["id"])
    third = await in_thread(client.relaunch, second["id"])  # keeps the old job's limit
    assert third["limits"]["memory_bytes"] == 2 * 2**30
    await api.wait_status(third["id"], "running")
    with pytest.raises(ClientError) as error:
        await in_thread(client.relaunch, "no-such-job")
    assert error.value.status == 404


async def test_a_wrong_token_or_a_wrong_url_is_explained(client, jp_serverapp):
    wrong = Client(ServerInfo(client.server.url, "wrong", "test"), timeout=10)
    with pytest.raises(ClientError, match=r"refused the request.*check the token"):
        await in_thread(wrong.jobs)
    base_missing = ServerInfo(f"http://127.0.0.1:{jp_serverapp.port}/", client.server.token, "t")
    with pytest.raises(ClientError, match="does not serve the TensorBoard API"):
        await in_thread(Client(base_missing, timeout=10).jobs)


def test_an_unreachable_or_non_jupyter_server_is_explained():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    closed = Client(ServerInfo(f"http://127.0.0.1:{port}/", "", "test"), timeout=5)
    with pytest.raises(ClientError, match="Cannot reach the Jupyter server"):
        closed.jobs()

    class LoginPage(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(b"<html>Sign in</html>")

        def log_message(self, *args):
            pass

    httpd = HTTPServer(("127.0.0.1", 0), LoginPage)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{httpd.server_port}/"
        with pytest.raises(ClientError, match="did not answer with JSON"):
            Client(ServerInfo(url, "", "test"), timeout=5).jobs()
    finally:
        httpd.shutdown()
        httpd.server_close()
