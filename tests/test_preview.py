"""A job's scalar preview, asked of its own TensorBoard through the server."""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import socket
import threading

import pytest
from conftest import write_scalars

from jupyter_forgather_tb.server.web import preview as preview_module
from jupyter_forgather_tb.server.web.preview import MAX_POINTS, MAX_RUNS, default_tag, downsample


async def preview(api, job_id, expect=200, **params):
    response = await api.call("GET", "jobs", job_id, "preview", params=params or None)
    assert response.code == expect, response.body[:500]
    return json.loads(response.body)


@pytest.fixture
def curves(jp_root_dir):
    """Two runs: 250 points of train/loss and 3 of accuracy each, and a run of loss only."""
    top = jp_root_dir / "curves"
    for run, scale in (("a", 1.0), ("b", 2.0)):
        write_scalars(top / run, "train/loss", [scale / (step + 1) for step in range(250)])
        write_scalars(top / run, "accuracy", [0.1, 0.2, 0.3])
    write_scalars(top / "c", "accuracy", [0.9])
    return top


async def test_the_default_tag_is_the_first_with_loss_and_its_values_are_thinned(api, curves):
    job = await api.launch(logdir="curves")
    await api.wait_status(job["id"], "running")
    answer = await preview(api, job["id"])
    assert answer["tag"] == "train/loss"
    assert answer["tags"] == ["accuracy", "train/loss"]
    assert sorted(answer["runs"]) == ["a", "b"]
    for run, scale in (("a", 1.0), ("b", 2.0)):
        points = answer["runs"][run]
        assert len(points) == MAX_POINTS
        steps = [step for step, _ in points]
        assert steps[0] == 0 and steps[-1] == 249  # the last point is always kept
        assert steps == sorted(set(steps))
        assert max(b - a for a, b in itertools.pairwise(steps)) <= 3  # evenly spread
        for step, value in points:
            assert math.isclose(value, scale / (step + 1), rel_tol=1e-6)  # float32 in the file
    await api.kill(job["id"])


async def test_a_chosen_tag_answers_its_own_values_in_every_run_that_has_it(api, curves):
    job = await api.launch(logdir="curves")
    await api.wait_status(job["id"], "running")
    answer = await preview(api, job["id"], tag="accuracy")
    assert answer["tag"] == "accuracy"
    rounded = {run: [[s, round(v, 6)] for s, v in points] for run, points in answer["runs"].items()}
    assert rounded == {
        "a": [[0, 0.1], [1, 0.2], [2, 0.3]],
        "b": [[0, 0.1], [1, 0.2], [2, 0.3]],
        "c": [[0, 0.9]],
    }
    await api.kill(job["id"])


async def test_without_a_loss_tag_the_first_tag_is_shown(api, jp_root_dir):
    write_scalars(jp_root_dir / "acc" / "run", "zeta", [1.0])
    write_scalars(jp_root_dir / "acc" / "run", "accuracy", [0.5])
    job = await api.launch(logdir="acc")
    await api.wait_status(job["id"], "running")
    answer = await preview(api, job["id"])
    assert answer["tag"] == "accuracy"
    assert answer["runs"] == {"run": [[0, 0.5]]}
    await api.kill(job["id"])


async def test_at_most_a_few_runs_come_first_by_name(api, jp_root_dir):
    for index in range(MAX_RUNS + 2):
        write_scalars(jp_root_dir / "many" / f"run{index}", "loss", [float(index)])
    job = await api.launch(logdir="many")
    await api.wait_status(job["id"], "running")
    answer = await preview(api, job["id"])
    assert list(answer["runs"]) == [f"run{index}" for index in range(MAX_RUNS)]
    assert answer["runs"]["run3"] == [[0, 3.0]]
    await api.kill(job["id"])


async def test_values_that_json_cannot_carry_are_null(api, jp_root_dir):
    write_scalars(jp_root_dir / "diverged" / "run", "loss", [1.0, math.nan, math.inf, 0.5])
    job = await api.launch(logdir="diverged")
    await api.wait_status(job["id"], "running")
    answer = await preview(api, job["id"])
    assert answer["runs"] == {"run": [[0, 1.0], [1, None], [2, None], [3, 0.5]]}
    await api.kill(job["id"])


async def test_a_job_without_scalars_yet_has_an_empty_preview(api, jp_root_dir):
    (jp_root_dir / "empty").mkdir()
    job = await api.launch(logdir="empty")
    await api.wait_status(job["id"], "running")
    assert await preview(api, job["id"]) == {"tag": "", "tags": [], "runs": {}}
    await api.kill(job["id"])


@pytest.mark.tb_config(max_running=0)
async def test_a_job_that_is_not_running_answers_409(api, logdir):
    job = await api.launch(logdir="logs")
    queued = await preview(api, job["id"], expect=409)
    assert "queued" in queued["message"]
    ended = await api.kill(job["id"])
    assert "killed" in (await preview(api, ended["id"], expect=409))["message"]


async def test_bad_tags_are_refused_without_listing_every_tag(api, curves):
    job = await api.launch(logdir="curves")
    await api.wait_status(job["id"], "running")
    unknown = await preview(api, job["id"], expect=400, tag="val/loss")
    assert unknown["field"] == "tag"
    assert "'val/loss'" in unknown["message"] and "2 scalar tags" in unknown["message"]
    for bad in ("loss\x00", "a\nb", "x" * 2000):
        refused = await preview(api, job["id"], expect=400, tag=bad)
        assert refused["field"] == "tag" and len(refused["message"]) < 300
    await api.kill(job["id"])


async def test_an_unknown_job_is_404(api):
    assert "no TensorBoard job" in (await preview(api, "nope", expect=404))["message"]


async def test_previews_are_not_user_requests_for_the_idle_clock(api, logdir):
    job = await api.launch(logdir="logs")
    await api.wait_status(job["id"], "running")
    for _ in range(3):
        await preview(api, job["id"])
    assert (await api.job(job["id"]))["last_activity"] is None
    assert (await api.proxied(job["id"], "data/environment")).code == 200
    assert (await api.job(job["id"]))["last_activity"] is not None  # a user's request does
    await api.kill(job["id"])


async def test_a_job_on_a_tcp_port_is_previewed_over_its_port(api, logdir):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    job = await api.launch(logdir="logs", port=port)
    await api.wait_status(job["id"], "running")
    answer = await preview(api, job["id"])
    assert answer["runs"] == {"run1": [[0, 1.0], [1, 0.5], [2, 0.25]], "run2": [[0, 2.0], [1, 1.5]]}
    await api.kill(job["id"])


def _server_parts(api, job_id):
    """The server's preview client, and the job with the HTTP client that reaches it."""
    settings = api.serverapp.web_app.settings
    job = settings["forgather_tb_manager"].get(job_id)
    return settings["forgather_tb_previews"], job, settings["forgather_tb_backends"].client_for(job)


def _count_requests(monkeypatch, client):
    """The last path part of every request the job's client sends from now on."""
    sent = []
    real = client.fetch

    def counting(request, *args, **kwargs):
        sent.append(request.url.rsplit("/", 1)[-1])
        return real(request, *args, **kwargs)

    monkeypatch.setattr(client, "fetch", counting)
    return sent


async def test_concurrent_previews_of_a_job_share_one_request_of_each_kind(
    api, curves, monkeypatch
):
    job = await api.launch(logdir="curves")
    await api.wait_status(job["id"], "running")
    previews, tb_job, client = _server_parts(api, job["id"])
    sent = _count_requests(monkeypatch, client)
    answers = await asyncio.gather(*(previews.preview(client, tb_job, None) for _ in range(8)))
    assert sent == ["tags", "scalars_multirun"]  # real requests to the job's TensorBoard
    assert all(answer == answers[0] for answer in answers)
    assert answers[0]["tag"] == "train/loss" and sorted(answers[0]["runs"]) == ["a", "b"]
    # Done requests are not shared any more: another tag is asked of TensorBoard again.
    other = await asyncio.gather(*(previews.preview(client, tb_job, "accuracy") for _ in range(3)))
    assert sent[2:].count("scalars_multirun") == 1  # (and tags again only if no longer fresh)
    assert sorted(other[0]["runs"]) == ["a", "b", "c"]
    await api.kill(job["id"])


async def test_concurrent_previews_over_the_api_ask_the_job_for_its_tags_once(
    api, curves, monkeypatch
):
    job = await api.launch(logdir="curves")
    await api.wait_status(job["id"], "running")
    sent = _count_requests(monkeypatch, _server_parts(api, job["id"])[2])
    answers = await asyncio.gather(*(preview(api, job["id"]) for _ in range(8)))
    assert sent.count("tags") == 1
    assert all(answer == answers[0] for answer in answers)
    await api.kill(job["id"])


@pytest.fixture
def wide(jp_root_dir):
    """One run of 100 scalar tags: TensorBoard's list of them is about 6 KB."""
    for index in range(100):
        write_scalars(jp_root_dir / "wide" / "run", f"group/metric_{index:03d}", [1.0])
    return jp_root_dir / "wide"


@pytest.mark.tb_config(preview_max_bytes=4096)
async def test_a_list_of_tags_over_the_cap_is_a_clear_502_and_the_server_carries_on(api, wide):
    job = await api.launch(logdir="wide")
    await api.wait_status(job["id"], "running")
    whole = await api.proxied(job["id"], "data/plugin/scalars/tags")
    assert whole.code == 200 and len(whole.body) > 4096  # TensorBoard still serves it all
    refused = await preview(api, job["id"], expect=502)
    assert refused["message"] == (
        "TensorBoard's list of scalar tags is larger than 4 KiB; open TensorBoard to see it"
    )
    assert (await api.job(job["id"]))["status"] == "running"
    assert (await api.proxied(job["id"], "data/environment")).code == 200
    await api.kill(job["id"])


@pytest.mark.tb_config(preview_max_bytes=4096)
async def test_values_of_a_tag_over_the_cap_are_a_clear_502(api, jp_root_dir):
    write_scalars(jp_root_dir / "long" / "run", "loss", [1.0 / (step + 1) for step in range(400)])
    job = await api.launch(logdir="long")
    await api.wait_status(job["id"], "running")
    refused = await preview(api, job["id"], expect=502)
    assert refused["message"].startswith("TensorBoard's answer of this tag's values is larger")
    await api.kill(job["id"])


async def test_answers_are_parsed_on_the_previews_thread_not_the_event_loop(
    api, curves, monkeypatch
):
    threads = []

    def spy(parse):
        def recording(*args):
            threads.append((parse.__name__, threading.current_thread().name))
            return parse(*args)

        return recording

    monkeypatch.setattr(preview_module, "parse_tags", spy(preview_module.parse_tags))
    monkeypatch.setattr(preview_module, "parse_scalars", spy(preview_module.parse_scalars))
    job = await api.launch(logdir="curves")
    await api.wait_status(job["id"], "running")
    answer = await preview(api, job["id"])
    assert answer["tag"] == "train/loss" and len(answer["runs"]["a"]) == MAX_POINTS
    assert [name for name, _ in threads] == ["parse_tags", "parse_scalars"]
    loop_thread = threading.current_thread().name  # the server shares the test's loop
    for _, thread in threads:
        assert thread.startswith("forgather-tb-preview") and thread != loop_thread
    await api.kill(job["id"])


# -- the pure parts -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tags", "chosen"),
    [
        (["accuracy", "train/loss", "val/loss"], "train/loss"),
        (["accuracy", "lr"], "accuracy"),
        ([], None),
    ],
)
def test_default_tag(tags, chosen):
    assert default_tag(tags) == chosen


@pytest.mark.parametrize("count", [0, 1, 99, 100, 101, 250, 10_000])
def test_downsample_keeps_at_most_the_limit_spread_evenly_with_the_last(count):
    points = list(range(count))
    kept = downsample(points, 100)
    assert len(kept) == min(count, 100)
    assert kept == sorted(set(kept))
    if count:
        assert kept[0] == 0 and kept[-1] == count - 1
    if count > 100:
        gaps = [b - a for a, b in itertools.pairwise(kept)]
        assert max(gaps) - min(gaps) <= 1
