"""Log directories on disk: resolving one inside the allowed roots; finding them for a picker."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ..common.options import OptionError, check_logdir_shape
from ..common.s3paths import EVENT_FILE_MARK, url_scheme

#: Directory entries a scan reads at most by default (see ForgatherTB.logdir_scan_max_entries).
MAX_SCAN_ENTRIES = 20_000


def _inside(path: str, root: str) -> bool:
    # commonpath, not startswith: "/data2" is not inside "/data".
    return os.path.commonpath([path, root]) == root


def resolve_logdir(
    value: object, root_dir: str, allowed_roots: list[str], field: str = "logdir"
) -> str:
    """The real absolute path of a log directory, checked to be inside an allowed root.

    Relative paths are taken from ``root_dir``. Symlinks are resolved before the
    check, so a link pointing out of the roots is refused. An ``s3://`` or
    ``gs://`` log directory is returned as it is (no local root applies to it).
    """
    path = check_logdir_shape(value) if field == "logdir" else value
    if not isinstance(path, str):
        raise OptionError(field, "must be a string path")
    if field == "logdir" and url_scheme(path):
        return path
    if "\0" in path:
        raise OptionError(field, "must not contain NUL")
    real = os.path.realpath(os.path.join(root_dir, os.path.expanduser(path)))
    roots = [os.path.realpath(root) for root in allowed_roots]
    if not any(_inside(real, root) for root in roots):
        raise OptionError(field, f"{path!r} is outside the directories this server may read")
    if not os.path.isdir(real):
        raise OptionError(field, f"{path!r} is not an existing directory")
    return real


@dataclass
class LogdirEntry:
    """A directory holding runs (directories with event files) somewhere below it."""

    path: str
    runs: int
    last_modified: float

    def to_json(self, root_dir: str) -> dict[str, Any]:
        """As the REST API shows it, with the path relative to the server root when inside it."""
        rel = os.path.relpath(self.path, root_dir)
        outside = rel == os.pardir or rel.startswith(os.pardir + os.sep)
        shown = self.path if outside else ("" if rel == "." else rel)
        return {"path": shown, "runs": self.runs, "last_modified": self.last_modified}


def find_logdirs(
    top: str, max_depth: int, max_dirs: int, max_entries: int = MAX_SCAN_ENTRIES
) -> tuple[list[LogdirEntry], bool]:
    """Directories under ``top`` (itself included) that hold TensorBoard runs.

    Walks at most ``max_depth`` levels, ``max_dirs`` directories and
    ``max_entries`` directory entries in all, so neither a huge tree nor one
    folder of many files can stall the caller; returns the entries, sorted by
    path, and whether the walk was cut short. Symlinked directories are not
    followed.
    """
    top = os.path.normpath(top)
    run_mtimes: dict[str, float] = {}
    truncated = False
    stack = [(top, 0)]
    visited = 0
    budget = max_entries
    while stack:
        directory, depth = stack.pop()
        visited += 1
        if visited > max_dirs:
            truncated = True
            break
        newest = None
        try:
            with os.scandir(directory) as entries:
                for entry in entries:
                    if budget == 0:  # out of entries: this directory is the last one read
                        truncated = True
                        stack.clear()
                        break
                    budget -= 1
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            if entry.name.startswith("."):
                                continue
                            if depth < max_depth:
                                stack.append((entry.path, depth + 1))
                            else:
                                truncated = True
                        elif EVENT_FILE_MARK in entry.name and entry.is_file():
                            mtime = entry.stat().st_mtime
                            newest = mtime if newest is None else max(newest, mtime)
                    except OSError:
                        continue
        except OSError:
            continue
        if newest is not None:
            run_mtimes[directory] = newest

    totals: dict[str, LogdirEntry] = {}
    for run, mtime in run_mtimes.items():
        current = run
        while True:
            total = totals.setdefault(current, LogdirEntry(current, 0, 0.0))
            total.runs += 1
            total.last_modified = max(total.last_modified, mtime)
            parent = os.path.dirname(current)
            if current == top or parent == current:
                break
            current = parent
    return sorted(totals.values(), key=lambda e: e.path), truncated
