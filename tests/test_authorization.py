"""Jupyter's authorizer governs every route of the extension, with the right action."""

from __future__ import annotations

import json

import pytest
from tornado.httpclient import HTTPClientError

RESOURCE = "forgather_tb"
ALL_ACTIONS = ["read", "write", "execute"]


@pytest.fixture
def jp_server_auth_resources(jp_server_auth_core_resources):
    return {
        **jp_server_auth_core_resources,
        "/forgather-tb/api/.*": RESOURCE,
        "/tb/.*": RESOURCE,
    }


@pytest.fixture
def jp_server_config(jp_server_config, jp_server_authorizer):
    # The test authorizer raises (a 500) if a handler asks for the wrong action or resource.
    jp_server_authorizer.permissions = {"actions": ALL_ACTIONS, "resources": [RESOURCE]}
    return {
        **jp_server_config,
        "ServerApp": {**jp_server_config["ServerApp"], "authorizer_class": jp_server_authorizer},
    }


def grant(serverapp, *actions):
    type(serverapp.authorizer).permissions = {"actions": list(actions), "resources": [RESOURCE]}


async def codes(api, jp_ws_fetch, job_id):
    """Status of one request to every route of the extension."""
    calls = {
        "list": ("GET", ("jobs",), None),
        "launch": ("POST", ("jobs",), {"logdir": "logs/run1"}),
        "get": ("GET", ("jobs", job_id), None),
        "output": ("GET", ("jobs", job_id, "output"), None),
        "logdirs": ("GET", ("logdirs",), None),
        "connections": ("GET", ("connections",), None),
    }
    result = {}
    for name, (method, path, body) in calls.items():
        result[name] = (await api.call(method, *path, body=body)).code
    result["proxy"] = (await api.proxied(job_id, "data/environment")).code
    result["proxy_post"] = (
        await api.proxied(
            job_id, "data/plugin/timeseries/timeSeries", method="POST", body="requests=[]"
        )
    ).code
    result["redirect"] = (
        await api.fetch("tb", job_id, follow_redirects=False, raise_error=False)
    ).code
    try:
        connection = await jp_ws_fetch("tb", f"{job_id}/")
        connection.close()
        result["websocket"] = 101
    except HTTPClientError as error:
        result["websocket"] = error.code
    result["delete"] = (await api.call("DELETE", "jobs", job_id)).code
    return result


async def test_every_route_is_refused_without_permission(api, jp_ws_fetch, logdir):
    job = await api.launch(logdir="logs")
    await api.wait_status(job["id"], "running")
    grant(api.serverapp)  # nothing
    refused = await codes(api, jp_ws_fetch, job["id"])
    assert refused == dict.fromkeys(refused, 403)
    grant(api.serverapp, *ALL_ACTIONS)
    assert (await api.job(job["id"]))["status"] == "running"


async def test_read_only_users_can_list_but_not_launch_kill_or_open(api, jp_ws_fetch, logdir):
    job = await api.launch(logdir="logs")
    await api.wait_status(job["id"], "running")
    grant(api.serverapp, "read")
    result = await codes(api, jp_ws_fetch, job["id"])
    assert result["list"] == result["get"] == result["output"] == result["logdirs"] == 200
    assert result["connections"] == 200
    assert result["redirect"] == 302
    assert result["launch"] == result["delete"] == 403
    # Reaching a running TensorBoard is "execute", as for kernels and terminals.
    assert result["proxy"] == result["proxy_post"] == result["websocket"] == 403


async def test_full_permission_passes_the_authorizers_action_checks(api, jp_ws_fetch, logdir):
    job = await api.launch(logdir="logs")
    await api.wait_status(job["id"], "running")
    result = await codes(api, jp_ws_fetch, job["id"])
    # A wrong action or resource would have made the test authorizer raise: a 500.
    assert 500 not in result.values()
    assert result["list"] == result["get"] == result["proxy"] == result["delete"] == 200
    assert result["launch"] == 201
    assert json.loads((await api.call("GET", "jobs")).body)


@pytest.mark.tb_config(suspend_after=2)
async def test_only_a_logged_in_and_authorized_request_wakes_a_suspended_job(
    api, jp_ws_fetch, logdir, jp_http_port, jp_base_url
):
    from tornado.httpclient import AsyncHTTPClient

    job = await api.launch(logdir="logs")
    await api.wait_status(job["id"], "running")
    await api.wait_status(job["id"], "suspended", timeout=30)
    anonymous = await AsyncHTTPClient().fetch(
        f"http://127.0.0.1:{jp_http_port}{jp_base_url}tb/{job['id']}/data/environment",
        follow_redirects=False,
        raise_error=False,
    )
    assert anonymous.code == 302  # to the login page
    with pytest.raises(HTTPClientError) as anonymous_websocket:
        await jp_ws_fetch("tb", f"{job['id']}/", headers={"Authorization": ""})
    assert anonymous_websocket.value.code == 403
    grant(api.serverapp, "read")
    assert (await api.proxied(job["id"], "data/environment")).code == 403
    with pytest.raises(HTTPClientError) as unauthorized_websocket:
        await jp_ws_fetch("tb", f"{job['id']}/")
    assert unauthorized_websocket.value.code == 403
    assert (await api.call("POST", "jobs", job["id"], "resume")).code == 403
    grant(api.serverapp, *ALL_ACTIONS)
    still = await api.job(job["id"])
    assert still["status"] == "suspended" and still["wakes"] == 0
    assert (await api.proxied(job["id"], "data/environment")).code == 200
    assert (await api.job(job["id"]))["wakes"] == 1
