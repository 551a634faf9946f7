"""Named connections: what a remote source needs beyond the standard credential chains.

``c.ForgatherTB.connections = {"minio": {"protocol": "s3", "endpoint_url": ...}}``,
chosen per launch by name. Pure checks shared by the server (which parses them at
start and lists them without secrets) and the job (which opens the source with them).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .sources import REMOTE_SCHEMES, SourceURL

#: What a connection name looks like.
CONNECTION_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")

_STR, _BOOL, _INT, _PATHS = "a string", "true or false", "an integer", "a path or a list of paths"

#: The settings each protocol takes, and what kind of value each is.
SETTINGS: dict[str, dict[str, str]] = {
    "s3": {
        "endpoint_url": _STR,
        "region": _STR,
        "ca_bundle": _STR,
        "profile": _STR,
        "key": _STR,
        "secret": _STR,
        "anon": _BOOL,
    },
    "gs": {"endpoint_url": _STR, "project": _STR, "token": _STR, "anon": _BOOL},
    "az": {
        "account_name": _STR,
        "connection_string": _STR,
        "account_key": _STR,
        "sas_token": _STR,
        "anon": _BOOL,
    },
    "ssh": {
        "host": _STR,
        "port": _INT,
        "username": _STR,
        "client_keys": _PATHS,
        "known_hosts": _STR,
        "config": _STR,
    },
}
#: Settings that are, or may hold, a credential: never shown, logged or put on a command line.
SECRET_SETTINGS = frozenset(
    {"key", "secret", "token", "connection_string", "account_key", "sas_token"}
)


@dataclass(frozen=True)
class Connection:
    """One named connection: its ``protocol`` (a URL scheme) and its checked ``settings``."""

    name: str
    protocol: str
    settings: Mapping[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:  # never a secret in a log line or a traceback
        return f"Connection({public_view(self)!r})"


def _check_value(name: str, key: str, kind: str, value: Any) -> Any:
    ok = {
        _STR: isinstance(value, str) and value != "",
        _BOOL: isinstance(value, bool),
        _INT: isinstance(value, int) and not isinstance(value, bool) and 0 < value < 65536,
        _PATHS: isinstance(value, str)
        or (isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)),
    }[kind]
    if not ok:
        what = "a port number (1-65535)" if kind == _INT else kind
        raise ValueError(f"connection {name!r}: {key!r} must be {what}")
    return list(value) if kind == _PATHS and not isinstance(value, str) else value


def parse_connection(name: Any, entry: Any) -> Connection:
    """One connection from its config entry; ``ValueError`` naming the entry and the key."""
    if not isinstance(name, str) or not CONNECTION_NAME_RE.fullmatch(name):
        raise ValueError(
            f"connection name {name!r} must be 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    if not isinstance(entry, Mapping):
        raise ValueError(f"connection {name!r} must be a dict of settings")
    protocol = entry.get("protocol")
    if protocol == "abfs":
        protocol = "az"
    if protocol not in REMOTE_SCHEMES:
        raise ValueError(
            f"connection {name!r}: 'protocol' must be one of {', '.join(REMOTE_SCHEMES)}"
        )
    allowed = SETTINGS[protocol]
    settings: dict[str, Any] = {}
    for key, value in entry.items():
        if key == "protocol":
            continue
        if key not in allowed:
            raise ValueError(
                f"connection {name!r}: unknown setting {key!r} for {protocol} "
                f"(accepted: {', '.join(sorted(allowed))})"
            )
        settings[key] = _check_value(name, key, allowed[key], value)
    return Connection(name, protocol, settings)


def parse_connections(config: Mapping[str, Any]) -> dict[str, Connection]:
    """The connections of ``c.ForgatherTB.connections``, by name; ``ValueError`` if one is bad."""
    if not isinstance(config, Mapping):
        raise ValueError("connections must be a dict of {name: {protocol: ..., ...}}")
    return {name: parse_connection(name, entry) for name, entry in config.items()}


def public_view(conn: Connection) -> dict[str, Any]:
    """What may be shown of a connection: its name, protocol and settings that hold no secret."""
    return {
        "name": conn.name,
        "protocol": conn.protocol,
        "settings": {k: v for k, v in conn.settings.items() if k not in SECRET_SETTINGS},
    }


def check_connection_for(url: SourceURL, conn: Connection | None) -> None:
    """``ValueError`` unless ``conn`` (None: the standard chains) can open ``url``."""
    if conn is not None and conn.protocol != url.scheme:
        raise ValueError(
            f"connection {conn.name!r} is for {conn.protocol}:// sources, not {url.scheme}://"
        )
