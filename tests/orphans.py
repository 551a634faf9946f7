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
from jupyter_forgather_tb.server.jobs import new_job_id
from jupyter_forgather_tb.server.procfs import process_identity


def record_for(job_id: str, options: LaunchOptions, base_url: str, **fields) -> dict:
    """A job record as the previous version saved it (no ``report_file``); ``fields`` override."""
    record = {
        "id": job_id,
        "options": options.to_json(),
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


def start_orphan(logdir: Path, base_url: str, **fields) -> Orphan:
    """Start a TensorBoard on a socket in a run directory of the server's kind; wait for it.

    Its command line is what a server with default settings builds (private
    network, a report file); its stdin pipe stays open, so it outlives no server.
    """
    job_id = new_job_id()
    run_dir = tempfile.mkdtemp(prefix="forgather-tb-")
    sock = os.path.join(run_dir, f"{job_id}.sock")
    options = LaunchOptions(logdir=str(logdir), window_title="logs")
    argv = build_argv(
        options,
        python=sys.executable,
        path_prefix=f"{base_url}tb/{job_id}",
        unix_socket=sock,
        private_network=True,
        report_file=os.path.join(run_dir, f"{job_id}.json"),
    )
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while not os.path.exists(sock):
        assert time.monotonic() < deadline and proc.poll() is None, "the orphan did not start"
        time.sleep(0.05)
    record = record_for(
        job_id,
        options,
        base_url,
        pid=proc.pid,
        unix_socket=sock,
        argv=argv,
        proc_start_time=process_identity(proc.pid)[0],
    )
    record.update(fields)
    return Orphan(proc, record, run_dir)
