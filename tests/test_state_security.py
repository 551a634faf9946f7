"""The job table on disk is not trusted: foreign files, forged records, two servers on one file."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import pytest
from conftest import JupyterServerProcess, pid_alive, write_scalars
from orphans import orphan_command, record_for, start_orphan

from jupyter_forgather_tb.common.options import LaunchOptions
from jupyter_forgather_tb.server.host.procfs import process_identity
from jupyter_forgather_tb.server.jobs.forkclient import ForkServer
from jupyter_forgather_tb.server.jobs.job import new_job_id
from jupyter_forgather_tb.server.jobs.state import save_state

FAILED_VALIDATION = "not re-adopted: its record failed validation ("


async def _jobs_by_id(api) -> dict[str, dict]:
    return {job["id"]: job for job in await api.json("GET", "jobs", expect=200)}


@pytest.fixture
def state_file(tb_config, tmp_path) -> Path:
    """Where the test's server keeps its job table (planted by the test before it starts)."""
    path = tmp_path / "state" / "jobs.json"
    tb_config["state_file"] = str(path)
    return path


# -- a state file someone else could have written ----------------------------------------


def _tamper(state_file: Path, how: str) -> str:
    """Make the planted state file look written by someone else; the warning we expect."""
    if how == "owner":
        os.chown(state_file, 65534, 65534)
        return "owned by uid 65534, not by this server's user"
    if how == "mode":
        state_file.chmod(0o666)
        return "writable by group or others (mode 0o666)"
    state_file.parent.chmod(0o777)
    return f"its directory {state_file.parent}: it is writable by group or others (mode 0o777)"


@pytest.mark.parametrize("how", ["owner", "mode", "directory"])
def test_a_state_file_others_could_write_is_refused_and_left_untouched(how, tmp_path):
    root, runtime = tmp_path / "root", tmp_path / "runtime"
    logdir = write_scalars(root / "logs" / "run1", "loss", [1.0, 0.5]).parent
    runtime.mkdir()
    server = JupyterServerProcess(root, runtime)
    server.start().stop()  # now its state file exists: plant a table there
    state_file = next((runtime / "forgather-tb").glob("jobs-*.json"))
    left = start_orphan(logdir, server.base_url)
    log = tmp_path / "server.log"
    try:
        save_state(str(state_file), [left.record])
        expected = _tamper(state_file, how)
        before, content = state_file.stat(), state_file.read_bytes()
        server.start(log=log)
        assert server.call("GET", "jobs") == []
        job = server.wait_status(server.call("POST", "jobs", {"logdir": "logs"})["id"], "running")
        server.stop(signal.SIGTERM)
        assert left.alive()
        assert job["id"] != left.record["id"]
        after = state_file.stat()
        assert state_file.read_bytes() == content
        assert (after.st_uid, after.st_mode, after.st_mtime_ns) == (
            before.st_uid,
            before.st_mode,
            before.st_mtime_ns,
        )
        warnings = [line for line in log.read_text().splitlines() if line.startswith("[W")]
        assert any(
            f"Refusing the TensorBoard job table {state_file}: " in line and expected in line
            for line in warnings
        ), warnings
    finally:
        server.stop(signal.SIGKILL)
        left.stop()


# -- forged records ---------------------------------------------------------------------


@pytest.fixture
def forged_paths(tb_config, state_file, tmp_path, jp_base_url):
    """Records whose id or paths lead outside the server's directories, at real files."""
    cache_root = tmp_path / "cache"
    cache_root.mkdir()
    tb_config["mirror_cache_dir"] = str(cache_root)
    victim = tmp_path / "victim"
    (victim / "keep").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    s3 = LaunchOptions(logdir="s3://bucket/prefix", window_title="s3", sync_interval=5.0)
    local = LaunchOptions(logdir=str(tmp_path), window_title="local")
    escaping_id = record_for("../victim", s3, jp_base_url)
    slash_id = record_for("a/" + new_job_id()[2:], s3, jp_base_url)
    outside_id = new_job_id()
    outside_socket = outside / f"{outside_id}.sock"
    outside_socket.write_text("not a socket")
    outside_record = record_for(outside_id, local, jp_base_url, unix_socket=str(outside_socket))
    # A run directory of the right name that is a link to somewhere else.
    link_id = new_job_id()
    (outside / f"{link_id}.sock").write_text("not a socket")
    link_run_dir = tempfile.mktemp(prefix="forgather-tb-", dir=tempfile.gettempdir())
    os.symlink(outside, link_run_dir)
    link_record = record_for(
        link_id, local, jp_base_url, unix_socket=os.path.join(link_run_dir, f"{link_id}.sock")
    )
    # A path through a real run directory whose ".." lead to a look-alike elsewhere.
    dotdot_id = new_job_id()
    look_alike = outside / "forgather-tb-abcd1234" / f"{dotdot_id}.sock"
    look_alike.parent.mkdir()
    look_alike.write_text("not a socket")
    run_dir = tempfile.mkdtemp(prefix="forgather-tb-")
    dotdot_socket = os.path.join(run_dir, os.path.relpath(look_alike, run_dir))
    assert ".." in dotdot_socket
    dotdot_record = record_for(dotdot_id, local, jp_base_url, unix_socket=dotdot_socket)
    records = [escaping_id, slash_id, outside_record, link_record, dotdot_record]
    save_state(str(state_file), records)
    planted = [outside_socket, outside / f"{link_id}.sock", look_alike, victim / "keep"]
    yield records, planted
    os.unlink(link_run_dir)
    os.rmdir(run_dir)


async def test_forged_ids_and_paths_are_reported_lost_and_nothing_is_removed(forged_paths, api):
    records, planted = forged_paths
    jobs = await _jobs_by_id(api)
    assert len(jobs) == len(records)
    assert "../victim" not in jobs and not any("/" in job_id for job_id in jobs)
    for job in jobs.values():
        assert job["status"] == "lost"
        assert job["error"].startswith(FAILED_VALIDATION), job["error"]
    errors = [job["error"] for job in jobs.values()]
    assert any("its id '../victim' is not one this server makes" in e for e in errors), errors
    assert any("its id 'a/" in e for e in errors), errors
    outside, link, dotdot = (jobs[record["id"]]["error"] for record in records[2:])
    assert "is not in a socket directory of this server" in outside
    assert "is not a directory" in link
    assert f"is not {tempfile.gettempdir()}/forgather-tb-abcd1234/" in dotdot
    # Nothing a forged record named is gone.
    assert all(path.exists() for path in planted)
    # The job list's URLs are the server's own, never a record's.
    for job_id, job in jobs.items():
        assert job["url"] == f"{api.serverapp.base_url}tb/{job_id}/"


@pytest.fixture
def stranger(state_file, tmp_path, jp_base_url):
    """A record copying the pid, start time and command line of an unrelated process."""
    process = subprocess.Popen(["sleep", "600"], start_new_session=True)
    start_time, argv = process_identity(process.pid)
    run_dir = tempfile.mkdtemp(prefix="forgather-tb-")
    job_id = new_job_id()
    record = record_for(
        job_id,
        LaunchOptions(logdir=str(tmp_path), window_title="x"),
        jp_base_url,
        pid=process.pid,
        proc_start_time=start_time,
        argv=argv,
        unix_socket=os.path.join(run_dir, f"{job_id}.sock"),
    )
    save_state(str(state_file), [record])
    yield record, process
    process.kill()
    process.wait()
    os.rmdir(run_dir)


async def test_a_record_copying_an_unrelated_process_never_adopts_or_kills_it(stranger, api):
    record, process = stranger
    job = await api.job(record["id"])
    assert job["status"] == "lost" and job["adopted"] is False
    assert "does not run the command line this server would start for it" in job["error"]
    assert (await api.kill(record["id"]))["status"] == "lost"
    assert pid_alive(process.pid)


@pytest.fixture
def orphan(jp_root_dir, jp_base_url):
    """A TensorBoard a previous server left running, which its record would let us adopt."""
    logdir = write_scalars(jp_root_dir / "logs" / "run1", "loss", [3.0, 2.0]).parent
    left = start_orphan(logdir, jp_base_url)
    yield left
    left.stop()


@pytest.fixture(params=["outside", "symlink"])
def foreign_log_file(request, orphan, state_file, tmp_path, jp_runtime_dir):
    """A record of a real, adoptable TensorBoard whose log file is someone else's file."""
    secret = tmp_path / "secret.txt"
    secret.write_text("THE-SECRET-LINE\n")
    log_file = secret
    if request.param == "symlink":
        log_dir = jp_runtime_dir / "forgather-tb" / "logs"
        log_dir.mkdir(parents=True)
        log_file = log_dir / f"{orphan.record['id']}.log"
        log_file.symlink_to(secret)
    save_state(str(state_file), [{**orphan.record, "log_file": str(log_file)}])
    return secret


async def test_a_record_with_a_foreign_log_file_is_not_adopted_and_its_file_not_served(
    foreign_log_file, orphan, api
):
    job = await api.job(orphan.record["id"])
    assert job["status"] == "lost" and job["adopted"] is False
    assert job["error"].startswith(FAILED_VALIDATION) and "its log file" in job["error"]
    output = await api.json("GET", "jobs", job["id"], "output", params={"offset": "0"}, expect=200)
    assert "THE-SECRET" not in json.dumps(output)
    # Nothing was killed or removed because of it.
    assert orphan.alive()
    assert os.path.exists(orphan.record["unix_socket"])
    assert foreign_log_file.read_text() == "THE-SECRET-LINE\n"


# -- a table saved by the previous version ----------------------------------------------


@pytest.fixture
def previous_version_table(orphan, state_file, tmp_path, jp_base_url):
    """The table the previous version wrote: no report_file; also a gone TCP job, and junk."""
    options = LaunchOptions(logdir=str(tmp_path), window_title="tcp", port=7007, host="127.0.0.1")
    tcp_job = record_for(new_job_id(), options, jp_base_url, port=7007)
    junk = ["not a record", {"id": new_job_id()}, {**orphan.record, "status": "asleep"}]
    save_state(str(state_file), [orphan.record, tcp_job, *junk])
    return orphan.record, tcp_job


async def test_a_table_saved_by_the_previous_version_is_re_adopted_or_reported_lost(
    previous_version_table, orphan, api
):
    matching, tcp_job = previous_version_table
    job = await api.wait_status(matching["id"], "running", timeout=15)
    assert job["adopted"] is True and job["pid"] == matching["pid"]
    response = await api.proxied(job["id"], "data/plugin/scalars/tags")
    assert response.code == 200
    lost = await api.job(tcp_job["id"])
    assert lost["status"] == "lost"
    assert lost["error"] == "the Jupyter server stopped while this job was live"
    jobs = await api.json("GET", "jobs", expect=200)
    assert len(jobs) == 5
    assert sum(job["error"].startswith(FAILED_VALIDATION) for job in jobs if job["error"]) == 3


# -- jobs forked by a previous server's warm-start fork server -----------------------------


@pytest.fixture
def fork_server(jp_asyncio_loop, jp_root_dir, jp_base_url, state_file, tmp_path):
    """A fork server, as a previous server left it, with one TensorBoard it forked."""
    logdir = write_scalars(jp_root_dir / "logs" / "run1", "loss", [3.0, 2.0]).parent
    command = orphan_command(logdir, jp_base_url)
    server = ForkServer(sys.executable, str(tmp_path / "fork.log"), logging.getLogger("test"))

    async def fork():
        while (child := await server.spawn(command.argv, dict(os.environ))) is None:
            assert not server.failed
            await asyncio.sleep(0.1)
        while not os.path.exists(command.socket):
            await asyncio.sleep(0.05)
        return child

    child = jp_asyncio_loop.run_until_complete(asyncio.wait_for(fork(), 60))
    yield server, command, child
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)
    jp_asyncio_loop.run_until_complete(server.close())
    shutil.rmtree(command.run_dir, ignore_errors=True)


@pytest.fixture
def forked_orphan(fork_server, state_file, jp_base_url):
    _, command, child = fork_server
    record = command.record(jp_base_url, child.pid, process_identity(child.pid)[1])
    assert record["argv"][2] == "jupyter_forgather_tb.forkserver"
    save_state(str(state_file), [record])
    return record


async def test_a_job_forked_by_the_fork_server_is_re_adopted(forked_orphan, api):
    job = await api.wait_status(forked_orphan["id"], "running", timeout=15)
    assert job["adopted"] is True and job["pid"] == forked_orphan["pid"]
    response = await api.proxied(job["id"], "data/plugin/scalars/tags")
    assert response.code == 200
    assert (await api.kill(job["id"]))["status"] == "killed"
    assert not pid_alive(forked_orphan["pid"])


@pytest.fixture
def record_naming_the_fork_server(fork_server, state_file, jp_base_url):
    """A forged record whose pid is the fork server itself, which shows the same command line."""
    server, command, _ = fork_server
    record = command.record(jp_base_url, server.pid, process_identity(server.pid)[1])
    save_state(str(state_file), [record])
    return server, record


async def test_a_record_naming_the_fork_server_itself_never_adopts_or_kills_it(
    record_naming_the_fork_server, api
):
    server, record = record_naming_the_fork_server
    job = await api.job(record["id"])
    assert job["status"] == "lost" and job["adopted"] is False
    assert f"its process (pid {server.pid}) does not listen on" in job["error"]
    assert pid_alive(server.pid)


# -- two servers, one state file ---------------------------------------------------------


def _proxied_status(server: JupyterServerProcess, job_id: str) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.port}{server.base_url}tb/{job_id}/",
        headers={"Authorization": f"token {server.token}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


def test_a_second_server_on_the_same_table_never_adopts_or_kills_the_firsts_jobs(tmp_path):
    root, runtime = tmp_path / "root", tmp_path / "runtime"
    write_scalars(root / "logs" / "run1", "loss", [1.0, 0.5])
    runtime.mkdir()
    first = JupyterServerProcess(root, runtime).start()
    second = JupyterServerProcess(root, runtime)
    second_log = tmp_path / "second.log"
    try:
        job = first.wait_status(first.call("POST", "jobs", {"logdir": "logs"})["id"], "running")
        state_file = next((runtime / "forgather-tb").glob("jobs-*.json"))
        second.start(log=second_log)
        assert second.call("GET", "jobs") == []
        mine = second.wait_status(second.call("POST", "jobs", {"logdir": "logs"})["id"], "running")
        assert mine["id"] != job["id"]
        second.stop(signal.SIGTERM)
        assert first.call("GET", f"jobs/{job['id']}")["status"] == "running"
        assert _proxied_status(first, job["id"]) == 200
        assert pid_alive(job["pid"])
        saved = json.loads(state_file.read_text())["jobs"]
        assert [(r["id"], r["status"]) for r in saved] == [(job["id"], "running")]
        log = second_log.read_text()
        assert f"Not using the TensorBoard job table {state_file}" in log
        assert f"another Jupyter server (pid {first.proc.pid}) holds" in log
        assert "keeps its job table in memory only and re-adopts nothing" in log
    finally:
        second.stop(signal.SIGKILL)
        first.stop(signal.SIGTERM)


# -- compare jobs' folders of links ------------------------------------------------------


@pytest.fixture
def forged_compare(state_file, tmp_path, jp_base_url):
    """Compare records whose folder of links is not the server's, or that compare nothing."""
    victim = tmp_path / "victim"
    (victim / "keep").mkdir(parents=True)
    compare = LaunchOptions(logdir="", window_title="c").compared([("a", str(tmp_path))])
    outside_id = new_job_id()
    outside_tree = tmp_path / f"{outside_id}.logdirs"
    outside_tree.mkdir()
    os.symlink(victim, outside_tree / "a")
    outside = record_for(
        outside_id, compare, jp_base_url, status="lost", logdir_tree=str(outside_tree)
    )
    run_dir = tempfile.mkdtemp(prefix="forgather-tb-")
    single_id = new_job_id()
    single = record_for(
        single_id,
        LaunchOptions(logdir=str(tmp_path), window_title="one"),
        jp_base_url,
        status="lost",
        logdir_tree=os.path.join(run_dir, f"{single_id}.logdirs"),
    )
    relative_id = new_job_id()
    relative = record_for(relative_id, compare, jp_base_url, status="lost")
    relative["options"]["logdirs"] = {"a": "relative/path"}
    save_state(str(state_file), [outside, single, relative])
    yield [outside, single, relative], outside_tree, victim
    os.rmdir(run_dir)


async def test_forged_compare_records_are_lost_and_their_links_untouched(forged_compare, api):
    records, outside_tree, victim = forged_compare
    jobs = await _jobs_by_id(api)
    outside, single, relative = (jobs[record["id"]] for record in records)
    assert "compare folder" in outside["error"] and "not in a socket directory" in outside["error"]
    assert "compares nothing" in single["error"]
    assert "a folder it compares is not an absolute path" in relative["error"]
    for job in (outside, single, relative):
        assert job["status"] == "lost" and job["error"].startswith(FAILED_VALIDATION)
        assert (await api.kill(job["id"]))["status"] == "lost"
    assert os.path.islink(outside_tree / "a") and (victim / "keep").is_dir()
