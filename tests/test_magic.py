"""``%forgather_tb`` in a real IPython shell, against a real server and TensorBoard."""

from __future__ import annotations

import asyncio
import os
import re
import shlex

import pytest
from conftest import free_port, write_scalars
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from traitlets.config import Config


@pytest.fixture
def shell(jp_serverapp, jp_fetch, monkeypatch):
    """An IPython shell with the extension loaded, finding the test server by itself.

    The server under test is the one running server in the runtime directory, as
    a kernel's own server would be (jp_fetch is what makes it listen).
    """
    for name in list(os.environ):
        if name.startswith(("FORGATHER_TB_", "JUPYTERHUB_")) or name == "JUPYTER_SERVER_URL":
            monkeypatch.delenv(name)
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", jp_serverapp.runtime_dir)
    if not os.path.exists(jp_serverapp.info_file):
        jp_serverapp.write_server_info_file()
    config = Config()
    config.HistoryManager.hist_file = ":memory:"  # nothing left to write at exit
    ip = InteractiveShell.instance(config=config)
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
    return re.search(r'<iframe[^>]* src="([^"]+)"', html).group(1)


async def test_magic_shows_tensorboard_inline_and_reuses_it(
    shell, api, logdir, jp_base_url, monkeypatch
):
    monkeypatch.chdir(logdir)  # like a notebook next to its runs: relative to the kernel's cwd
    first = await magic(shell, "--logdir run1 --title Runs --height 600")
    (job,) = await api.json("GET", "jobs")
    assert job["status"] == "running" and job["options"]["logdir"] == str(logdir / "run1")
    assert iframe_src(first) == f"{jp_base_url}tb/{job['id']}/"  # server-relative, with base URL
    progress = first.outputs[0].data["text/plain"]
    assert re.match(r"TensorBoard Runs: (queued|starting)", progress)
    final = first.outputs[-1].data
    assert 'height="600"' in final["text/html"]
    assert f'<a href="{jp_base_url}tb/{job["id"]}/" target="_blank"' in final["text/html"]
    assert final["text/plain"] == (
        f"TensorBoard Runs is running at http://localhost:{api.serverapp.port}"
        f"{jp_base_url}tb/{job['id']}/"
    )
    assert (await api.proxied(job["id"], "")).code == 200
    assert "Traceback" not in first.stdout + first.stderr

    second = await magic(shell, f"--logdir {logdir / 'run1'} --title Runs")
    assert iframe_src(second) == iframe_src(first)
    assert "reused a live job" in second.outputs[-1].data["text/html"]
    assert len(await api.json("GET", "jobs")) == 1

    listed = (await magic(shell, "list")).outputs[-1].data
    assert re.match(
        rf"{job['id']}\s+running\s+\S+\s+\S+\s+Runs\s+{logdir / 'run1'}$", listed["text/plain"]
    )
    assert f'<a href="{jp_base_url}tb/{job["id"]}/"' in listed["text/html"]
    output = await magic(shell, f"output {job['id']}")
    assert "TensorBoard serving at" in output.stdout
    killed = await magic(shell, f"kill {job['id']}")
    assert killed.stdout == f"TensorBoard Runs ({job['id']}) is killed.\n"
    assert (await api.job(job["id"]))["status"] == "killed"


async def test_magic_relaunches_an_ended_job_with_a_new_memory_limit(
    shell, api, logdir, jp_base_url, monkeypatch
):
    monkeypatch.chdir(logdir)
    await magic(shell, "--logdir run1 --title Runs --memory_limit 1G")
    (job,) = await api.json("GET", "jobs")
    assert job["status"] == "running" and job["limits"]["memory_bytes"] == 2**30
    refused = await magic(shell, f"relaunch {job['id']}")  # still running
    assert refused.outputs == [] and "Traceback" not in refused.stdout + refused.stderr
    assert len(await api.json("GET", "jobs")) == 1

    await api.kill(job["id"])
    again = await magic(shell, f"relaunch {job['id']} --memory_limit 2G --height 500")
    (new,) = [j for j in await api.json("GET", "jobs") if j["id"] != job["id"]]
    assert new["status"] == "running" and new["limits"]["memory_bytes"] == 2 * 2**30
    assert new["options"]["window_title"] == "Runs"
    assert iframe_src(again) == f"{jp_base_url}tb/{new['id']}/"
    assert 'height="500"' in again.outputs[-1].data["text/html"]
    listed = (await magic(shell, "list")).outputs[-1].data
    assert "<th>memory</th><th>CPU</th>" in listed["text/html"]


async def test_failure_shows_error_and_output_not_a_traceback(
    shell, api, logdir, jp_serverapp, jp_base_url, monkeypatch
):
    manager = api.serverapp.web_app.settings["forgather_tb_manager"]
    script = logdir.parent / "broken-python"
    script.write_text("#!/bin/sh\necho 'cannot load plugins' >&2\nexit 3\n")
    script.chmod(0o755)
    manager.settings.python = str(script)
    # An explicit server: a relative log directory starts at the server's root.
    monkeypatch.chdir("/")
    url = f"http://127.0.0.1:{jp_serverapp.port}{jp_base_url}"
    token = jp_serverapp.identity_provider.token
    captured = await magic(shell, f"--logdir logs --server {url} --token {token}")
    final = captured.outputs[-1].data
    assert final["text/plain"] == (
        "TensorBoard logs failed: TensorBoard exited with code 3\ncannot load plugins"
    )
    assert "<pre>cannot load plugins</pre>" in final["text/html"]
    assert "Traceback" not in captured.stdout + captured.stderr


async def test_bad_options_get_the_servers_messages(shell, api, logdir, jp_root_dir, monkeypatch):
    monkeypatch.chdir(jp_root_dir)
    with pytest.raises(UsageError, match="reload_interval: must be a number of seconds above 0"):
        await magic(shell, "--logdir logs --reload_interval 0")
    with pytest.raises(UsageError, match="samples_per_plugin: must look like"):
        await magic(shell, "--logdir logs --samples_per_plugin images")
    with pytest.raises(UsageError, match="required: --logdir"):
        await magic(shell, "")
    missing = await magic(shell, "--logdir nowhere")
    # (stderr also holds the in-process server's log line for the 400)
    assert f"\nlogdir: '{jp_root_dir / 'nowhere'}' is not an existing directory\n" in (
        "\n" + missing.stderr
    )
    helped = await magic(shell, "--help")
    assert "--reload_interval" in helped.stdout and "--height" in helped.stdout
    assert await api.json("GET", "jobs") == []


async def test_no_server_found_says_how_to_fix_it(shell, monkeypatch, tmp_path):
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path))
    captured = await magic(shell, "list")
    assert captured.stderr.startswith("No running Jupyter server was found.")
    assert "--server URL --token TOKEN" in captured.stderr and captured.stdout == ""


async def test_plain_text_shows_controls_in_names_escaped(shell, api, jp_root_dir, monkeypatch):
    # A terminal IPython prints text/plain as it is: escapes in a directory's name or a
    # bidi override in a title must not reach it raw.
    name = "red\x1b[31m\x07"
    write_scalars(jp_root_dir / name / "run", "loss", [1.0])
    monkeypatch.chdir(jp_root_dir)
    launched = await magic(shell, f"--logdir {shlex.quote(name)} --title 'abc\u202etxt'")
    (job,) = await api.json("GET", "jobs")
    assert job["status"] == "running"
    plain = [output.data["text/plain"] for output in launched.outputs]
    plain.append((await magic(shell, "list")).outputs[-1].data["text/plain"])
    plain.append((await magic(shell, f"kill {job['id']}")).stdout)
    assert plain[-1] == f"TensorBoard abc\\u202etxt ({job['id']}) is killed.\n"
    assert "red\\x1b[31m\\x07" in plain[-2]
    for text in plain:
        assert "abc\\u202etxt" in text and not set(text) & {"\x1b", "\x07", "\u202e"}, text


async def test_magic_compares_folders_and_lists_their_activity(
    shell, api, jp_root_dir, monkeypatch
):
    write_scalars(jp_root_dir / "a" / "runs" / "lr1", "loss", [1.0])
    write_scalars(jp_root_dir / "b" / "runs" / "lr2", "loss", [2.0])
    monkeypatch.chdir(jp_root_dir)
    shown = await magic(shell, "--logdir a/runs --logdir b/runs")
    (job,) = await api.json("GET", "jobs")
    assert job["logdirs"] == {
        "runs": str(jp_root_dir / "a" / "runs"),
        "runs-2": str(jp_root_dir / "b" / "runs"),
    }
    assert iframe_src(shown) == job["url"]
    for _ in range(300):
        if (await api.job(job["id"]))["activity"]:
            break
        await asyncio.sleep(0.1)
    listed = (await magic(shell, "list")).outputs[-1].data["text/html"]
    assert "<th>CPU</th><th>activity</th>" in listed
    assert re.search(r"<td>live, 2 runs, \d+ s ago</td><td>compare: runs, runs-2</td>", listed)
    await api.kill(job["id"])


@pytest.mark.tb_config(suspend_after=2)
async def test_magic_shows_a_suspended_job_whose_view_wakes_it(
    shell, api, logdir, jp_base_url, monkeypatch
):
    monkeypatch.chdir(logdir)
    await magic(shell, "--logdir run1 --title Runs")
    (job,) = await api.json("GET", "jobs")
    await api.wait_status(job["id"], "suspended", timeout=30)
    listed = (await magic(shell, "list")).outputs[-1].data
    assert listed["text/plain"].split()[:2] == [job["id"], "suspended"]
    assert f'<a href="{jp_base_url}tb/{job["id"]}/" target="_blank"' in listed["text/html"]

    shown = await magic(shell, "--logdir run1 --title Runs")
    assert iframe_src(shown) == f"{jp_base_url}tb/{job['id']}/"
    assert shown.outputs[-1].data["text/plain"] == (
        f"TensorBoard Runs is suspended and wakes when opened at "
        f"http://localhost:{api.serverapp.port}{jp_base_url}tb/{job['id']}/ (reused a live job)"
    )
    assert (await api.job(job["id"]))["status"] == "suspended"  # until the view asks
    assert (await api.proxied(job["id"], "")).code == 200
    assert (await api.job(job["id"]))["wakes"] == 1


async def test_magic_warns_that_a_port_job_is_open_to_local_users(shell, api, logdir, monkeypatch):
    monkeypatch.chdir(logdir)
    port = free_port()
    shown = (await magic(shell, f"--logdir run1 --title Runs --port {port}")).outputs[-1].data
    warning = (
        f"listens on port {port} of 127.0.0.1: every user of this machine can open it "
        "without Jupyter's login"
    )
    assert shown["text/plain"].splitlines()[1] == f"Warning: TensorBoard Runs {warning}"
    assert (
        f"<p><b>Warning</b>: TensorBoard Runs {warning.replace(chr(39), '&#x27;')}</p>"
        in (shown["text/html"])
    )
    (job,) = await api.json("GET", "jobs")
    listed = (await magic(shell, "list")).outputs[-1].data
    assert listed["text/plain"].splitlines()[-1] == f"Warning: {job['id']} {warning}"
    assert f"<p><b>Warning</b>: {job['id']} " in listed["text/html"]
    await api.kill(job["id"])
    ended = (await magic(shell, "list")).outputs[-1].data
    assert "Warning" not in ended["text/plain"] + ended["text/html"]
