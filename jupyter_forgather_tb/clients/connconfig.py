"""The named connections of this machine's Jupyter configuration, for clients that need no server.

``jupyter forgather-tb upload --connection NAME`` opens the store as a job would, with the
settings of ``c.ForgatherTB.connections`` read from the same files the server reads
(``jupyter_server_config.py`` or ``.json`` in Jupyter's config path).
"""

from __future__ import annotations

import os
from typing import Any

from ..common.connections import Connection, parse_connections

CONFIG_NAMES = ("jupyter_server_config", "jupyter_forgather_tb_config")


def _load(directory: str, name: str) -> dict[str, Any]:
    """``c.ForgatherTB.connections`` of one config file pair (``.json`` then ``.py``)."""
    from traitlets.config.loader import (
        ConfigFileNotFound,
        JSONFileConfigLoader,
        PyFileConfigLoader,
    )

    found: dict[str, Any] = {}
    for loader in (JSONFileConfigLoader, PyFileConfigLoader):
        suffix = ".json" if loader is JSONFileConfigLoader else ".py"
        if not os.path.isfile(os.path.join(directory, name + suffix)):
            continue
        try:
            config = loader(name + suffix, path=directory).load_config()
        except ConfigFileNotFound:
            continue
        value = config.get("ForgatherTB", {}).get("connections")
        if isinstance(value, dict):
            found.update(value)
    return found


def configured_connections() -> dict[str, Connection]:
    """Every connection the Jupyter config files name, later (higher priority) files winning.

    Raises ``ValueError`` for a connection the server would refuse too.
    """
    from jupyter_core.paths import jupyter_config_path

    merged: dict[str, Any] = {}
    for directory in reversed(jupyter_config_path()):  # lowest priority first
        for name in CONFIG_NAMES:
            merged.update(_load(directory, name))
    return parse_connections(merged)


def find_connection(name: str) -> Connection:
    """The connection called ``name``; ``ValueError`` naming those there are when it is unknown."""
    connections = configured_connections()
    if name not in connections:
        known = ", ".join(sorted(connections)) or "none"
        raise ValueError(
            f"no connection named {name!r} in this machine's Jupyter configuration "
            f"(c.ForgatherTB.connections; configured: {known})"
        )
    return connections[name]
