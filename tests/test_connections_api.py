"""Named connections on the REST surface: chosen per launch, listed without their secrets."""

from __future__ import annotations

import json

import pytest

CONNECTIONS = {
    "minio": {
        "protocol": "s3",
        "endpoint_url": "http://127.0.0.1:9/",
        "region": "eu-west-1",
        "key": "AKIDEXAMPLE",
        "secret": "super-secret-value",
    },
    "cluster": {"protocol": "ssh", "host": "login1", "port": 2222, "username": "me"},
    "blobs": {"protocol": "az", "connection_string": "AccountKey=c2VjcmV0;", "anon": False},
}
SECRETS = ("AKIDEXAMPLE", "super-secret-value", "AccountKey=c2VjcmV0;")


@pytest.mark.tb_config(connections=CONNECTIONS)
async def test_connections_are_listed_by_name_without_their_secrets(api):
    response = await api.call("GET", "connections", expect=200)
    for secret in SECRETS:
        assert secret not in response.body.decode()
    assert json.loads(response.body) == {
        "connections": [
            {"name": "blobs", "protocol": "az", "settings": {"anon": False}},
            {
                "name": "cluster",
                "protocol": "ssh",
                "settings": {"host": "login1", "port": 2222, "username": "me"},
            },
            {
                "name": "minio",
                "protocol": "s3",
                "settings": {"endpoint_url": "http://127.0.0.1:9/", "region": "eu-west-1"},
            },
        ]
    }


async def test_a_server_without_connections_lists_none(api):
    assert await api.json("GET", "connections", expect=200) == {"connections": []}


@pytest.mark.tb_config(connections=CONNECTIONS)
async def test_a_launch_naming_an_unknown_connection_is_refused_naming_the_configured_ones(api):
    answer = await api.launch(expect=400, logdir="s3://bucket/runs", connection="nope")
    assert answer["field"] == "connection"
    assert answer["message"] == (
        "connection: no connection named 'nope' on this server (configured: blobs, cluster, minio)"
    )
    assert await api.json("GET", "jobs") == []


async def test_a_connection_on_a_server_without_any_says_none_are_configured(api):
    answer = await api.launch(expect=400, logdir="s3://bucket/runs", connection="minio")
    assert answer["message"].endswith("(none are configured)")


@pytest.mark.tb_config(connections=CONNECTIONS)
async def test_a_connection_of_another_protocol_than_the_url_is_refused(api):
    answer = await api.launch(expect=400, logdir="gs://bucket/runs", connection="minio")
    assert answer == {
        "message": "connection: connection 'minio' is for s3:// sources, not gs://",
        "field": "connection",
    }
    answer = await api.launch(expect=400, logdir="ssh://login1/runs", connection="blobs")
    assert "'blobs' is for az:// sources, not ssh://" in answer["message"]


@pytest.mark.tb_config(connections=CONNECTIONS)
async def test_a_connection_with_a_local_log_directory_is_refused(api, logdir):
    answer = await api.launch(expect=400, logdir="logs", connection="minio")
    assert answer["message"] == "connection: applies only to remote log directories"


@pytest.mark.tb_config(connections=CONNECTIONS)
async def test_a_launch_with_a_matching_connection_is_accepted_and_shows_its_name(api):
    job = await api.launch(logdir="ssh://login1/runs", connection="cluster")
    assert job["options"]["connection"] == "cluster"
    for secret in SECRETS:
        assert secret not in json.dumps(job)
    await api.kill(job["id"])
