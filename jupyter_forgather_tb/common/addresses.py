"""Where a job with a TCP port listens, and where the Jupyter server connects to it.

Pure functions, shared by the runner (which binds) and the server (which checks the
listener and connects). ``localhost`` means ``127.0.0.1``: the address is then one the
server can check exactly, not whichever a resolver picks.
"""

from __future__ import annotations

import ipaddress

LOCALHOST_IP = "127.0.0.1"
#: What ``bind_all`` binds first: every interface, IPv6 and IPv4 through one socket.
ANY_IP = "::"
_LOOPBACK_OF_ANY = {"::": "::1", "0.0.0.0": LOCALHOST_IP}


def bind_ip(host: str | None, bind_all: bool) -> str:
    """The IP address a job binds for its ``host`` option (or every interface)."""
    if bind_all:
        return ANY_IP
    if host in (None, "", "localhost"):
        return LOCALHOST_IP
    return str(ipaddress.ip_address(host))


def connect_ip(bound: str) -> str:
    """The loopback address to connect to a listener bound to ``bound``."""
    return _LOOPBACK_OF_ANY.get(bound, bound)


def url_host(ip: str) -> str:
    """An IP address as a URL's host: IPv6 literals in brackets."""
    return f"[{ip}]" if ":" in ip else ip
