"""What /proc says about a live process: who it is, and which sockets it listens on.

Re-adoption after a restart uses these to tell a TensorBoard this server started
from any other process that got the same pid, or that copied its command line.
"""

from __future__ import annotations

import contextlib
import os

_UNIX_LISTENING = 0x10000  # __SO_ACCEPTCON in /proc/net/unix's Flags column
_TCP_LISTEN = "0A"


def _stat_fields(pid: int) -> list[str] | None:
    """Fields 3 on of /proc/<pid>/stat (after the command name), or None."""
    try:
        with open(f"/proc/{pid}/stat") as stat_file:
            return stat_file.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def process_identity(pid: int) -> tuple[int, list[str]] | None:
    """A live process's start time (clock ticks after boot) and command line, or None.

    Together they tell our TensorBoard apart from an unrelated process that
    later got the same pid. Zombies count as gone.
    """
    fields = _stat_fields(pid)
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline_file:
            cmdline = cmdline_file.read()
    except OSError:
        return None
    if fields is None or fields[0] == "Z":
        return None
    # Field 22 of /proc/<pid>/stat is the start time; fields here start at field 3.
    start_time = int(fields[19])
    argv = [part.decode(errors="replace") for part in cmdline.split(b"\0")[:-1]]
    return start_time, argv


def leads_its_group(pid: int) -> bool:
    """True if the process is its process group's leader, as every job we start is."""
    fields = _stat_fields(pid)
    return fields is not None and fields[2] == str(pid)


def _socket_inodes(pid: int) -> set[str]:
    """The inodes of the sockets the process has open."""
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:[") and target.endswith("]"):
                    inodes.add(target[8:-1])
    return inodes


def _unix_listeners(pid: int) -> set[tuple[str, str]]:
    """(inode, path) of the listening Unix sockets in the process's network namespace."""
    found = set()
    with contextlib.suppress(OSError), open(f"/proc/{pid}/net/unix") as table:
        next(table, None)
        for line in table:
            # Num RefCount Protocol Flags Type St Inode Path (the path may hold spaces)
            parts = line.rstrip("\n").split(None, 7)
            if len(parts) == 8 and int(parts[3], 16) & _UNIX_LISTENING:
                found.add((parts[6], parts[7]))
    return found


def _tcp_listeners(pid: int) -> set[tuple[str, int]]:
    """(inode, port) of the listening TCP sockets in the process's network namespace."""
    found = set()
    for name in ("tcp", "tcp6"):
        with contextlib.suppress(OSError), open(f"/proc/{pid}/net/{name}") as table:
            next(table, None)
            for line in table:
                # sl local_address rem_address st ... uid timeout inode ...
                parts = line.split()
                if len(parts) > 9 and parts[3] == _TCP_LISTEN:
                    found.add((parts[9], int(parts[1].rsplit(":", 1)[1], 16)))
    return found


def listens_on(pid: int, *, unix_socket: str | None = None, port: int | None = None) -> bool:
    """True if the process itself holds a socket listening at this path, or on this TCP port."""
    inodes = _socket_inodes(pid)
    if unix_socket is not None:
        return any(inode in inodes and path == unix_socket for inode, path in _unix_listeners(pid))
    if port is not None:
        return any(inode in inodes and bound == port for inode, bound in _tcp_listeners(pid))
    return False
