"""The extension as installed: discovery, strict-auth loading, and the process boundary."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

from conftest import write_scalars

from jupyter_forgather_tb import __version__


def test_extension_is_enabled_and_validates():
    result = subprocess.run(
        [sys.executable, "-m", "jupyter", "server", "extension", "list"],
        capture_output=True,
        text=True,
        check=True,
    )
    output = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)
    assert "jupyter_forgather_tb enabled" in output
    assert f"jupyter_forgather_tb {__version__} OK" in output


def test_lab_extension_is_installed_prebuilt_and_enabled():
    result = subprocess.run(
        [sys.executable, "-m", "jupyter", "labextension", "list"],
        capture_output=True,
        text=True,
        check=True,
    )
    output = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)
    assert re.search(rf"jupyter-forgather-tb v{re.escape(__version__)} enabled OK", output)


async def test_loads_under_strict_auth(jp_serverapp, api):
    # The fixture server runs with allow_unauthenticated_access=False: a route
    # that did not declare its authentication would stop the extension loading.
    assert jp_serverapp.allow_unauthenticated_access is False
    assert "jupyter_forgather_tb" in jp_serverapp.extension_manager.extension_apps
    assert (await api.call("GET", "jobs")).code == 200


def test_server_side_modules_do_not_import_tensorboard_or_fsspec():
    # fsspec's filesystems (and the botocore s3fs brings) load only in jobs and clients.
    heavy = (
        "tensorboard",
        "tensorflow",
        "fsspec",
        "s3fs",
        "gcsfs",
        "adlfs",
        "sshfs",
        "asyncssh",
        "aiobotocore",
        "boto3",
        "botocore",
    )
    code = (
        "import sys, jupyter_forgather_tb, jupyter_forgather_tb.server.app; "
        "jupyter_forgather_tb._jupyter_server_extension_points(); "
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {heavy!r}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_runner_exits_when_its_parent_goes_away(tmp_path):
    write_scalars(tmp_path / "logs" / "run", "loss", [1.0])
    sock = tmp_path / "tb.sock"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter_forgather_tb.runner",
            "--unix-socket",
            str(sock),
            "--",
            "--logdir",
            str(tmp_path / "logs"),
            "--path_prefix",
            "/p",
            "--load_fast=false",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not sock.exists():
            assert proc.poll() is None, "runner died before serving"
            assert time.monotonic() < deadline, "runner never created its socket"
            time.sleep(0.05)
        assert proc.poll() is None
        proc.stdin.close()  # what the kernel does when the server dies, however it dies
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not os.path.exists(f"/proc/{proc.pid}")
