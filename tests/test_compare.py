"""Compare jobs: runs from several folders in one TensorBoard, as ``name/run``."""

from __future__ import annotations

import asyncio
import json
import os
import stat

import pytest
from conftest import write_scalars
from test_dirchecks import until_exists_is


@pytest.fixture
def two_folders(jp_root_dir):
    """Two experiments in folders under different parents, a run in each."""
    first = write_scalars(jp_root_dir / "projects" / "alpha" / "runs" / "lr1", "loss", [1.0, 0.5])
    second = write_scalars(jp_root_dir / "scratch" / "beta" / "lr2", "loss", [2.0, 1.0, 0.5])
    return first.parent, second.parent


async def runs_served(api, job_id):
    response = await api.proxied(job_id, "data/runs")
    assert response.code == 200, response.body[:300]
    return sorted(json.loads(response.body))


async def scalars(api, job_id, run):
    response = await api.proxied(
        job_id, "data/plugin/scalars/scalars", params={"run": run, "tag": "loss"}
    )
    assert response.code == 200, response.body[:300]
    return [(step, value) for _, step, value in json.loads(response.body)]


async def wait_runs(api, job_id, expected, tries=100):
    for _ in range(tries):
        if await runs_served(api, job_id) == expected:
            return
        await asyncio.sleep(0.1)
    assert await runs_served(api, job_id) == expected


@pytest.mark.parametrize("load_fast", ["auto", "false"])
async def test_a_compare_job_serves_each_folders_runs_under_its_name(api, two_folders, load_fast):
    first, second = two_folders
    job = await api.launch(
        logdirs={"base": "projects/alpha/runs", "tuned": str(second)}, load_fast=load_fast
    )
    assert job["logdirs"] == {"base": str(first), "tuned": str(second)}
    assert job["options"]["logdirs"] == job["logdirs"]
    assert job["options"]["logdir"] == f"base={first}, tuned={second}"
    assert job["label"] == "compare: base, tuned"
    job = await api.wait_status(job["id"], "running")
    if load_fast == "auto":
        assert job["loader"]["name"] == "rust"  # the fast loader, which --logdir_spec is not
    await wait_runs(api, job["id"], ["base/lr1", "tuned/lr2"])
    assert await scalars(api, job["id"], "base/lr1") == [(0, 1.0), (1, 0.5)]
    assert await scalars(api, job["id"], "tuned/lr2") == [(0, 2.0), (1, 1.0), (2, 0.5)]
    await until_exists_is(api, job["id"], True)  # every folder, as last checked
    await api.kill(job["id"])


async def test_a_list_of_folders_is_named_after_them_made_unique(api, jp_root_dir):
    write_scalars(jp_root_dir / "a" / "runs" / "x", "loss", [1.0])
    write_scalars(jp_root_dir / "b" / "runs" / "y", "loss", [1.0])
    write_scalars(jp_root_dir / "c" / "other" / "z", "loss", [1.0])
    job = await api.launch(logdirs=["a/runs", "b/runs/", "c/other"])
    assert list(job["logdirs"]) == ["other", "runs", "runs-2"]
    assert job["logdirs"]["runs-2"] == str(jp_root_dir / "b" / "runs")
    await api.wait_status(job["id"], "running")
    await wait_runs(api, job["id"], ["other/z", "runs-2/y", "runs/x"])
    await api.kill(job["id"])


async def test_the_same_folders_in_another_order_reuse_the_job(api, two_folders):
    first, second = two_folders
    job = await api.launch(logdirs={"a": str(first), "b": str(second)})
    again = await api.launch(expect=200, logdirs={"b": "scratch/beta", "a": str(first)})
    assert again["reused"] and again["id"] == job["id"]
    other_names = await api.launch(logdirs={"x": str(first), "y": str(second)})
    assert other_names["id"] != job["id"]  # other names: TensorBoard shows other runs
    for launched in (job, other_names):
        await api.kill(launched["id"])


async def test_the_folder_of_links_is_private_and_goes_when_the_job_ends(api, two_folders):
    first, second = two_folders
    job = await api.launch(logdirs={"a": str(first), "b": str(second)})
    await api.wait_status(job["id"], "running")
    tree = api.serverapp.web_app.settings["forgather_tb_manager"].get(job["id"]).logdir_tree
    assert stat.S_IMODE(os.stat(tree).st_mode) == 0o700
    assert sorted(os.listdir(tree)) == ["a", "b"]
    assert os.readlink(os.path.join(tree, "a")) == str(first)
    await api.kill(job["id"])
    assert not os.path.exists(tree)
    assert os.path.isdir(first) and os.path.isdir(second)  # what the links led to stays


async def test_a_compare_jobs_activity_covers_every_folder(api, two_folders):
    first, second = two_folders
    job = await api.launch(logdirs={"a": str(first), "b": str(second)})
    for _ in range(200):
        activity = (await api.job(job["id"]))["activity"]
        if activity is not None:
            break
        await asyncio.sleep(0.1)
    assert activity["runs"] == 2 and activity["event_files"] == 2
    await api.kill(job["id"])


async def test_a_compare_job_can_be_relaunched(api, two_folders):
    first, second = two_folders
    job = await api.launch(logdirs={"a": str(first), "b": str(second)})
    await api.kill(job["id"])
    again = await api.json("POST", "jobs", job["id"], "relaunch", expect=201)
    assert again["logdirs"] == job["logdirs"]
    await api.wait_status(again["id"], "running")
    await wait_runs(api, again["id"], ["a/lr1", "b/lr2"])
    await api.kill(again["id"])


@pytest.mark.parametrize(
    ("logdirs", "words"),
    [
        ({}, "at least one folder"),
        ([], "at least one folder"),
        ({"a": "/"}, "outside the directories"),
        ({"a": "../.."}, "outside the directories"),
        ({"a": "link-out"}, "outside the directories"),
        ({"a": "projects/alpha/runs", "b": "missing"}, "not an existing directory"),
        ({"a": "projects/alpha/runs", "b": "projects/alpha/runs/"}, "the same folder"),
        ({"a": "odd,name"}, "comma or colon"),
        ({"a": "odd:name"}, "comma or colon"),
        ({"a:b": "projects/alpha/runs"}, "comma, colon"),
        ({"a,b": "projects/alpha/runs"}, "comma, colon"),
        ({"a/b": "projects/alpha/runs"}, "comma, colon"),
        ({"a=b": "projects/alpha/runs"}, "comma, colon"),
        ({"": "projects/alpha/runs"}, "not blank"),
        ({".hidden": "projects/alpha/runs"}, "must not start with '.'"),
        ({"..": "projects/alpha/runs"}, "must not start with '.'"),
        ({"a": "s3://bucket/runs"}, "cannot be compared"),
        ({"a": "gs://bucket/runs"}, "cannot be compared"),
        ({"a": 3}, "string path"),
        (["odd:name"], "comma or colon"),
        ("projects", "object"),
        ({f"n{i}": "projects" for i in range(33)}, "at most 32"),
    ],
)
async def test_bad_folders_are_refused_with_a_clear_message(
    api, two_folders, jp_root_dir, tmp_path, logdirs, words
):
    (jp_root_dir / "odd,name").mkdir()
    (jp_root_dir / "odd:name").mkdir()
    os.symlink(tmp_path, jp_root_dir / "link-out")
    response = await api.call("POST", "jobs", body={"logdirs": logdirs}, expect=400)
    error = json.loads(response.body)
    assert error["field"] == "logdirs"
    assert words in error["message"], error["message"]
    assert await api.json("GET", "jobs") == []


async def test_a_name_given_twice_is_refused(api, two_folders):
    body = '{"logdirs": {"a": "projects/alpha/runs", "a": "scratch/beta"}}'
    response = await api.call("POST", "jobs", body=body, expect=400)
    assert "'a' twice" in json.loads(response.body)["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"logdir": "projects", "logdirs": {"a": "projects"}}, "logdirs"),
        ({}, "logdir"),
        ({"logdir": None, "logdirs": None}, "logdir"),
    ],
)
async def test_exactly_one_of_logdir_and_logdirs_is_given(api, two_folders, body, field):
    response = await api.call("POST", "jobs", body=body, expect=400)
    assert json.loads(response.body)["field"] == field
