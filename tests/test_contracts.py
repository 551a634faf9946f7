"""The import contracts (``lint-imports``): kept by the tree, broken by a crossing import.

Each case copies the package to a temporary directory, adds one import that crosses a
process boundary, and runs the real ``lint-imports`` with the project's configuration.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "jupyter_forgather_tb"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _contract_names() -> dict[str, str]:
    with open(ROOT / "pyproject.toml", "rb") as source:
        config = tomllib.load(source)
    return {c["id"]: c["name"] for c in config["tool"]["importlinter"]["contracts"]}


def _lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    # lint-imports puts its working directory first on sys.path: the tree there is analysed.
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-logo", "--no-cache", "pyproject.toml"],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _copy_tree(tmp_path: Path) -> Path:
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(
        ROOT / PACKAGE,
        tmp_path / PACKAGE,
        ignore=shutil.ignore_patterns("__pycache__", "labextension"),
    )
    return tmp_path


def test_the_tree_keeps_every_contract(tmp_path):
    result = _lint_imports(_copy_tree(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    names = _contract_names()
    for name in names.values():
        assert f"{name} KEPT" in result.stdout
    assert f"Contracts: {len(names)} kept, 0 broken." in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        ("server/jobs/manager.py", "import tensorboard", {"server"}),
        ("server/web/handlers.py", "from ...job import runner", {"server"}),
        ("server/jobs/state.py", "import boto3", {"server", "boto3"}),
        ("job/runner.py", "from tornado import web", {"job"}),
        ("job/loader.py", "import jupyter_server", {"job"}),
        ("runner.py", "from .server.jobs import manager", {"job"}),
        ("clients/client.py", "from ..server import jobs", {"clients"}),
        ("clients/cli.py", "from ..job import loader", {"clients"}),
        ("common/options.py", "import tornado.ioloop", {"common"}),
        # The job side imports common.jsonfile, and so do the clients and the server's
        # logdirs through common.options and common.jobwire: each would reach the server.
        (
            "common/jsonfile.py",
            "from ..server.jobs import output",
            {"common", "job", "clients", "server-layers"},
        ),
        # s3fs does all S3 traffic: nothing of ours imports boto3, not even common.remotefs.
        ("job/mirror.py", "import boto3", {"boto3"}),
        ("common/remotefs.py", "import botocore", {"boto3"}),
        # Only common.remotefs opens fsspec's filesystems ...
        ("job/mirror.py", "import s3fs", {"remotefs"}),
        ("clients/upload.py", "import sshfs", {"remotefs"}),
        # ... and it, like fsspec, stays out of the server.
        ("server/jobs/mirrors.py", "import s3fs", {"server", "remotefs"}),
        ("server/jobs/mirrors.py", "from ...common import remotefs", {"server"}),
        # Inside the server, imports go only downward.
        ("server/host/procfs.py", "from ..jobs import job", {"server-layers"}),
        ("server/logdirs/find.py", "from ..web import handlers", {"server-layers"}),
        ("server/jobs/manager.py", "from .. import app", {"server-layers"}),
    ],
)
def test_a_forbidden_import_breaks_its_contract(tmp_path, module, line, broken):
    tree = _copy_tree(tmp_path)
    path = tree / PACKAGE / module
    path.write_text(path.read_text() + f"\n{line}  # noqa\n")
    result = _lint_imports(tree)
    assert result.returncode != 0
    names = _contract_names()
    reported = {key for key, name in names.items() if f"{name} BROKEN" in result.stdout}
    assert reported == broken, result.stdout + result.stderr
    assert f"Contracts: {len(names) - len(broken)} kept, {len(broken)} broken." in result.stdout
