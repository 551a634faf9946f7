"""``jupyter forgather-tb`` run as a real subprocess against real servers and TensorBoards."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest
from conftest import write_scalars

from jupyter_forgather_tb.client import NO_SERVER_HELP


def clean_env(**extra) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FORGATHER_TB_", "JUPYTERHUB_", "JUPYTER_RUNTIME_DIR"))
    }
    return {**env, **extra}


async def cli(*args, env=None, cwd=None):
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "jupyter",
        "forgather-tb",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=cwd,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode, out.decode(), err.decode()


@pytest.fixture
def server_env(jp_serverapp, jp_base_url):
    return clean_env(
        FORGATHER_TB_SERVER=f"http://127.0.0.1:{jp_serverapp.port}{jp_base_url}",
        FORGATHER_TB_TOKEN=jp_serverapp.identity_provider.token,
    )


async def test_launch_wait_list_show_output_kill(server_env, api, logdir):
    code, out, err = await cli("launch", "logs", "--wait", "--title", "My runs", env=server_env)
    assert code == 0, err
    assert "My runs: running" in out and "/tb/" in out
    job_id = (await api.json("GET", "jobs"))[0]["id"]
    assert out.strip().endswith(f"/tb/{job_id}/")

    code, out, _ = await cli("launch", "logs", "--title", "My runs", env=server_env)
    assert code == 0 and "(reused)" in out

    code, out, _ = await cli("list", env=server_env)
    assert code == 0
    header, row = out.splitlines()
    assert header.split() == ["ID", "STATUS", "AGE", "LABEL", "LOGDIR"]
    assert row.startswith(job_id) and "running" in row and str(logdir) in row

    code, out, _ = await cli("list", "--json", env=server_env)
    assert [j["id"] for j in json.loads(out)] == [job_id]

    code, out, _ = await cli("show", job_id, env=server_env)
    assert code == 0 and f"id:       {job_id}" in out and "status:   running" in out

    code, out, _ = await cli("output", job_id, env=server_env)
    assert code == 0 and "TensorBoard serving at" in out

    follow = asyncio.ensure_future(cli("output", job_id, "-f", env=server_env))
    await asyncio.sleep(1.5)
    assert not follow.done()  # following a live job
    code, out, _ = await cli("kill", job_id, env=server_env)
    assert code == 0 and "killed" in out
    code, out, _ = await follow
    assert code == 0 and "TensorBoard serving at" in out


async def test_errors_have_exit_codes_and_clear_messages(server_env, api, logdir, tmp_path):
    code, _, err = await cli("launch", "logs", "--reload_interval", "-1", env=server_env)
    assert code == 2 and "reload_interval: must be" in err
    code, _, err = await cli("launch", "nowhere", env=server_env)
    assert code == 1 and "logdir:" in err and "not an existing directory" in err
    code, _, err = await cli("show", "nope", env=server_env)
    assert code == 1 and "no TensorBoard job with id 'nope'" in err
    code, _, err = await cli("frobnicate", env=server_env)
    assert code == 2
    wrong = {**server_env, "FORGATHER_TB_TOKEN": "wrong"}
    code, _, err = await cli("list", env=wrong)
    assert code == 1 and "refused the request" in err and "check the token" in err
    empty = tmp_path / "empty-runtime"
    empty.mkdir()
    code, _, err = await cli("list", env=clean_env(JUPYTER_RUNTIME_DIR=str(empty)))
    assert code == 1 and NO_SERVER_HELP in err


async def test_failed_launch_shows_the_error_and_output(server_env, api, logdir, tb_config):
    manager = api.serverapp.web_app.settings["forgather_tb_manager"]
    script = logdir.parent / "broken-python"
    script.write_text(f'#!/bin/sh\nexec {sys.executable} "$@" --no_such_flag\n')
    script.chmod(0o755)
    manager.settings.python = str(script)
    code, _, err = await cli("launch", "logs", "--wait", env=server_env)
    assert code == 1
    assert "status:   failed" in err and "unrecognized arguments: --no_such_flag" in err


class JupyterProcess:
    """A second real Jupyter server, found through the shared runtime directory."""

    def __init__(self, root, runtime):
        self.token = "second-server-token"
        with socket_port() as port:
            self.port = port
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyter",
                "server",
                "--allow-root",
                "--no-browser",
                f"--port={self.port}",
                f"--IdentityProvider.token={self.token}",
                f"--ServerApp.root_dir={root}",
            ],
            env=clean_env(JUPYTER_RUNTIME_DIR=str(runtime)),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def jobs(self):
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/forgather-tb/api/jobs",
            headers={"Authorization": f"token {self.token}"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())


class socket_port:
    def __enter__(self):
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        return self.sock.getsockname()[1]

    def __exit__(self, *exc):
        self.sock.close()


@pytest.fixture
def second_server(jp_serverapp, tmp_path):
    root = tmp_path / "second-root"
    write_scalars(root / "exp" / "run", "loss", [1.0])
    server = JupyterProcess(root, jp_serverapp.runtime_dir)
    deadline = time.monotonic() + 60
    while True:
        try:
            server.jobs()
            break
        except OSError:
            assert server.proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
    yield root, server
    server.proc.send_signal(signal.SIGTERM)
    server.proc.wait(timeout=30)


async def test_discovery_picks_the_server_whose_root_holds_the_cwd(
    second_server, jp_serverapp, api, logdir
):
    root, server = second_server
    if not os.path.exists(jp_serverapp.info_file):
        jp_serverapp.write_server_info_file()
    env = clean_env(JUPYTER_RUNTIME_DIR=jp_serverapp.runtime_dir)
    code, out, _ = await cli("servers", env=env)
    assert code == 0
    assert f":{jp_serverapp.port}/" in out and f":{server.port}/" in out

    code, out, err = await cli("launch", "exp", env=env, cwd=str(root / "exp"))
    assert code == 0, err
    assert [j["label"] for j in server.jobs()] == ["exp"]
    assert await api.json("GET", "jobs") == []

    code, out, err = await cli("launch", "logs", env=env, cwd=str(logdir))
    assert code == 0, err
    assert [j["label"] for j in await api.json("GET", "jobs")] == ["logs"]
