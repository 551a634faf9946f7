"""Sharing one TensorBoard job on a real JupyterHub: the viewer gets that job and nothing else.

One Hub for the module (as tests/test_hub.py starts it): olivia owns the jobs,
victor is shared one, otto is shared nothing, gina is in the group "team", lena
accepts a share link, ada is a Hub admin named in the authorizer's configuration,
paul's server runs JupyterHub's plain authorizer, wendy's jobs run the websocket
echo backend (tests/ws_echo_backend.py) instead of TensorBoard, sam's server suspends
jobs idle for 3 seconds, and quinn, rosa and tess are shared a job through olivia's Share
dialog in JupyterLab. Run alone with ``pytest -m hub``.
"""

from __future__ import annotations

import asyncio
import csv
import html
import io
import os
import re
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from test_hub import (
    PASSWORD,
    SCALARS,
    losses,
    running_hub,
    settled_activity,
    wait_activity,
    wait_running,
)

pytestmark = [pytest.mark.hub, pytest.mark.timeout(300)]

AUTHORIZER = "jupyter_forgather_tb.server.sharing.authorizer.ShareAuthorizer"
SHARING = f"""
c.Authenticator.admin_users = {{"ada"}}
c.JupyterHub.load_groups = {{"team": {{"users": ["gina"]}}}}
c.JupyterHub.load_roles = [
    *c.JupyterHub.load_roles,
    {{"name": "user", "scopes": ["self", "shares!user", "read:users:name",
                                 "read:groups", "read:users:shares!user"]}},
]
c.Spawner.server_token_scopes = [
    "users:activity!user", "access:servers!server", "shares!user", "read:users:name",
    "read:groups", "read:users:shares!user",
]


def share_authorizer(spawner):
    spawner.args = [*spawner.args, "--ForgatherTB.max_running=16"]
    if spawner.user.name != "paul":
        spawner.args = [
            *spawner.args,
            "--ServerApp.authorizer_class={AUTHORIZER}",
            "--ShareAuthorizer.full_access_users=ada",
        ]
    if spawner.user.name == "wendy":  # her jobs run the websocket echo backend
        spawner.args = [*spawner.args, f"--ForgatherTB.tensorboard_python={{ECHO_PYTHON}}"]
    if spawner.user.name == "sam":  # his idle jobs are suspended after 3 seconds
        spawner.args = [*spawner.args, "--ForgatherTB.suspend_after=3"]


c.Spawner.pre_spawn_hook = share_authorizer
"""


@pytest.fixture(autouse=True)
def jp_asyncio_loop():
    """No pytest-jupyter loop here: Playwright's sync API runs (and owns) its own loop."""
    return None


@pytest.fixture(autouse=True)
def jp_server_cleanup():
    """Nothing to clean: the Hub runs Jupyter in subprocesses, not in pytest's process."""
    return None


USERS = [
    "olivia",
    "victor",
    "otto",
    "gina",
    "lena",
    "ada",
    "paul",
    "wendy",
    "sam",
    "quinn",
    "rosa",
    "tess",
]


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    work = tmp_path_factory.mktemp("hub-sharing")
    echo = work / "echo-python"
    backend = Path(__file__).with_name("ws_echo_backend.py")
    echo.write_text(f'#!/bin/sh\nexec {sys.executable} {backend} "$@"\n')
    echo.chmod(0o755)
    with running_hub(work, USERS, SHARING + f"\nECHO_PYTHON = {str(echo)!r}\n") as hub:
        yield hub


@pytest.fixture(scope="module")
def tokens(hub):
    return {name: hub.token(name) for name in USERS}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"token {token}"}


class Owner:
    """Olivia's server's API, called with her token."""

    def __init__(self, hub, token, name="olivia"):
        self.hub = hub
        self.token = token
        self.api = f"{hub.url}/user/{name}/forgather-tb/api"

    def call(self, method, path, **kwargs):
        return requests.request(
            method, f"{self.api}/{path}", headers=auth(self.token), timeout=30, **kwargs
        )

    def launch(self, logdir):
        response = self.call("POST", "jobs", json={"logdir": logdir, "force_new": True})
        assert response.status_code == 201, response.text
        return wait_running(
            lambda job_id: self.call("GET", f"jobs/{job_id}").json(), response.json()["id"]
        )

    def share(self, job_id, **body):
        response = self.call("POST", f"jobs/{job_id}/shares", json=body)
        assert response.status_code == 201, response.text
        return response.json()


@pytest.fixture(scope="module")
def olivia(hub, tokens):
    hub.start_server("olivia")
    return Owner(hub, tokens["olivia"])


@pytest.fixture(scope="module")
def shared_job(olivia, tokens):
    """A job of olivia's shared with victor, and another one shared with no one."""
    job = olivia.launch("logs")
    olivia.share(job["id"], user="victor")
    return job


@pytest.fixture(scope="module")
def private_job(olivia):
    return olivia.launch("logs/run1")


def visit(hub, browser, path) -> requests.Response:
    """A browser's GET through the Hub, confirming JupyterHub's "Authorize access" page.

    JupyterHub asks a visitor of someone else's server, once, to authorize it.
    """
    return authorize_if_asked(browser, browser.get(hub.url + path, timeout=30))


def authorize_if_asked(browser, response) -> requests.Response:
    """Where a browser landed on JupyterHub's "Authorize access" page, confirm it."""
    if urlsplit(response.url).path == "/hub/api/oauth2/authorize" and response.ok:
        xsrf = re.search(r'name="_xsrf" value="([^"]+)"', response.text).group(1)
        scopes = re.findall(r'name="scopes" value="([^"]*)"', response.text)
        form = {"_xsrf": html.unescape(xsrf), "scopes": [html.unescape(s) for s in scopes]}
        response = browser.post(response.url, data=form, timeout=30)
    return response


def get(hub, path, token, **kwargs):
    return requests.get(
        hub.url + path, headers=auth(token), timeout=30, allow_redirects=False, **kwargs
    )


def test_viewer_reads_the_shared_tensorboard(hub, tokens, shared_job):
    page = get(hub, shared_job["url"], tokens["victor"])
    assert page.status_code == 200 and "<tb-webapp>" in page.text
    assert losses(get(hub, shared_job["url"] + SCALARS, tokens["victor"])) == [1.0, 0.5, 0.25]


def test_viewer_gets_403_on_everything_else_of_the_owners_server(
    hub, tokens, shared_job, private_job
):
    token = tokens["victor"]
    base = "/user/olivia/"
    job = shared_job["id"]
    refused = {
        ("GET", base + "lab"),
        ("GET", base + "api/contents"),
        ("GET", base + "api/kernels"),
        ("GET", base + "api/terminals"),
        ("GET", base + "api/sessions"),
        ("GET", base + "api/me"),
        ("GET", base + "forgather-tb/api/jobs"),
        ("GET", base + f"forgather-tb/api/jobs/{job}"),
        ("GET", base + f"forgather-tb/api/jobs/{job}/shares"),
        ("GET", base + f"forgather-tb/api/jobs/{job}/output"),
        ("GET", private_job["url"]),
        ("GET", private_job["url"] + SCALARS),
        ("POST", base + "api/kernels"),
        ("POST", base + "api/terminals"),
        ("POST", base + "forgather-tb/api/jobs"),
        ("POST", base + f"forgather-tb/api/jobs/{job}/relaunch"),
        ("POST", base + f"forgather-tb/api/jobs/{job}/shares"),
        ("DELETE", base + f"forgather-tb/api/jobs/{job}"),
        ("DELETE", shared_job["url"]),
        ("PUT", shared_job["url"] + "data/environment"),
    }
    answers = {
        (method, path): requests.request(
            method, hub.url + path, headers=auth(token), json={}, timeout=30, allow_redirects=False
        ).status_code
        for method, path in refused
    }
    assert {key: status for key, status in answers.items() if status != 403} == {}
    # The shared job still answers, and is still running (no DELETE reached it).
    assert olivia_job_status(hub, tokens, job) == "running"


def olivia_job_status(hub, tokens, job_id):
    return get(hub, f"/user/olivia/forgather-tb/api/jobs/{job_id}", tokens["olivia"]).json()[
        "status"
    ]


def test_outsider_gets_403_on_the_shared_tensorboard(hub, tokens, shared_job):
    response = get(hub, shared_job["url"] + SCALARS, tokens["otto"])
    assert response.status_code == 403
    assert "0.25" not in response.text


def csv_losses(response) -> list[float]:
    """The loss values of run1 in a scalars CSV download."""
    assert response.status_code == 200, (response.status_code, response.text[:500])
    assert response.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    return [float(row["value"]) for row in rows if row["run"] == "run1" and row["tag"] == "loss"]


def test_viewer_downloads_the_shared_jobs_scalars_and_no_other_jobs(
    hub, tokens, shared_job, private_job
):
    api = "/user/olivia/forgather-tb/api/jobs"
    shared, private = f"{api}/{shared_job['id']}/scalars", f"{api}/{private_job['id']}/scalars"
    assert csv_losses(get(hub, shared, tokens["victor"], params={"format": "csv"})) == [
        1.0,
        0.5,
        0.25,
    ]
    refused = {
        "another job's scalars": get(hub, private, tokens["victor"]),
        "an outsider": get(hub, shared, tokens["otto"]),
        "a POST": requests.post(hub.url + shared, headers=auth(tokens["victor"]), timeout=30),
        "a DELETE": requests.delete(hub.url + shared, headers=auth(tokens["victor"]), timeout=30),
    }
    assert {why: r.status_code for why, r in refused.items() if r.status_code != 403} == {}
    assert all("0.25" not in r.text for r in refused.values())


@pytest.fixture(scope="module")
def paul(hub, tokens):
    """Paul's server, under JupyterHub's plain authorizer."""
    hub.start_server("paul")
    return Owner(hub, tokens["paul"], "paul")


def test_sharing_is_refused_under_jupyterhubs_plain_authorizer(hub, tokens, paul):
    job = paul.launch("logs")
    response = paul.call("POST", f"jobs/{job['id']}/shares", json={"user": "victor"})
    assert response.status_code == 409
    assert "authorizer" in response.json()["message"]
    assert get(hub, job["url"], tokens["victor"]).status_code == 403
    listed = paul.call("GET", f"jobs/{job['id']}/shares").json()
    assert listed["enabled"] is False and listed["shares"] == []


def test_a_group_share_admits_the_groups_members_only(hub, tokens, olivia, private_job):
    job = olivia.launch("logs")
    # (No request of gina's before the share: the server would cache her refusal for 300 s.)
    share = olivia.share(job["id"], group="team")
    assert share["kind"] == "group" and share["name"] == "team"
    gina = hub.login("gina")
    assert losses(visit(hub, gina, job["url"] + SCALARS)) == [1.0, 0.5, 0.25]
    assert get(hub, job["url"] + SCALARS, tokens["otto"]).status_code == 403
    assert get(hub, private_job["url"], tokens["gina"]).status_code == 403


def test_admin_named_in_the_configuration_keeps_full_access(hub, tokens, olivia, private_job):
    token = tokens["ada"]
    assert get(hub, "/user/olivia/api/contents", token).status_code == 200
    assert get(hub, "/user/olivia/forgather-tb/api/jobs", token).status_code == 200
    scalars = get(hub, private_job["url"] + "data/plugin/scalars/scalars?run=.&tag=loss", token)
    assert losses(scalars) == [1.0, 0.5, 0.25]


def accept_share_link(hub, browser, link: str) -> requests.Response:
    """Accept a share code on JupyterHub's page, as its form does; the page it ends on."""
    page = browser.get(hub.url + link, timeout=30)
    assert page.status_code == 200, page.text[:500]
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text).group(1)
    form = re.search(r'<form[^>]*action="([^"]*)"', page.text)
    action = form.group(1) if form and form.group(1) else link
    accepted = browser.post(hub.url + html.unescape(action), data={"_xsrf": xsrf}, timeout=30)
    return authorize_if_asked(browser, accepted)


def test_a_link_share_is_accepted_on_jupyterhubs_page_and_opens_the_job(hub, tokens, olivia):
    job = olivia.launch("logs")
    share = olivia.share(job["id"], link=True, expires_in=3600)
    assert share["kind"] == "link" and share["url"].startswith("/hub/accept-share?code=")
    lena = hub.login("lena")
    assert lena.get(hub.url + job["url"] + SCALARS, timeout=30).status_code == 403
    opened = accept_share_link(hub, lena, share["url"])
    assert opened.status_code == 200 and "<tb-webapp>" in opened.text
    assert urlsplit(opened.url).path == job["url"]
    assert losses(lena.get(hub.url + job["url"] + SCALARS, timeout=30)) == [1.0, 0.5, 0.25]
    listed = olivia.call("GET", f"jobs/{job['id']}/shares").json()["shares"]
    assert [s["visitors"] for s in listed if s["kind"] == "link"] == [["lena"]]
    # The Hub's share of the server alone is not the link: another job stays closed.
    other = olivia.launch("logs/run1")
    assert lena.get(hub.url + other["url"] + SCALARS, timeout=30).status_code == 403


def test_revoking_refuses_the_viewers_next_request_despite_the_hubs_identity_cache(
    hub, tokens, olivia
):
    job = olivia.launch("logs")
    olivia.share(job["id"], user="victor")
    victor = hub.login("victor")
    assert losses(visit(hub, victor, job["url"] + SCALARS)) == [1.0, 0.5, 0.25]
    revoked = olivia.call("DELETE", f"jobs/{job['id']}/shares?user=victor")
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["shares"] == []
    # The same browser, whose identity the server caches for 300 s: refused at once.
    again = victor.get(hub.url + job["url"] + SCALARS, timeout=30)
    assert again.status_code == 403 and "0.25" not in again.text
    assert olivia.call("GET", f"jobs/{job['id']}/shares").json()["shares"] == []


async def echo_until_closed(url: str, token: str, revoke) -> tuple[str | None, int | None, str]:
    """Open a websocket, see it echo, call ``revoke``; what it reads next, and how it closed."""
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    socket = await websocket_connect(HTTPRequest(url, headers=auth(token)))
    await socket.write_message("hello")
    assert await asyncio.wait_for(socket.read_message(), 30) == "echo: hello"
    await asyncio.get_running_loop().run_in_executor(None, revoke)
    after = await asyncio.wait_for(socket.read_message(), 30)
    return after, socket.close_code, socket.close_reason or ""


def test_revoking_closes_the_viewers_open_websocket(hub, tokens):
    hub.start_server("wendy")
    wendy = Owner(hub, tokens["wendy"], "wendy")
    job = wendy.launch("logs")
    wendy.share(job["id"], user="victor")
    url = "ws" + hub.url.removeprefix("http") + job["url"] + "echo"

    def revoke():
        response = wendy.call("DELETE", f"jobs/{job['id']}/shares?user=victor")
        assert response.status_code == 200, response.text

    # In a thread of its own: the module's Playwright may own this thread's event loop.
    with ThreadPoolExecutor(1) as thread:
        opened = echo_until_closed(url, tokens["victor"], revoke)
        after, code, reason = thread.submit(asyncio.run, opened).result(timeout=120)
    assert after is None
    assert code == 4403 and "no longer shared with you" in reason


def test_killing_the_job_ends_its_shares(hub, tokens, olivia):
    job = olivia.launch("logs")
    olivia.share(job["id"], user="victor")
    assert get(hub, job["url"] + SCALARS, tokens["victor"]).status_code == 200
    assert olivia.call("DELETE", f"jobs/{job['id']}").status_code in (200, 202, 204)
    assert get(hub, job["url"] + SCALARS, tokens["victor"]).status_code == 403


def test_relaunching_with_keep_shares_carries_the_shares_and_without_it_drops_them(
    hub, tokens, olivia
):
    job = olivia.launch("logs")
    olivia.share(job["id"], user="victor")
    assert olivia.call("DELETE", f"jobs/{job['id']}").status_code == 200
    kept = olivia.call("POST", f"jobs/{job['id']}/relaunch", json={"keep_shares": True})
    assert kept.status_code == 201, kept.text
    assert [(s["kind"], s["name"]) for s in kept.json()["shares"]] == [("user", "victor")]
    carried = wait_running(lambda i: olivia.call("GET", f"jobs/{i}").json(), kept.json()["id"])
    assert losses(get(hub, carried["url"] + SCALARS, tokens["victor"])) == [1.0, 0.5, 0.25]
    assert get(hub, carried["url"] + SCALARS, tokens["otto"]).status_code == 403
    # Relaunched again without asking: the new job is the owner's alone.
    assert olivia.call("DELETE", f"jobs/{carried['id']}").status_code == 200
    plain = olivia.call("POST", f"jobs/{carried['id']}/relaunch", json={})
    assert plain.status_code == 201, plain.text
    assert "shares" not in plain.json()
    dropped = wait_running(lambda i: olivia.call("GET", f"jobs/{i}").json(), plain.json()["id"])
    assert get(hub, dropped["url"] + SCALARS, tokens["victor"]).status_code == 403
    assert olivia.call("GET", f"jobs/{dropped['id']}/shares").json()["shares"] == []


def test_relaunch_keep_shares_must_be_a_boolean(olivia):
    job = olivia.launch("logs/run1")
    assert olivia.call("DELETE", f"jobs/{job['id']}").status_code == 200
    before = len(olivia.call("GET", "jobs").json())
    response = olivia.call("POST", f"jobs/{job['id']}/relaunch", json={"keep_shares": "yes"})
    assert response.status_code == 400
    assert "keep_shares must be true or false" in response.json()["message"]
    assert len(olivia.call("GET", "jobs").json()) == before


def test_relaunch_keep_shares_is_refused_where_sharing_is_not_in_force(paul):
    job = paul.launch("logs/run1")
    assert paul.call("DELETE", f"jobs/{job['id']}").status_code == 200
    before = len(paul.call("GET", "jobs").json())
    response = paul.call("POST", f"jobs/{job['id']}/relaunch", json={"keep_shares": True})
    assert response.status_code == 409
    message = response.json()["message"]
    assert message.startswith("keep_shares:") and "authorizer" in message
    assert len(paul.call("GET", "jobs").json()) == before


def test_shared_with_you_lists_the_owner_and_its_page_opens_the_job(hub, tokens, shared_job):
    hub.start_server("victor")
    victor_api = "/user/victor/forgather-tb/api/shared"
    listed = get(hub, victor_api, tokens["victor"])
    assert listed.status_code == 200, listed.text
    (olivias,) = [item for item in listed.json() if item["owner"] == "olivia"]
    assert olivias["url"] == "/user/olivia/forgather-tb/shared"
    landing = get(hub, olivias["url"], tokens["victor"])
    assert landing.status_code == 302
    assert landing.headers["Location"] == shared_job["url"]
    assert get(hub, olivias["url"], tokens["otto"]).status_code == 403


def test_cli_shares_lists_and_unshares_a_job(hub, tokens, olivia, capsys):
    from jupyter_forgather_tb.clients.cli import main

    job = olivia.launch("logs")
    server = ["--server", f"{hub.url}/user/olivia/", "--token", tokens["olivia"]]
    assert main([*server, "share", job["id"], "--user", "victor"]) == 0
    assert "user victor" in capsys.readouterr().out
    assert losses(get(hub, job["url"] + SCALARS, tokens["victor"])) == [1.0, 0.5, 0.25]
    assert main([*server, "share", job["id"], "--link", "--expires-in", "600"]) == 0
    link = capsys.readouterr().out
    assert "link, expires" in link and "/hub/accept-share?code=" in link
    assert main([*server, "shares", job["id"]]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == 2 and "user victor" in listed[0] and "link" in listed[1]
    assert main([*server, "unshare", job["id"], "--user", "victor"]) == 0
    assert "victor" not in capsys.readouterr().out
    assert get(hub, job["url"] + SCALARS, tokens["victor"]).status_code == 403


def test_a_visitors_requests_do_not_keep_the_owners_server_active(hub, tokens, shared_job):
    quiet = settled_activity(hub, "olivia")
    for _ in range(5):
        assert get(hub, shared_job["url"] + SCALARS, tokens["victor"]).status_code == 200
    # The server reports activity every second: a visitor's would have shown by now.
    assert wait_activity(hub, "olivia", quiet, 5) == quiet
    # The owner's own requests to the same job still count.
    assert get(hub, shared_job["url"] + SCALARS, tokens["olivia"]).status_code == 200
    assert wait_activity(hub, "olivia", quiet, 15) > quiet


def wait_suspended(owner, job_id):
    """The owner's job once its server has suspended it for want of requests."""
    deadline = time.monotonic() + 60
    while (job := owner.call("GET", f"jobs/{job_id}").json())["status"] != "suspended":
        assert job["status"] == "running", job
        assert time.monotonic() < deadline, job
        time.sleep(0.5)
    return job


def test_a_viewers_visit_wakes_a_suspended_shared_job(hub, tokens):
    hub.start_server("sam")
    sam = Owner(hub, tokens["sam"], "sam")
    job = sam.launch("logs")
    sam.share(job["id"], user="victor")
    suspended = wait_suspended(sam, job["id"])
    assert suspended["pid"] is None and suspended["wakes"] == 0
    page = get(hub, job["url"], tokens["victor"])
    assert page.status_code == 200 and "<tb-webapp>" in page.text
    woken = sam.call("GET", f"jobs/{job['id']}").json()
    assert woken["status"] == "running" and woken["wakes"] == 1, woken
    assert woken["pid"] is not None
    assert losses(get(hub, job["url"] + SCALARS, tokens["victor"])) == [1.0, 0.5, 0.25]
    # An outsider's refused request wakes nothing.
    wait_suspended(sam, job["id"])
    assert get(hub, job["url"] + SCALARS, tokens["otto"]).status_code == 403
    assert sam.call("GET", f"jobs/{job['id']}").json()["status"] == "suspended"


@pytest.fixture(scope="module")
def chromium():
    """Headless Chromium (as tests/test_lab_ui.py starts it), or a skip where it is missing."""
    executable = os.environ.get("FORGATHER_TB_CHROMIUM") or shutil.which("chromium")
    if not executable:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable,
            args=["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"],
        )
        yield browser
        browser.close()


def chromium_login(hub, chromium, name):
    """A Chromium page logged in to the Hub through its form."""
    page = chromium.new_context().new_page()
    page.goto(f"{hub.url}/hub/login")
    page.fill("#username_input", name)
    page.fill("#password_input", PASSWORD)
    page.click("#login_submit")
    page.wait_for_url(lambda url: "/hub/login" not in url)
    return page


def authorize_in_chromium(page):
    """Confirm JupyterHub's "Authorize access" page where it asks (once per user and server)."""
    page.wait_for_load_state()
    if urlsplit(page.url).path == "/hub/api/oauth2/authorize":
        page.get_by_role("button", name="Authorize").click()


def test_in_chromium_a_viewer_and_a_link_visitor_see_the_runs_and_nothing_else(
    hub, olivia, chromium
):
    job = olivia.launch("logs")
    olivia.share(job["id"], user="victor")
    victor = chromium_login(hub, chromium, "victor")
    victor.goto(hub.url + job["url"])
    authorize_in_chromium(victor)
    victor.get_by_text("run1").first.wait_for()
    assert victor.request.get(f"{hub.url}/user/olivia/lab").status == 403

    link = olivia.share(job["id"], link=True)
    otto = chromium_login(hub, chromium, "otto")
    otto.goto(hub.url + link["url"])
    otto.get_by_role("button", name="Accept invitation").click()
    authorize_in_chromium(otto)
    otto.get_by_text("run1").first.wait_for()
    assert urlsplit(otto.url).path == job["url"]
    assert otto.request.get(f"{hub.url}/user/olivia/api/contents").status == 403


def open_share_dialog(hub, chromium, owner, job):
    """The owner's JupyterLab under the Hub, its sidebar open, the job's Share dialog shown."""
    page = chromium_login(hub, chromium, owner)
    page.set_default_timeout(60_000)
    page.goto(f"{hub.url}/user/{owner}/lab/workspaces/share-{job['id']}")
    authorize_in_chromium(page)
    # Once its workspace is restored, Lab opens a Launcher, which takes the keyboard focus.
    page.locator(".jp-Launcher").wait_for()
    page.click('.jp-SideBar [data-id="jp-forgather-tb-sidebar"]')
    card = page.locator(f'.jp-ForgatherTB-job[data-job-id="{job["id"]}"]')
    card.get_by_role("button", name="Share").click()
    dialog = page.locator(".jp-Dialog")
    dialog.get_by_text(f"Share TensorBoard {job['label']}").wait_for()
    return dialog


def test_the_share_dialog_shares_a_job_with_a_user_and_a_link_and_revokes_them(
    hub, tokens, olivia, private_job, chromium
):
    job = olivia.launch("logs")
    dialog = open_share_dialog(hub, chromium, "olivia", job)
    access = dialog.get_by_role("list", name="Who has access")
    access.get_by_text("Not shared yet.").wait_for()

    # A name the Hub does not know: the dialog says so, and shares nothing.
    name = dialog.get_by_role("textbox", name="User name")
    name.fill("nobody")
    dialog.get_by_role("button", name="Share", exact=True).click()
    alert = dialog.get_by_role("alert")
    alert.wait_for()
    assert "No such user: nobody" in alert.inner_text()
    assert access.get_by_text("Not shared yet.").count() == 1

    # Share with a user: type the name, press the dialog's Share button.
    name.fill("quinn")
    dialog.get_by_role("button", name="Share", exact=True).click()
    quinn = access.get_by_role("listitem").filter(has_text="quinn")
    quinn.get_by_role("button", name="Revoke").wait_for()
    assert access.get_by_text("Not shared yet.").count() == 0
    assert alert.count() == 0
    # Quinn reads that TensorBoard, and nothing else of olivia's server.
    assert losses(get(hub, job["url"] + SCALARS, tokens["quinn"])) == [1.0, 0.5, 0.25]
    refused = [
        "/user/olivia/lab",
        "/user/olivia/api/contents",
        "/user/olivia/forgather-tb/api/jobs",
        private_job["url"] + SCALARS,
    ]
    answers = {path: get(hub, path, tokens["quinn"]).status_code for path in refused}
    assert {path: status for path, status in answers.items() if status != 403} == {}

    # Share by link for two hours: the dialog shows the link, which rosa accepts.
    dialog.get_by_role("combobox", name="Share with").select_option("link")
    dialog.get_by_role("textbox", name="Hours until it ends (optional)").fill("2")
    dialog.get_by_role("button", name="Share", exact=True).click()
    by_link = access.get_by_role("listitem").filter(has_text="Anyone with the link (until ")
    link = by_link.get_by_role("textbox", name="Link").input_value()
    assert link.startswith(f"{hub.url}/hub/accept-share?code=")
    rosa = hub.login("rosa")
    opened = accept_share_link(hub, rosa, link.removeprefix(hub.url))
    assert opened.status_code == 200 and "<tb-webapp>" in opened.text
    assert urlsplit(opened.url).path == job["url"]
    assert rosa.get(hub.url + private_job["url"] + SCALARS, timeout=30).status_code == 403
    shares = olivia.call("GET", f"jobs/{job['id']}/shares").json()["shares"]
    (by_link_listed,) = [share for share in shares if share["kind"] == "link"]
    assert by_link_listed["visitors"] == ["rosa"] and by_link_listed["expires_at"]

    # Revoke each in the dialog: the viewer's next request is refused.
    quinn.get_by_role("button", name="Revoke").click()
    quinn.wait_for(state="detached")
    assert get(hub, job["url"] + SCALARS, tokens["quinn"]).status_code == 403
    assert losses(rosa.get(hub.url + job["url"] + SCALARS, timeout=30)) == [1.0, 0.5, 0.25]
    by_link.get_by_role("button", name="Revoke").click()
    access.get_by_text("Not shared yet.").wait_for()
    assert rosa.get(hub.url + job["url"] + SCALARS, timeout=30).status_code == 403
    assert olivia.call("GET", f"jobs/{job['id']}/shares").json()["shares"] == []


def test_the_share_dialog_opens_in_its_name_field_and_enter_shares(hub, tokens, olivia, chromium):
    job = olivia.launch("logs")
    dialog = open_share_dialog(hub, chromium, "olivia", job)
    access = dialog.get_by_role("list", name="Who has access")
    access.get_by_text("Not shared yet.").wait_for()
    # As a user would: type the name at once, press Enter.
    dialog.page.keyboard.type("tess")
    dialog.page.keyboard.press("Enter")
    access.get_by_role("listitem").filter(has_text="tess").wait_for()
    assert dialog.get_by_role("textbox", name="User name").input_value() == ""
    assert losses(get(hub, job["url"] + SCALARS, tokens["tess"])) == [1.0, 0.5, 0.25]
    # Escape still closes it, the share kept.
    dialog.page.keyboard.press("Escape")
    dialog.wait_for(state="detached")
    listed = olivia.call("GET", f"jobs/{job['id']}/shares").json()["shares"]
    assert [(share["kind"], share["name"]) for share in listed] == [("user", "tess")]
