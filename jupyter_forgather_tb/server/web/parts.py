"""What every handler of ours reaches: the manager, the backend clients, the settings."""

from __future__ import annotations

from typing import Any, cast

from ..jobs.manager import JobManager
from .backends import BackendClients
from .settings import WebSettings


class ServerParts:
    """A mixin for tornado handlers: the parts the app shares through ``settings``."""

    settings: dict[str, Any]  # the tornado Application's settings

    @property
    def manager(self) -> JobManager:
        """The job manager."""
        return cast(JobManager, self.settings["forgather_tb_manager"])

    @property
    def backends(self) -> BackendClients:
        """The HTTP clients that reach each running job (the proxy's)."""
        return cast(BackendClients, self.settings["forgather_tb_backends"])

    @property
    def tb_config(self) -> WebSettings:
        """The web layer's settings, read once from the app's traits."""
        return cast(WebSettings, self.settings["forgather_tb_config"])
