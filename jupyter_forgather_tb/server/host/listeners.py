"""Who listens on a TCP port: the kernel's socket tables, matched against a job's processes.

A job with a TCP port is only trusted once the listening socket on its address is
proved to be one its own processes hold: the inode of the LISTEN entry in
``/proc/net/tcp`` or ``tcp6`` must be among the sockets open in the job's process
group. Any other listener on that address is an impostor (another local user may
bind a loopback port first). Linux only; parsing is kept apart from reading.
"""

from __future__ import annotations

import ipaddress
import os
import pwd
import sys
from dataclasses import dataclass

from .transport import port_is_free

_LISTEN = "0A"
_TABLES = ("tcp", "tcp6")

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


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


def parse_table(text: str) -> list[Listener]:
    """The LISTEN entries of a ``/proc/net/tcp`` or ``tcp6`` table."""
    found = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10 or fields[3] != _LISTEN:
            continue
        address, port = fields[1].split(":")
        found.append(Listener(_ip(address), int(port, 16), int(fields[7]), int(fields[9])))
    return found


def overlaps(a: Address, b: Address) -> bool:
    """True if listeners on ``a`` and ``b`` (same port) could take each other's connections.

    A wildcard address covers its family; ``::`` may take IPv4 too (dual stack).
    """
    if a == b:
        return True
    for wild, other in ((a, b), (b, a)):
        if wild.is_unspecified and (wild.version == other.version or wild.version == 6):
            return True
    return False


def listeners_on(ip: str, port: int) -> list[Listener]:
    """The listeners on ``port`` that overlap ``ip``, in this server's network namespace.

    Jobs with a TCP port share it (only jobs on a Unix socket get a network of their own),
    and it is where the proxy connects.
    """
    wanted = ipaddress.ip_address(ip)
    found = []
    for table in _TABLES:
        try:
            with open(f"/proc/self/net/{table}") as source:
                text = source.read()
        except OSError:  # no IPv6 on this machine
            continue
        found += [e for e in parse_table(text) if e.port == port and overlaps(e.ip, wanted)]
    return found


def group_socket_inodes(pgid: int) -> set[int]:
    """Inodes of the sockets open in a process group (a job's runner and its children)."""
    inodes: set[int] = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.getpgid(int(entry)) != pgid:
                continue
            fd_dir = f"/proc/{entry}/fd"
            for fd in os.listdir(fd_dir):
                target = os.readlink(os.path.join(fd_dir, fd))
                if target.startswith("socket:["):
                    inodes.add(int(target[8:-1]))
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return inodes


@dataclass(frozen=True)
class PortCheck:
    """Who listens where a job should: its own socket on the exact address, and anyone else."""

    ours: bool
    foreign: Listener | None


def check_port(pgid: int | None, ip: str, port: int) -> PortCheck:
    """Whether the job (process group ``pgid``) listens on exactly ``ip:port``, and who else does.

    Blocking: run it in a thread. Reading the kernel's tables costs milliseconds per
    thousand sockets on the machine, so they are read only when a trial bind says
    someone listens there (a bind that neither listens nor hinders the job's own).
    """
    if port_is_free(port, ip):
        return PortCheck(ours=False, foreign=None)
    found = listeners_on(ip, port)
    if not found:
        return PortCheck(ours=False, foreign=None)
    inodes = group_socket_inodes(pgid) if pgid else set()
    exact = ipaddress.ip_address(ip)
    ours = any(entry.inode in inodes and entry.ip == exact for entry in found)
    foreign = next((entry for entry in found if entry.inode not in inodes), None)
    return PortCheck(ours=ours, foreign=foreign)
