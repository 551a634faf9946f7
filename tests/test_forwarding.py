"""The proxy's rules on what reaches TensorBoard and what comes back (pure functions)."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest
from tornado.httputil import HTTPHeaders

from jupyter_forgather_tb.server.web.forwarding import (
    framing_policy,
    hop_by_hop,
    request_headers_for_backend,
    stays_on_server,
    websocket_handshake_refusal,
    without_token,
)


@pytest.mark.parametrize(
    "query, kept",
    [
        ("token=s3cret", ""),
        ("tok%65n=s3cret", ""),
        ("%74oken=s3cret", ""),
        ("%74%6F%6B%65%6E=s3cret", ""),
        ("token", ""),
        ("a=%2F1&tok%65n=s3cret&b=x+y&&token=s3cret&c", "a=%2F1&b=x+y&&c"),
        # Not Jupyter's token: names are compared exactly once decoded.
        (
            "Token=1&tokens=2&to+ken=3&%2574oken=4&x=token",
            "Token=1&tokens=2&to+ken=3&%2574oken=4&x=token",
        ),
        ("", ""),
    ],
)
def test_without_token_drops_fields_named_token_once_decoded(query, kept):
    assert without_token(query) == kept
    assert "token" not in dict(parse_qsl(without_token(query), keep_blank_values=True))


def test_a_query_without_a_token_is_returned_untouched():
    query = "a=1&&b=%7e&c"
    assert without_token(query) is query


def test_hop_by_hop_includes_what_connection_lists():
    headers = HTTPHeaders()
    headers.add("Connection", "close, X-Secret")
    headers.add("Connection", "Keep-Alive ,x-other,")
    assert {"x-secret", "x-other", "close", "keep-alive", "upgrade"} <= hop_by_hop(headers)
    assert "x-kept" not in hop_by_hop(headers)


def test_request_headers_for_backend_keep_only_end_to_end_non_credentials():
    headers = HTTPHeaders(
        {
            "Authorization": "token s3cret",
            "Cookie": "_xsrf=1",
            "X-XSRFToken": "1",
            "Referer": "http://h/tb/x/?token=s3cret",
            "Connection": "Upgrade, X-Secret",
            "Upgrade": "websocket",
            "X-Secret": "1",
            "Te": "trailers",
            "Accept": "text/html",
        }
    )
    headers.add("X-Kept", "1")
    headers.add("X-Kept", "2")
    kept = request_headers_for_backend(headers)
    assert sorted(kept.get_all()) == [("Accept", "text/html"), ("X-Kept", "1"), ("X-Kept", "2")]
    assert headers["X-Secret"] == "1"  # the request itself is left as it came


@pytest.mark.parametrize(
    "policy, framing",
    [
        (  # jupyter_server's default
            "frame-ancestors 'self'; report-uri /base/api/security/csp-report",
            "frame-ancestors 'self'; report-uri /base/api/security/csp-report",
        ),
        (  # JupyterHub's single-user default: Lab (same origin) must still frame TensorBoard
            "frame-ancestors 'none';report-uri http://hub/hub/security/csp-report",
            "frame-ancestors 'self'; report-uri http://hub/hub/security/csp-report",
        ),
        (  # an administrator's: a portal may embed Lab, so TensorBoard's tabs in it too
            "default-src 'none';  Frame-Ancestors https://portal.example 'SELF' ;",
            "frame-ancestors 'self' https://portal.example",
        ),
        (  # the first of a directive counts, as in browsers
            "frame-ancestors https://a.test; frame-ancestors 'none'; report-uri /r; report-uri /s",
            "frame-ancestors 'self' https://a.test; report-uri /r",
        ),
        ("default-src 'none'; report-uri /r", None),
        ("", None),
    ],
)
def test_framing_policy_is_jupyters_rule_plus_jupyter_itself(policy, framing):
    assert framing_policy(policy) == framing


PAGE = "http://127.0.0.1:8888/a%40b/tb/J/data/x"


@pytest.mark.parametrize(
    "location",
    [
        "//evil.example/",
        "/\\evil.example",
        "\\\\evil.example",
        "\t//evil.example",
        "/\t/evil.example",
        "/\n/evil.example",
        " \x00//evil.example",
        "http://evil.example/a%40b/",
        "http:\\\\evil.example/a%40b/",
        "https://127.0.0.1:8888/a%40b/",
        "http://user@127.0.0.1:8888/a%40b/",
        "javascript:alert(1)",
        "/elsewhere",
        "../../../../elsewhere",
    ],
)
def test_a_location_off_the_server_or_its_base_url_is_recognised(location):
    assert not stays_on_server(location, PAGE, "/a%40b/")


@pytest.mark.parametrize(
    "location",
    ["y/", "../", "/a%40b/tb/J/experiment/e/", "HTTP://127.0.0.1:8888/a%40b/x", "?q=//e"],
)
def test_a_location_under_the_base_url_stays_on_the_server(location):
    assert stays_on_server(location, PAGE, "/a%40b/")


def test_websocket_handshakes_are_refused_for_the_headers_tornado_refuses():
    good = {
        "Host": "h",
        "Connection": "keep-alive, Upgrade",
        "Sec-WebSocket-Key": "k",
        "Sec-WebSocket-Version": "13",
    }
    assert websocket_handshake_refusal(HTTPHeaders(good)) is None
    assert websocket_handshake_refusal(HTTPHeaders({**good, "Connection": "close"}))[0] == 400
    assert (
        websocket_handshake_refusal(HTTPHeaders({**good, "Sec-WebSocket-Version": "6"}))[0] == 426
    )
    assert websocket_handshake_refusal(HTTPHeaders({**good, "Sec-WebSocket-Key": ""}))[0] == 400
