"""Finds a running Jupyter server and calls our REST API on it (used by the magic and the CLI).

Standard library only, so importing it in a kernel stays cheap.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, Callable

API_PATH = "forgather-tb/api/"
ENV_SERVER = "FORGATHER_TB_SERVER"
ENV_TOKEN = "FORGATHER_TB_TOKEN"
SETTLED = ("running", "exited", "failed", "killed", "lost")

NO_SERVER_HELP = (
    "No running Jupyter server was found. Start one (jupyter lab), or say which one to use: "
    f"pass --server URL --token TOKEN, or set {ENV_SERVER} and {ENV_TOKEN}."
)


class ClientError(Exception):
    """A call failed; ``message`` is what to show, ``field`` the launch option at fault."""

    def __init__(self, message: str, status: int | None = None, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.field = field


class NoServerFound(ClientError):
    """No Jupyter server could be found or chosen."""


@dataclass(frozen=True)
class ServerInfo:
    """Where a Jupyter server is: its URL including the base URL, and a token."""

    url: str
    token: str
    root_dir: str | None = None
    source: str = "explicit"

    @property
    def base_path(self) -> str:
        """The server's base URL path, e.g. ``/user/alice/``."""
        return urllib.parse.urlsplit(self.url).path or "/"

    def browser_url(self, path: str) -> str:
        """An absolute URL for a server-relative path, for opening in a browser."""
        parts = urllib.parse.urlsplit(self.url)
        return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _with_slash(url: str) -> str:
    return url if url.endswith("/") else url + "/"


def running_servers(runtime_dir: str | None = None) -> list[ServerInfo]:
    """Jupyter servers that have left a live ``jpserver-*.json`` in the runtime directory."""
    from jupyter_server.serverapp import list_running_servers

    found = []
    for info in list_running_servers(runtime_dir):
        found.append(
            ServerInfo(
                url=_with_slash(info["url"]),
                token=info.get("token", ""),
                root_dir=info.get("root_dir") or info.get("notebook_dir"),
                source=f"running server (pid {info.get('pid')})",
            )
        )
    return found


def _hub_server(env: dict[str, str]) -> ServerInfo | None:
    token = env.get("JUPYTERHUB_API_TOKEN")
    prefix = env.get("JUPYTERHUB_SERVICE_PREFIX")
    if not token or not prefix:
        return None
    url = env.get("JUPYTERHUB_SERVICE_URL") or env.get("JUPYTER_SERVER_URL")
    if url:
        url = _with_slash(url)
        if not urllib.parse.urlsplit(url).path.rstrip("/"):
            url = urllib.parse.urljoin(url, prefix)
    else:
        port = env.get("JUPYTER_PORT", "8888")
        url = f"http://127.0.0.1:{port}{prefix}"
    return ServerInfo(url=_with_slash(url), token=token, source="JupyterHub environment")


def _contains(root: str, path: str) -> bool:
    root, path = os.path.realpath(root), os.path.realpath(path)
    return os.path.commonpath([root, path]) == root


def find_server(
    server: str | None = None,
    token: str | None = None,
    cwd: str | None = None,
    env: dict[str, str] | None = None,
    runtime_dir: str | None = None,
) -> ServerInfo:
    """The Jupyter server to talk to.

    In order: an explicit ``server``/``token``; the ``FORGATHER_TB_SERVER`` and
    ``FORGATHER_TB_TOKEN`` variables; JupyterHub's variables in a single-user
    server; the running server whose root directory holds ``cwd`` (the deepest
    one), or the only running server.
    """
    env = dict(os.environ if env is None else env)
    server = server or env.get(ENV_SERVER)
    if server:
        return ServerInfo(url=_with_slash(server), token=token or env.get(ENV_TOKEN, ""))
    hub = _hub_server(env)
    if hub is not None:
        return hub
    servers = running_servers(runtime_dir)
    if not servers:
        raise NoServerFound(NO_SERVER_HELP)
    cwd = cwd or os.getcwd()
    holding = [s for s in servers if s.root_dir and _contains(s.root_dir, cwd)]
    if holding:
        chosen = max(holding, key=lambda s: len(os.path.realpath(s.root_dir)))
    elif len(servers) == 1:
        chosen = servers[0]
    else:
        urls = ", ".join(s.url for s in servers)
        raise NoServerFound(
            f"Several Jupyter servers are running ({urls}) and none serves {cwd}; "
            "choose one with --server URL --token TOKEN."
        )
    return ServerInfo(chosen.url, token or chosen.token, chosen.root_dir, chosen.source)


class Client:
    """Typed calls to the TensorBoard job API of one Jupyter server."""

    def __init__(self, server: ServerInfo, timeout: float = 30.0):
        self.server = server
        self.timeout = timeout

    def _call(self, method: str, path: str, body: Any = None, params: dict | None = None):
        url = urllib.parse.urljoin(self.server.url, API_PATH + path)
        if params:
            url += "?" + urllib.parse.urlencode(params)
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if self.server.token:
            request.add_header("Authorization", f"token {self.server.token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            raise self._error(error) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            message = f"Cannot reach the Jupyter server at {self.server.url}: {reason}"
            raise ClientError(message) from None

    def _error(self, error: urllib.error.HTTPError) -> ClientError:
        try:
            payload = json.loads(error.read())
        except ValueError:
            payload = {}
        message = payload.get("message") if isinstance(payload, dict) else None
        if error.code == 403:
            message = (
                f"The Jupyter server refused the request ({message or 'Forbidden'}): "
                "check the token and your permissions."
            )
        if error.code == 404 and not message:
            message = (
                f"{self.server.url} does not serve the TensorBoard API: is jupyter-forgather-tb "
                "installed and enabled in that server?"
            )
        field = payload.get("field") if isinstance(payload, dict) else None
        return ClientError(message or f"HTTP {error.code} {error.reason}", error.code, field)

    def launch(self, options: dict[str, Any]) -> tuple[dict, bool]:
        """Launch a job (or reuse the live one with the same options): ``(job, reused)``."""
        status, job = self._call("POST", "jobs", body=options)
        return job, bool(job.get("reused", status == 200))

    def jobs(self) -> list[dict]:
        """Every job the server knows, oldest first."""
        return self._call("GET", "jobs")[1]

    def job(self, job_id: str) -> dict:
        """One job."""
        return self._call("GET", f"jobs/{urllib.parse.quote(job_id, safe='')}")[1]

    def kill(self, job_id: str) -> dict:
        """Stop or cancel a job; returns it in its final state."""
        return self._call("DELETE", f"jobs/{urllib.parse.quote(job_id, safe='')}")[1]

    def output(self, job_id: str, offset: int = 0) -> dict:
        """A chunk of a job's output from a byte offset."""
        path = f"jobs/{urllib.parse.quote(job_id, safe='')}/output"
        return self._call("GET", path, params={"offset": offset})[1]

    def wait(
        self,
        job_id: str,
        timeout: float = 120.0,
        on_change: Callable[[dict], None] | None = None,
        interval: float = 0.2,
    ) -> dict:
        """Poll a job until it runs or ends; ``on_change`` sees each new status."""
        deadline = time.monotonic() + timeout
        last = None
        while True:
            job = self.job(job_id)
            if job["status"] != last and on_change is not None:
                on_change(job)
            last = job["status"]
            if job["status"] in SETTLED:
                return job
            if time.monotonic() > deadline:
                raise ClientError(f"TensorBoard job {job_id} is still {last} after {timeout:g} s")
            time.sleep(interval)
