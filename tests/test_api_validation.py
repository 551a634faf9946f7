"""Bad launch requests get a clear JSON 4xx naming the field, and start nothing."""

from __future__ import annotations

import json
import os

import pytest

from jupyter_forgather_tb.server.jobs import errors
from jupyter_forgather_tb.server.web.handlers import error_status
from jupyter_forgather_tb.server.web.preview import AnswerTooLarge

BAD_FIELDS = [
    ({}, "logdir"),
    ({"logdir": 5}, "logdir"),
    ({"logdir": ""}, "logdir"),
    ({"logdir": "x" * 5000}, "logdir"),
    ({"logdir": "logs\x00"}, "logdir"),
    ({"logdir": "logs\nrun"}, "logdir"),
    ({"logdir": "missing"}, "logdir"),
    ({"logdir": "../.."}, "logdir"),
    ({"logdir": "/etc"}, "logdir"),
    ({"logdir": "/proc/self"}, "logdir"),
    ({"logdir": "http://127.0.0.1:1/"}, "logdir"),
    ({"logdir": "file:///etc"}, "logdir"),
    ({"logdir": "simplecache::s3://bucket/x"}, "logdir"),
    ({"logdir": "logs", "port": 80}, "port"),
    ({"logdir": "logs", "port": "6006"}, "port"),
    ({"logdir": "logs", "port": True}, "port"),
    ({"logdir": "logs", "priority": "high"}, "priority"),
    ({"logdir": "logs", "bind_all": "yes"}, "bind_all"),
    ({"logdir": "logs", "port": 7000, "host": "10.1.2.3"}, "host"),
    ({"logdir": "logs", "host": "not a host"}, "host"),
    ({"logdir": "logs", "window_title": "a\x07b"}, "window_title"),
    ({"logdir": "logs", "window_title": "t" * 201}, "window_title"),
    ({"logdir": "logs", "reload_interval": "5"}, "reload_interval"),
    ({"logdir": "logs", "reload_interval": -1}, "reload_interval"),
    ({"logdir": "logs", "reload_interval": True}, "reload_interval"),
    ({"logdir": "logs", "reload_interval": 1e12}, "reload_interval"),
    ({"logdir": "logs", "reload_multifile": 1}, "reload_multifile"),
    ({"logdir": "logs", "samples_per_plugin": "scalars=-1"}, "samples_per_plugin"),
    ({"logdir": "logs", "samples_per_plugin": "scalars=1,--bind_all"}, "samples_per_plugin"),
    ({"logdir": "logs", "load_fast": "yes"}, "load_fast"),
    ({"logdir": "logs", "force_new": "true"}, "force_new"),
    ({"logdir": "logs", "extra_flags": "--bind_all"}, "extra_flags"),
]


@pytest.mark.parametrize(("body", "field"), BAD_FIELDS)
async def test_bad_field_is_400_naming_it_and_starts_nothing(api, logdir, body, field):
    response = await api.call("POST", "jobs", body=body)
    assert response.code == 400
    error = json.loads(response.body)
    assert error["field"] == field
    assert error["message"].startswith(f"{field}: ")
    assert "Traceback" not in response.body.decode()
    assert await api.json("GET", "jobs") == []


async def test_symlink_out_of_the_root_and_sibling_prefix_are_refused(api, logdir, jp_root_dir):
    outside = jp_root_dir.parent / f"{jp_root_dir.name}2"
    outside.mkdir()
    os.symlink(outside, jp_root_dir / "escape")
    for value in ("escape", str(outside)):
        response = await api.call("POST", "jobs", body={"logdir": value})
        assert response.code == 400
        assert "outside" in json.loads(response.body)["message"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{not json", 400),
        (b"\xff\xfe{}", 400),
        (b"[1, 2]", 400),
        (b'"logs"', 400),
        (b"", 400),
        (b'{"logdir": "' + b"a" * 70000 + b'"}', 413),
    ],
)
async def test_malformed_bodies_get_json_errors_not_500(api, logdir, body, status):
    response = await api.call("POST", "jobs", body=body)
    assert response.code == status
    assert json.loads(response.body)["message"]


async def test_a_symlink_inside_the_root_launches_with_its_real_path(api, logdir, jp_root_dir):
    os.symlink(logdir, jp_root_dir / "alias")
    job = await api.launch(logdir="alias")
    assert job["options"]["logdir"] == str(logdir)
    assert job["label"] == "logs"


@pytest.mark.parametrize(
    "fork_server",
    [
        pytest.param(True, marks=pytest.mark.tb_config(fork_server=True)),
        pytest.param(False, marks=pytest.mark.tb_config(fork_server=False)),
    ],
)
async def test_title_that_looks_like_a_flag_stays_one_argument(api, logdir, fork_server):
    job = await api.launch(logdir="logs", window_title="--bind_all <b>x</b>")
    job = await api.wait_status(job["id"], "running")
    assert job["options"]["bind_all"] is False
    assert job["transport"] == "unix"
    # TensorBoard itself took the whole title as its window title.
    environment = await api.proxied(job["id"], "data/environment")
    assert json.loads(environment.body)["window_title"] == "--bind_all <b>x</b>"
    if not fork_server:  # a forked job's /proc cmdline is the fork server's
        with open(f"/proc/{job['pid']}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
        assert b"--window_title=--bind_all <b>x</b>" in argv
        assert b"--bind_all" not in argv


@pytest.fixture
def other_root(tb_config, tmp_path):
    root = tmp_path / "shared-runs"
    (root / "exp").mkdir(parents=True)
    tb_config["allowed_roots"] = [str(root)]
    return root


async def test_configured_allowed_roots_replace_the_server_root(other_root, api, jp_root_dir):
    (jp_root_dir / "local").mkdir()
    job = await api.launch(logdir=str(other_root / "exp"))
    assert job["options"]["logdir"] == str(other_root / "exp")
    refused = await api.call("POST", "jobs", body={"logdir": "local"})
    assert refused.code == 400


NOT_OBJECTS = [
    (b"null", "null"),
    (b"[]", "an array"),
    (b"[1, 2]", "an array"),
    (b"42", "a number"),
    (b"-1.5e3", "a number"),
    (b'"logs"', "a string"),
    (b"true", "a boolean"),
    (b"false", "a boolean"),
]


@pytest.mark.parametrize(("body", "kind"), NOT_OBJECTS)
async def test_a_launch_body_that_is_not_an_object_is_400_saying_what_it_is(
    api, logdir, body, kind
):
    response = await api.call("POST", "jobs", body=body)
    assert response.code == 400, response.body
    error = json.loads(response.body)
    assert error["message"] == f"the request body must be a JSON object, not {kind}"
    assert error["field"] == "body"
    assert await api.json("GET", "jobs") == []


@pytest.mark.parametrize(("body", "kind"), NOT_OBJECTS)
async def test_a_relaunch_body_that_is_not_an_object_is_400_saying_what_it_is(
    api, logdir, body, kind
):
    ended = await api.kill((await api.launch(logdir="logs"))["id"])
    response = await api.call("POST", "jobs", ended["id"], "relaunch", body=body)
    assert response.code == 400, response.body
    error = json.loads(response.body)
    assert error["message"] == f"the request body must be a JSON object, not {kind}"
    assert error["field"] == "body"
    assert len(await api.json("GET", "jobs")) == 1  # nothing relaunched


@pytest.mark.parametrize("body", [b"null", b"[]", b"42", b'"x"', b"true", b"{}", b"", b"{bad"])
async def test_a_relaunch_of_an_unknown_job_is_404_whatever_the_body(api, body):
    response = await api.call("POST", "jobs", "nope", "relaunch", body=body)
    assert response.code == 404, response.body
    assert "no TensorBoard job" in json.loads(response.body)["message"]


@pytest.mark.parametrize("route", [("jobs",), ("jobs", "{id}", "relaunch")])
async def test_a_body_that_is_not_utf8_is_400_not_500(api, logdir, route):
    ended = await api.kill((await api.launch(logdir="logs"))["id"])
    path = [ended["id"] if part == "{id}" else part for part in route]
    response = await api.call("POST", *path, body=b'{"logdir": "\xff"}')
    assert response.code == 400, response.body
    assert "UTF-8" in json.loads(response.body)["message"]


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (errors.BackendFailed("x"), 502),
        (AnswerTooLarge("x"), 502),  # a subclass answers as its base
        (errors.BackendTimeout("x"), 504),
        (errors.JobNotFound("x"), 404),
        (errors.ManagerError("x"), 400),
    ],
)
def test_a_manager_error_answers_with_its_nearest_class_status(error, status):
    assert error_status(error) == status
