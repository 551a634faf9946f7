"""``jupyter forgather-tb`` run as a real subprocess against real servers and TensorBoards."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import re
import sys
from pathlib import Path

import pytest
from conftest import JupyterServerProcess, write_scalars

from jupyter_forgather_tb.clients.cli import _parser
from jupyter_forgather_tb.clients.client import NO_SERVER_HELP
from jupyter_forgather_tb.clients.terminal import printable


def clean_env(**extra) -> dict:
    """This process's environment without anything that would point discovery elsewhere."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FORGATHER_TB_", "JUPYTERHUB_", "JUPYTER_RUNTIME_DIR", "BROWSER"))
        and k != "JUPYTER_SERVER_URL"
    }
    return {**env, **extra}


async def cli(*args, env=None, cwd=None, tty=False):
    """Run ``jupyter forgather-tb ARGS``; stderr on a pseudo-terminal when ``tty``."""
    master = slave = None
    if tty:
        master, slave = pty.openpty()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "jupyter",
        "forgather-tb",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=slave if tty else asyncio.subprocess.PIPE,
        env=env,
        cwd=cwd,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    if tty:
        os.close(slave)
        err = b""
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO: the terminal's other end is closed
                break
            if not data:
                break
            err += data
        os.close(master)
    return proc.returncode, out.decode(), err.decode()


@pytest.fixture
def server_url(jp_serverapp, jp_base_url):
    return f"http://127.0.0.1:{jp_serverapp.port}{jp_base_url}"


@pytest.fixture
def server_env(jp_serverapp, server_url):
    return clean_env(
        FORGATHER_TB_SERVER=server_url, FORGATHER_TB_TOKEN=jp_serverapp.identity_provider.token
    )


async def test_every_command_against_a_real_server(
    server_env, server_url, api, logdir, jp_serverapp, tmp_path
):
    args = ("launch", "logs", "--wait", "--title", "My runs")
    code, out, err = await cli(*args, env=server_env, tty=True)
    assert code == 0, err
    job_id = (await api.json("GET", "jobs"))[0]["id"]
    assert out == f"{server_url}tb/{job_id}/\n"  # only the URL on stdout, for scripts
    assert re.search(r"\r\x1b\[K[-|/\\] TensorBoard My runs: (queued|starting)", err)
    assert err.endswith("\r\x1b[KTensorBoard My runs: running\r\n")  # spinner line cleared

    # --server/--token after the command; status lines off a terminal; --open opens the URL.
    opened = tmp_path / "opened"
    browser = tmp_path / "browser"
    browser.write_text(f'#!/bin/sh\necho "$1" > {opened}\n')
    browser.chmod(0o755)
    token = jp_serverapp.identity_provider.token
    args = ("launch", "logs", "--title", "My runs", "--open", "--server", server_url)
    code, out, err = await cli(*args, "--token", token, env=clean_env(BROWSER=str(browser)))
    assert code == 0, err
    assert err == "TensorBoard My runs: running, reused a live job\n"
    assert opened.read_text().strip() == out.strip() == f"{server_url}tb/{job_id}/"

    code, out, _ = await cli("list", env=server_env)
    assert code == 0
    header, row = out.splitlines()
    assert header.split() == ["ID", "STATUS", "AGE", "MEM", "CPU", "ACTIVITY", "LABEL", "LOGDIR"]
    assert row.split()[:2] == [job_id, "running"] and row.endswith(str(logdir))
    code, out, _ = await cli("list", "--json", env=server_env)
    assert code == 0 and [j["id"] for j in json.loads(out)] == [job_id]

    code, out, _ = await cli("show", job_id, env=server_env)
    assert code == 0
    assert f"id:       {job_id}" in out and "status:   running" in out
    assert f"url:      {server_url}tb/{job_id}/" in out
    assert "loader:   Rust data server, in the job's private network" in out
    code, out, _ = await cli("show", job_id, "--json", env=server_env)
    assert code == 0 and json.loads(out)["options"]["window_title"] == "My runs"

    code, out, _ = await cli("output", job_id, env=server_env)
    assert code == 0 and "TensorBoard serving at" in out

    follow = asyncio.ensure_future(cli("output", job_id, "-f", env=server_env))
    await asyncio.sleep(1.0)
    assert not follow.done()  # following a live job
    code, out, _ = await cli("kill", job_id, env=server_env)
    assert code == 0 and out == f"TensorBoard My runs ({job_id}): killed\n"
    code, out, _ = await follow
    assert code == 0 and "TensorBoard serving at" in out  # ended with the process

    code, out, _ = await cli("list", env=server_env)
    assert code == 0 and "killed" in out


async def test_errors_have_exit_codes_and_clear_messages(server_env, api, logdir, tmp_path):
    code, _, err = await cli("launch", "logs", "--reload_interval", "-1", env=server_env)
    assert code == 2 and "reload_interval: must be a number of seconds above 0" in err
    code, _, err = await cli("launch", "nowhere", env=server_env)
    assert code == 1 and "error: logdir: 'nowhere' is not an existing directory" in err
    code, _, err = await cli("show", "nope", env=server_env)
    assert code == 1 and "no TensorBoard job with id 'nope'" in err
    code, _, err = await cli("kill", "nope", env=server_env)
    assert code == 1 and "no TensorBoard job with id 'nope'" in err
    code, _, err = await cli("frobnicate", env=server_env)
    assert code == 2 and "invalid choice: 'frobnicate'" in err
    code, _, err = await cli("launch", env=server_env)
    assert code == 2 and "required: logdir" in err
    wrong = {**server_env, "FORGATHER_TB_TOKEN": "wrong"}
    code, _, err = await cli("list", env=wrong)
    assert code == 1 and "refused the request" in err and "check the token" in err
    empty = tmp_path / "empty-runtime"
    empty.mkdir()
    for command in ("list", "servers"):
        code, _, err = await cli(command, env=clean_env(JUPYTER_RUNTIME_DIR=str(empty)))
        assert code == 1 and NO_SERVER_HELP in err
    assert await api.json("GET", "jobs") == []


async def test_failed_launch_shows_the_error_and_output(server_env, api, logdir):
    manager = api.serverapp.web_app.settings["forgather_tb_manager"]
    script = logdir.parent / "broken-python"
    script.write_text(f'#!/bin/sh\nexec {sys.executable} "$@" --no_such_flag\n')
    script.chmod(0o755)
    manager.settings.python = str(script)
    code, out, err = await cli("launch", "logs", "--wait", env=server_env)
    assert code == 1 and out == ""
    assert "status:   failed" in err and "error:    TensorBoard exited with code" in err
    assert "  | " in err and "unrecognized arguments: --no_such_flag" in err


async def test_memory_limit_usage_columns_and_relaunch_from_the_command_line(
    server_env, server_url, api, logdir
):
    code, _, err = await cli("launch", "logs", "--memory_limit", "lots", env=server_env)
    assert code == 1 and "error: memory_limit: " in err  # the server's own message
    code, _, err = await cli("launch", "logs", "--memory_limit", "1G", "--wait", env=server_env)
    assert code == 0, err
    (job,) = await api.json("GET", "jobs")
    assert job["limits"]["memory_bytes"] == 2**30
    code, out, _ = await cli("show", job["id"], env=server_env)
    assert code == 0 and re.search(
        r"^limits:   memory 1 GiB, CPU nice 10, enforced by \S", out, re.M
    )

    deadline = asyncio.get_running_loop().time() + 60
    # Until a second sample: the first has no CPU figure yet (it needs an interval).
    while ((await api.job(job["id"]))["usage"] or {}).get("cpu_percent") is None:
        assert asyncio.get_running_loop().time() < deadline, "no usage sample"
        await asyncio.sleep(0.2)
    code, out, _ = await cli("list", env=server_env)
    header, row = out.splitlines()
    assert header.split()[3:5] == ["MEM", "CPU"]
    assert re.fullmatch(r"[0-9.]+[BKMG]/1G", row.split()[3]) and re.fullmatch(
        r"\d+%", row.split()[4]
    )
    code, out, _ = await cli("show", job["id"], env=server_env)
    assert re.search(r"^usage:    [0-9.]+ [KMG]?i?B of 1 GiB resident .*, CPU \d+ %$", out, re.M)

    code, _, err = await cli("relaunch", job["id"], env=server_env)
    assert code == 1 and err.startswith("error: ")  # still running: kill it first
    await api.kill(job["id"])
    args = ("relaunch", job["id"], "--memory_limit", "2G", "--wait")
    code, out, err = await cli(*args, env=server_env)
    assert code == 0, err
    (new,) = [j for j in await api.json("GET", "jobs") if j["id"] != job["id"]]
    assert out == f"{server_url}tb/{new['id']}/\n"
    assert new["status"] == "running" and new["limits"]["memory_bytes"] == 2 * 2**30
    assert new["options"]["logdir"] == job["options"]["logdir"]
    code, _, err = await cli("relaunch", "nope", env=server_env)
    assert code == 1 and "no TensorBoard job with id 'nope'" in err


@pytest.mark.tb_config(max_memory_limit="1G")
async def test_the_command_line_cannot_drop_the_cap_where_the_server_has_a_maximum(
    server_env, api, logdir
):
    code, _, err = await cli("launch", "logs", "--memory_limit", "0", env=server_env)
    assert code == 1 and "error: memory_limit: 0 asks for no cap" in err
    assert "at most 1 GiB (max_memory_limit)" in err
    job = await api.launch(logdir="logs", memory_limit="512M")
    await api.kill(job["id"])
    code, _, err = await cli("relaunch", job["id"], "--memory_limit", "0G", env=server_env)
    assert code == 1 and "(max_memory_limit)" in err
    assert [j["id"] for j in await api.json("GET", "jobs")] == [job["id"]]


def test_every_option_has_help():
    parser = _parser()
    subparsers = next(a for a in parser._actions if a.dest == "command").choices
    for name, sub in [("", parser), *subparsers.items()]:
        for action in sub._actions:
            assert action.help, f"{name} {action.option_strings or action.dest} has no help"


@pytest.fixture
def second_server(jp_serverapp, tmp_path):
    """A second real Jupyter server, found through the same runtime directory."""
    root = tmp_path / "second-root"
    write_scalars(root / "exp" / "run", "loss", [1.0])
    server = JupyterServerProcess(root, Path(jp_serverapp.runtime_dir), base_url="/")
    server.start(env=clean_env())
    yield root, server
    server.stop()


async def test_discovery_picks_the_server_whose_root_holds_the_cwd(
    second_server, jp_serverapp, api, logdir
):
    root, server = second_server
    if not os.path.exists(jp_serverapp.info_file):
        jp_serverapp.write_server_info_file()
    env = clean_env(JUPYTER_RUNTIME_DIR=jp_serverapp.runtime_dir)
    code, out, _ = await cli("servers", env=env, cwd=str(root / "exp"))
    assert code == 0
    rows = out.splitlines()
    assert rows[0].split() == ["URL", "ROOT", "PID"] and len(rows) == 4
    chosen = [row for row in rows if row.startswith("*")]
    assert len(chosen) == 1 and f":{server.port}/" in chosen[0] and str(root) in chosen[0]
    assert any(f":{jp_serverapp.port}/a%40b/" in row for row in rows)
    assert rows[-1].startswith(f"Using http://localhost:{server.port}/ (the running server")

    # A relative log directory starts at the current directory on a discovered server.
    code, out, err = await cli("launch", ".", "--wait", env=env, cwd=str(root / "exp"))
    assert code == 0, err
    (job,) = server.call("GET", "jobs")
    assert (job["label"], job["status"]) == ("exp", "running")
    assert out == f"http://localhost:{server.port}/tb/{job['id']}/\n"
    assert await api.json("GET", "jobs") == []

    code, out, err = await cli("launch", "run1", env=env, cwd=str(logdir))
    assert code == 0, err
    (job,) = await api.json("GET", "jobs")
    assert job["options"]["logdir"] == str(logdir / "run1")
    assert len(server.call("GET", "jobs")) == 1


def test_printable_escapes_controls_and_bidi_and_nothing_else():
    assert printable("red\x1b[31m\x07 \x9b2J \x7f\x00") == "red\\x1b[31m\\x07 \\x9b2J \\x7f\\x00"
    assert printable("abc\u202etxt.exe \u2066x\u2069 \u200f") == (
        "abc\\u202etxt.exe \\u2066x\\u2069 \\u200f"
    )
    assert printable("a\nb\tc\rd") == "a\\x0ab\\x09c\\x0dd"
    assert printable("a\nb\tc\rd\x1b", multiline=True) == "a\nb\tc\\x0dd\\x1b"
    plain = "Läufe/ 日本語 ✓ C:\\runs ~/logs"
    assert printable(plain) == plain


async def test_names_from_the_server_print_with_their_controls_escaped(
    server_env, api, jp_root_dir
):
    # The API refuses control characters in a title, but a log directory's name may
    # hold them, and a title may hold a bidi override.
    name = "red\x1b[31m\x07"
    write_scalars(jp_root_dir / name / "run", "loss", [1.0])
    title = "abc\u202etxt"
    code, out, err = await cli("launch", name, "--title", title, "--wait", env=server_env)
    assert code == 0, err
    (job,) = await api.json("GET", "jobs")
    assert job["options"]["logdir"].endswith(name)  # the server keeps the real name
    assert err.endswith("TensorBoard abc\\u202etxt: running\n") and "\u202e" not in err
    for args in (("list",), ("show", job["id"])):
        code, out, _ = await cli(*args, env=server_env)
        assert code == 0
        assert "red\\x1b[31m\\x07" in out and "abc\\u202etxt" in out, out
        assert not set(out) & {"\x1b", "\x07", "\u202e"}
    code, out, _ = await cli("kill", job["id"], env=server_env)
    assert code == 0 and out == f"TensorBoard abc\\u202etxt ({job['id']}): killed\n"


async def test_tensorboards_own_output_prints_with_its_controls_escaped(server_env, api, logdir):
    # Real TensorBoard echoes an argument it does not know; this one holds escapes.
    manager = api.serverapp.web_app.settings["forgather_tb_manager"]
    script = logdir.parent / "broken-python"
    script.write_bytes(
        f'#!/bin/sh\nexec {sys.executable} "$@" "--no_such_flag=\x1b]0;pwned\x07"\n'.encode()
    )
    script.chmod(0o755)
    manager.settings.python = str(script)
    code, out, err = await cli("launch", "logs", "--wait", env=server_env)
    assert code == 1 and out == ""
    assert "--no_such_flag=\\x1b]0;pwned\\x07" in err and "\x1b" not in err
    (job,) = await api.json("GET", "jobs")
    for args in (("show", job["id"]), ("output", job["id"])):
        code, out, _ = await cli(*args, env=server_env)
        assert code == 0
        assert "--no_such_flag=\\x1b]0;pwned\\x07" in out and "\x1b" not in out, out
    assert "\n" in out  # output keeps its lines


async def _activity(api, job_id, check):
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        activity = (await api.job(job_id))["activity"]
        if activity is not None and check(activity):
            return activity
        assert asyncio.get_running_loop().time() < deadline, activity
        await asyncio.sleep(0.2)


async def test_compare_launches_and_activity_in_list_and_show(server_env, api, jp_root_dir):
    write_scalars(jp_root_dir / "a" / "runs" / "lr1", "loss", [1.0])
    write_scalars(jp_root_dir / "b" / "lr2", "loss", [2.0])
    (jp_root_dir / "empty").mkdir()
    args = ("launch", "base=a/runs", "--logdir", "tuned=b", "--wait")
    code, out, err = await cli(*args, env=server_env)
    assert code == 0, err
    assert err.endswith("TensorBoard compare: base, tuned: running\n")
    (job,) = await api.json("GET", "jobs")
    assert job["logdirs"] == {
        "base": str(jp_root_dir / "a" / "runs"),
        "tuned": str(jp_root_dir / "b"),
    }
    await _activity(api, job["id"], lambda a: a["runs"] == 2)
    code, out, err = await cli("launch", "empty", "--title", "Empty", env=server_env)
    assert code == 0, err
    empty = next(j for j in await api.json("GET", "jobs") if j["label"] == "Empty")
    await _activity(api, empty["id"], lambda a: True)

    code, out, _ = await cli("list", env=server_env)
    assert code == 0
    rows = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert re.search(r" live, 2 runs, \d+ s ago ", rows[job["id"]])
    assert f"base={jp_root_dir / 'a' / 'runs'}, tuned={jp_root_dir / 'b'}" in rows[job["id"]]
    assert " waiting for event files " in rows[empty["id"]]

    code, out, _ = await cli("show", job["id"], env=server_env)
    assert re.search(r"^activity: live, 2 runs, \d+ s ago$", out, re.M)
    old = jp_root_dir.stat().st_mtime - 2 * 3600 - 60
    for path in (*jp_root_dir.rglob("*tfevents*"),):
        os.utime(path, (old, old))
    await _activity(api, job["id"], lambda a: a["stalled"])  # stall_after: 10 min
    code, out, _ = await cli("show", job["id"], env=server_env)
    assert re.search(r"^activity: idle for 2 h, 2 runs, stalled$", out, re.M)
    for listed in await api.json("GET", "jobs"):
        await api.kill(listed["id"])


@pytest.mark.tb_config(suspend_after=5)
async def test_a_suspended_job_is_shown_and_resumed_from_the_command_line(
    server_env, server_url, api, logdir
):
    job = await api.launch(logdir="logs")
    await api.wait_status(job["id"], "running")
    suspended = await api.wait_status(job["id"], "suspended", timeout=30)
    code, out, _ = await cli("list", env=server_env)
    assert code == 0 and out.splitlines()[1].split()[:2] == [job["id"], "suspended"]
    code, out, _ = await cli("show", job["id"], env=server_env)
    assert f"status:   suspended since {suspended['suspended_at']}, wakes when opened\n" in out

    code, out, err = await cli("resume", job["id"], env=server_env)
    assert code == 0, err
    assert out == f"TensorBoard logs ({job['id']}): running\n"
    await api.proxied(job["id"], "")  # a request: not idle for suspend_after from now
    code, out, _ = await cli("show", job["id"], env=server_env)
    assert "status:   running\n" in out and "wakes:    1\n" in out
    code, _, err = await cli("resume", job["id"], env=server_env)
    assert code == 1 and "is running: it is not suspended, so there is nothing to resume" in err

    # A launch --wait that reuses a suspended job wakes it and prints its URL once it runs.
    await api.wait_status(job["id"], "suspended", timeout=30)
    code, out, err = await cli("launch", "logs", "--wait", env=server_env, cwd=logdir.parent)
    assert code == 0, err
    assert out == f"{server_url}tb/{job['id']}/\n"
    woken = await api.job(job["id"])
    assert woken["status"] == "running" and woken["wakes"] == 2


@pytest.mark.tb_config(connections={"minio": {"protocol": "s3", "endpoint_url": "http://x:9"}})
async def test_launch_sends_a_connection_and_says_which_ones_the_server_has(server_env, api):
    code, _, err = await cli("launch", "s3://bucket/runs", "--connection", "nope", env=server_env)
    assert code == 1
    assert "no connection named 'nope' on this server (configured: minio)" in err
    code, _, err = await cli("launch", "gs://bucket/runs", "--connection", "minio", env=server_env)
    assert code == 1 and "connection 'minio' is for s3:// sources, not gs://" in err


def test_show_says_how_a_remote_jobs_mirror_is_doing():
    from jupyter_forgather_tb.clients.cli import _mirror_text

    mirror = {"objects": 12, "bytes": 3 << 20, "last_sync": None, "requests": 40}
    copying = {"files": 3, "files_total": 10, "bytes": 1 << 20, "bytes_total": 4 << 20}
    assert _mirror_text(
        {**mirror, "progress": {**copying, "eta_seconds": 19.6, "done": False}}
    ) == ("first copy: 3 of 10 files, 1 MiB of 4 MiB, about 20 s left")
    done = {**copying, "eta_seconds": 0, "done": True}
    assert _mirror_text({**mirror, "progress": done}) == "12 files, 3 MiB, 40 requests"
