"""A job's scalar preview: one tag's values per run, asked of the job's own TensorBoard.

The server asks TensorBoard's scalars plugin over the job's own transport, with the
proxy's HTTP client for the job but not through the proxy, so a preview is not a
user's request: it does not keep the job from being stopped when idle. The
server never imports TensorBoard; it speaks the plugin's HTTP routes.
"""

from __future__ import annotations

import json
import math
import time
import urllib.parse
from typing import Any

from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.simple_httpclient import HTTPTimeoutError, SimpleAsyncHTTPClient

from ..common.options import OptionError
from .errors import BackendFailed, BackendTimeout
from .jobs import Job
from .transport import PROXY_SAFE_CHARS

#: Points per run in a preview at most; more are thinned evenly, keeping the last.
MAX_POINTS = 100
#: Runs in a preview at most: the first by name of those with the tag.
MAX_RUNS = 5
#: Tags a preview lists at most (the first by name).
MAX_TAGS = 1000
MAX_TAG_LENGTH = 1024
#: Seconds TensorBoard may take over each of a preview's two requests.
TIMEOUT = 10.0
#: Seconds a job's tags and runs are reused by its next previews: with many runs that
#: list is the costlier request (TensorBoard renders every tag's description). A tag
#: asked for but not in it is looked up again at once.
TAGS_FRESH_FOR = 10.0


def check_tag(value: str | None) -> str | None:
    """The tag a preview asks for (None: the default), or :class:`OptionError` if malformed."""
    if not value:
        return None
    if len(value) > MAX_TAG_LENGTH:
        raise OptionError("tag", f"is longer than {MAX_TAG_LENGTH} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise OptionError("tag", "must not contain control characters")
    return value


def default_tag(tags: list[str]) -> str | None:
    """The first tag (in sorted order) whose name contains ``loss``, else the first tag."""
    return next((tag for tag in tags if "loss" in tag), tags[0] if tags else None)


def downsample(points: list[Any], limit: int = MAX_POINTS) -> list[Any]:
    """At most ``limit`` of ``points``, evenly spread; the first and last always kept."""
    count = len(points)
    if count <= limit:
        return list(points)
    if limit == 1:
        return [points[-1]]
    return [points[round(i * (count - 1) / (limit - 1))] for i in range(limit)]


def _value(raw: Any) -> float | None:
    """A scalar's value; None for NaN, infinities (which TensorBoard sends as strings) and junk."""
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        return None
    return float(raw) if math.isfinite(raw) else None


def _points(rows: Any) -> list[list[Any]]:
    """``[[step, value], ...]``, thinned, from the plugin's ``[[wall_time, step, value], ...]``.

    Thinned first: only the points kept are read.
    """
    if not isinstance(rows, list):
        raise BackendFailed("TensorBoard answered scalars that are not a list")
    points = []
    for row in downsample(rows):
        if not (isinstance(row, list) and len(row) == 3 and isinstance(row[1], int)):
            raise BackendFailed("TensorBoard answered a scalar that is not [time, step, value]")
        points.append([row[1], _value(row[2])])
    return points


def tag_index(answer: Any) -> dict[str, list[str]]:
    """``{tag: [run, ...]}`` (runs sorted) from the plugin's ``{run: {tag: {...}}}``."""
    if not isinstance(answer, dict) or not all(isinstance(v, dict) for v in answer.values()):
        raise BackendFailed("TensorBoard answered scalar tags in an unknown form")
    index: dict[str, list[str]] = {}
    for run in sorted(answer):
        for tag in answer[run]:
            index.setdefault(tag, []).append(run)
    return index


def _tag_unknown(tag: str, count: int) -> OptionError:
    shown = repr(tag if len(tag) <= 80 else tag[:77] + "...")
    return OptionError(
        "tag",
        f"no run of this job has the scalar tag {shown} (it has {count} scalar tags; a "
        "preview without tag lists them)",
    )


class PreviewClient:
    """Fetches previews from running jobs' TensorBoards, over each job's own transport."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self._tags: dict[str, tuple[float, dict[str, list[str]]]] = {}  # by job id

    async def _tag_index(
        self, client: SimpleAsyncHTTPClient, job: Job, again: bool = False
    ) -> tuple[dict[str, list[str]], bool]:
        """The job's ``{tag: [run, ...]}``, and whether it was a recent answer reused."""
        now = time.monotonic()
        self._tags = {k: v for k, v in self._tags.items() if now - v[0] < TAGS_FRESH_FOR}
        if job.id in self._tags and not again:
            return self._tags[job.id][1], True
        index = tag_index(await self._json(client, self._request(job, "tags")))
        self._tags[job.id] = (time.monotonic(), index)
        return index, False

    def _request(self, job: Job, route: str, body: str | None = None) -> HTTPRequest:
        # The proxy's form: a Unix socket job's client resolves every host to its socket,
        # a TCP job's to the address proved to be the job's own.
        port = 80 if job.unix_socket else job.port
        path = urllib.parse.quote(
            f"{self.base_url}tb/{job.id}/data/plugin/scalars/{route}", safe=PROXY_SAFE_CHARS
        )
        headers = {"Content-Type": "application/x-www-form-urlencoded"} if body else None
        return HTTPRequest(
            f"http://localhost:{port}{path}",
            method="POST" if body is not None else "GET",
            body=body,
            headers=headers,
            connect_timeout=TIMEOUT,
            request_timeout=TIMEOUT,
            follow_redirects=False,
        )

    async def _json(self, client: SimpleAsyncHTTPClient, request: HTTPRequest) -> Any:
        try:
            response = await client.fetch(request, raise_error=False)
        except HTTPTimeoutError:
            raise BackendTimeout("TensorBoard did not answer in time") from None
        except (HTTPClientError, OSError) as error:
            raise BackendFailed(f"TensorBoard could not be reached: {error}") from None
        if response.code == 599:
            if isinstance(response.error, HTTPTimeoutError):
                raise BackendTimeout("TensorBoard did not answer in time")
            raise BackendFailed("TensorBoard could not be reached")
        if response.code != 200:
            raise BackendFailed(f"TensorBoard answered HTTP {response.code}")
        try:
            return json.loads(response.body)
        except ValueError:
            raise BackendFailed("TensorBoard answered something that is not JSON") from None

    async def preview(
        self, client: SimpleAsyncHTTPClient, job: Job, tag: str | None
    ) -> dict[str, Any]:
        """A running job's preview: ``{"tag", "tags", "runs"}``.

        ``tag`` (or the default one)'s values in the job's first :data:`MAX_RUNS` runs
        by name; :class:`OptionError` for a tag the job does not have.
        """
        index, reused = await self._tag_index(client, job)
        if reused and (not index or (tag is not None and tag not in index)):
            index, _ = await self._tag_index(client, job, again=True)
        tags = sorted(index)
        chosen = tag if tag is not None else default_tag(tags)
        if chosen is None:
            return {"tag": "", "tags": [], "runs": {}}
        if chosen not in index:
            raise _tag_unknown(chosen, len(tags))
        runs = index[chosen][:MAX_RUNS]
        form = urllib.parse.urlencode([("tag", chosen), *(("runs", run) for run in runs)])
        answer = await self._json(client, self._request(job, "scalars_multirun", form))
        if not isinstance(answer, dict):
            raise BackendFailed("TensorBoard answered scalars in an unknown form")
        return {
            "tag": chosen,
            "tags": tags[:MAX_TAGS],
            "runs": {run: _points(answer[run]) for run in runs if run in answer},
        }
