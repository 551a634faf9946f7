"""What /proc says about processes and sockets: the one reader of each file read here.

- ``/proc/<pid>/stat``: :func:`read_stat` (state, session, group, CPU, start time, RSS);
- ``/proc/<pid>/cmdline`` with it: :func:`process_identity`, which tells a TensorBoard
  this server started from any other process that got the same pid;
- ``/proc/<pid>/fd``: :func:`socket_inodes`;
- ``/proc/<pid>/net/unix``, ``tcp`` and ``tcp6``: :func:`unix_listeners` and
  :func:`tcp_listeners`.

Parsing is pure and kept apart from the reads; a process that is gone reads as None
or as nothing.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import pwd
import sys
from dataclasses import dataclass
from typing import NamedTuple

_UNIX_LISTENING = 0x10000  # __SO_ACCEPTCON in /proc/net/unix's Flags column
_TCP_LISTEN = "0A"
_TCP_TABLES = ("tcp", "tcp6")

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class ProcStat(NamedTuple):
    """The fields of ``/proc/<pid>/stat`` this server uses."""

    state: str
    pgrp: int  # its process group
    session: int
    cpu_ticks: int  # utime + stime, in clock ticks
    nice: int
    start_time: int  # clock ticks after boot: with the pid, names one process
    rss_pages: int


def parse_stat(text: str) -> ProcStat:
    """Parse one ``/proc/<pid>/stat`` line (the command name may hold spaces and parentheses)."""
    fields = text.rsplit(")", 1)[1].split()
    # fields[0] is field 3 of proc(5) ("state"); field N is fields[N - 3].
    return ProcStat(
        state=fields[0],
        pgrp=int(fields[2]),
        session=int(fields[3]),
        cpu_ticks=int(fields[11]) + int(fields[12]),
        nice=int(fields[16]),
        start_time=int(fields[19]),
        rss_pages=int(fields[21]),
    )


def read_small(path: str) -> str | None:
    """A small /proc or cgroup file's text; None if it (or its process) is gone."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    except OSError:  # ESRCH: the process exited between open and read
        return None
    finally:
        os.close(fd)
    return b"".join(chunks).decode("ascii", "replace")


def read_stat(pid: int, proc: str = "/proc") -> ProcStat | None:
    """A process's stat, or None if it is gone (or unreadable)."""
    text = read_small(f"{proc}/{pid}/stat")
    if not text:
        return None
    try:
        return parse_stat(text)
    except (IndexError, ValueError):
        return None


def process_identity(pid: int) -> tuple[int, list[str]] | None:
    """A live process's start time (clock ticks after boot) and command line, or None.

    Together they tell our TensorBoard apart from an unrelated process that
    later got the same pid. Zombies count as gone.
    """
    stat = read_stat(pid)
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline_file:
            cmdline = cmdline_file.read()
    except OSError:
        return None
    if stat is None or stat.state == "Z":
        return None
    argv = [part.decode(errors="replace") for part in cmdline.split(b"\0")[:-1]]
    return stat.start_time, argv


def leads_its_group(pid: int) -> bool:
    """True if the process is its process group's leader, as every job we start is."""
    stat = read_stat(pid)
    return stat is not None and stat.pgrp == pid


def socket_inodes(pid: int) -> set[int]:
    """The inodes of the sockets the process has open (empty if it is gone)."""
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:[") and target.endswith("]"):
                    inodes.add(int(target[8:-1]))
    return inodes


def unix_listeners(pid: int) -> set[tuple[int, str]]:
    """(inode, path) of the listening Unix sockets in the process's network namespace."""
    found = set()
    with contextlib.suppress(OSError), open(f"/proc/{pid}/net/unix") as table:
        next(table, None)
        for line in table:
            # Num RefCount Protocol Flags Type St Inode Path (the path may hold spaces)
            parts = line.rstrip("\n").split(None, 7)
            if len(parts) == 8 and int(parts[3], 16) & _UNIX_LISTENING:
                found.add((int(parts[6]), parts[7]))
    return found


@dataclass(frozen=True)
class Listener:
    """One listening TCP socket: where, whose (uid), and its inode."""

    ip: Address
    port: int
    uid: int
    inode: int

    @property
    def user(self) -> str:
        """The owner's name and uid, for messages."""
        try:
            return f"user {pwd.getpwuid(self.uid).pw_name} (uid {self.uid})"
        except KeyError:
            return f"uid {self.uid}"


def _ip(hex_address: str) -> Address:
    """An address as the kernel prints it: 32-bit words in the host's byte order."""
    words = [bytes.fromhex(hex_address[i : i + 8]) for i in range(0, len(hex_address), 8)]
    if sys.byteorder == "little":
        words = [word[::-1] for word in words]
    ip = ipaddress.ip_address(b"".join(words))
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        return ip.ipv4_mapped
    return ip


def parse_tcp_table(text: str) -> list[Listener]:
    """The LISTEN entries of a ``/proc/net/tcp`` or ``tcp6`` table."""
    found = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10 or fields[3] != _TCP_LISTEN:
            continue
        address, port = fields[1].split(":")
        found.append(Listener(_ip(address), int(port, 16), int(fields[7]), int(fields[9])))
    return found


def tcp_listeners(pid: int | str = "self") -> list[Listener]:
    """The listening TCP sockets (IPv4 and IPv6) in a process's network namespace."""
    found = []
    for table in _TCP_TABLES:
        text = read_small(f"/proc/{pid}/net/{table}")  # None: no IPv6 on this machine
        found += parse_tcp_table(text) if text else []
    return found


def listens_on(pid: int, *, unix_socket: str | None = None, port: int | None = None) -> bool:
    """True if the process itself holds a socket listening at this path, or on this TCP port."""
    inodes = socket_inodes(pid)
    if unix_socket is not None:
        return any(inode in inodes and path == unix_socket for inode, path in unix_listeners(pid))
    if port is not None:
        return any(entry.inode in inodes and entry.port == port for entry in tcp_listeners(pid))
    return False
