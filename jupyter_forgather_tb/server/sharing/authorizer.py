"""The authorizer for single-user servers that share jobs: a visitor sees one TensorBoard.

JupyterHub's shares give access to a whole server. Under this authorizer a visitor
(anyone but the server's owner and the admins named here) may only read the
``<base_url>tb/<id>/`` of the jobs shared with them, download those jobs' scalars
(``forgather-tb/api/jobs/<id>/scalars``), and open their landing page; every
other route of the server (Lab, files, kernels, terminals, this extension's API) and
every write answers 403. Configure it with one line::

    c.ServerApp.authorizer_class = "jupyter_forgather_tb.server.sharing.authorizer.ShareAuthorizer"
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, cast

from jupyter_server.auth import User
from jupyterhub.singleuser.extension import JupyterHubAuthorizer
from tornado import web
from traitlets import Bool, Set, Unicode

from .rules import LINK_ARGUMENT, is_landing_page, shared_export_route, shared_job_route

if TYPE_CHECKING:
    from .service import Sharing

#: Routes of the single-user server every visitor needs to log in and out.
_LOGIN_ROUTES = ("oauth_callback", "logout")


class ShareAuthorizer(JupyterHubAuthorizer):
    """JupyterHub's authorizer, narrowed: visitors get the jobs shared with them, nothing else."""

    #: What sharing checks before it makes a share (see ``service.refusal_reason``).
    confines_visitors = True

    full_access_users = Set(
        Unicode(),
        help="Hub users (besides the owner) who keep their full access to the server, as "
        "under JupyterHub's own authorizer: typically the Hub's admins.",
    ).tag(config=True)

    full_access_services = Set(
        Unicode(), help="Hub services that keep their full access to the server."
    ).tag(config=True)

    visitors_keep_server_active = Bool(
        False,
        help="Whether a visitor's requests to a shared TensorBoard count as activity of "
        "the owner's server for JupyterHub's idle culler. By default they do not: a "
        "visitor wakes a suspended job, but does not keep the owner's server running.",
    ).tag(config=True)

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.owner = os.environ.get("JUPYTERHUB_USER", "")
        self._guard_every_route()

    def has_full_access(self, user: User) -> bool:
        """Whether ``user`` is the server's owner or one of the named admins."""
        hub_user = getattr(user, "hub_user", {})
        kind, name = hub_user.get("kind", "user"), user.username
        if kind == "service":
            return name in self.full_access_services
        return name == self.owner or name in self.full_access_users

    def is_authorized(
        self, handler: web.RequestHandler, user: User, action: str, resource: str
    ) -> bool:
        """Everything for the owner and admins; for a visitor, a job shared with them."""
        if not super().is_authorized(handler, user, action, resource):
            return False
        return self.has_full_access(user) or self._visitor_may(handler, user)

    def _visitor_may(self, handler: web.RequestHandler, user: User) -> bool:
        request = handler.request
        sharing: Sharing | None = handler.settings.get("forgather_tb_sharing")
        base_url = handler.settings.get("base_url", "/")
        assert request.path is not None and request.method is not None
        if sharing is None:
            return False
        if is_landing_page(base_url, request.path, request.method):
            return True
        job_id = shared_job_route(base_url, request.path, request.method)
        job_id = job_id or shared_export_route(base_url, request.path, request.method)
        if job_id is None or not sharing.job_is_live(job_id):
            return False
        groups = getattr(user, "hub_user", {}).get("groups", [])
        secret = handler.get_query_argument(LINK_ARGUMENT, None)
        if secret is not None:
            sharing.store.join_link(job_id, secret, user.username)
        if not sharing.store.admits(job_id, user.username, groups):
            return False
        # jupyter-server-proxy's own switch: a visitor's traffic is not the owner's activity.
        handler.update_last_activity = self.visitors_keep_server_active  # type: ignore[attr-defined]
        if request.headers.get("Upgrade", "").lower() == "websocket":
            sharing.store.track(job_id, user.username, groups, handler)  # type: ignore[arg-type]
        return True

    def _guard_every_route(self) -> None:
        """Refuse visitors on routes that never ask the authorizer (those with only a login).

        jupyter_server asks the authorizer only where a handler is decorated for it; the
        identity provider is what every handler asks. So a known visitor is refused
        there, before any handler runs, except on the routes a visitor may use.
        """
        provider = self.identity_provider
        get_user = provider.get_user

        async def guarded(handler: web.RequestHandler) -> User | None:
            user = get_user(handler)
            if not isinstance(user, User | None):
                user = await user
            known = user is not None and not self.has_full_access(user)
            if known and not self._visitor_route(handler):
                raise web.HTTPError(403, "this server only shares some TensorBoards with you")
            return cast(User | None, user)

        provider.get_user = guarded

    def _visitor_route(self, handler: web.RequestHandler) -> bool:
        request = handler.request
        base_url = handler.settings.get("base_url", "/")
        assert request.path is not None and request.method is not None
        if shared_job_route(base_url, request.path, request.method) is not None:
            return True  # which job, and whether it is shared, is is_authorized's to say
        if shared_export_route(base_url, request.path, request.method) is not None:
            return True
        if is_landing_page(base_url, request.path, request.method):
            return True
        base = base_url if base_url.endswith("/") else base_url + "/"
        return request.path in {base + route for route in _LOGIN_ROUTES}
