"""Log directories on disk: resolving one inside the allowed roots; finding them for a picker."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ...common.options import OptionError, check_logdir_shape, member_names
from ...common.sources import url_scheme
from ...common.tbfiles import EVENT_FILE_MARK

#: Directory entries a scan reads at most by default (see ForgatherTB.logdir_scan_max_entries).
MAX_SCAN_ENTRIES = 20_000


def _inside(path: str, root: str) -> bool:
    # commonpath, not startswith: "/data2" is not inside "/data".
    return os.path.commonpath([path, root]) == root


def inside_roots(real: str, allowed_roots: list[str]) -> bool:
    """True if the real path ``real`` is inside one of the allowed roots (themselves resolved)."""
    return any(_inside(real, os.path.realpath(root)) for root in allowed_roots)


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
    if not inside_roots(real, allowed_roots):
        raise OptionError(field, f"{path!r} is outside the directories this server may read")
    if not os.path.isdir(real):
        raise OptionError(field, f"{path!r} is not an existing directory")
    return real


def resolve_members(
    members: tuple[tuple[str, str], ...], root_dir: str, allowed_roots: list[str]
) -> list[tuple[str, str]]:
    """A compare launch's folders as ``(name, real path)``, each confined as a logdir is.

    Folders given as a list (names ``""``) are named after their last path part
    (see :func:`~...common.options.member_names`). A folder given twice is refused.
    """
    reals = [resolve_logdir(path, root_dir, allowed_roots, "logdirs") for _, path in members]
    if all(name == "" for name, _ in members):
        names = member_names([(path, real) for (_, path), real in zip(members, reals, strict=True)])
    else:
        names = [name for name, _ in members]
    seen: dict[str, str] = {}
    for name, real in zip(names, reals, strict=True):
        if real in seen:
            raise OptionError(
                "logdirs", f"{seen[real]!r} and {name!r} are the same folder: give it once"
            )
        seen[real] = name
    return list(zip(names, reals, strict=True))


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


class _Budget:
    """What a walk may still read: directories and directory entries, shared by its tops."""

    def __init__(self, max_dirs: int, max_entries: int):
        self.dirs = max_dirs
        self.entries = max_entries
        self.truncated = False


def _event_files(top: str, max_depth: int, budget: _Budget) -> dict[str, list[os.stat_result]]:
    """``{directory: its event files' status}`` under ``top``, within ``budget``.

    Symlinked directories and hidden ones are not followed; ``budget.truncated``
    says the walk was cut short.
    """
    found: dict[str, list[os.stat_result]] = {}
    stack = [(top, 0)]
    while stack:
        directory, depth = stack.pop()
        if budget.dirs == 0:
            budget.truncated = True
            break
        budget.dirs -= 1
        files = []
        try:
            with os.scandir(directory) as entries:
                for entry in entries:
                    if budget.entries == 0:  # out of entries: this directory is the last one read
                        budget.truncated = True
                        stack.clear()
                        break
                    budget.entries -= 1
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            if entry.name.startswith("."):
                                continue
                            if depth < max_depth:
                                stack.append((entry.path, depth + 1))
                            else:
                                budget.truncated = True
                        elif EVENT_FILE_MARK in entry.name and entry.is_file():
                            files.append(entry.stat())
                    except OSError:
                        continue
        except OSError:
            continue
        if files:
            found[directory] = files
    return found


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
    budget = _Budget(max_dirs, max_entries)
    run_mtimes = {
        run: max(info.st_mtime for info in files)
        for run, files in _event_files(top, max_depth, budget).items()
    }
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
    return sorted(totals.values(), key=lambda e: e.path), budget.truncated


@dataclass(frozen=True)
class EventScan:
    """What the event files under a job's log directories add up to, at one moment."""

    runs: int
    event_files: int
    event_bytes: int
    last_write: float | None  # the newest event file's modification time (epoch seconds)


def scan_events(tops: list[str], max_depth: int, max_dirs: int, max_entries: int) -> EventScan:
    """Runs, event files, their bytes and newest write under ``tops``, in one bounded walk.

    The limits are :func:`find_logdirs`'s, shared by all the tops: a walk cut
    short counts what it read.
    """
    budget = _Budget(max_dirs, max_entries)
    runs = files = size = 0
    newest: float | None = None
    for top in tops:
        for infos in _event_files(os.path.normpath(top), max_depth, budget).values():
            runs += 1
            files += len(infos)
            size += sum(info.st_size for info in infos)
            latest = max(info.st_mtime for info in infos)
            newest = latest if newest is None else max(newest, latest)
    return EventScan(runs, files, size, newest)
