"""Each server run's private socket directory: a safe place, its owner in its name, swept when gone.

A server makes one directory per run under the socket base (``socket_dir``, else the
temporary directory), ``forgather-tb-<pid>-<start>-XXXXXXXX``: the server's pid and its
start time (clock ticks after boot, as /proc gives it) name the server that owns it, so
a later server can tell that owner is gone even when its pid was given to another
process since. Directories named as before this version (``forgather-tb-XXXXXXXX``)
have no owner to check and are left alone.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import stat
import tempfile

from .procfs import process_identity

RUN_DIR_PREFIX = "forgather-tb-"
#: A run directory's name; groups 1 and 2 are its server's pid and start time, when named.
RUN_DIR_RE = re.compile(r"forgather-tb-(?:([0-9]+)-([0-9]+)-)?[a-z0-9_]{8}")


class UnsafeSocketBase(Exception):
    """Another user could move or replace the server's socket directory; the text says how."""


def unsafe_base_reason(base: str) -> str | None:
    """Why another user could rename or replace directories under ``base``; None if nobody can.

    ``base`` and every directory above it (after resolving links) must belong to
    this server's user or root, and, where group or others may write it, carry
    the sticky bit (as /tmp does), which stops them renaming or deleting what is
    not theirs.
    """
    uid = os.geteuid()
    directory = os.path.realpath(base)
    while True:
        try:
            info = os.stat(directory)
        except OSError as error:
            return f"{directory} cannot be checked: {error.strerror}"
        if not stat.S_ISDIR(info.st_mode):
            return f"{directory} is not a directory"
        if info.st_uid not in (uid, 0):
            return (
                f"{directory} belongs to uid {info.st_uid}, neither this server's user "
                f"(uid {uid}) nor root, who could replace what is in it"
            )
        if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not info.st_mode & stat.S_ISVTX:
            who = "others" if info.st_mode & stat.S_IWOTH else "its group"
            return (
                f"{directory} is writable by {who} without the sticky bit "
                f"(mode {stat.S_IMODE(info.st_mode):#o}): they could rename or replace "
                "the server's socket directory in it and receive its requests"
            )
        parent = os.path.dirname(directory)
        if parent == directory:
            return None
        directory = parent


def check_socket_base(base: str) -> None:
    """Raise :class:`UnsafeSocketBase` if others could tamper with directories under ``base``."""
    why = unsafe_base_reason(base)
    if why:
        raise UnsafeSocketBase(
            f"the socket directory {base} is not safe: {why}. Set c.ForgatherTB.socket_dir "
            "(or TMPDIR) to a directory only this user and root can write, or one with the "
            "sticky bit such as /tmp"
        )


def make_run_dir(base: str) -> str:
    """A new private (0700) run directory under ``base``, named for this server."""
    identity = process_identity(os.getpid())
    start = identity[0] if identity else 0
    path = tempfile.mkdtemp(prefix=f"{RUN_DIR_PREFIX}{os.getpid()}-{start}-", dir=base)
    os.chmod(path, 0o700)
    return path


def _owner_gone(name: str) -> bool:
    """True if the directory's name says which server made it and that server is gone."""
    match = RUN_DIR_RE.fullmatch(name)
    if match is None or match[1] is None:
        return False
    identity = process_identity(int(match[1]))
    return identity is None or identity[0] != int(match[2])


def _serves(path: str) -> bool:
    """True if a process accepts connections on the Unix socket at ``path``."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.setblocking(False)
        try:
            probe.connect(path)
        except BlockingIOError:
            return True  # listening, its backlog full
        except OSError:
            return False
        return True


def _in_use(directory: str) -> bool:
    """True if a TensorBoard still serves on a socket in the directory (or it cannot be read).

    A job may outlive its server; a later server on the same job table re-adopts it.
    """
    try:
        with os.scandir(directory) as entries:
            return any(
                stat.S_ISSOCK(entry.stat(follow_symlinks=False).st_mode) and _serves(entry.path)
                for entry in entries
            )
    except OSError:
        return True


def sweep_run_dirs(base: str, log: logging.Logger) -> list[str]:
    """Remove the run directories under ``base`` of servers that are gone; the paths removed.

    Only directories of this user, named for a server (pid and start time) that no
    longer runs, and where no TensorBoard serves any more. A server killed outright
    (SIGKILL) leaves its directory behind; a server stopped cleanly removes its own.
    """
    removed: list[str] = []
    uid = os.geteuid()
    try:
        with os.scandir(base) as entries:
            candidates = [entry for entry in entries if _owner_gone(entry.name)]
    except OSError:
        return removed
    for entry in candidates:
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != uid or _in_use(entry.path):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        if not os.path.lexists(entry.path):
            removed.append(entry.path)
            log.info("Removed %s, the socket directory of a server that is gone", entry.path)
    return removed
