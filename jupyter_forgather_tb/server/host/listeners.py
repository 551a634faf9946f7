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
from dataclasses import dataclass

from .procfs import Address, Listener, socket_inodes, tcp_listeners
from .transport import port_is_free


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
    return [e for e in tcp_listeners() if e.port == port and overlaps(e.ip, wanted)]


def group_socket_inodes(pgid: int) -> set[int]:
    """Inodes of the sockets open in a process group (a job's runner and its children)."""
    inodes: set[int] = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.getpgid(int(entry)) != pgid:
                continue
        except OSError:  # gone meanwhile
            continue
        inodes |= socket_inodes(int(entry))
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
