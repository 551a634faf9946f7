"""The published OpenAPI document, and schemathesis fuzzing the live API against it."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from importlib import resources

import pytest
from conftest import write_scalars

schemathesis = pytest.importorskip("schemathesis")
import hypothesis.strategies as st  # noqa: E402
import jsonschema  # noqa: E402
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.core.failures import Failure, FailureGroup  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
#: Per operation and generation mode (positive, negative): 50 requests per operation.
EXAMPLES_PER_MODE = 25


def packaged_document() -> dict:
    return json.loads(
        resources.files("jupyter_forgather_tb.server.web").joinpath("openapi.json").read_text()
    )


async def test_served_document_is_the_packaged_one(api):
    response = await api.call("GET", "openapi.json", expect=200)
    assert response.headers["Content-Type"].startswith("application/json")
    served = json.loads(response.body)
    assert served == packaged_document()
    schema = schemathesis.openapi.from_dict(served)
    schema.validate()  # against the OpenAPI 3.0 meta-schema; raises when invalid
    operations = {op.ok().label for op in schema.get_all_operations()}
    assert operations == {
        "GET /jobs",
        "POST /jobs",
        "DELETE /jobs",
        "GET /jobs/{job_id}",
        "DELETE /jobs/{job_id}",
        "POST /jobs/{job_id}/relaunch",
        "POST /jobs/{job_id}/resume",
        "GET /jobs/{job_id}/output",
        "GET /jobs/{job_id}/output/stream",
        "GET /jobs/{job_id}/preview",
        "GET /jobs/{job_id}/scalars",
        "GET /logdirs",
        "GET /connections",
        "GET /openapi.json",
        "GET /jobs/{job_id}/shares",
        "POST /jobs/{job_id}/shares",
        "DELETE /jobs/{job_id}/shares",
        "GET /shared",
    }


def test_launch_request_schema_matches_the_options():
    from jupyter_forgather_tb.common.options import CONTROL_FIELDS, FIELDS

    request = packaged_document()["components"]["schemas"]["LaunchRequest"]
    assert set(request["properties"]) == FIELDS | CONTROL_FIELDS
    assert request["additionalProperties"] is False
    assert "required" not in request  # exactly one of logdir and logdirs:
    assert request["oneOf"] == [{"required": ["logdir"]}, {"required": ["logdirs"]}]


def test_validation_catches_a_broken_document():
    broken = packaged_document()
    broken["paths"]["/jobs"]["get"]["responses"]["200"]["content"] = "not an object"
    with pytest.raises(Exception, match="content"):
        schemathesis.openapi.from_dict(broken).validate()


def check(case, response, headers: dict, failures: dict[str, str]) -> None:
    """Run CHECKS on a response; keep the first report of each kind of failure."""
    try:
        case.validate_response(response, checks=CHECKS, headers=headers)
    except (Failure, FailureGroup) as error:
        found = error.exceptions if isinstance(error, FailureGroup) else (error,)
        kind = ", ".join(sorted({failure.title for failure in found}))
        key = f"{case.operation.label} {response.status_code}: {kind}"
        failures.setdefault(key, str(error)[:2000])


def fuzz(base_url: str, token: str, job_id: str, logdir: str) -> tuple[Counter, dict[str, str]]:
    """Run every operation but the event stream with generated data.

    Half the cases of job routes name ``job_id`` (a real job) rather than a
    generated id, and half the valid launch bodies use ``logdir`` (a real log
    directory, never bind_all), so success responses are checked too.
    Returns the status codes seen per operation and what failed.
    """
    schema = schemathesis.openapi.from_dict(packaged_document())
    failures: dict[str, str] = {}
    seen: Counter = Counter()
    headers = {"Authorization": f"token {token}"}

    def real_logdir(case):
        if isinstance(case.body, dict):
            # Without what a local logdir excludes: logdirs, and a remote one's sync
            # interval and connection.
            exclude = ("logdirs", "sync_interval", "connection")
            body = {k: v for k, v in case.body.items() if k not in exclude}
            case.body = {**body, "logdir": logdir, "bind_all": False}
        return case

    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path.endswith("/stream"):
            continue  # never ends while its job lives; checked by hand below
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategy = operation.as_strategy(mode)
            if "{job_id}" in operation.path:
                real = operation.as_strategy(mode, path_parameters={"job_id": job_id})
                strategy = st.one_of(strategy, real)
            elif operation.label == "POST /jobs" and mode == GenerationMode.POSITIVE:
                strategy = st.one_of(strategy, strategy.map(real_logdir))

            @settings(
                max_examples=EXAMPLES_PER_MODE,
                deadline=None,
                derandomize=True,  # the same cases on every run
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=strategy)
            def run(case):
                response = case.call(base_url=base_url, headers=headers, timeout=30)
                seen[f"{case.operation.label} {response.status_code}"] += 1
                check(case, response, headers, failures)  # collect: one run reports all

            run()
    return seen, failures


def by_hand(base_url: str, token: str, port_in_use: int) -> tuple[Counter, dict[str, str]]:
    """The launch answers random data seldom reaches (409, 413, 429), checked the same way."""
    schema = schemathesis.openapi.from_dict(packaged_document())
    launch = schema["/jobs"]["POST"]
    headers = {"Authorization": f"token {token}"}
    seen: Counter = Counter()
    failures: dict[str, str] = {}

    def post(body) -> int:
        case = launch.Case(body=body, media_type="application/json")
        response = case.call(base_url=base_url, headers=headers, timeout=30)
        seen[f"POST /jobs {response.status_code}"] += 1
        check(case, response, headers, failures)
        return response.status_code

    post({"logdir": "logs", "port": port_in_use})  # the Jupyter server's own port
    post({"logdir": "logs", "window_title": "x" * 70_000})  # over the 64 KiB body limit
    for _ in range(6):  # max_running=1, max_queued=3: the queue fills up
        if post({"logdir": "logs", "force_new": True}) == 429:
            break
    return seen, failures


def stream_by_hand(base_url: str, token: str, job_id: str) -> tuple[str, dict[str, str]]:
    """The event stream of an ended job (it ends), checked against the document."""
    schema = schemathesis.openapi.from_dict(packaged_document())
    case = schema["/jobs/{job_id}/output/stream"]["GET"].Case(path_parameters={"job_id": job_id})
    headers = {"Authorization": f"token {token}"}
    response = case.call(base_url=base_url, headers=headers, timeout=30)
    failures: dict[str, str] = {}
    check(case, response, headers, failures)
    return response.text, failures


@pytest.mark.tb_config(max_running=1, max_queued=3)
async def test_fuzzed_requests_never_fail_and_match_the_schema(api, jp_base_url, logdir):
    job = await api.launch(logdir="logs")  # so job routes have a real id to hit too
    base_url = f"http://127.0.0.1:{api.serverapp.port}{jp_base_url}forgather-tb/api"
    token = api.serverapp.identity_provider.token
    loop = asyncio.get_running_loop()

    async def kill_all():
        for listed in await api.json("GET", "jobs"):
            await api.kill(listed["id"])

    try:
        seen, failures = await loop.run_in_executor(None, fuzz, base_url, token, job["id"], "logs")
        await kill_all()  # an empty queue, so the port is checked before the queue fills
        by_hand_seen, by_hand_failures = await loop.run_in_executor(
            None, by_hand, base_url, token, api.serverapp.port
        )
    finally:
        await kill_all()
    print("schemathesis:", sum(seen.values()), "requests;", dict(sorted(seen.items())))
    assert failures == {}
    assert by_hand_failures == {}
    # 8 operations x 2 modes; hypothesis may stop early on small input spaces.
    assert sum(seen.values()) >= 200
    # Success and error answers were both met and checked, not only 400s and 404s.
    for outcome in (
        "POST /jobs 201",
        "POST /jobs 400",
        "DELETE /jobs 200",
        "GET /jobs/{job_id} 200",
        "GET /jobs/{job_id} 404",
        "DELETE /jobs/{job_id} 200",
        "GET /jobs/{job_id}/output 200",
        "GET /jobs/{job_id}/output 400",
        "GET /logdirs 200",
        "GET /logdirs 400",
    ):
        assert seen[outcome] > 0, outcome
    for outcome in ("POST /jobs 409", "POST /jobs 413", "POST /jobs 429"):
        assert by_hand_seen[outcome] == 1, (outcome, by_hand_seen)
    assert all(listed["status"] == "killed" for listed in await api.json("GET", "jobs"))

    text, stream_failures = await loop.run_in_executor(
        None, stream_by_hand, base_url, token, job["id"]
    )
    assert stream_failures == {}
    assert text.endswith('event: end\ndata: {"status": "killed"}\n\n')


async def test_event_stream_route_behaves_as_documented(api, logdir):
    output_schema = packaged_document()["components"]["schemas"]["Output"]
    job = await api.launch(logdir="logs")
    await api.wait_status(job["id"], "running")
    await api.kill(job["id"])
    response = await api.fetch("forgather-tb", "api", "jobs", job["id"], "output", "stream")
    assert response.code == 200
    assert response.headers["Content-Type"] == "text/event-stream"
    events = response.body.decode().split("\n\n")
    assert events[-1] == ""
    for event in events[:-2]:
        name, data = event.split("\n")
        assert name == "event: output"
        jsonschema.validate(json.loads(data[len("data: ") :]), output_schema)
    assert len(events) > 2  # TensorBoard said where it serves
    assert events[-2] == 'event: end\ndata: {"status": "killed"}'
    for offset in ("x", "-1", "\u00b2", "1" * 19):
        bad = await api.call(
            "GET", "jobs", job["id"], "output", "stream", params={"offset": offset}
        )
        assert bad.code == 400, offset
        assert json.loads(bad.body)["field"] == "offset"
    missing = await api.call("GET", "jobs", "nope", "output", "stream")
    assert missing.code == 404


async def test_previews_answer_as_documented(api, jp_base_url, logdir):
    write_scalars(logdir / "diverged", "loss", [1.0, float("nan")])
    job = await api.launch(logdir="logs")
    await api.wait_status(job["id"], "running")
    base_url = f"http://127.0.0.1:{api.serverapp.port}{jp_base_url}forgather-tb/api"
    headers = {"Authorization": f"token {api.serverapp.identity_provider.token}"}

    def ask() -> tuple[list[int], dict[str, str]]:
        operation = schemathesis.openapi.from_dict(packaged_document())["/jobs/{job_id}/preview"]
        failures: dict[str, str] = {}
        codes = []
        for query in ({}, {"tag": "loss"}, {"tag": "no such tag"}):
            case = operation["GET"].Case(path_parameters={"job_id": job["id"]}, query=query)
            response = case.call(base_url=base_url, headers=headers, timeout=30)
            codes.append(response.status_code)
            check(case, response, headers, failures)
        return codes, failures

    codes, failures = await asyncio.get_running_loop().run_in_executor(None, ask)
    await api.kill(job["id"])
    assert failures == {}
    assert codes == [200, 200, 400]


async def test_scalar_exports_answer_as_documented(api, jp_base_url, logdir):
    write_scalars(logdir / "diverged", "loss", [1.0, float("nan")])
    job = await api.launch(logdir="logs")
    await api.wait_status(job["id"], "running")
    while len((await api.json("GET", "jobs", job["id"], "preview"))["runs"]) < 3:
        await asyncio.sleep(0.2)  # TensorBoard reads the runs after it first answers
    base_url = f"http://127.0.0.1:{api.serverapp.port}{jp_base_url}forgather-tb/api"
    headers = {"Authorization": f"token {api.serverapp.identity_provider.token}"}

    def ask() -> tuple[list[int], dict[str, str]]:
        operation = schemathesis.openapi.from_dict(packaged_document())["/jobs/{job_id}/scalars"]
        failures: dict[str, str] = {}
        codes = []
        for query in (
            {"format": "json", "runs": ["diverged"]},
            {"format": "csv", "tags": ["loss"]},
            {"format": "parquet"},
            {"runs": ["no such run"]},
            {"format": "xlsx"},
        ):
            case = operation["GET"].Case(path_parameters={"job_id": job["id"]}, query=query)
            response = case.call(base_url=base_url, headers=headers, timeout=30)
            codes.append(response.status_code)
            check(case, response, headers, failures)
        return codes, failures

    codes, failures = await asyncio.get_running_loop().run_in_executor(None, ask)
    await api.kill(job["id"])
    assert failures == {}
    assert codes == [200, 200, 200, 400, 400]


def resume_by_hand(base_url: str, token: str, job_id: str) -> tuple[list[str], dict[str, str]]:
    """A suspended job read, resumed, then resumed again (refused), checked against the document."""
    schema = schemathesis.openapi.from_dict(packaged_document())
    headers = {"Authorization": f"token {token}"}
    failures: dict[str, str] = {}
    seen = []
    for method, path in (("GET", "/jobs/{job_id}"), *[("POST", "/jobs/{job_id}/resume")] * 2):
        case = schema[path][method].Case(path_parameters={"job_id": job_id})
        response = case.call(base_url=base_url, headers=headers, timeout=30)
        seen.append(
            f"{case.operation.label} {response.status_code} {response.json().get('status')}"
        )
        check(case, response, headers, failures)
    return seen, failures


@pytest.mark.tb_config(suspend_after=2)
async def test_a_suspended_job_and_its_resume_match_the_document(api, jp_base_url, logdir):
    job = await api.launch(logdir="logs")
    await api.wait_status(job["id"], "running")
    await api.wait_status(job["id"], "suspended", timeout=30)
    base_url = f"http://127.0.0.1:{api.serverapp.port}{jp_base_url}forgather-tb/api"
    token = api.serverapp.identity_provider.token
    seen, failures = await asyncio.get_running_loop().run_in_executor(
        None, resume_by_hand, base_url, token, job["id"]
    )
    assert seen[:2] == [
        "GET /jobs/{job_id} 200 suspended",
        "POST /jobs/{job_id}/resume 200 starting",
    ]
    assert seen[2].startswith("POST /jobs/{job_id}/resume 409 ")
    assert failures == {}
