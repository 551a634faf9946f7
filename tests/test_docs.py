"""The documentation build (make docs) fails on what would make the docs untrue.

Each test builds a copy of the documentation with Sphinx as `make docs` does, with one
thing broken, and checks that the build fails and says what is wrong.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TOP_FILES = ("README.md", "CHANGELOG.md", "CONTRIBUTING.md", "RELEASE.md", "LICENSE", "Dockerfile")

pytest.importorskip("myst_parser", reason="the docs extra is not installed")


@pytest.fixture
def checkout(tmp_path) -> Path:
    """The files the documentation is built from, copied."""
    for name in TOP_FILES:
        shutil.copy(REPO / name, tmp_path / name)
    shutil.copytree(REPO / "docs", tmp_path / "docs", ignore=shutil.ignore_patterns("_build"))
    shutil.copytree(
        REPO / "jupyter_forgather_tb",
        tmp_path / "jupyter_forgather_tb",
        ignore=shutil.ignore_patterns("__pycache__", "labextension"),
    )
    return tmp_path


def build(checkout: Path) -> subprocess.CompletedProcess:
    """`make docs`'s command, on the copy."""
    docs = checkout / "docs"
    command = [sys.executable, "-m", "sphinx", "-E", "-W", "--keep-going", "-q", "-b", "html"]
    return subprocess.run(
        [*command, str(docs), str(docs / "_build" / "html")],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_link_to_a_heading_that_does_not_exist_fails_the_build(checkout):
    page = checkout / "docs" / "remote-sources.md"
    page.write_text(page.read_text() + "\nSee [the figures](performance.md#no-such-heading).\n")
    result = build(checkout)
    assert result.returncode != 0
    assert "'no-such-heading'" in result.stderr


def test_a_link_from_the_readme_to_a_missing_page_fails_the_build(checkout):
    readme = checkout / "README.md"
    readme.write_text(readme.read_text() + "\nSee [more](./docs/no-such-page.md).\n")
    result = build(checkout)
    assert result.returncode != 0
    assert "no-such-page" in result.stderr


def test_a_module_missing_from_the_module_map_fails_the_build(checkout):
    (checkout / "jupyter_forgather_tb" / "server" / "unmapped.py").write_text('"""New."""\n')
    result = build(checkout)
    assert result.returncode != 0
    assert "module map: not listed: server/unmapped.py" in result.stderr
