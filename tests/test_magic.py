"""``%forgather_tb`` in a real IPython shell, against a real server and TensorBoard."""

from __future__ import annotations

import asyncio
import re

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output


@pytest.fixture
def shell(jp_serverapp, jp_base_url, monkeypatch):
    for name in ("JUPYTERHUB_API_TOKEN", "JUPYTERHUB_SERVICE_PREFIX"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FORGATHER_TB_SERVER", f"http://127.0.0.1:{jp_serverapp.port}{jp_base_url}")
    monkeypatch.setenv("FORGATHER_TB_TOKEN", jp_serverapp.identity_provider.token)
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "jupyter_forgather_tb")
    yield ip
    InteractiveShell.clear_instance()


async def magic(shell, line):
    """Run the magic off the event loop (the server under test runs on it)."""

    def run():
        with capture_output() as captured:
            shell.run_line_magic("forgather_tb", line)
        return captured

    return await asyncio.get_running_loop().run_in_executor(None, run)


def iframe_src(captured) -> str:
    html = captured.outputs[-1].data["text/html"]
    return re.search(r'<iframe src="([^"]+)"', html).group(1)


async def test_magic_shows_tensorboard_inline_and_reuses_it(shell, api, logdir, jp_base_url):
    first = await magic(shell, "--logdir logs --title Runs --height 600")
    src = iframe_src(first)
    jobs = await api.json("GET", "jobs")
    assert len(jobs) == 1 and jobs[0]["status"] == "running"
    assert src == f"{jp_base_url}tb/{jobs[0]['id']}/"  # server-relative, base URL included
    final = first.outputs[-1].data
    assert 'height="600"' in final["text/html"] and "new tab" in final["text/html"]
    assert final["text/plain"].startswith("TensorBoard Runs is running at http://")
    assert (await api.proxied(jobs[0]["id"], "")).code == 200

    second = await magic(shell, "--logdir logs --title Runs")
    assert iframe_src(second) == src
    assert "reused" in second.outputs[-1].data["text/html"]
    assert len(await api.json("GET", "jobs")) == 1

    listed = await magic(shell, "list")
    assert jobs[0]["id"] in listed.stdout and "running" in listed.stdout
    output = await magic(shell, f"output {jobs[0]['id']}")
    assert "TensorBoard serving at" in output.stdout
    killed = await magic(shell, f"kill {jobs[0]['id']}")
    assert "killed" in killed.stdout
    assert (await api.job(jobs[0]["id"]))["status"] == "killed"


async def test_failure_shows_error_and_output_not_a_traceback(shell, api, logdir):
    manager = api.serverapp.web_app.settings["forgather_tb_manager"]
    script = logdir.parent / "broken-python"
    script.write_text("#!/bin/sh\necho 'cannot load plugins' >&2\nexit 3\n")
    script.chmod(0o755)
    manager.settings.python = str(script)
    captured = await magic(shell, "--logdir logs")
    final = captured.outputs[-1].data
    assert "failed" in final["text/plain"] and "cannot load plugins" in final["text/plain"]
    assert "<pre>cannot load plugins</pre>" in final["text/html"]
    assert "Traceback" not in captured.stdout + captured.stderr


async def test_bad_options_get_the_servers_messages(shell, api, logdir):
    with pytest.raises(UsageError, match="reload_interval: must be a number"):
        await magic(shell, "--logdir logs --reload_interval 0")
    missing = await magic(shell, "--logdir nowhere")
    assert "logdir: 'nowhere' is not an existing directory" in missing.stdout
    with pytest.raises(UsageError, match="required: --logdir"):
        await magic(shell, "")
    assert await api.json("GET", "jobs") == []


async def test_no_server_found_says_how_to_fix_it(monkeypatch, tmp_path, jp_serverapp):
    for name in ("FORGATHER_TB_SERVER", "FORGATHER_TB_TOKEN", "JUPYTERHUB_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path))
    ip = InteractiveShell.instance()
    try:
        ip.run_line_magic("load_ext", "jupyter_forgather_tb")
        captured = await magic(ip, "list")
    finally:
        InteractiveShell.clear_instance()
    assert "No running Jupyter server was found" in captured.stdout
    assert "--server URL --token TOKEN" in captured.stdout


def test_hub_environment_is_used_inside_a_hub(monkeypatch):
    from jupyter_forgather_tb.client import find_server

    env = {
        "JUPYTERHUB_API_TOKEN": "hub-token",
        "JUPYTERHUB_SERVICE_PREFIX": "/user/alice/",
        "JUPYTERHUB_SERVICE_URL": "http://127.0.0.1:41234/user/alice/",
    }
    server = find_server(env=env)
    assert server.url == "http://127.0.0.1:41234/user/alice/"
    assert server.token == "hub-token" and server.base_path == "/user/alice/"
    explicit = find_server("http://h:1/x", "t", env=env)
    assert (explicit.url, explicit.token) == ("http://h:1/x/", "t")
