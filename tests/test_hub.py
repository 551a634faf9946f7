"""Under a real JupyterHub: its proxy, its login, its OAuth, real single-user servers.

One Hub per module (configurable-http-proxy from npm, a shared-password
authenticator with two users, SimpleLocalProcessSpawner running
``jupyterhub-singleuser`` with our extension on this machine). Run alone with
``pytest -m hub``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
import requests
from conftest import free_port, pid_alive, write_scalars

pytestmark = [pytest.mark.hub, pytest.mark.timeout(300)]

PASSWORD = "a-shared-test-password"
ADMIN_TOKEN = uuid.uuid4().hex
SCALARS = "data/plugin/scalars/scalars?run=run1&tag=loss"


def find_proxy() -> str | None:
    """configurable-http-proxy: on PATH, or where ``make`` installs it (inside the venv)."""
    local = Path(sys.prefix) / "node" / "node_modules" / ".bin"
    return shutil.which("configurable-http-proxy", path=f"{local}{os.pathsep}{os.environ['PATH']}")


HUB_CONFIG = """\
c = get_config()  # noqa
c.JupyterHub.bind_url = "http://127.0.0.1:{port}/"
c.JupyterHub.hub_bind_url = "http://127.0.0.1:{hub_port}"
c.JupyterHub.db_url = "sqlite:///{work}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "{work}/cookie_secret"
c.ConfigurableHTTPProxy.command = [{proxy!r}]
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api_port}"
c.ConfigurableHTTPProxy.pid_file = "{work}/proxy.pid"
c.JupyterHub.authenticator_class = "shared-password"
c.SharedPasswordAuthenticator.user_password = {password!r}
c.Authenticator.allowed_users = {users!r}
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = "{work}/home/{{username}}"
c.Spawner.cmd = [{python!r}, "-m", "jupyterhub.singleuser"]
c.Spawner.args = ["--allow-root", "--ForgatherTB.kill_grace=3"]
# The servers load the lab extension from the test's JUPYTER_PATH too (a worktree's build).
c.Spawner.env_keep.append("JUPYTER_PATH")
# Servers report their activity every second; the Hub does not read the proxy's own
# activity records during the tests, so only what the servers report counts.
c.Spawner.environment = {{"JUPYTERHUB_ACTIVITY_INTERVAL": "1"}}
c.JupyterHub.last_activity_interval = 3600
c.JupyterHub.services = [{{"name": "tests", "api_token": {admin_token!r}}}]
c.JupyterHub.load_roles = [
    {{"name": "tests", "scopes": ["admin:users", "admin:servers", "tokens"],
      "services": ["tests"]}}
]
"""
ALICE_AND_BOB = """
# Bob's server stops TensorBoards after 2 s without a request through their proxy.
def bob_idles_fast(spawner):
    if spawner.user.name == "bob":
        spawner.args = [*spawner.args, "--ForgatherTB.idle_timeout=2"]


c.Spawner.pre_spawn_hook = bob_idles_fast
"""


def _leftovers(work: Path) -> list[int]:
    """Processes still running in the Hub's work directory (its single-user servers)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                if os.readlink(f"/proc/{entry}/cwd").startswith(str(work)):
                    pids.append(int(entry))
            except OSError:
                continue
    return pids


class Hub:
    """A running JupyterHub and helpers to use it as a browser and as an API client."""

    def __init__(self, url: str, work: Path):
        self.url = url.rstrip("/")
        self.work = work

    def api(self, method, path, token=ADMIN_TOKEN, **kwargs):
        """A call to the Hub's REST API."""
        headers = {"Authorization": f"token {token}", **kwargs.pop("headers", {})}
        return requests.request(
            method, f"{self.url}/hub/api/{path}", headers=headers, timeout=30, **kwargs
        )

    def user(self, name) -> dict:
        response = self.api("GET", f"users/{name}")
        assert response.status_code == 200, response.text
        return response.json()

    def start_server(self, name):
        """Start a user's default server from the Hub's API and wait until it is ready."""
        response = self.api("POST", f"users/{name}/server")
        assert response.status_code in (201, 202), response.text
        deadline = time.monotonic() + 60
        while not self.user(name)["servers"].get("", {}).get("ready"):
            assert time.monotonic() < deadline, self.user(name)
            time.sleep(0.2)

    def token(self, name) -> str:
        """A new API token the Hub issues for this user."""
        response = self.api("POST", f"users/{name}/tokens", json={"note": "tests"})
        assert response.status_code == 201, response.text
        return response.json()["token"]

    def login(self, name):
        """A browser session logged in through the Hub's login form."""
        browser = requests.Session()
        form = browser.get(f"{self.url}/hub/login", timeout=30)
        xsrf = re.search(r'name="_xsrf" value="([^"]+)"', form.text).group(1)
        response = browser.post(
            f"{self.url}/hub/login",
            data={"username": name, "password": PASSWORD, "_xsrf": xsrf},
            allow_redirects=False,
            timeout=30,
        )
        assert response.status_code == 302, response.text[:500]
        assert browser.cookies.get("jupyterhub-session-id")
        return browser


@contextlib.contextmanager
def running_hub(work: Path, users: list[str], extra_config: str) -> Iterator[Hub]:
    """A JupyterHub in ``work`` for ``users`` (each with a log directory), stopped at the end."""
    proxy = find_proxy()
    if proxy is None:
        message = "configurable-http-proxy not found: `make install` puts it in the venv"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    port = free_port()
    config = HUB_CONFIG.format(
        port=port,
        hub_port=free_port(),
        proxy_api_port=free_port(),
        work=work,
        proxy=proxy,
        password=PASSWORD,
        python=sys.executable,
        admin_token=ADMIN_TOKEN,
        users=set(users),
    )
    (work / "jupyterhub_config.py").write_text(config + extra_config)
    for name in users:
        write_scalars(work / "home" / name / "logs" / "run1", "loss", [1.0, 0.5, 0.25])
    log = open(work / "jupyterhub.log", "wb")  # noqa: SIM115 (closed at teardown)
    process = subprocess.Popen(
        [sys.executable, "-m", "jupyterhub", "-f", "jupyterhub_config.py"],
        cwd=work,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    running = Hub(f"http://127.0.0.1:{port}", work)
    deadline = time.monotonic() + 90
    while True:
        try:
            if running.api("GET", "").status_code == 200:
                break
        except requests.ConnectionError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail("JupyterHub did not start:\n" + (work / "jupyterhub.log").read_text())
        time.sleep(0.3)
    try:
        yield running
    finally:
        process.send_signal(signal.SIGTERM)  # the Hub stops its servers and its proxy
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        for pid in _leftovers(work):
            os.kill(pid, signal.SIGKILL)
        log.close()


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    with running_hub(tmp_path_factory.mktemp("hub"), ["alice", "bob"], ALICE_AND_BOB) as hub:
        yield hub


@pytest.fixture(scope="module")
def alice_token(hub):
    hub.start_server("alice")
    return hub.token("alice")


@pytest.fixture(scope="module")
def bob_token(hub):
    hub.start_server("bob")
    return hub.token("bob")


def wait_running(get_job, job_id):
    deadline = time.monotonic() + 60
    while (job := get_job(job_id))["status"] != "running":
        assert job["status"] in ("queued", "starting"), job
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
    return job


@pytest.fixture(scope="module")
def alice_job(hub, alice_token):
    """A TensorBoard job of alice's, launched through the Hub's proxy with a Hub token."""
    api = f"{hub.url}/user/alice/forgather-tb/api/jobs"
    auth = {"Authorization": f"token {alice_token}"}
    response = requests.post(api, json={"logdir": "logs"}, headers=auth, timeout=30)
    assert response.status_code == 201, response.text

    def get(job_id):
        return requests.get(f"{api}/{job_id}", headers=auth, timeout=30).json()

    return wait_running(get, response.json()["id"])


@pytest.fixture(scope="module")
def alice_browser(hub, alice_token):
    return hub.login("alice")


def losses(response) -> list[float]:
    assert response.status_code == 200, (response.status_code, response.text[:500])
    return [value for _, _, value in response.json()]


def test_token_launch_serves_real_scalars_under_the_users_prefix(hub, alice_token, alice_job):
    assert alice_job["url"] == f"/user/alice/tb/{alice_job['id']}/"
    auth = {"Authorization": f"token {alice_token}"}
    page = requests.get(hub.url + alice_job["url"], headers=auth, timeout=30)
    assert page.status_code == 200 and "<tb-webapp>" in page.text
    scalars = requests.get(hub.url + alice_job["url"] + SCALARS, headers=auth, timeout=30)
    assert losses(scalars) == [1.0, 0.5, 0.25]


def test_browser_login_and_oauth_reach_tensorboard_and_launch_with_xsrf(
    hub, alice_browser, alice_job
):
    page = alice_browser.get(hub.url + alice_job["url"], timeout=30)
    assert page.status_code == 200 and "<tb-webapp>" in page.text
    visited = [urlsplit(r.url).path for r in page.history]
    assert "/hub/api/oauth2/authorize" in visited
    assert "/user/alice/oauth_callback" in visited
    assert losses(alice_browser.get(hub.url + alice_job["url"] + SCALARS, timeout=30)) == [
        1.0,
        0.5,
        0.25,
    ]

    api = f"{hub.url}/user/alice/forgather-tb/api/jobs"
    body = {"logdir": "logs/run1", "force_new": True}
    refused = alice_browser.post(api, json=body, timeout=30)
    assert refused.status_code == 403  # a cookie alone cannot write: XSRF is required
    xsrf = alice_browser.cookies.get("_xsrf", path="/user/alice/")
    assert xsrf, alice_browser.cookies
    launched = alice_browser.post(api, json=body, headers={"X-XSRFToken": xsrf}, timeout=30)
    assert launched.status_code == 201, launched.text
    job = wait_running(
        lambda job_id: alice_browser.get(f"{api}/{job_id}", timeout=30).json(),
        launched.json()["id"],
    )
    assert job["url"] == f"/user/alice/tb/{job['id']}/"
    scalars = alice_browser.get(
        f"{hub.url}{job['url']}data/plugin/scalars/scalars?run=.&tag=loss", timeout=30
    )
    assert losses(scalars) == [1.0, 0.5, 0.25]


def test_tensorboards_own_post_works_same_origin_only_under_the_hub(hub, alice_browser, alice_job):
    url = hub.url + alice_job["url"] + "data/plugin/timeseries/timeSeries"
    body = "requests=" + quote(json.dumps([{"plugin": "scalars", "tag": "loss", "run": "run1"}]))
    headers = {  # what a browser's fetch() from TensorBoard's page sends
        "Content-Type": "application/x-www-form-urlencoded",
        "X-XSRF-Protected": "1",
        "Sec-Fetch-Mode": "cors",
        "Sec-Fetch-Site": "same-origin",
    }
    response = alice_browser.post(url, data=body, headers={**headers, "Origin": hub.url})
    assert response.status_code == 200, response.text[:500]
    series = response.json()[0]["runToSeries"]["run1"]
    assert [point["value"] for point in series] == [1.0, 0.5, 0.25]
    cross = {**headers, "Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}
    refused = alice_browser.post(url, data=body, headers=cross, allow_redirects=False)
    assert refused.status_code == 403
    assert "runToSeries" not in refused.text


def test_lab_may_frame_tensorboard_where_the_hub_forbids_framing_jupyter(
    hub, alice_token, alice_job
):
    auth = {"Authorization": f"token {alice_token}"}
    jupyter = requests.get(f"{hub.url}/user/alice/api/status", headers=auth, timeout=30)
    assert "frame-ancestors 'none'" in jupyter.headers["Content-Security-Policy"]
    page = requests.get(hub.url + alice_job["url"], headers=auth, timeout=30)
    assert page.status_code == 200
    # The Hub's proxy joins the two headers into one: a comma separates policies.
    values = page.raw.headers.getlist("Content-Security-Policy")
    policies = [policy.strip() for value in values for policy in value.split(",")]
    framing = [policy for policy in policies if "frame-ancestors" in policy]
    # Same origin only: Lab's tab, not another site, and not 'none' (no tab at all).
    assert len(framing) == 1 and framing[0].startswith("frame-ancestors 'self'"), policies
    assert "'none'" not in framing[0]


def test_another_user_gets_nothing_of_alices(hub, alice_job, bob_token):
    bob = hub.login("bob")
    tb = hub.url + alice_job["url"] + SCALARS
    # Bob's browser is sent through the Hub's OAuth, which refuses him alice's server.
    response = bob.get(tb, timeout=30)
    assert response.status_code == 403
    assert urlsplit(response.url).path == "/hub/api/oauth2/authorize"
    assert "0.25" not in response.text
    auth = {"Authorization": f"token {bob_token}"}
    with_token = requests.get(tb, headers=auth, allow_redirects=False, timeout=30)
    assert with_token.status_code == 403
    assert "0.25" not in with_token.text
    api = f"{hub.url}/user/alice/forgather-tb/api/jobs"
    assert requests.get(api, headers=auth, timeout=30).status_code == 403
    launch = requests.post(api, json={"logdir": "logs"}, headers=auth, timeout=30)
    assert launch.status_code == 403
    kill = requests.delete(f"{api}/{alice_job['id']}", headers=auth, timeout=30)
    assert kill.status_code == 403
    # Bob's own server is no way in either: it does not know alice's job.
    own = requests.get(f"{hub.url}/user/bob/tb/{alice_job['id']}/", headers=auth, timeout=30)
    assert own.status_code == 404


async def _execute(ws_url: str, token: str, code: str) -> list[dict]:
    """Run code in a kernel over Jupyter's websocket; the messages it produced."""
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    request = HTTPRequest(ws_url, headers={"Authorization": f"token {token}"})
    connection = await websocket_connect(request)
    msg_id = uuid.uuid4().hex
    header = {
        "msg_id": msg_id,
        "msg_type": "execute_request",
        "session": uuid.uuid4().hex,
        "username": "tests",
        "version": "5.3",
        "date": datetime.now(UTC).isoformat(),
    }
    content = {"code": code, "silent": False, "store_history": False, "allow_stdin": False}
    await connection.write_message(
        json.dumps(
            {
                "header": header,
                "parent_header": {},
                "metadata": {},
                "content": {**content, "user_expressions": {}, "stop_on_error": True},
                "channel": "shell",
                "buffers": [],
            }
        )
    )
    replies, idle, done = [], False, False
    while not (idle and done):
        message = json.loads(await asyncio.wait_for(connection.read_message(), 120))
        if message["parent_header"].get("msg_id") != msg_id:
            continue
        replies.append(message)
        state = message["content"].get("execution_state")
        idle = idle or (message["msg_type"] == "status" and state == "idle")
        done = done or message["msg_type"] == "execute_reply"
    connection.close()
    return replies


def test_magic_in_a_kernel_of_alices_server_shows_tensorboard_under_her_prefix(
    hub, alice_token, alice_job
):
    base = f"{hub.url}/user/alice/"
    auth = {"Authorization": f"token {alice_token}"}
    kernel = requests.post(base + "api/kernels", json={}, headers=auth, timeout=60).json()
    try:
        ws_url = base.replace("http://", "ws://") + f"api/kernels/{kernel['id']}/channels"
        code = "%load_ext jupyter_forgather_tb\n%forgather_tb --logdir logs"
        messages = asyncio.run(_execute(ws_url, alice_token, code))
    finally:
        requests.delete(base + f"api/kernels/{kernel['id']}", headers=auth, timeout=60)
    (reply,) = [m for m in messages if m["msg_type"] == "execute_reply"]
    errors = [m["content"] for m in messages if m["msg_type"] in ("error", "stream")]
    assert reply["content"]["status"] == "ok", errors
    html = [
        m["content"]["data"].get("text/html", "")
        for m in messages
        if m["msg_type"] in ("display_data", "update_display_data")
    ]
    frames = [re.search(r'<iframe[^>]* src="([^"]+)"', h) for h in html]
    sources = [f.group(1) for f in frames if f]
    # The kernel found its server from the Hub's environment, and reused alice's job. The
    # live view is shown, then updated in place with its snapshot: both frames are hers.
    assert sources and set(sources) == {f"/user/alice/tb/{alice_job['id']}/"}, html
    # The plain-text URL is the path to open on the Hub's address (no public_url is
    # configured), not the single-user server's own address.
    plain = [
        m["content"]["data"]["text/plain"] for m in messages if m["msg_type"] == "display_data"
    ]
    expected = (
        f"TensorBoard logs is running at /user/alice/tb/{alice_job['id']}/ (reused a live job)"
    )
    assert plain[-1] == expected


def server_activity(hub, name) -> datetime:
    stamp = hub.user(name)["servers"][""]["last_activity"]
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def wait_activity(hub, name, after: datetime, seconds: float) -> datetime:
    """The server's last activity as the Hub has it, once later than ``after`` (or at the end)."""
    deadline = time.monotonic() + seconds
    while (seen := server_activity(hub, name)) <= after and time.monotonic() < deadline:
        time.sleep(0.25)
    return seen


def settled_activity(hub, name, quiet_for=3.0, within=30.0) -> datetime:
    """The server's last activity as the Hub has it, once unchanged for ``quiet_for`` s."""
    deadline = time.monotonic() + within
    seen, since = server_activity(hub, name), time.monotonic()
    while time.monotonic() - since < quiet_for:
        assert time.monotonic() < deadline, f"{name}'s server never stopped being active"
        time.sleep(0.25)
        if (latest := server_activity(hub, name)) != seen:
            seen, since = latest, time.monotonic()
    return seen


def test_tensorboard_traffic_alone_keeps_the_server_active_for_the_hub(
    hub, alice_browser, alice_job
):
    quiet = settled_activity(hub, "alice")
    before_traffic = datetime.now(UTC)
    for _ in range(3):
        assert alice_browser.get(hub.url + alice_job["url"] + SCALARS, timeout=30).ok
    seen = wait_activity(hub, "alice", quiet, 15)
    assert seen > quiet
    assert seen >= before_traffic


def test_idle_timeout_still_stops_unwatched_jobs_of_an_active_server(hub, bob_token):
    api = f"{hub.url}/user/bob/forgather-tb/api/jobs"
    auth = {"Authorization": f"token {bob_token}"}

    def get(job_id):
        return requests.get(f"{api}/{job_id}", headers=auth, timeout=30).json()

    def launch(logdir):
        response = requests.post(api, json={"logdir": logdir}, headers=auth, timeout=30)
        assert response.status_code == 201, response.text
        return wait_running(get, response.json()["id"])

    watched, unwatched = launch("logs/run1"), launch("logs")
    before = server_activity(hub, "bob")
    deadline = time.monotonic() + 15
    while get(unwatched["id"])["status"] == "running":
        assert time.monotonic() < deadline, get(unwatched["id"])
        page = requests.get(hub.url + watched["url"] + "data/environment", headers=auth, timeout=30)
        assert page.status_code == 200
        time.sleep(0.3)
    stopped = get(unwatched["id"])
    assert stopped["status"] == "killed" and "without requests" in stopped["error"]
    assert get(watched["id"])["status"] == "running"
    assert wait_activity(hub, "bob", before, 10) > before  # the server itself stays active


def test_stopping_the_server_from_the_hub_stops_its_tensorboards(hub, alice_token):
    api = f"{hub.url}/user/alice/forgather-tb/api/jobs"
    jobs = requests.get(api, headers={"Authorization": f"token {alice_token}"}, timeout=30)
    pids = [job["pid"] for job in jobs.json() if job["status"] == "running"]
    assert len(pids) >= 2 and all(pid_alive(pid) for pid in pids)
    response = hub.api("DELETE", "users/alice/server")
    assert response.status_code in (202, 204), response.text
    deadline = time.monotonic() + 60
    while hub.user("alice")["servers"]:
        assert time.monotonic() < deadline, hub.user("alice")
        time.sleep(0.2)
    deadline = time.monotonic() + 10
    while any(pid_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in pids if pid_alive(pid)]
