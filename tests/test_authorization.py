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
