"""Pure rules: which requests a visitor (a user other than the server's owner) may make."""

from __future__ import annotations

import re

from ..jobs.job import is_job_id

#: The query argument a link share's URL carries, proving the visitor holds the link.
LINK_ARGUMENT = "forgather_share"
#: What a visitor may send to a shared TensorBoard. TensorBoard never writes: its POSTs
#: (``data/plugin/.../timeSeries`` and the like) are read queries with a body.
_VIEWER_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_TB_ROUTE = re.compile(r"tb/(?P<job_id>[^/]+)(?P<rest>/.*)?")
#: The one route of this extension's API a visitor may use: a shared job's scalars download.
_EXPORT_ROUTE = re.compile(r"forgather-tb/api/jobs/(?P<job_id>[^/]+)/scalars")
#: The visitor's landing page on the owner's server: the jobs shared with them.
LANDING_PAGE = "forgather-tb/shared"


def _relative(base_url: str, path: str) -> str | None:
    """``path`` below the server's ``base_url``, or None if it is elsewhere."""
    base = base_url if base_url.endswith("/") else base_url + "/"
    return path[len(base) :] if path.startswith(base) else None


def shared_job_route(base_url: str, path: str, method: str) -> str | None:
    """The job id a visitor's request is for, if it is one a visitor may make at all.

    That is a read of ``<base_url>tb/<id>/...`` (GET, HEAD, OPTIONS, websockets), or a
    POST to TensorBoard's read queries under ``<base_url>tb/<id>/data/``. Anything else
    (Lab, Jupyter's APIs, this extension's API, other methods) is None.
    """
    relative = _relative(base_url, path)
    if relative is None:
        return None
    match = _TB_ROUTE.fullmatch(relative)
    if match is None or not is_job_id(match["job_id"]):
        return None
    rest = match["rest"] or ""
    if method in _VIEWER_METHODS or (method == "POST" and rest.startswith("/data/")):
        return match["job_id"]
    return None


def shared_export_route(base_url: str, path: str, method: str) -> str | None:
    """The job id of a visitor's read of ``forgather-tb/api/jobs/<id>/scalars``, else None.

    The download holds what the shared TensorBoard shows (its scalars), nothing more: only
    GET and HEAD, and only this route of the extension's API.
    """
    relative = _relative(base_url, path)
    if relative is None or method not in ("GET", "HEAD"):
        return None
    match = _EXPORT_ROUTE.fullmatch(relative)
    return match["job_id"] if match is not None and is_job_id(match["job_id"]) else None


def is_landing_page(base_url: str, path: str, method: str) -> bool:
    """Whether a visitor's request is a read of their landing page on this server."""
    return method in ("GET", "HEAD") and _relative(base_url, path) == LANDING_PAGE
