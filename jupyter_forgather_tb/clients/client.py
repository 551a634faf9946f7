"""Finds a running Jupyter server and calls our REST API on it (used by the magic and the CLI).

HTTP goes through the standard library's ``urllib``, so importing this in a kernel
stays cheap; only discovery imports ``jupyter_server`` (to read its runtime files).
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any, cast

from ..common.sources import url_scheme

API_PATH = "forgather-tb/api/"
ENV_SERVER = "FORGATHER_TB_SERVER"
ENV_TOKEN = "FORGATHER_TB_TOKEN"
LIVE = ("queued", "starting")
ENDED = ("exited", "failed", "killed", "lost")

#: What a relative log directory means to the magic and the CLI.
LOGDIR_HELP = (
    "log directory; a relative one starts at the current directory when the server runs "
    "on this machine, else at the server's root; or a remote one, mirrored: "
    "s3://bucket/prefix, gs://bucket/prefix, az://container/prefix or "
    "ssh://[user@]host[:port]/path"
)

NO_SERVER_HELP = (
    "No running Jupyter server was found. Start one (jupyter lab), or say which one to use: "
    f"pass --server URL --token TOKEN, or set {ENV_SERVER} and {ENV_TOKEN}."
)

# Hosts a server may bind to but a client cannot connect to.
_ANY_HOST = ("", "*", "0.0.0.0", "::", "[::]")


def _from(start: str, path: Any) -> Any:
    """A local relative path taken from ``start``; anything else as it is."""
    if isinstance(path, str) and path.strip() and not url_scheme(path):
        return os.path.join(start, os.path.expanduser(path))
    return path


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
    """A Jupyter server: its URL (with the base URL), a token, and how it was found.

    ``local`` servers run on this machine, so a relative log directory is taken
    from the current directory; for a server given by URL it is taken from the
    server's root. ``public_url`` is where a browser reaches ``url`` when that
    differs (JupyterHub). A server found through JupyterHub's variables (``hub``)
    is reached by browsers through the Hub's address, never its own.
    """

    url: str
    token: str
    source: str
    root_dir: str | None = None
    pid: int | None = None
    local: bool = False
    public_url: str | None = None
    hub: bool = False

    @property
    def base_path(self) -> str:
        """The server's base URL path, e.g. ``/user/alice/``."""
        return urllib.parse.urlsplit(self.url).path or "/"

    def browser_url(self, path: str) -> str:
        """A URL a browser can open for a server-relative path such as a job's ``url``.

        Under a Hub that does not publish its public URL, that is the path alone.
        """
        if self.hub and not self.public_url:
            return path
        parts = urllib.parse.urlsplit(self.public_url or self.url)
        return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _with_slash(url: str) -> str:
    return url if url.endswith("/") else url + "/"


def _given_url(url: str) -> str:
    return _with_slash(url if "://" in url else f"http://{url}")


def _connectable(url: str) -> str:
    """``url`` with a wildcard bind address replaced by loopback."""
    parts = urllib.parse.urlsplit(url)
    if parts.hostname is None or parts.hostname in _ANY_HOST or parts.netloc.startswith("*"):
        netloc = f"127.0.0.1:{parts.port}" if parts.port else "127.0.0.1"
        parts = parts._replace(netloc=netloc)
    return urllib.parse.urlunsplit(parts)


def running_servers(runtime_dir: str | None = None) -> list[ServerInfo]:
    """Jupyter servers that have left a live ``jpserver-*.json`` in the runtime directory.

    Servers listening on a Unix socket only are left out: they have no HTTP URL.
    """
    from jupyter_server.serverapp import list_running_servers

    found = []
    for info in list_running_servers(runtime_dir):
        if info.get("sock"):
            continue
        found.append(
            ServerInfo(
                url=_with_slash(_connectable(info["url"])),
                token=info.get("token") or "",
                source="running server",
                root_dir=info.get("root_dir") or info.get("notebook_dir"),
                pid=info.get("pid"),
                local=True,
            )
        )
    return sorted(found, key=lambda s: (s.pid or 0, s.url))


def _hub_server(env: dict[str, str]) -> ServerInfo | None:
    token = env.get("JUPYTERHUB_API_TOKEN")
    prefix = env.get("JUPYTERHUB_SERVICE_PREFIX")
    if not token or not prefix:
        return None
    url = env.get("JUPYTERHUB_SERVICE_URL") or env.get("JUPYTER_SERVER_URL")
    if url:
        url = _with_slash(_connectable(url))
        if not urllib.parse.urlsplit(url).path.rstrip("/"):
            url = urllib.parse.urljoin(url, prefix)
    else:
        url = f"http://127.0.0.1:{env.get('JUPYTER_PORT', '8888')}{prefix}"
    public = env.get("JUPYTERHUB_PUBLIC_URL") or env.get("JUPYTERHUB_HOST") or ""
    return ServerInfo(
        url=_with_slash(url),
        token=token,
        source="JupyterHub environment",
        local=True,
        public_url=public if urllib.parse.urlsplit(public).netloc else None,
        hub=True,
    )


def _contains(root: str, path: str) -> bool:
    root, path = os.path.realpath(root), os.path.realpath(path)
    return os.path.commonpath([root, path]) == root


def _pick(servers: list[ServerInfo], cwd: str, env: dict[str, str]) -> ServerInfo:
    own = env.get("JUPYTER_SERVER_URL")  # set in Jupyter's terminals
    if own:
        for server in servers:
            if server.url == _with_slash(_connectable(own)):
                return replace(server, source="the server of this Jupyter terminal")
    holding = [s for s in servers if s.root_dir and _contains(s.root_dir, cwd)]
    if holding:
        chosen = max(holding, key=lambda s: len(os.path.realpath(s.root_dir or "")))
        return replace(chosen, source=f"the running server whose root holds {cwd}")
    if len(servers) == 1:
        return replace(servers[0], source="the only running server")
    urls = ", ".join(s.url for s in servers)
    raise NoServerFound(
        f"Several Jupyter servers are running ({urls}) and none has {cwd} under its root; "
        f"choose one with --server URL --token TOKEN (or {ENV_SERVER} and {ENV_TOKEN})."
    )


def find_server(
    server: str | None = None,
    token: str | None = None,
    cwd: str | None = None,
    env: dict[str, str] | None = None,
    runtime_dir: str | None = None,
) -> ServerInfo:
    """The Jupyter server to talk to; raises :class:`NoServerFound` with how to fix it.

    In order: an explicit ``server`` (with ``token``); ``FORGATHER_TB_SERVER``
    (with ``FORGATHER_TB_TOKEN``); JupyterHub's variables in a single-user
    server; then the running servers in Jupyter's runtime directory: the one
    this Jupyter terminal belongs to, else the one whose root directory holds
    ``cwd`` (the deepest), else the only one. ``token`` overrides any token found.
    """
    env = dict(os.environ if env is None else env)
    if server:
        return ServerInfo(_given_url(server), token or env.get(ENV_TOKEN, ""), "--server")
    if env.get(ENV_SERVER):
        return ServerInfo(_given_url(env[ENV_SERVER]), token or env.get(ENV_TOKEN, ""), ENV_SERVER)
    found = _hub_server(env)
    if found is None:
        servers = running_servers(runtime_dir)
        if not servers:
            raise NoServerFound(NO_SERVER_HELP)
        found = _pick(servers, cwd or os.getcwd(), env)
    return replace(found, token=token) if token else found


class Client:
    """Typed calls to the TensorBoard job API of one Jupyter server."""

    def __init__(self, server: ServerInfo, timeout: float = 30.0):
        self.server = server
        self.timeout = timeout

    def _call(
        self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None
    ) -> tuple[int, Any]:
        url = urllib.parse.urljoin(self.server.url, API_PATH + path)
        if params:
            url += "?" + urllib.parse.urlencode(params)
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self.server.token:
            request.add_header("Authorization", f"token {self.server.token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as error:
            raise self._error(error) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            message = f"Cannot reach the Jupyter server at {self.server.url}: {reason}"
            raise ClientError(message) from None
        try:
            return status, json.loads(raw)
        except ValueError:
            raise ClientError(
                f"{self.server.url} did not answer with JSON: is it a Jupyter server with "
                "jupyter-forgather-tb, and is its base URL part of the address?"
            ) from None

    def open(
        self, path: str, params: list[tuple[str, str]] | None = None, timeout: float | None = None
    ) -> Any:
        """A streamed GET of ``path`` (under the server's URL): the open response to read
        and close; a refusal or an unreachable server is a :class:`ClientError`.

        ``timeout`` (default: the client's) bounds each wait for the server.
        """
        url = urllib.parse.urljoin(self.server.url, path)
        if params:
            url += "?" + urllib.parse.urlencode(params)
        request = urllib.request.Request(url)
        if self.server.token:
            request.add_header("Authorization", f"token {self.server.token}")
        try:
            return urllib.request.urlopen(request, timeout=timeout or self.timeout)
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
            payload = None
        if not isinstance(payload, dict):
            payload = {}
        message = payload.get("message")
        if error.code in (401, 403):
            message = (
                f"The Jupyter server at {self.server.url} refused the request "
                f"({message or 'Forbidden'}): check the token and your permissions."
            )
        elif error.code == 404 and not message:
            message = (
                f"{self.server.url} does not serve the TensorBoard API: is jupyter-forgather-tb "
                "installed and enabled in that server?"
            )
        field = payload.get("field")
        return ClientError(message or f"HTTP {error.code} {error.reason}", error.code, field)

    def _job_path(self, job_id: str, *rest: str) -> str:
        return "/".join(("jobs", urllib.parse.quote(job_id, safe=""), *rest))

    def launch(
        self, options: dict[str, Any], cwd: str | None = None
    ) -> tuple[dict[str, Any], bool]:
        """Launch a job (or reuse the live one with the same options): ``(job, reused)``.

        On a local server a relative ``logdir`` (or folder of ``logdirs``) is taken
        from ``cwd`` (default: the current directory), as any local tool would take it.
        """
        if self.server.local:
            start = cwd or os.getcwd()
            options = dict(options)
            if "logdir" in options:
                options["logdir"] = _from(start, options["logdir"])
            logdirs = options.get("logdirs")
            if isinstance(logdirs, dict):
                options["logdirs"] = {name: _from(start, path) for name, path in logdirs.items()}
            elif isinstance(logdirs, list):
                options["logdirs"] = [_from(start, path) for path in logdirs]
        status, job = self._call("POST", "jobs", body=options)
        return job, bool(job.get("reused", status == 200))

    def relaunch(
        self, job_id: str, memory_limit: int | str | None = None, keep_shares: bool = False
    ) -> dict[str, Any]:
        """Launch a new job with an ended job's options; returns the new job.

        ``memory_limit`` (bytes, or a size such as ``"2G"``) replaces the old job's;
        ``keep_shares`` shares the new job as the old one was (its ``shares``).
        A job still live is refused (409): kill it first.
        """
        body: dict[str, Any] = {} if memory_limit is None else {"memory_limit": memory_limit}
        if keep_shares:
            body["keep_shares"] = True
        return cast(
            dict[str, Any], self._call("POST", self._job_path(job_id, "relaunch"), body=body)[1]
        )

    def resume(self, job_id: str) -> dict[str, Any]:
        """Wake a suspended job (it starts again, or queues); returns it.

        A job that is not suspended is refused (409).
        """
        return cast(dict[str, Any], self._call("POST", self._job_path(job_id, "resume"))[1])

    def jobs(self) -> list[dict[str, Any]]:
        """Every job the server knows, oldest first."""
        return cast(list[dict[str, Any]], self._call("GET", "jobs")[1])

    def job(self, job_id: str) -> dict[str, Any]:
        """One job."""
        return cast(dict[str, Any], self._call("GET", self._job_path(job_id))[1])

    def kill(self, job_id: str) -> dict[str, Any]:
        """Stop or cancel a job; returns it in its final state."""
        return cast(dict[str, Any], self._call("DELETE", self._job_path(job_id))[1])

    def shares(self, job_id: str) -> dict[str, Any]:
        """Who a job is shared with: ``{"enabled", "reason", "shares"}``."""
        return cast(dict[str, Any], self._call("GET", self._job_path(job_id, "shares"))[1])

    def share(
        self,
        job_id: str,
        user: str | None = None,
        group: str | None = None,
        link: bool = False,
        expires_in: int | None = None,
    ) -> dict[str, Any]:
        """Share a job (under JupyterHub) with a user, a group, or a link; returns the share."""
        body: dict[str, Any] = {"user": user} if user else {"group": group} if group else {}
        if link:
            body = {"link": True}
        if expires_in is not None:
            body["expires_in"] = expires_in
        path = self._job_path(job_id, "shares")
        return cast(dict[str, Any], self._call("POST", path, body=body)[1])

    def unshare(self, job_id: str, **which: str) -> dict[str, Any]:
        """Revoke a job's shares: ``user=``, ``group=``, ``link=``, ``share=`` (id), or all."""
        path = self._job_path(job_id, "shares")
        return cast(dict[str, Any], self._call("DELETE", path, params=which or None)[1])

    def output(self, job_id: str, offset: int = 0) -> dict[str, Any]:
        """A chunk of a job's output from a byte offset (the REST output object)."""
        path = self._job_path(job_id, "output")
        return cast(dict[str, Any], self._call("GET", path, params={"offset": offset})[1])

    def output_text(
        self, job_id: str, follow: bool = False, interval: float = 0.5
    ) -> Iterator[str]:
        """A job's output as it comes; with ``follow``, until the process has ended."""
        offset = 0
        while True:
            chunk = self.output(job_id, offset)
            offset = chunk["next_offset"]
            if chunk["text"]:
                yield chunk["text"]
                continue
            if chunk["complete"] or not follow:
                return
            time.sleep(interval)

    def wait(
        self,
        job: dict[str, Any],
        on_poll: Callable[[dict[str, Any]], None] | None = None,
        start_timeout: float = 120.0,
        interval: float = 0.25,
    ) -> dict[str, Any]:
        """Poll a job until it runs or ends; ``on_poll`` sees it at every poll.

        A queued job may wait as long as the queue takes; once it starts, it has
        ``start_timeout`` seconds (the server gives up on its own before that).
        """
        deadline = time.monotonic() + start_timeout
        while True:
            if on_poll is not None:
                on_poll(job)
            if job["status"] not in LIVE:
                return job
            if job["status"] == "queued":
                deadline = time.monotonic() + start_timeout
            elif time.monotonic() > deadline:
                raise ClientError(
                    f"TensorBoard job {job['id']} is still {job['status']} after "
                    f"{start_timeout:g} s"
                )
            time.sleep(interval)
            job = self.job(job["id"])
