"""``<base_url>tb/<id>/``: Jupyter-authenticated reverse proxy to one live TensorBoard job."""

from __future__ import annotations

import html

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server_proxy.handlers import LocalProxyHandler
from tornado import web
from tornado.escape import url_escape

from .handlers import AUTH_RESOURCE
from .jobs import JobStatus
from .manager import JobNotFound

# Headers that carry the user's Jupyter credentials: TensorBoard must never see them.
_CREDENTIAL_HEADERS = ("Authorization", "Cookie", "X-XSRFToken", "X-Xsrftoken")
_SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
# The proxy handler is a websocket handler too, and jupyter_server maps websocket
# access to a running process (kernels, terminals) to "execute"; so do we.
_PROXY_ACTION = "execute"


def _strip_token(query: str) -> str:
    return "&".join(part for part in query.split("&") if part and part.split("=", 1)[0] != "token")


class TensorBoardProxyHandler(LocalProxyHandler):
    """Proxies HTTP and websockets to the job named in the URL, and nowhere else."""

    auth_resource = AUTH_RESOURCE

    @property
    def manager(self):
        return self.settings["forgather_tb_manager"]

    def _page(self, status: int, title: str, text: str, retry: bool = False) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        if retry:
            self.set_header("Retry-After", "1")
        self.finish(
            "<!doctype html><meta charset=utf-8>"
            f"<title>{html.escape(title)}</title><h1>{html.escape(title)}</h1>"
            f"<p>{html.escape(text)}</p>"
        )

    async def prepare(self, *args, **kwargs):
        """Log in (Jupyter's rules), authorize, then find a running job or answer for it."""
        # A websocket cannot follow a login redirect: refuse it with 403 instead.
        upgrade = self.request.headers.get("Upgrade", "").lower() == "websocket"
        await super().prepare(*args, _redirect_to_login=not upgrade, **kwargs)
        if self._finished:
            return
        if not self.authorizer.is_authorized(self, self.current_user, _PROXY_ACTION, AUTH_RESOURCE):
            raise web.HTTPError(403)
        # The proxy skips XSRF checks so TensorBoard's own POSTs work; refuse
        # cross-site writes by their Origin instead.
        if self.request.method not in _SAFE_METHODS and not self.check_origin():
            raise web.HTTPError(403, "cross-origin request refused")
        job_id = self.path_args[0]
        try:
            job = self.manager.get(job_id)
        except JobNotFound:
            return self._page(
                404, "TensorBoard not found", f"There is no TensorBoard job {job_id}."
            )
        if job.status != JobStatus.RUNNING:
            if job.status.is_live:
                text = (
                    f"TensorBoard job {job.label} is {job.status.value}; "
                    "this page will work once it is running."
                )
                return self._page(503, "TensorBoard is not ready", text, retry=True)
            text = f"TensorBoard job {job.label} ended ({job.status.value})" + (
                f": {job.error}" if job.error else "."
            )
            return self._page(503, "TensorBoard has stopped", text)
        self.manager.touch(job)
        self.proxy_base = f"tb/{job.id}"
        self.unix_socket = job.unix_socket
        self._backend_port = 80 if job.unix_socket else job.port
        self.request.query = _strip_token(self.request.query)

    def proxy_request_headers(self):
        """The request's headers minus Jupyter's credentials."""
        headers = super().proxy_request_headers()
        for name in _CREDENTIAL_HEADERS:
            headers.pop(name, None)
        return headers

    def proxy_request_options(self):
        """Timeouts from our configuration instead of jupyter-server-proxy's five minutes."""
        config = self.settings["forgather_tb_config"]
        return dict(
            follow_redirects=False,
            connect_timeout=config.proxy_connect_timeout,
            request_timeout=config.proxy_request_timeout,
        )

    async def proxy(self, port, proxied_path):
        """Proxy one request, reporting a silent or vanished TensorBoard as 504 or 502."""
        try:
            return await super().proxy(port, proxied_path)
        except web.HTTPError as error:
            # jupyter-server-proxy reports both as 599 (timeout) or 500 (connection error).
            if error.status_code == 599 and "timeout" in str(error).lower():
                raise web.HTTPError(504, "TensorBoard did not answer in time") from None
            if error.status_code in (500, 599):
                raise web.HTTPError(502, "TensorBoard could not be reached") from None
            raise

    # prepare() already requires login; the decorators also mark each method as
    # authenticated for jupyter_server's allow_unauthenticated_access check.
    @web.authenticated
    async def get(self, *args):
        return await super().get(*args)

    async def http_get(self, job_id, proxied_path):
        return await self.proxy(self._backend_port, proxied_path)

    async def open(self, job_id, proxied_path):
        return await self.proxy_open("localhost", self._backend_port, proxied_path)

    @web.authenticated
    def post(self, job_id, proxied_path):
        return self.proxy(self._backend_port, proxied_path)

    @web.authenticated
    def put(self, job_id, proxied_path):
        return self.proxy(self._backend_port, proxied_path)

    @web.authenticated
    def delete(self, job_id, proxied_path):
        return self.proxy(self._backend_port, proxied_path)

    @web.authenticated
    def head(self, job_id, proxied_path):
        return self.proxy(self._backend_port, proxied_path)

    @web.authenticated
    def patch(self, job_id, proxied_path):
        return self.proxy(self._backend_port, proxied_path)

    @web.authenticated
    def options(self, job_id, proxied_path):
        return self.proxy(self._backend_port, proxied_path)


class AddSlashHandler(JupyterHandler):
    """``tb/<id>`` redirects to ``tb/<id>/`` with a relative Location, never to another host."""

    auth_resource = AUTH_RESOURCE

    @web.authenticated
    @authorized
    def get(self, job_id):
        query = f"?{self.request.query}" if self.request.query else ""
        self.redirect(f"{url_escape(job_id, plus=False)}/{query}")


def proxy_handlers() -> list[tuple]:
    """Routes of the proxy, relative to the server's base_url."""
    return [
        (r"/tb/([^/]+)", AddSlashHandler),
        (r"/tb/([^/]+)(/.*)", TensorBoardProxyHandler, {"absolute_url": True}),
    ]
