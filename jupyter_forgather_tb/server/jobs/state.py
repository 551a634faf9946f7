"""The job table on disk, so a restarted server knows what the last one left running.

A server uses a state file only if it and its directory belong to the server's
user and nobody else can write them, and only while it holds the lock file
beside it: one server per state file.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
from typing import Any

from ...common.jsonfile import read_json, write_json

STATE_VERSION = 1


class StateRefused(Exception):
    """This server must not use the state file; the message says why."""


class StateInUse(StateRefused):
    """Another server holds the state file's lock."""


def unsafe_reason(info: os.stat_result, uid: int) -> str | None:
    """Why a file with this status may hold another's data; None if only ``uid`` can write it."""
    if info.st_uid != uid:
        return f"it is owned by uid {info.st_uid}, not by this server's user (uid {uid})"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"it is writable by group or others (mode {stat.S_IMODE(info.st_mode):#o})"
    return None


def _check_safe(path: str) -> None:
    """Raise :class:`StateRefused` unless ``path`` and its directory are ours alone."""
    uid = os.geteuid()
    directory = os.path.dirname(path) or "."
    why = unsafe_reason(os.stat(directory), uid)
    if why:
        raise StateRefused(f"its directory {directory}: {why}")
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(info.st_mode):
        raise StateRefused("it is a symbolic link")
    if not stat.S_ISREG(info.st_mode):
        raise StateRefused("it is not a regular file")
    why = unsafe_reason(info, uid)
    if why:
        raise StateRefused(why)


def _lock_holder(fd: int) -> int | None:
    """The pid the lock's holder wrote into the lock file, if readable."""
    with contextlib.suppress(OSError, ValueError):
        return int(os.pread(fd, 32, 0).decode().strip())
    return None


class StateFile:
    """One server's job table on disk, locked for as long as the server runs."""

    def __init__(self, path: str):
        """Check and lock ``path``; raises :class:`StateRefused` (then nothing was written)."""
        self.path = path
        self.lock_path = f"{path}.lock"
        try:
            os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
            _check_safe(path)
            flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
            fd = os.open(self.lock_path, flags, 0o600)
        except OSError as error:
            raise StateRefused(f"it cannot be checked: {error}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _lock_holder(fd)
            os.close(fd)
            server = f"pid {holder}" if holder else "another process"
            raise StateInUse(f"another Jupyter server ({server}) holds {self.lock_path}") from None
        except OSError as error:
            os.close(fd)
            raise StateRefused(f"{self.lock_path} cannot be locked: {error}") from None
        with contextlib.suppress(OSError):  # only for a second server's message
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd: int | None = fd

    def load(self) -> list[Any]:
        """The records saved in the file (unchecked: see ``records.py``)."""
        return load_state(self.path)

    def save(self, records: list[dict[str, Any]]) -> None:
        """Write the records whole, while this server holds the lock."""
        if self._lock_fd is not None:
            save_state(self.path, records)

    def close(self) -> None:
        """Release the lock: another server may use the file from now on."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def load_state(path: str) -> list[Any]:
    """The job records saved at ``path``; an absent or unreadable file gives none."""
    data = read_json(path)
    if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
        return []
    jobs = data.get("jobs")
    return list(jobs) if isinstance(jobs, list) else []


def save_state(path: str, records: list[dict[str, Any]]) -> None:
    """Write the job records whole (see ``jsonfile.write_json``)."""
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    write_json(path, {"version": STATE_VERSION, "jobs": records})
