"""The ``/tb/<id>/`` proxy and the API's authentication, against real TensorBoard."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
from urllib.parse import quote

import pytest
from conftest import free_port, needs_ipv6
from test_load import open_fds, rss_mib
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.simple_httpclient import SimpleAsyncHTTPClient
from ws_echo_backend import MIB, big_block

NO_AUTH = {"Authorization": ""}


async def running_job(api, **options):
    job = await api.launch(**{"logdir": "logs", **options})
    return await api.wait_status(job["id"], "running")


async def test_api_refuses_requests_without_or_with_a_wrong_token(api, logdir):
    for headers in (NO_AUTH, {"Authorization": "token wrong"}):
        for method, body in (("GET", None), ("POST", json.dumps({"logdir": "logs"}))):
            response = await api.fetch(
                "forgather-tb",
                "api",
                "jobs",
                method=method,
                body=body,
                headers=dict(headers),
                raise_error=False,
            )
            assert response.code == 403
            assert "message" in json.loads(response.body)
    wrong_query = await api.fetch(
        "forgather-tb",
        "api",
        "jobs",
        headers=dict(NO_AUTH),
        params={"token": "wrong"},
        raise_error=False,
    )
    assert wrong_query.code == 403
    assert await api.json("GET", "jobs") == []


async def test_proxy_redirects_to_login_without_a_token(api, logdir):
    job = await running_job(api)
    response = await api.proxied(job["id"], "", headers=dict(NO_AUTH), follow_redirects=False)
    assert response.code == 302
    assert "/login" in response.headers["Location"]
    assert b"tb-relative-root" not in response.body


async def test_proxy_refuses_websocket_without_a_token(jp_ws_fetch, api, logdir):
    job = await running_job(api)
    with pytest.raises(HTTPClientError) as refused:
        await jp_ws_fetch("tb", f"{job['id']}/", headers=dict(NO_AUTH))
    assert refused.value.code == 403


async def test_query_token_works(api, logdir):
    job = await running_job(api)
    token = api.serverapp.identity_provider.token
    response = await api.proxied(
        job["id"], "data/environment", headers=dict(NO_AUTH), params={"token": token}
    )
    assert response.code == 200
    assert "data_location" in json.loads(response.body)


async def test_tensorboards_own_post_requests_pass_through(api, logdir):
    job = await running_job(api)
    requests = json.dumps([{"plugin": "scalars", "tag": "loss", "run": "run1"}])
    response = await api.proxied(
        job["id"],
        "data/plugin/timeseries/timeSeries",
        method="POST",
        body=f"requests={quote(requests)}",
        headers={"X-XSRF-Protected": "1", "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.code == 200, response.body[:300]
    series = json.loads(response.body)[0]["runToSeries"]["run1"]
    assert [(p["step"], p["value"]) for p in series] == [(0, 1.0), (1, 0.5), (2, 0.25)]


async def test_unknown_job_is_404_with_the_id_escaped(api):
    response = await api.proxied("<script>x</script>", "")
    assert response.code == 404
    assert b"<script>" not in response.body
    assert b"&lt;script&gt;" in response.body
    for fake in ("6006", "abc@127.0.0.1:22"):
        assert (await api.proxied(fake, "")).code == 404


@pytest.mark.tb_config(max_running=1)
async def test_job_not_running_yet_is_503_with_its_state(api, logdir):
    await running_job(api)
    queued = await api.launch(logdir="logs/run1")
    response = await api.proxied(queued["id"], "")
    assert response.code == 503
    assert response.headers["Retry-After"] == "1"
    assert b"queued" in response.body


async def test_path_without_slash_redirects_relatively(api, logdir):
    job = await running_job(api)
    response = await api.fetch(
        "tb", job["id"], params={"a": "1"}, follow_redirects=False, raise_error=False
    )
    assert response.code == 302
    assert response.headers["Location"] == f"{job['id']}/?a=1"


async def test_foreign_origin_write_is_refused_for_cookie_sessions(api, logdir, jp_base_url):
    job = await running_job(api)
    token = api.serverapp.identity_provider.token
    # Log in as a browser would, to get a session cookie instead of a token.
    login = await api.fetch("login", headers=dict(NO_AUTH), raise_error=False)
    xsrf = login.headers["Set-Cookie"].split("_xsrf=", 1)[1].split(";", 1)[0]
    posted = await api.fetch(
        "login",
        method="POST",
        body=f"password={token}&_xsrf={xsrf}",
        headers={**NO_AUTH, "Cookie": f"_xsrf={xsrf}"},
        follow_redirects=False,
        raise_error=False,
    )
    assert posted.code == 302
    cookies = "; ".join(c.split(";", 1)[0] for c in posted.headers.get_list("Set-Cookie"))
    session = {**NO_AUTH, "Cookie": f"{cookies}; _xsrf={xsrf}"}
    same_site = await api.proxied(job["id"], "data/environment", headers=dict(session))
    assert same_site.code == 200
    host = f"127.0.0.1:{api.serverapp.port}"
    body = "requests=" + quote(json.dumps([{"plugin": "scalars", "tag": "loss", "run": "run1"}]))
    form = {"Content-Type": "application/x-www-form-urlencoded", "X-XSRF-Protected": "1"}
    for origin, expected in ((f"http://{host}", 200), ("http://evil.example", 403)):
        response = await api.proxied(
            job["id"],
            "data/plugin/timeseries/timeSeries",
            method="POST",
            body=body,
            headers={**session, **form, "Origin": origin, "Host": host},
        )
        assert response.code == expected, (origin, response.body[:200])
    # The API needs the XSRF token on cookie-authenticated writes.
    no_xsrf = await api.fetch(
        "forgather-tb",
        "api",
        "jobs",
        job["id"],
        method="DELETE",
        headers=dict(session),
        raise_error=False,
    )
    assert no_xsrf.code == 403
    assert (await api.job(job["id"]))["status"] == "running"


async def test_websockets_are_proxied_to_the_job(echo_backend, jp_ws_fetch, api, logdir):
    job = await running_job(api)
    connection = await jp_ws_fetch("tb", job["id"], "echo")
    await connection.write_message("hello")
    assert await connection.read_message() == "echo: hello"
    connection.close()


@needs_ipv6
async def test_websockets_reach_a_job_on_its_own_ipv6_port(echo_backend, jp_ws_fetch, api, logdir):
    job = await running_job(api, port=free_port(), host="::1")
    connection = await jp_ws_fetch("tb", job["id"], "echo")
    await connection.write_message("over [::1]")
    assert await connection.read_message() == "echo: over [::1]"
    connection.close()


async def test_credentials_are_not_forwarded_to_the_job(echo_backend, api, logdir):
    job = await running_job(api)
    token = api.serverapp.identity_provider.token
    for headers, params in (
        ({}, {"keep": "1"}),
        ({"Cookie": "session=abc; _xsrf=x", "X-XSRFToken": "x"}, {"keep": "1"}),
        (dict(NO_AUTH), {"token": token, "keep": "1"}),
    ):
        response = await api.proxied(job["id"], "seen", headers=headers, params=params)
        assert response.code == 200
        seen = json.loads(response.body)
        names = {name.lower() for name in seen["headers"]}
        assert not names & {"authorization", "cookie", "x-xsrftoken"}, seen
        assert token not in json.dumps(seen)
        assert seen["query"] == "keep=1"


async def test_head_and_revalidation_keep_their_meaning(api, logdir):
    job = await running_job(api)
    small = await api.proxied(job["id"], "data/environment")
    # Small answers are sent whole, so tornado's ETag and 304 still spare the transfer.
    etag = small.headers["Etag"]
    again = await api.proxied(job["id"], "data/environment", headers={"If-None-Match": etag})
    assert again.code == 304 and not again.body
    page = (await api.proxied(job["id"], "")).body.decode()
    script = page.split('<script src="', 1)[1].split('"', 1)[0]
    plain = {"headers": {"Accept-Encoding": "identity"}, "decompress_response": False}
    full = await api.proxied(job["id"], script, **plain)
    assert len(full.body) > 1024 * 1024  # streamed, not buffered
    assert int(full.headers["Content-Length"]) == len(full.body)
    head = await api.proxied(job["id"], script, method="HEAD", **plain)
    assert head.code == 200 and not head.body
    assert int(head.headers["Content-Length"]) == len(full.body)


async def test_the_page_comes_gzipped_to_a_browser_that_takes_gzip(api, logdir):
    job = await running_job(api)
    raw = {"decompress_response": False}
    plain = await api.proxied(job["id"], "", headers={"Accept-Encoding": "identity"}, **raw)
    assert "Content-Encoding" not in plain.headers  # TensorBoard's "identity" is dropped
    assert b'name="tb-relative-root"' in plain.body and len(plain.body) > 100_000
    packed = await api.proxied(job["id"], "", headers={"Accept-Encoding": "gzip"}, **raw)
    assert packed.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in packed.headers["Vary"]
    assert int(packed.headers["Content-Length"]) == len(packed.body) < len(plain.body) / 4
    assert gzip.decompress(packed.body) == plain.body
    # One ETag, of the page itself, whatever the coding: a reload gets a 304 for nothing.
    assert packed.headers["Etag"] == plain.headers["Etag"]
    again = await api.proxied(
        job["id"],
        "",
        headers={"Accept-Encoding": "gzip", "If-None-Match": packed.headers["Etag"]},
        **raw,
    )
    assert again.code == 304 and not again.body
    # What TensorBoard gzipped itself (its data) goes through as it came.
    data = await api.proxied(
        job["id"], "data/plugins_listing", headers={"Accept-Encoding": "gzip"}, **raw
    )
    assert data.headers["Content-Encoding"] == "gzip"
    assert json.loads(gzip.decompress(data.body))["scalars"]["enabled"] is True


def _backend_client():
    # Our own client: pytest-jupyter's would refuse a body over tornado's 100 MB default.
    return SimpleAsyncHTTPClient(force_instance=True, max_body_size=1 << 40)


def _url(api, job, path):
    return f"http://127.0.0.1:{api.serverapp.port}{job['url']}{path}"


def _auth(api):
    return {"Authorization": f"token {api.serverapp.identity_provider.token}"}


async def test_a_body_over_tornados_limit_streams_through_intact_in_bounded_memory(
    echo_backend, api, logdir
):
    job = await running_job(api)
    blocks, received, digest = 150, 0, hashlib.sha256()
    expected = hashlib.sha256(b"".join(big_block(i) for i in range(blocks))).hexdigest()

    def take(chunk):
        nonlocal received
        received += len(chunk)
        digest.update(chunk)

    baseline = peak = rss_mib()

    async def sample():
        nonlocal peak
        while True:
            peak = max(peak, rss_mib())
            await asyncio.sleep(0.02)

    sampler = asyncio.ensure_future(sample())
    client = _backend_client()
    try:
        response = await client.fetch(
            HTTPRequest(
                _url(api, job, f"big?mib={blocks}"),
                headers=_auth(api),
                streaming_callback=take,
                request_timeout=120,
            )
        )
    finally:
        sampler.cancel()
        client.close()
    assert response.code == 200
    assert int(response.headers["Content-Length"]) == blocks * MIB == received
    assert digest.hexdigest() == expected
    # Buffered, the proxy would have held all 150 MiB (tornado's client, before that,
    # refused it). Streamed, it holds a chunk or two at a time.
    print(f"RSS {baseline:.0f} MiB, peak {peak:.0f} MiB while streaming {blocks} MiB")
    assert peak - baseline < 50, (baseline, peak)


async def test_streaming_starts_before_the_backend_finishes(echo_backend, api, logdir):
    job = await running_job(api)
    chunks, first = [], asyncio.Event()

    def take(chunk):
        chunks.append(chunk)
        first.set()

    client = _backend_client()
    try:
        fetching = asyncio.ensure_future(
            client.fetch(
                HTTPRequest(_url(api, job, "drip"), headers=_auth(api), streaming_callback=take)
            )
        )
        await asyncio.wait_for(first.wait(), 20)
        assert b"".join(chunks) == b"first"
        assert not fetching.done()  # the backend is still waiting to send the rest
        assert (await api.proxied(job["id"], "release")).code == 200
        response = await fetching
    finally:
        client.close()
    assert response.code == 200
    assert b"".join(chunks) == b"firstlast"


@pytest.mark.parametrize("length", ["0", "1"])
async def test_a_response_broken_off_by_the_backend_is_not_passed_off_as_complete(
    echo_backend, api, logdir, length
):
    job = await running_job(api)
    received = []
    client = _backend_client()
    try:
        with pytest.raises(HTTPClientError) as broken:
            await client.fetch(
                HTTPRequest(
                    _url(api, job, f"broken?length={length}"),
                    headers=_auth(api),
                    streaming_callback=received.append,
                )
            )
    finally:
        client.close()
    assert broken.value.code == 599
    assert 0 < sum(map(len, received)) < 4 * MIB
    assert (await api.proxied(job["id"], "seen")).code == 200  # the job still answers


async def test_a_browser_leaving_mid_download_frees_both_connections(echo_backend, api, logdir):
    job = await running_job(api)
    assert (await api.proxied(job["id"], "seen")).code == 200  # the job's client exists
    fds = open_fds()
    # A browser: asks for 150 MiB, reads the start, hangs up.
    reader, writer = await asyncio.open_connection("127.0.0.1", api.serverapp.port)
    token = api.serverapp.identity_provider.token
    writer.write(
        f"GET {job['url']}big?mib=150 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: token {token}\r\n\r\n".encode()
    )
    start = await reader.readexactly(64 * 1024)
    writer.close()
    await writer.wait_closed()
    assert start.startswith(b"HTTP/1.1 200 ")
    # The proxy notices, stops reading from TensorBoard and closes both sockets.
    for _ in range(100):
        if open_fds() <= fds:
            break
        await asyncio.sleep(0.05)
    assert open_fds() <= fds
    assert (await api.proxied(job["id"], "seen")).code == 200


async def test_each_job_has_one_client_which_closes_when_the_job_ends(echo_backend, api, logdir):
    backends = api.serverapp.web_app.settings["forgather_tb_backends"]
    manager = api.serverapp.web_app.settings["forgather_tb_manager"]
    first = await running_job(api)
    second = await running_job(api, logdir="logs/run1")
    assert len(backends) == 0  # made on first use
    for _ in range(3):
        for job in (first, second):
            assert (await api.proxied(job["id"], "seen")).code == 200
    assert len(backends) == 2
    client = backends.client_for(manager.get(first["id"]))
    assert (await api.proxied(first["id"], "seen")).code == 200
    assert backends.client_for(manager.get(first["id"])) is client
    assert len(backends) == 2
    await api.kill(first["id"])
    assert len(backends) == 1
    with pytest.raises(RuntimeError, match="closed"):
        await client.fetch(_url(api, second, "seen"))
    assert (await api.proxied(first["id"], "seen")).code == 503
    assert (await api.proxied(second["id"], "seen")).code == 200


async def _get(api, job, path, headers=None):
    """GET ``path`` (a raw query kept as written) through the proxy, without following redirects."""
    client = _backend_client()
    try:
        request = HTTPRequest(_url(api, job, path), headers=headers, follow_redirects=False)
        return await client.fetch(request, raise_error=False)
    finally:
        client.close()


async def test_every_spelling_of_the_token_that_logs_in_is_kept_from_the_job(
    echo_backend, api, logdir
):
    job = await running_job(api)
    token = api.serverapp.identity_provider.token
    # Jupyter (tornado) decodes argument names before it looks for "token".
    for query, rest in (
        (f"token={token}", ""),
        (f"tok%65n={token}", ""),
        (f"%74oken={token}", ""),
        (f"%74%6F%6B%65%6E={token}", ""),
        (f"a=%2F1&tok%65n={token}&b=x+y&&token={token}&c", "a=%2F1&b=x+y&&c"),
    ):
        response = await _get(api, job, f"seen?{query}")
        assert response.code == 200, query  # logged in with that spelling
        seen = json.loads(response.body)
        assert token not in json.dumps(seen), query
        assert seen["query"] == rest
    # The name is case-sensitive: "Token" does not log in, so it carries no credential.
    assert (await _get(api, job, f"seen?Token={token}")).code == 302


async def test_a_token_in_a_form_body_is_refused_before_the_job(echo_backend, api, logdir):
    job = await running_job(api)
    token = api.serverapp.identity_provider.token
    urlencoded = ("application/x-www-form-urlencoded", f"keep=1&token={token}")
    multipart = (
        "multipart/form-data; boundary=B",
        f'--B\r\nContent-Disposition: form-data; name="token"\r\n\r\n{token}\r\n--B--\r\n',
    )
    for auth in (NO_AUTH, {}):  # logging in with it, or sent beside the header
        for content_type, body in (urlencoded, multipart):
            response = await api.proxied(
                job["id"],
                "seen",
                method="POST",
                body=body,
                headers={**auth, "Content-Type": content_type},
            )
            # The proxy's own answer: the job (which would echo the body) never got it.
            assert response.code == 400, (content_type, response.body[:300])
            assert b"not in the body" in response.body
    plain = await api.proxied(
        job["id"],
        "seen",
        method="POST",
        body="keep=1",
        headers={"Content-Type": urlencoded[0]},
    )
    assert plain.code == 200 and json.loads(plain.body)["body"] == "keep=1"


async def test_referer_and_headers_named_in_connection_never_reach_the_job(
    echo_backend, api, logdir
):
    job = await running_job(api)
    token = api.serverapp.identity_provider.token
    headers = {
        **_auth(api),
        "Referer": f"{_url(api, job, '')}?token={token}",
        "Connection": "close, X-Secret",
        "X-Secret": "1",
        "X-Kept": "1",
    }
    response = await _get(api, job, "seen?keep=1", headers=headers)
    assert response.code == 200
    seen = json.loads(response.body)
    names = {name.lower() for name in seen["headers"]}
    assert "referer" not in names and "x-secret" not in names, seen
    assert seen["headers"]["X-Kept"] == "1" and seen["query"] == "keep=1"
    assert token not in json.dumps(seen)


async def test_headers_the_jobs_answer_names_in_connection_stay_with_the_proxy(
    echo_backend, api, logdir
):
    job = await running_job(api)
    response = await api.proxied(job["id"], "hop")
    assert response.code == 200 and response.body == b"ok"
    assert "X-Hop" not in response.headers
    assert response.headers["X-Kept"] == "1"


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    """One unmasked websocket frame's payload, as a server sends it."""
    _, size = await reader.readexactly(2)
    size &= 0x7F
    if size >= 126:
        size = int.from_bytes(await reader.readexactly(2 if size == 126 else 8), "big")
    return await reader.readexactly(size)


async def test_a_websocket_handshake_carries_no_credentials_to_the_job(echo_backend, api, logdir):
    job = await running_job(api)
    token = api.serverapp.identity_provider.token
    host = f"127.0.0.1:{api.serverapp.port}"
    # Written by hand: tornado's websocket client would replace the Connection header.
    reader, writer = await asyncio.open_connection("127.0.0.1", api.serverapp.port)
    writer.write(
        (
            f"GET {job['url']}ws-seen?tok%65n={token}&keep=1 HTTP/1.1\r\n"
            f"Host: {host}\r\nOrigin: http://{host}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade, X-Secret\r\nX-Secret: 1\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            f"Cookie: session=abc\r\nReferer: http://{host}{job['url']}?token={token}\r\n\r\n"
        ).encode()
    )
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)
        assert head.startswith(b"HTTP/1.1 101 "), head
        seen = json.loads(await asyncio.wait_for(_read_frame(reader), 20))
    finally:
        writer.close()
    names = {name.lower() for name in seen["headers"]}
    assert not names & {"cookie", "referer", "x-secret", "authorization"}, seen
    assert token not in json.dumps(seen)
    assert seen["query"] == "keep=1"


def _framing(response) -> list[str]:
    policies = response.headers.get_list("Content-Security-Policy")
    return [policy for policy in policies if "frame-ancestors" in policy]


async def test_tensorboard_pages_may_be_framed_only_where_jupyters_may(api, logdir, jp_base_url):
    job = await running_job(api)
    report = f"{jp_base_url}api/security/csp-report"
    for path in ("", "data/environment"):
        response = await api.proxied(job["id"], path)
        assert response.code == 200
        assert _framing(response) == [f"frame-ancestors 'self'; report-uri {report}"], path
    page = await api.proxied(job["id"], "")
    policies = page.headers.get_list("Content-Security-Policy")
    assert any("script-src" in policy for policy in policies)  # TensorBoard's own, kept


async def test_the_framing_rule_follows_jupyters_configured_policy(
    echo_backend, api, logdir, monkeypatch
):
    # As JupyterHub's single-user server configures it, with a directive for Jupyter's
    # own pages that TensorBoard's need not follow.
    headers = api.serverapp.web_app.settings.setdefault("headers", {})
    policy = "frame-ancestors 'self' https://hub.example; report-uri /hub/csp; default-src 'none'"
    monkeypatch.setitem(headers, "Content-Security-Policy", policy)
    job = await running_job(api)
    answer = await api.proxied(job["id"], "seen")
    assert answer.code == 200
    assert answer.headers.get_list("Content-Security-Policy") == [
        "frame-ancestors 'self' https://hub.example; report-uri /hub/csp"
    ]
