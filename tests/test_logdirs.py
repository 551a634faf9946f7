"""Log directories: confinement to the allowed roots, and the bounded run finder."""

from __future__ import annotations

import os

import pytest

from jupyter_forgather_tb.logdirs import find_logdirs, resolve_logdir
from jupyter_forgather_tb.options import OptionError


@pytest.fixture
def root(tmp_path):
    root = tmp_path / "root"
    (root / "runs" / "a").mkdir(parents=True)
    return root


def refused(value, root, roots=None, field="logdir"):
    with pytest.raises(OptionError) as error:
        resolve_logdir(value, str(root), [str(r) for r in (roots or [root])], field)
    assert error.value.field == field
    return error.value.message


def test_relative_and_absolute_paths_inside_are_resolved(root):
    assert resolve_logdir("runs", str(root), [str(root)]) == str(root / "runs")
    assert resolve_logdir(str(root / "runs" / "a"), str(root), [str(root)]) == str(root / "runs/a")
    assert resolve_logdir("runs/a/..", str(root), [str(root)]) == str(root / "runs")


def test_escapes_are_refused(root, tmp_path):
    assert "outside" in refused("../..", root)
    assert "outside" in refused("/etc", root)
    sibling = tmp_path / "root2"
    sibling.mkdir()
    assert "outside" in refused(str(sibling), root)  # shares the prefix, not the directory
    os.symlink(sibling, root / "link")
    assert "outside" in refused("link", root)


def test_symlink_inside_the_root_resolves_to_its_target(root):
    os.symlink(root / "runs", root / "alias")
    assert resolve_logdir("alias", str(root), [str(root)]) == str(root / "runs")


def test_missing_and_non_directories_are_refused(root):
    (root / "file.txt").write_text("x")
    assert "not an existing directory" in refused("file.txt", root)
    assert "not an existing directory" in refused("nope", root)


def test_any_of_several_roots_is_accepted(root, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    assert resolve_logdir(str(other), str(root), [str(root), str(other)]) == str(other)


def test_field_name_is_used_in_errors(root):
    refused("../..", root, field="path")


def make_run(directory, mtime=None):
    directory.mkdir(parents=True, exist_ok=True)
    event = directory / "events.out.tfevents.1.host"
    event.write_bytes(b"")
    if mtime is not None:
        os.utime(event, (mtime, mtime))
    return event


def test_runs_are_counted_for_every_ancestor(tmp_path):
    make_run(tmp_path / "exp1" / "run1", mtime=1000)
    make_run(tmp_path / "exp1" / "run2", mtime=3000)
    make_run(tmp_path / "exp2", mtime=2000)
    (tmp_path / "empty").mkdir()
    entries, truncated = find_logdirs(str(tmp_path), max_depth=5, max_dirs=100)
    found = {os.path.relpath(e.path, tmp_path): (e.runs, e.last_modified) for e in entries}
    assert found == {
        ".": (3, 3000),
        "exp1": (2, 3000),
        "exp1/run1": (1, 1000),
        "exp1/run2": (1, 3000),
        "exp2": (1, 2000),
    }
    assert truncated is False
    assert [e.to_json(str(tmp_path))["path"] for e in entries][:2] == ["", "exp1"]


def test_hidden_and_symlinked_directories_are_skipped(tmp_path):
    make_run(tmp_path / ".cache" / "run")
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    make_run(outside)
    os.symlink(outside, tmp_path / "link")
    assert find_logdirs(str(tmp_path), max_depth=5, max_dirs=100) == ([], False)


def test_depth_and_directory_bounds_are_reported(tmp_path):
    make_run(tmp_path / "a" / "b" / "c")
    entries, truncated = find_logdirs(str(tmp_path), max_depth=1, max_dirs=100)
    assert entries == [] and truncated is True
    for i in range(10):
        make_run(tmp_path / f"r{i}")
    entries, truncated = find_logdirs(str(tmp_path), max_depth=5, max_dirs=3)
    assert truncated is True and len(entries) < 11


def test_paths_outside_the_root_are_shown_absolute(tmp_path):
    make_run(tmp_path / "x")
    entries, _ = find_logdirs(str(tmp_path / "x"), max_depth=1, max_dirs=10)
    assert entries[0].to_json(str(tmp_path / "elsewhere"))["path"] == str(tmp_path / "x")
