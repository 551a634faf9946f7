"""Sharing one TensorBoard job on a real JupyterHub: the viewer gets that job and nothing else.

One Hub for the module (as tests/test_hub.py starts it): olivia owns the jobs,
victor is shared one, otto is shared nothing, gina is in the group "team", lena
accepts a share link, ada is a Hub admin named in the authorizer's configuration,
and paul's server runs JupyterHub's plain authorizer. Run alone with ``pytest -m hub``.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
import requests
from test_hub import SCALARS, losses, running_hub, wait_running

pytestmark = [pytest.mark.hub, pytest.mark.timeout(300)]

AUTHORIZER = "jupyter_forgather_tb.server.sharing.authorizer.ShareAuthorizer"
SHARING = f"""
c.Authenticator.admin_users = {{"ada"}}
c.JupyterHub.load_groups = {{"team": {{"users": ["gina"]}}}}
c.JupyterHub.load_roles = [
    *c.JupyterHub.load_roles,
    {{"name": "user", "scopes": ["self", "shares!user", "read:users:name",
                                 "read:groups:name", "read:users:shares!user"]}},
]
c.Spawner.server_token_scopes = [
    "users:activity!user", "access:servers!server", "shares!user", "read:users:name",
    "read:groups:name", "read:users:shares!user",
]


def share_authorizer(spawner):
    if spawner.user.name != "paul":
        spawner.args = [
            *spawner.args,
            "--ServerApp.authorizer_class={AUTHORIZER}",
            "--ShareAuthorizer.full_access_users=ada",
        ]


c.Spawner.pre_spawn_hook = share_authorizer
"""
USERS = ["olivia", "victor", "otto", "gina", "lena", "ada", "paul"]


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    with running_hub(tmp_path_factory.mktemp("hub-sharing"), USERS, SHARING) as hub:
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


def test_sharing_is_refused_under_jupyterhubs_plain_authorizer(hub, tokens):
    hub.start_server("paul")
    paul = Owner(hub, tokens["paul"], "paul")
    job = paul.launch("logs")
    response = paul.call("POST", f"jobs/{job['id']}/shares", json={"user": "victor"})
    assert response.status_code == 409
    assert "authorizer" in response.json()["message"]
    assert get(hub, job["url"], tokens["victor"]).status_code == 403
    listed = paul.call("GET", f"jobs/{job['id']}/shares").json()
    assert listed["enabled"] is False and listed["shares"] == []
