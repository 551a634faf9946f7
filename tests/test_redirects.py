"""No answer under ``tb/`` sends a browser off the server; login redirects log no errors."""

from __future__ import annotations

import logging
from urllib.parse import parse_qs, urljoin, urlsplit

from conftest import raw_request

TOKEN_HEADER = "Authorization"
WEBSOCKET = {
    "Upgrade": "websocket",
    "Connection": "Upgrade",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version": "13",
}
# What follows ``tb/`` in the request target, written as sent; ``{id}`` is a running job's.
OFF_SITE_SPELLINGS = [
    "%2F%2Fevil.example",
    "%2f%2fevil.example",
    "%2F/evil.example",
    "%2F%2F%2Fevil.example",
    "%5C%5Cevil.example",
    "%5C%2Fevil.example",
    "%2F%5Cevil.example",
    "%5C/evil.example",
    "\\evil.example",
    "\\\\evil.example",
    "/\\evil.example",
    "\\/evil.example",
    "%09%2F%2Fevil.example",
    "\t//evil.example",
    "%2F%09%2Fevil.example",
    "%0A%2F%2Fevil.example",
    "%20%2F%2Fevil.example",
    "%252F%252Fevil.example",
    "http:%2F%2Fevil.example",
    "https:evil.example",
    "%68ttp:%2F%2Fevil.example",
    "javascript:alert(1)",
    "@evil.example",
    "evil.example%2F%2F",
    "{id}%2F%2Fevil.example",
    "{id}%2F..%2F..%2F%2Fevil.example",
    "{id}?next=//evil.example",
    "{id}?%09//evil.example",
    "{id}?\t\\evil.example",
    "{id}//evil.example",
    "{id}/%2F%2Fevil.example",
    "{id}/\\evil.example",
    "{id}/..%2F..%2F..%2F%2Fevil.example",
    "{id}/experiment/%2F%2Fevil.example",
    "{id}/experiment//evil.example",
    "{id}/experiment/\\evil.example",
    "{id}/experiment/x",
]


def resolve_as_a_browser(url: str, location: str) -> str:
    """Where a browser at ``url`` goes for ``location`` (http(s) rules: ends trimmed,
    tabs and newlines dropped, backslash read as slash)."""
    cleaned = location.strip("".join(map(chr, range(0x21))))
    cleaned = cleaned.replace("\t", "").replace("\n", "").replace("\r", "")
    return urljoin(url, cleaned.replace("\\", "/"))


def assert_on_server(url: str, location: str, base_url: str) -> str:
    """Assert ``location`` read at ``url`` stays on its scheme and host under ``base_url``."""
    there, here = urlsplit(resolve_as_a_browser(url, location)), urlsplit(url)
    assert (there.scheme, there.netloc) == (here.scheme, here.netloc), (url, location)
    assert there.path.startswith(base_url), (url, location)
    return there.geturl()


async def test_no_answer_under_tb_redirects_off_the_server(api, logdir, jp_http_port, jp_base_url):
    job = await api.launch(logdir="logs")
    job_id = (await api.wait_status(job["id"], "running"))["id"]
    token = {TOKEN_HEADER: f"token {api.serverapp.identity_provider.token}"}
    redirects = 0
    for spelling in OFF_SITE_SPELLINGS:
        target = f"{jp_base_url}tb/{spelling.format(id=job_id)}"
        url = f"http://127.0.0.1:{jp_http_port}{target}"
        for method in ("GET", "HEAD"):
            for headers in (token, {}):
                code, answer = await raw_request(jp_http_port, method, target, headers)
                location = answer.get("Location")
                if location is None:
                    continue
                redirects += 1
                assert code in (301, 302, 303, 307, 308), (target, code)
                assert_on_server(url, location, jp_base_url)
                if not headers:  # to the login page, which then goes to ?next=
                    assert urlsplit(location).path == f"{jp_base_url}login"
                    (after_login,) = parse_qs(urlsplit(location).query)["next"]
                    assert_on_server(url, after_login, jp_base_url)
    assert redirects > len(OFF_SITE_SPELLINGS)  # every anonymous page load, at least


async def test_only_a_job_id_is_redirected_to_its_slash(api, logdir, jp_http_port, jp_base_url):
    job = await api.launch(logdir="logs")
    job_id = (await api.wait_status(job["id"], "running"))["id"]
    token = {TOKEN_HEADER: f"token {api.serverapp.identity_provider.token}"}
    for spelling in OFF_SITE_SPELLINGS:
        if "{id}" in spelling or "/" in spelling:
            continue  # not the redirect's route (tb/<no slash>)
        code, answer = await raw_request(jp_http_port, "GET", f"{jp_base_url}tb/{spelling}", token)
        assert (code, answer.get("Location")) == (404, None), spelling
    # tornado refuses controls in a request target, not these: the query comes %-escaped.
    code, answer = await raw_request(
        jp_http_port, "GET", f"{jp_base_url}tb/{job_id}?a=1&b=\\\xe9<", token
    )
    assert (code, answer["Location"]) == (302, f"{job_id}/?a=1&b=%5C%E9%3C")


async def test_a_redirect_of_the_job_off_the_server_loses_its_location(
    echo_backend, api, logdir, jp_base_url
):
    job = await api.launch(logdir="logs")
    job_id = (await api.wait_status(job["id"], "running"))["id"]
    for location in (
        "//evil.example/",
        "/\\evil.example",
        "\\\\evil.example",
        " //evil.example",
        "/\t/evil.example",
        "http://evil.example/",
        "https://127.0.0.1/",
        "http://user@evil.example/",
        "javascript:alert(1)",
        "/elsewhere/on/this/host",
    ):
        answer = await api.proxied(
            job_id, "redirect", params={"to": location}, follow_redirects=False
        )
        assert answer.code == 302
        assert "Location" not in answer.headers, location
    for location in ("x/", f"{jp_base_url}tb/{job_id}/x/", "../other/"):
        answer = await api.proxied(
            job_id, "redirect", params={"to": location}, follow_redirects=False
        )
        assert (answer.code, answer.headers["Location"]) == (302, location)


async def test_anonymous_requests_are_sent_to_login_or_refused_without_errors_in_the_log(
    api, logdir, jp_http_port, jp_base_url, caplog
):
    job = await api.launch(logdir="logs")
    job_id = (await api.wait_status(job["id"], "running"))["id"]
    caplog.clear()
    answers = []
    for path in (job_id, f"{job_id}/", f"{job_id}/data/environment", "unknown/", "unknown"):
        target = f"{jp_base_url}tb/{path}"
        for accept in ({"Accept": "text/html"}, {"Accept": "application/json"}, {}):
            for method, extra in (("GET", {}), ("HEAD", {}), ("POST", {}), ("GET", WEBSOCKET)):
                code, answer = await raw_request(
                    jp_http_port, method, target, {**accept, **extra, "Content-Length": "0"}
                )
                answers.append((method, bool(extra), code))
                # The redirect's route (no slash) sends a websocket to login too.
                if method in ("GET", "HEAD") and not (extra and "/" in path):
                    assert code == 302, (method, target, code)
                    assert urlsplit(answer["Location"]).path == f"{jp_base_url}login"
                else:
                    assert code == 403, (method, extra, target, code)
    assert len(answers) == 60
    problems = [
        record.getMessage()
        for record in caplog.records
        if record.exc_info
        or "Uncaught exception" in record.getMessage()
        or "Cannot redirect" in record.getMessage()
        or record.levelno >= logging.ERROR
    ]
    assert problems == []
