"""REST routes for shares, the "shared with you" list, and a visitor's landing page."""

from __future__ import annotations

import html
import json
from typing import Any, cast

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.utils import url_path_join
from tornado import web

from ..web.auth import AUTH_RESOURCE
from ..web.handlers import BadBody, ForgatherTBHandler
from .hub import HubError
from .rules import LANDING_PAGE
from .service import MAX_EXPIRES_IN, MIN_EXPIRES_IN, ShareNotFound, Sharing, SharingRefused
from .store import Share, ShareKind

_KINDS: tuple[ShareKind, ...] = ("user", "group", "link")


def parse_share_request(body: dict[str, Any]) -> tuple[ShareKind, str | None, int | None]:
    """The kind, name and optional expiry a POST body asks for, or :class:`BadBody`."""
    unknown = sorted(set(body) - {*_KINDS, "expires_in"})
    if unknown:
        raise BadBody(f"unknown field {unknown[0]!r}: give user, group or link", field=unknown[0])
    kinds = [kind for kind in _KINDS if kind in body]
    if len(kinds) != 1:
        raise BadBody("give exactly one of user, group or link")
    kind = kinds[0]
    name: str | None = None
    if kind == "link":
        if body["link"] is not True:
            raise BadBody("link must be true", field="link")
    else:
        name = body[kind]
        if not isinstance(name, str) or not name.strip() or len(name) > 255:
            raise BadBody(f"{kind} must be a JupyterHub {kind} name", field=kind)
    expires_in = body.get("expires_in")
    if expires_in is not None and (
        isinstance(expires_in, bool)
        or not isinstance(expires_in, int)
        or not MIN_EXPIRES_IN <= expires_in <= MAX_EXPIRES_IN
    ):
        raise BadBody(
            f"expires_in must be whole seconds from {MIN_EXPIRES_IN} to {MAX_EXPIRES_IN}",
            field="expires_in",
        )
    return kind, name, expires_in


def matching(shares: list[Share], arguments: dict[str, str]) -> list[Share]:
    """The shares a DELETE's query names (``share``, ``user``, ``group``, ``link``); all if none."""
    if not arguments:
        return shares
    found = [
        share
        for share in shares
        if share.id == arguments.get("share")
        or (share.kind in ("user", "group") and arguments.get(share.kind) == share.name)
        or (share.kind == "link" and "link" in arguments)
    ]
    if not found:
        raise ShareNotFound("no share of this job matches")
    return found


class SharingHandler(ForgatherTBHandler):
    """Base of the sharing routes: the sharing service and its errors as JSON."""

    @property
    def sharing(self) -> Sharing:
        return cast(Sharing, self.settings["forgather_tb_sharing"])

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        """Our refusals are answers, not server faults."""
        if not isinstance(value, (SharingRefused, ShareNotFound, HubError)):
            super().log_exception(typ, value, tb)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Refused sharing is 409, no such share 404, JupyterHub's refusals its 4xx."""
        error = kwargs["exc_info"][1] if "exc_info" in kwargs else None
        if isinstance(error, SharingRefused):
            self.send_error_json(409, str(error))
        elif isinstance(error, ShareNotFound):
            self.send_error_json(404, str(error))
        elif isinstance(error, HubError):
            status = error.status if error.status in (400, 404) else 502
            self.send_error_json(status, f"JupyterHub: {error}")
        else:
            super().write_error(status_code, **kwargs)


class SharesHandler(SharingHandler):
    """``GET/POST/DELETE jobs/<id>/shares``: who a job is shared with; share; revoke.

    GET and DELETE answer with the job's shares (after the revocation).
    """

    def _listing(self, job_id: str) -> None:
        shares = self.sharing.shares(job_id)
        listing = {
            "enabled": self.sharing.refusal is None,
            "reason": self.sharing.refusal,
            "shares": [share.public_json() for share in shares],
        }
        self.finish(json.dumps(listing))

    @web.authenticated
    @authorized
    async def get(self, job_id: str) -> None:
        await self.sharing.revoke_expired()
        self._listing(job_id)

    @web.authenticated
    @authorized
    async def post(self, job_id: str) -> None:
        kind, name, expires_in = parse_share_request(self.read_json_object())
        share = await self.sharing.share(job_id, kind, name, expires_in)
        self.set_status(201)
        self.finish(json.dumps(share.public_json()))

    @web.authenticated
    @authorized
    async def delete(self, job_id: str) -> None:
        arguments = {key: self.get_query_argument(key) for key in self.request.query_arguments}
        shares = matching(self.sharing.shares(job_id), arguments)
        await self.sharing.revoke(job_id, shares)
        self._listing(job_id)


class SharedWithMeHandler(SharingHandler):
    """``GET shared``: the servers others share with this server's owner (from JupyterHub)."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        items = []
        for item in await self.sharing.shared_with_owner():
            server = item.get("server", {})
            url = server.get("url") or ""
            items.append(
                {
                    "owner": server.get("user", {}).get("name"),
                    "server": server.get("name", ""),
                    "ready": bool(server.get("ready")),
                    "url": url_path_join(url, LANDING_PAGE) if url else None,
                }
            )
        self.finish(json.dumps(items))


class LandingPageHandler(JupyterHandler):
    """``<base_url>forgather-tb/shared``: the TensorBoards of this server shared with the visitor.

    The "Shared with you" list links here: JupyterHub knows which servers are shared
    with someone, and this server which of its jobs.
    """

    auth_resource = AUTH_RESOURCE

    @web.authenticated
    @authorized
    def get(self) -> None:
        sharing = cast(Sharing, self.settings["forgather_tb_sharing"])
        user = self.current_user
        groups = getattr(user, "hub_user", {}).get("groups", [])
        jobs = [
            sharing.manager.get(job_id)
            for job_id in sharing.store.jobs_shared_with(user.username, groups)
            if sharing.job_is_live(job_id)
        ]
        if len(jobs) == 1:
            self.redirect(jobs[0].url)
            return
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        links = "".join(
            f'<li><a href="{html.escape(job.url)}">{html.escape(job.label)}</a></li>'
            for job in jobs
        )
        self.finish(
            "<!doctype html><meta charset=utf-8><title>Shared TensorBoards</title>"
            "<h1>TensorBoards shared with you</h1>"
            + (f"<ul>{links}</ul>" if jobs else "<p>None at the moment.</p>")
        )


def sharing_handlers(prefix: str) -> list[tuple[str, type[JupyterHandler]]]:
    """The sharing routes: the API's under ``prefix``, and the landing page."""
    return [
        (rf"{prefix}/jobs/(?P<job_id>[^/]+)/shares", SharesHandler),
        (rf"{prefix}/shared", SharedWithMeHandler),
        (rf"/{LANDING_PAGE}", LandingPageHandler),
    ]
