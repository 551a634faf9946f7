"""The published OpenAPI document, and schemathesis fuzzing the live API against it."""

from __future__ import annotations

import asyncio
import json
from importlib import resources

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
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
EXAMPLES_PER_OPERATION = 25


def packaged_document() -> dict:
    return json.loads(resources.files("jupyter_forgather_tb").joinpath("openapi.json").read_text())


async def test_served_document_is_the_packaged_one(api):
    served = await api.json("GET", "openapi.json", expect=200)
    assert served == packaged_document()
    schema = schemathesis.openapi.from_dict(served)
    operations = {op.ok().label for op in schema.get_all_operations()}
    assert "POST /jobs" in operations and "GET /logdirs" in operations


def fuzz(base_url: str, token: str) -> tuple[int, list[str]]:
    """Run every operation but the event stream with generated data.

    Returns how many requests were made and what failed.
    """
    schema = schemathesis.openapi.from_dict(packaged_document())
    failures: list[str] = []
    calls = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path.endswith("/stream"):
            continue  # never ends while its job lives; checked by hand below
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(
                max_examples=EXAMPLES_PER_OPERATION,
                deadline=None,
                derandomize=True,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(mode))
            def run(case):
                headers = {"Authorization": f"token {token}"}
                response = case.call(base_url=base_url, headers=headers, timeout=30)
                calls.append(response.status_code)
                try:
                    case.validate_response(response, checks=CHECKS, headers=headers)
                except Exception as error:  # collect, so one run reports every operation
                    failures.append(f"{case.operation.label} {case.method} {error}"[:2000])

            run()
    return len(calls), failures


@pytest.mark.tb_config(max_running=1, max_queued=3)
async def test_fuzzed_requests_never_fail_and_match_the_schema(api, jp_base_url, logdir):
    job = await api.launch(logdir="logs")  # so job routes have a real id to hit too
    base_url = f"http://127.0.0.1:{api.serverapp.port}{jp_base_url}forgather-tb/api"
    token = api.serverapp.identity_provider.token
    calls, failures = await asyncio.get_running_loop().run_in_executor(None, fuzz, base_url, token)
    print(f"schemathesis: {calls} requests")
    assert failures == []
    # 7 operations x 2 modes; hypothesis may stop early on small input spaces.
    assert calls >= 100
    for listed in await api.json("GET", "jobs"):
        await api.kill(listed["id"])
    assert (await api.job(job["id"]))["status"] == "killed"


async def test_event_stream_route_behaves_as_documented(api, logdir):
    job = await api.launch(logdir="logs")
    await api.kill(job["id"])
    response = await api.fetch("forgather-tb", "api", "jobs", job["id"], "output", "stream")
    assert response.code == 200
    assert response.headers["Content-Type"] == "text/event-stream"
    assert response.body.decode().rstrip().splitlines()[-2:] == [
        "event: end",
        'data: {"status": "killed"}',
    ]
    bad = await api.call("GET", "jobs", job["id"], "output", "stream", params={"offset": "x"})
    assert bad.code == 400
