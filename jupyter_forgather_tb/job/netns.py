"""A private network namespace for a job's process, with a working loopback.

TensorBoard's Rust data server listens on a loopback TCP port with no
authentication. In a network namespace of the job's own, that loopback is the
job's alone: no other process on the machine can reach the port, while the
Jupyter server still reaches TensorBoard through its Unix socket (a socket in the
file system is not tied to a network namespace).

The new loopback also gets ``quickack`` on its local routes. The data server
writes each gRPC answer in three pieces (headers, data, trailers) on a socket
without ``TCP_NODELAY`` (seen with strace), so on a normal loopback every
request waits out the reader's delayed ACK (about 40 ms); with quick ACKs a
scalars request takes a few milliseconds. The route attribute is a
per-namespace setting, so this touches nothing outside the job.

Linux only. Runs in the job's process before it starts any thread (a user
namespace requires a single-threaded caller). Written with ctypes, ioctl and a
raw netlink socket instead of ``ip`` from iproute2 (missing from slim container
images) or pyroute2 (a large dependency for three system calls).
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import socket
import struct
import sys

CLONE_NEWNET = 0x40000000
CLONE_NEWUSER = 0x10000000
_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1
# Netlink (linux/netlink.h, linux/rtnetlink.h).
_RTM_NEWROUTE = 24
_NLMSG_ERROR = 2
_NLM_F_REQUEST, _NLM_F_ACK, _NLM_F_REPLACE, _NLM_F_CREATE = 0x1, 0x4, 0x100, 0x400
_RT_TABLE_LOCAL, _RTPROT_KERNEL, _RT_SCOPE_HOST, _RTN_LOCAL = 255, 2, 254, 2
_RTA_DST, _RTA_OIF, _RTA_PREFSRC, _RTA_METRICS, _RTA_TABLE = 1, 4, 7, 8, 15
_RTAX_QUICKACK = 15
LOOPBACK_ROUTES = (("127.0.0.1", 32), ("127.0.0.0", 8))


class NetnsError(Exception):
    """The private network could not be set up; the message says which step failed."""


def _unshare(flags: int) -> None:
    # os.unshare exists only from Python 3.12.
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(ctypes.c_int(flags)) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


def _write(path: str, text: str) -> None:
    with open(path, "w") as file:
        file.write(text)


def _new_namespace() -> None:
    """Enter a new network namespace: directly as root, else inside a user namespace."""
    if not sys.platform.startswith("linux"):
        raise NetnsError("network namespaces are Linux only")
    try:
        _unshare(CLONE_NEWNET)
        return
    except OSError as error:
        if error.errno != errno.EPERM:
            raise NetnsError(f"unshare(CLONE_NEWNET): {error.strerror}") from None
    # Not privileged: a user namespace gives us the capabilities for the network
    # namespace it owns. Our user and group map to themselves, so files and
    # signals work as before.
    uid, gid = os.getuid(), os.getgid()
    try:
        _unshare(CLONE_NEWUSER | CLONE_NEWNET)
    except OSError as error:
        raise NetnsError(f"unshare(CLONE_NEWUSER | CLONE_NEWNET): {error.strerror}") from None
    try:
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"{uid} {uid} 1")
        _write("/proc/self/gid_map", f"{gid} {gid} 1")
    except OSError as error:
        raise NetnsError(f"mapping our user into the user namespace: {error.strerror}") from None


def _loopback_up() -> int:
    """Bring ``lo`` up; return its interface index."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH22x", b"lo", 0)
        flags = struct.unpack("16sH22x", fcntl.ioctl(sock, _SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack("16sH22x", b"lo", flags | _IFF_UP))
    return socket.if_nametoindex("lo")


def _attribute(kind: int, data: bytes) -> bytes:
    size = 4 + len(data)
    return struct.pack("HH", size, kind) + data + b"\0" * (-size % 4)


def route_message(address: str, prefix: int, ifindex: int, sequence: int) -> bytes:
    """An RTM_NEWROUTE request replacing a local loopback route with one that has quickack."""
    metrics = _attribute(_RTAX_QUICKACK, struct.pack("I", 1))
    body = struct.pack(
        "BBBBBBBBI",
        socket.AF_INET,
        prefix,
        0,  # source length
        0,  # type of service
        _RT_TABLE_LOCAL,
        _RTPROT_KERNEL,
        _RT_SCOPE_HOST,
        _RTN_LOCAL,
        0,  # flags
    )
    body += _attribute(_RTA_TABLE, struct.pack("I", _RT_TABLE_LOCAL))
    body += _attribute(_RTA_DST, socket.inet_aton(address))
    body += _attribute(_RTA_PREFSRC, socket.inet_aton("127.0.0.1"))
    body += _attribute(_RTA_OIF, struct.pack("I", ifindex))
    body += _attribute(_RTA_METRICS, metrics)
    flags = _NLM_F_REQUEST | _NLM_F_ACK | _NLM_F_REPLACE | _NLM_F_CREATE
    return struct.pack("IHHII", 16 + len(body), _RTM_NEWROUTE, flags, sequence, 0) + body


def _quickack_routes(ifindex: int) -> None:
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as sock:
        sock.settimeout(2.0)
        for sequence, (address, prefix) in enumerate(LOOPBACK_ROUTES, 1):
            sock.send(route_message(address, prefix, ifindex, sequence))
            reply = sock.recv(4096)
            kind = struct.unpack_from("IH", reply)[1]
            code = -struct.unpack_from("i", reply, 16)[0] if kind == _NLMSG_ERROR else 0
            if code:
                raise NetnsError(f"quickack route {address}/{prefix}: {os.strerror(code)}")


def _set_up() -> str | None:
    _new_namespace()
    try:
        ifindex = _loopback_up()
    except OSError as error:
        raise NetnsError(f"bringing up the loopback interface: {error.strerror}") from None
    try:
        _quickack_routes(ifindex)
    except (OSError, NetnsError) as error:
        return f"quickack loopback routes: {getattr(error, 'strerror', None) or error}"
    return None


def _fails_in_a_child() -> str | None:
    """Set up a private network in a forked child; why it failed, or None if it worked."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report and leave without running anything of the parent's
        code = 0
        try:
            os.close(read_end)
            _set_up()
        except BaseException as error:
            os.write(write_end, str(error).encode()[:4096] or b"failed")
            code = 1
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as reader:
        why = reader.read().decode(errors="replace")
    status = os.waitpid(pid, 0)[1]
    if not why and os.waitstatus_to_exitcode(status) != 0:
        why = "the trial process died"
    return why or None


def enter_private_network() -> str | None:
    """Move this process into a network namespace of its own with loopback up.

    A namespace entered cannot be left, and one half set up (say, a user namespace
    whose ID maps could not be written, where no file can be created) would break
    the job; so it is tried in a forked child first. Raises NetnsError with the
    failed step if the machine does not allow it; the process is then unchanged.
    Returns a note if only the quickack routes failed: the loopback is private
    and works, but the Rust data server answers as slowly as on the host's.
    """
    why = _fails_in_a_child()
    if why:
        raise NetnsError(why)
    return _set_up()
