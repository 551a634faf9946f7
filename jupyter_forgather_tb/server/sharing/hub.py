"""JupyterHub's REST API, called with the single-user server's own token.

The Hub stays the one place that knows who is who: a share made here is a JupyterHub
share of the owner's server (which the authorizer then narrows to one job), so the
visitor can see it, and the owner revoke it, in JupyterHub's own pages as well.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from tornado.httpclient import AsyncHTTPClient, HTTPClientError

#: Scopes the server's token needs (``c.Spawner.server_token_scopes``) for each feature.
NEEDED_SCOPES = {
    "shares!user": "make and revoke shares of this server",
    "read:users:name": "name a user to share with",
    "read:groups": "share with a group's members (JupyterHub 6 tokens ignore group shares)",
    "read:users:shares!user": "list what others share with this server's owner",
}


class HubError(Exception):
    """JupyterHub refused or failed a request: ``status`` and its message."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class HubEnv:
    """Where the Hub's API is and who this server is, from JupyterHub's environment."""

    api_url: str
    token: str
    owner: str
    server: str

    @classmethod
    def from_environ(cls, environ: dict[str, str] | None = None) -> HubEnv | None:
        """The Hub this server was spawned by, or None outside JupyterHub."""
        env = os.environ if environ is None else environ
        needed = ("JUPYTERHUB_API_URL", "JUPYTERHUB_API_TOKEN", "JUPYTERHUB_USER")
        if not all(env.get(name) for name in needed):
            return None
        return cls(
            env["JUPYTERHUB_API_URL"].rstrip("/"),
            env["JUPYTERHUB_API_TOKEN"],
            env["JUPYTERHUB_USER"],
            env.get("JUPYTERHUB_SERVER_NAME", ""),
        )


def missing_scopes(have: list[str]) -> dict[str, str]:
    """The needed scopes (with what each is for) that a token's ``scopes`` lack."""
    held = set(have)

    def covered(scope: str) -> bool:
        base = scope.split("!", 1)[0]
        return scope in held or base in held or any(h.startswith(base + "!") for h in held)

    return {scope: why for scope, why in NEEDED_SCOPES.items() if not covered(scope)}


class HubClient:
    """The Hub's API for this server's owner: shares, share codes, identity."""

    def __init__(self, env: HubEnv):
        self.env = env
        self._http = AsyncHTTPClient()

    @property
    def _server_path(self) -> str:
        return f"{quote(self.env.owner, safe='')}/{quote(self.env.server, safe='')}"

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        try:
            response = await self._http.fetch(
                f"{self.env.api_url}/{path}",
                method=method,
                headers={"Authorization": f"token {self.env.token}"},
                body=None if body is None else json.dumps(body),
                allow_nonstandard_methods=True,
                request_timeout=30,
            )
        except HTTPClientError as error:
            raise HubError(error.code, _hub_message(error)) from None
        except OSError as error:
            raise HubError(502, f"JupyterHub's API cannot be reached: {error}") from None
        return json.loads(response.body) if response.body else None

    async def token_scopes(self) -> list[str]:
        """The scopes of this server's own token."""
        return list((await self._call("GET", "user")).get("scopes", []))

    async def share(self, kind: str, name: str) -> None:
        """Share this server with a user or a group (``kind`` "user" or "group")."""
        await self._call("POST", f"shares/{self._server_path}", {kind: name})

    async def unshare(self, kind: str, name: str) -> None:
        """Revoke a user's or a group's share of this server (gone already is fine)."""
        try:
            await self._call("PATCH", f"shares/{self._server_path}", {kind: name})
        except HubError as error:
            if error.status != 404:
                raise

    async def share_code(self, expires_in: int) -> dict[str, Any]:
        """A new share code for this server: its model, with ``code`` and ``accept_url``."""
        body = {"expires_in": expires_in}
        return dict(await self._call("POST", f"share-codes/{self._server_path}", body))

    async def revoke_code(self, code_id: str) -> None:
        """Revoke a share code by its id (gone already is fine)."""
        query = urlencode({"id": code_id})
        try:
            await self._call("DELETE", f"share-codes/{self._server_path}?{query}")
        except HubError as error:
            if error.status != 404:
                raise

    async def group_members(self, group: str) -> list[str]:
        """The names of a group's members."""
        return list((await self._call("GET", f"groups/{quote(group, safe='')}")).get("users", []))

    async def shared_with_owner(self) -> list[dict[str, Any]]:
        """The servers others share with this server's owner (JupyterHub's list)."""
        answer = await self._call("GET", f"users/{quote(self.env.owner, safe='')}/shared")
        return list(answer.get("items", answer) if isinstance(answer, dict) else answer)


def _hub_message(error: HTTPClientError) -> str:
    body = error.response.body if error.response is not None else b""
    try:
        return str(json.loads(body)["message"])
    except (ValueError, KeyError, TypeError):
        return f"JupyterHub answered {error.code}"
