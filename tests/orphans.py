"""TensorBoards left running by a previous server, and the job records it saved for them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from jupyter_forgather_tb.common.options import LaunchOptions, build_argv
from jupyter_forgather_tb.server.host.procfs import process_identity
from jupyter_forgather_tb.server.jobs.job import new_job_id
from jupyter_forgather_tb.server.logdirs.compare import TREE_SUFFIX, make_tree


def record_for(job_id: str, options: LaunchOptions, base_url: str, **fields) -> dict:
    """A job record as the previous version saved it (no ``report_file``); ``fields`` override."""
    record = {
        "id": job_id,
        "options": options.to_body(),
        "url": f"{base_url}tb/{job_id}/",
        "status": "running",
        "seq": 1,
        "created": None,
        "started": None,
        "ended": None,
        "pid": None,
        "exit_code": None,
        "error": None,
        "port": None,
        "unix_socket": None,
        "log_file": None,
        "argv": None,
        "proc_start_time": None,
        "loader": {"name": "python", "private_network": False},
    }
    record.update(fields)
    return record


@dataclass
class Orphan:
    """A live runner started as a server with default settings would, and its record."""

    proc: subprocess.Popen
    record: dict
    run_dir: str

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.run_dir, ignore_errors=True)


@dataclass
class OrphanCommand:
    """What a server with default settings runs for a new job: its id, run directory, argv."""

    job_id: str
    options: LaunchOptions
    run_dir: str
    argv: list[str]

    @property
    def socket(self) -> str:
        return os.path.join(self.run_dir, f"{self.job_id}.sock")

    def record(self, base_url: str, pid: int, argv: list[str], **fields) -> dict:
        """The record the previous version saved for this job running as ``pid``."""
        return record_for(
            self.job_id,
            self.options,
            base_url,
            pid=pid,
            unix_socket=self.socket,
            argv=argv,
            proc_start_time=process_identity(pid)[0],
            **fields,
        )


def orphan_command(
    logdir: Path, base_url: str, compare: dict[str, str] | None = None
) -> OrphanCommand:
    """A job's command line as a server with default settings builds it.

    That is with a private network and a report file, and with its socket in a
    new run directory of the kind a server makes. With ``compare`` (names and real
    paths) it is a compare job, its folder of links made in the run directory.
    """
    job_id = new_job_id()
    run_dir = tempfile.mkdtemp(prefix="forgather-tb-")
    options = LaunchOptions(logdir=str(logdir), window_title="logs")
    read = {}
    if compare:
        options = LaunchOptions(logdir="", window_title="").compared(list(compare.items()))
        read = {"logdir": os.path.join(run_dir, f"{job_id}{TREE_SUFFIX}")}
        make_tree(read["logdir"], options.logdirs)
    argv = build_argv(
        options,
        python=sys.executable,
        path_prefix=f"{base_url}tb/{job_id}",
        unix_socket=os.path.join(run_dir, f"{job_id}.sock"),
        private_network=True,
        report_file=os.path.join(run_dir, f"{job_id}.json"),
        **read,
    )
    return OrphanCommand(job_id, options, run_dir, argv)


def start_orphan(logdir: Path, base_url: str, compare: dict[str, str] | None = None) -> Orphan:
    """Start a job's runner as a server would have, and wait for its socket.

    Its stdin pipe stays open, so it keeps running as if its server had never died.
    """
    command = orphan_command(logdir, base_url, compare)
    proc = subprocess.Popen(
        command.argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while not os.path.exists(command.socket):
        assert time.monotonic() < deadline and proc.poll() is None, "the orphan did not start"
        time.sleep(0.05)
    record = command.record(base_url, proc.pid, command.argv)
    if compare:
        record["logdir_tree"] = os.path.join(command.run_dir, f"{command.job_id}{TREE_SUFFIX}")
    return Orphan(proc, record, command.run_dir)
