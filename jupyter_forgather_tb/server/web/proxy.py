"""``<base_url>tb/<id>/``: Jupyter-authenticated reverse proxy to one live TensorBoard job."""

from __future__ import annotations

import html
import json
import posixpath
from collections.abc import Awaitable
from typing import Any
from urllib.parse import quote

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server_proxy.handlers import LocalProxyHandler
from tornado import httputil, web
from tornado.httpclient import HTTPClientError
from tornado.iostream import StreamClosedError

from ...common.addresses import url_host
from ...common.scalarwire import PLUGIN_NAME as EXPORT_PLUGIN
from ..jobs.job import Job, JobStatus, is_job_id
from ..jobs.manager import JobNotFound
from .auth import AUTH_RESOURCE
from .backends import backend_ip
from .forwarding import (
    TOKEN_ARGUMENT,
    framing_policy,
    hop_by_hop,
    request_headers_for_backend,
    stays_on_server,
    websocket_handshake_refusal,
    without_token,
)
from .parts import ServerParts

_SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
# The proxy handler is a websocket handler too, and jupyter_server maps websocket
# access to a running process (kernels, terminals) to "execute"; so do we.
_PROXY_ACTION = "execute"
# Responses up to this size with a Content-Length are sent whole, as jupyter-server-proxy
# sends them: tornado then adds an ETag and answers a matching If-None-Match with 304.
# Larger ones (TensorBoard's 6 MB script) and those of unknown length stream through.
STREAM_ABOVE = 256 * 1024
# What a query may keep as it is in a Location: the rest (controls, say) is %-escaped.
_QUERY_SAFE = "!$&'()*+,;=:@/?%~[]"
#: Seconds between retries of a request for a woken job that waits in the queue.
WAKE_RETRY_SECONDS = 2


def server_only(proxied_path: str) -> bool:
    """True for the job's routes that only the Jupyter server asks (its bulk export plugin)."""
    # One leading slash: POSIX keeps a leading "//" as it is.
    parts = posixpath.normpath("/" + proxied_path.lstrip("/")).split("/")
    return parts[1:4] == ["data", "plugin", EXPORT_PLUGIN]


def _job_address_only(handler: TensorBoardProxyHandler, host: str) -> bool:
    """jupyter-server-proxy's host check (websockets): only the job's own, as ``prepare`` chose.

    That is ``localhost`` for a job on a Unix socket, or the address a TCP job was
    proved to listen on.
    """
    return host == getattr(handler, "backend_host", None)


def _uncompressed(headers: httputil.HTTPHeaders) -> bool:
    """Whether an answer comes with no content coding (none named, or ``identity``)."""
    return headers.get("Content-Encoding", "identity").strip().lower() == "identity"


class TensorBoardProxyHandler(ServerParts, LocalProxyHandler):
    """Proxies HTTP and websockets to the job named in the URL, and nowhere else."""

    auth_resource = AUTH_RESOURCE

    def _page(
        self, status: int, title: str, text: str, retry_after: int = 0, head: str = ""
    ) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        if retry_after:
            self.set_header("Retry-After", str(retry_after))
        self.finish(
            f"<!doctype html><meta charset=utf-8>{head}"
            f"<title>{html.escape(title)}</title><h1>{html.escape(title)}</h1>"
            f"<p>{html.escape(text)}</p>"
        )

    def _waiting_for_wake(self, job: Job) -> None:
        """A woken job waits in the queue: a page that says so and reloads by itself.

        A request that is not a page load (TensorBoard's own, an API call) gets a JSON
        503 with ``Retry-After`` instead.
        """
        why = self.manager.live(job).queue_reason or "waiting in the queue"
        text = (
            f"TensorBoard job {job.label} was suspended and is starting again; it is "
            f"queued ({why}). This page reloads by itself."
        )
        if "text/html" not in self.request.headers.get("Accept", ""):
            self.set_status(503)
            self.set_header("Content-Type", "application/json")
            self.set_header("Cache-Control", "no-store")
            self.set_header("Retry-After", str(WAKE_RETRY_SECONDS))
            self.finish(json.dumps({"message": text}))
            return
        self._page(
            503,
            "TensorBoard is waking up",
            text,
            retry_after=WAKE_RETRY_SECONDS,
            head=f'<meta http-equiv="refresh" content="{WAKE_RETRY_SECONDS}">',
        )

    async def prepare(self, *args: Any, **kwargs: Any) -> None:
        """Refuse what is refused, then find a running job, waking it, or answer for it.

        Every refusal (Host, login, authorization, a cross-origin write, a websocket
        handshake tornado would refuse, Jupyter's token in a body) comes before a
        suspended job is woken: nothing refused wakes a job.
        """
        # A websocket cannot follow a login redirect: refuse it with 403 instead.
        upgrade = (
            self.request.method == "GET"
            and self.request.headers.get("Upgrade", "").lower() == "websocket"
        )
        # Jupyter's prepare (Host check, login), not jupyter-server-proxy's: that one
        # checks the login again after Jupyter's has redirected, and its second
        # redirect raises "Cannot redirect after headers have been written".
        await JupyterHandler.prepare(self, _redirect_to_login=not upgrade)
        if self._finished:
            return
        if not self.current_user:  # allow_unauthenticated_access let Jupyter's pass
            if upgrade:
                raise web.HTTPError(403)
            web.authenticated(lambda handler: None)(self)  # to the login page, or 403
            return
        if not self.authorizer.is_authorized(self, self.current_user, _PROXY_ACTION, AUTH_RESOURCE):
            raise web.HTTPError(403)
        # The proxy skips XSRF checks so TensorBoard's own POSTs work; refuse
        # cross-site writes by their Origin instead.
        if self.request.method not in _SAFE_METHODS and not self.check_origin():
            raise web.HTTPError(403, "cross-origin request refused")
        if upgrade:
            self._check_handshake()
        # Jupyter also takes its token from a form body, which goes to TensorBoard whole.
        if TOKEN_ARGUMENT in self.request.body_arguments:
            raise web.HTTPError(
                400, "send Jupyter's token in the Authorization header, not in the body"
            )
        job_id = self.path_args[0]
        if server_only(self.path_args[1]):
            return self._page(404, "Not found", "This route is the Jupyter server's own.")
        try:
            job = self.manager.get(job_id)
        except JobNotFound:
            return self._page(
                404, "TensorBoard not found", f"There is no TensorBoard job {job_id}."
            )
        if job.status != JobStatus.RUNNING or self.manager.live(job).suspend_requested:
            # A suspended job wakes for this request, which waits until it serves.
            job = await self.manager.awake(job)
            if job.status == JobStatus.QUEUED and self.manager.is_waking(job):
                return self._waiting_for_wake(job)
        if job.status != JobStatus.RUNNING:
            if job.status.is_live:
                text = (
                    f"TensorBoard job {job.label} is {job.status.value}; "
                    "this page will work once it is running."
                )
                return self._page(503, "TensorBoard is not ready", text, retry_after=1)
            text = f"TensorBoard job {job.label} ended ({job.status.value})" + (
                f": {job.error}" if job.error else "."
            )
            return self._page(503, "TensorBoard has stopped", text)
        self.manager.touch(job)
        self._job = job
        self.proxy_base = f"tb/{job.id}"
        self.unix_socket = job.unix_socket
        port = 80 if job.unix_socket else job.port
        assert port is not None  # a running job listens on its Unix socket or its port
        self._backend_port = port
        self.backend_host = "localhost" if job.unix_socket else url_host(backend_ip(job))
        self.request.query = without_token(self.request.query)

    def _check_handshake(self) -> None:
        """Refuse a websocket handshake here as tornado would after prepare(): by its
        headers, and by its Origin (with tornado's own check, which calls Jupyter's
        ``check_origin``)."""
        refusal = websocket_handshake_refusal(self.request.headers)
        if refusal is not None:
            raise web.HTTPError(*refusal)
        if self._check_cross_origin(self.check_origin) is not None:
            raise web.HTTPError(403, "cross-origin websocket refused")

    def proxy_request_headers(self) -> httputil.HTTPHeaders:
        """The request's headers for TensorBoard, HTTP and websocket alike.

        Without hop-by-hop headers, Jupyter's credentials, or Referer.
        """
        return request_headers_for_backend(super().proxy_request_headers())

    def proxy_request_options(self) -> dict[str, Any]:
        """Timeouts from our configuration instead of jupyter-server-proxy's five minutes."""
        config = self.tb_config
        return dict(
            follow_redirects=False,
            connect_timeout=config.proxy_connect_timeout,
            request_timeout=config.proxy_request_timeout,
        )

    async def proxy(self, port: int, proxied_path: str) -> None:
        """Proxy one request over the job's shared client, streaming large responses.

        Replaces jupyter-server-proxy's HTTP path, which makes a client per request and
        buffers whole bodies (its streaming mode only serves ``text/event-stream`` and
        drops ``Content-Encoding``). Built from its request builder and tornado's
        ``header_callback`` and coroutine ``streaming_callback``, which does not read the
        next chunk from TensorBoard until the browser has taken the last one.
        A silent or vanished TensorBoard is a 504 or 502.
        """
        self._record_activity()
        body = self.request.body or (b"" if self.request.method in ("POST", "PUT") else None)
        head, streaming = [], False

        def header_callback(line: str) -> None:
            nonlocal streaming
            line = line.rstrip("\r\n")
            if line:
                head.append(line)
                return
            start = httputil.parse_response_start_line(head[0])
            headers = httputil.HTTPHeaders()
            for raw in head[1:]:
                headers.parse_line(raw)
            length = headers.get("Content-Length")
            streaming = self.request.method != "HEAD" and (
                length is None or int(length) > STREAM_ABOVE
            )
            # tornado counts the length of a body sent whole, and a HEAD has none.
            keep_length = streaming or self.request.method == "HEAD"
            self.set_status(start.code, start.reason)
            self._headers = httputil.HTTPHeaders()  # none of tornado's defaults
            dropped = hop_by_hop(headers)
            if not keep_length and _uncompressed(headers):
                dropped |= {"content-encoding"}  # "identity", if said: gzip may replace it
                self._compress()
            for name, value in headers.get_all():
                if name.lower() in dropped or (name == "Content-Length" and not keep_length):
                    continue
                if name.lower() == "location" and not stays_on_server(
                    value, self.request.full_url(), self.base_url
                ):
                    self.log.warning(
                        "Dropped a Location off this server from job %s: %r", self._job.id, value
                    )
                    continue
                self.add_header(name, value)
            # Who may frame TensorBoard (its own policy does not say): as for Jupyter,
            # and Jupyter itself.
            framing = framing_policy(self.content_security_policy)
            if framing:
                self.add_header("Content-Security-Policy", framing)

        async def streaming_callback(chunk: bytes) -> None:
            self.write(chunk)
            if streaming:
                # Not self.flush: the websocket mixin's wrapper drops the future.
                await web.RequestHandler.flush(self)

        request = self._build_proxy_request(
            "localhost",
            port,
            proxied_path,
            body,
            header_callback=header_callback,
            streaming_callback=streaming_callback,
        )
        if not self._job.status.is_live:  # it ended since prepare(): make no client for it
            raise web.HTTPError(502, "TensorBoard could not be reached")
        client = self.backends.client_for(self._job)
        try:
            await client.fetch(request, raise_error=False)
        except HTTPClientError as error:
            if error.code != 599:
                raise
            if "timeout" in str(error).lower():
                return self._backend_failed(504, "TensorBoard did not answer in time")
            return self._backend_failed(502, "TensorBoard could not be reached")
        except (OSError, StreamClosedError):
            return self._backend_failed(502, "TensorBoard could not be reached")
        finally:
            self._record_activity()
            self.manager.touch(self._job)  # a long answer counts until its end

    def _compress(self) -> None:
        """Gzip this answer, sent whole, if the browser takes gzip and its type is text.

        TensorBoard gzips its assets and data but sends its page (206 KB; 25 KB
        gzipped) uncompressed, to save itself the few ms of each page load: a remote
        browser waits for every byte of it. This is tornado's own ``compress_response``
        transform, added to this answer's list (tornado's private ``_transforms``:
        its setting would apply to all of Jupyter's pages); tornado takes the ETag
        from the uncompressed body, so a reload still gets a 304 for nothing.
        Streamed answers are left as they come: compressing megabytes on Jupyter's
        one thread would cost every other request (TensorBoard 2.18's 534 KB page
        is one of them).
        """
        self._transforms.append(web.GZipContentEncoding(self.request))

    def _backend_failed(self, status: int, message: str) -> None:
        if not self._headers_written:
            raise web.HTTPError(status, message)
        if self.request.connection.stream.closed():
            return  # the browser left mid-answer: nobody to tell
        # Part of the answer is out: cut the connection, so the browser sees it broken
        # off instead of a chunked body that ends as if complete.
        self.log.warning("Proxied response of job %s broken off: %s", self._job.id, message)
        self.request.connection.close()

    # prepare() already requires login; the decorators also mark each method as
    # authenticated for jupyter_server's allow_unauthenticated_access check.
    @web.authenticated
    async def get(self, *args: str) -> None:
        await super().get(*args)

    async def http_get(self, job_id: str, proxied_path: str) -> None:
        return await self.proxy(self._backend_port, proxied_path)

    async def open(self, job_id: str, proxied_path: str) -> None:
        await self.proxy_open(self.backend_host, self._backend_port, proxied_path)

    @web.authenticated
    def post(self, job_id: str, proxied_path: str) -> Awaitable[None]:
        return self.proxy(self._backend_port, proxied_path)

    @web.authenticated
    def put(self, job_id: str, proxied_path: str) -> Awaitable[None]:
        return self.proxy(self._backend_port, proxied_path)

    @web.authenticated
    def delete(self, job_id: str, proxied_path: str) -> Awaitable[None]:
        return self.proxy(self._backend_port, proxied_path)

    @web.authenticated
    def head(self, job_id: str, proxied_path: str) -> Awaitable[None]:
        return self.proxy(self._backend_port, proxied_path)

    @web.authenticated
    def patch(self, job_id: str, proxied_path: str) -> Awaitable[None]:
        return self.proxy(self._backend_port, proxied_path)

    @web.authenticated
    def options(self, job_id: str, proxied_path: str) -> Awaitable[None]:
        return self.proxy(self._backend_port, proxied_path)


class AddSlashHandler(JupyterHandler):
    """``tb/<id>`` redirects to ``tb/<id>/`` with a relative Location, never to another host.

    Only an id of the form jobs have redirects: anything else (``%2F%2Fevil.example``,
    backslashes, controls) is a 404, so the Location is ``<id>/`` and the query.
    """

    auth_resource = AUTH_RESOURCE

    @web.authenticated
    @authorized
    def get(self, job_id: str) -> None:
        if not is_job_id(job_id):
            raise web.HTTPError(404, "no TensorBoard job has such an id")
        query = quote(self.request.query, safe=_QUERY_SAFE, encoding="latin1")
        self.redirect(f"{job_id}/?{query}" if query else f"{job_id}/")


def proxy_handlers() -> list[
    tuple[str, type[JupyterHandler]] | tuple[str, type[JupyterHandler], dict[str, Any]]
]:
    """Routes of the proxy, relative to the server's base_url."""
    return [
        (r"/tb/([^/]+)", AddSlashHandler),
        (
            r"/tb/([^/]+)(/.*)",
            TensorBoardProxyHandler,
            {"absolute_url": True, "host_allowlist": _job_address_only},
        ),
    ]
