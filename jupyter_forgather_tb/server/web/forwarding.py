"""What the proxy passes on to TensorBoard and back: pure rules on queries and headers."""

from __future__ import annotations

import functools
from urllib.parse import unquote_plus, urljoin, urlsplit

from tornado.httputil import HTTPHeaders

# Jupyter reads its token from this query (or form) argument, by decoded name.
TOKEN_ARGUMENT = "token"
# Headers that carry the user's Jupyter credentials, and Referer, whose URL may hold
# ``?token=``: TensorBoard reads none of them.
_PRIVATE_REQUEST_HEADERS = ("Authorization", "Cookie", "X-XSRFToken", "Referer")
# Hop-by-hop headers (RFC 9110, 7.6.1), never forwarded either way, beside those
# that a message's own Connection header lists.
_HOP_BY_HOP = frozenset(
    (
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    )
)
# What a browser strips from both ends of a URL (C0 controls and space) and from within it.
_URL_ENDS = "".join(map(chr, range(0x21)))
_URL_DROPPED = {ord("\t"): None, ord("\n"): None, ord("\r"): None}
# The websocket versions tornado accepts (RFC 6455 and its drafts 7 and 8).
_WEBSOCKET_VERSIONS = ("7", "8", "13")
# CSP source keywords that framing_policy replaces with 'self'.
_SELF_OR_NONE = ("'self'", "'none'")


def without_token(query: str) -> str:
    """``query`` minus every field whose decoded name is Jupyter's token argument.

    Names are decoded as tornado decodes them (``+`` and ``%XX``), so ``tok%65n=``
    goes too; the other fields stay byte for byte, in order.
    """
    fields = query.split("&")
    kept = [f for f in fields if unquote_plus(f.split("=", 1)[0], "latin1") != TOKEN_ARGUMENT]
    return query if len(kept) == len(fields) else "&".join(kept)


def hop_by_hop(headers: HTTPHeaders) -> frozenset[str]:
    """Lower-case names of the hop-by-hop headers of a message, its Connection list included."""
    listed = ",".join(headers.get_list("Connection")).split(",")
    return _HOP_BY_HOP | {name.strip().lower() for name in listed if name.strip()}


def request_headers_for_backend(headers: HTTPHeaders) -> HTTPHeaders:
    """A copy of a browser's request headers fit for TensorBoard.

    Without hop-by-hop headers, Jupyter's credentials, or Referer.
    """
    dropped = hop_by_hop(headers) | {name.lower() for name in _PRIVATE_REQUEST_HEADERS}
    kept = HTTPHeaders()
    for name, value in headers.get_all():
        if name.lower() not in dropped:
            kept.add(name, value)
    return kept


# Cached: called for every proxied answer with the server's one, unchanging policy.
@functools.lru_cache(maxsize=8)
def framing_policy(policy: str) -> str | None:
    """The framing rule for TensorBoard's answers, from Jupyter's Content-Security-Policy.

    Jupyter's ``frame-ancestors`` sources plus ``'self'``, since Jupyter's own pages
    (Lab's tabs, a notebook's output) frame TensorBoard even where Jupyter's pages may
    not be framed (JupyterHub's default is ``'none'``); with Jupyter's ``report-uri``.
    None when Jupyter's policy does not restrict framing.
    """
    directives: dict[str, list[str]] = {}
    for words in (d.split() for d in policy.split(";")):
        if words:
            directives.setdefault(words[0].lower(), words[1:])  # the first one counts
    if "frame-ancestors" not in directives:
        return None
    others = [s for s in directives["frame-ancestors"] if s.lower() not in _SELF_OR_NONE]
    parts = [" ".join(["frame-ancestors", "'self'", *others])]
    if "report-uri" in directives:
        parts.append(" ".join(["report-uri", *directives["report-uri"]]))
    return "; ".join(parts)


def stays_on_server(location: str, request_url: str, base_url: str) -> bool:
    """Whether a ``Location`` answering ``request_url`` leads, as a browser reads it, to
    the same scheme and host, under ``base_url``.

    Read as a browser reads an http(s) URL: ends trimmed of controls and spaces, tabs
    and newlines dropped, ``\\`` taken for ``/`` (so ``/\\evil.example`` leaves the server).
    """
    cleaned = location.strip(_URL_ENDS).translate(_URL_DROPPED).replace("\\", "/")
    here, there = urlsplit(request_url), urlsplit(urljoin(request_url, cleaned))
    same_origin = (there.scheme.lower(), there.netloc.lower()) == (
        here.scheme.lower(),
        here.netloc.lower(),
    )
    return same_origin and there.path.startswith(base_url)


def websocket_handshake_refusal(headers: HTTPHeaders) -> tuple[int, str] | None:
    """Status and reason with which tornado refuses a websocket handshake for its
    headers (the Origin aside), or None if it accepts them.

    Written here because tornado makes these checks inline in
    ``WebSocketHandler.get``, after ``prepare()``, with nothing to call beforehand;
    the proxy must refuse before it wakes a suspended job.
    """
    connection = {part.strip().lower() for part in headers.get("Connection", "").split(",")}
    if "upgrade" not in connection:
        return 400, '"Connection" must be "Upgrade"'
    if headers.get("Sec-WebSocket-Version") not in _WEBSOCKET_VERSIONS:
        return 426, "unsupported websocket version"
    if not (headers.get("Host") and headers.get("Sec-WebSocket-Key")):
        return 400, "missing websocket headers"
    return None
