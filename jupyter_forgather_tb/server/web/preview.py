"""A job's scalar preview: one tag's values per run, asked of the job's own TensorBoard.

The server asks TensorBoard's scalars plugin over the job's own transport, with the
proxy's HTTP client for the job but not through the proxy, so a preview is not a
user's request: it does not keep the job from being stopped when idle. The
server never imports TensorBoard; it speaks the plugin's HTTP routes.

What a preview costs the Jupyter server is bounded: each answer is read up to a byte
cap (``preview_max_bytes``) and parsed on a thread of the previews' own, never on the
event loop, and concurrent previews of one job share each request to it.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import math
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.httputil import HTTPInputError
from tornado.simple_httpclient import HTTPTimeoutError, SimpleAsyncHTTPClient

from ...common.options import OptionError
from ...common.scalarwire import PLUGIN_NAME as EXPORT_PLUGIN
from ...common.scalarwire import ROUTE as EXPORT_ROUTE
from ...common.sizes import format_size
from ..host.transport import PROXY_SAFE_CHARS
from ..jobs.errors import BackendFailed, BackendTimeout
from ..jobs.job import Job

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
#: Bytes of each TensorBoard answer a preview reads at most (``preview_max_bytes``).
MAX_ANSWER_BYTES = 16 * 1024**2
#: Threads that parse TensorBoard's answers: the previews' own, so the event loop never does.
PARSE_WORKERS = 1

_T = TypeVar("_T")


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


@dataclass(frozen=True)
class Tags:
    """A job's scalar tags: ``{tag: [run, ...]}`` in tag order, and the default tag."""

    index: dict[str, list[str]]
    default: str | None


def _loads(chunks: list[bytes]) -> Any:
    try:
        return json.loads(b"".join(chunks))
    except ValueError:
        raise BackendFailed("TensorBoard answered something that is not JSON") from None


def parse_tags(chunks: list[bytes]) -> Tags:
    """The tags answer's bytes as :class:`Tags` (the costly part: run on a preview thread)."""
    index = tag_index(_loads(chunks))
    ordered = {tag: index[tag] for tag in sorted(index)}
    return Tags(ordered, default_tag(list(ordered)))


def parse_scalars(chunks: list[bytes], runs: list[str]) -> dict[str, list[list[Any]]]:
    """``{run: [[step, value], ...]}`` for ``runs`` from the scalars answer's bytes."""
    answer = _loads(chunks)
    if not isinstance(answer, dict):
        raise BackendFailed("TensorBoard answered scalars in an unknown form")
    return {run: _points(answer[run]) for run in runs if run in answer}


class _AnswerTooLarge(HTTPInputError):
    """Stops reading an answer over the cap.

    An ``HTTPInputError`` because tornado's client lets that one error out of a
    streaming callback quietly: it closes the connection and fails the fetch.
    """


class AnswerTooLarge(BackendFailed):
    """A job's answer was larger than the previews take."""


class _CappedBody:
    """A streaming callback keeping an answer's chunks up to ``limit`` bytes."""

    def __init__(self, limit: int):
        self.limit = limit
        self.chunks: list[bytes] = []
        self.size = 0
        self.over = False

    def __call__(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.limit:
            self.over = True
            self.chunks.clear()
            raise _AnswerTooLarge(f"a TensorBoard answer over {self.limit} bytes")
        self.chunks.append(chunk)


def _tag_unknown(tag: str, count: int) -> OptionError:
    shown = repr(tag if len(tag) <= 80 else tag[:77] + "...")
    return OptionError(
        "tag",
        f"no run of this job has the scalar tag {shown} (it has {count} scalar tags; a "
        "preview without tag lists them)",
    )


class PreviewClient:
    """Fetches previews from running jobs' TensorBoards, over each job's own transport.

    Each answer is read up to ``max_bytes`` and parsed on the previews' own thread;
    previews of one job at the same time share its requests (by job and route).
    """

    def __init__(self, base_url: str, max_bytes: int = MAX_ANSWER_BYTES):
        self.base_url = base_url
        self.max_bytes = max_bytes
        self._tags: dict[str, tuple[float, Tags]] = {}  # by job id
        self._inflight: dict[Hashable, asyncio.Future[Any]] = {}
        self._executor = ThreadPoolExecutor(
            PARSE_WORKERS, thread_name_prefix="forgather-tb-preview"
        )

    def close(self) -> None:
        """Stop the parsing thread (the server is stopping)."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def _shared(self, key: Hashable, make: Callable[[], Awaitable[_T]]) -> _T:
        """``make()``'s result, awaited once for all callers asking with ``key`` meanwhile."""
        future = self._inflight.get(key)
        if future is None:
            future = asyncio.ensure_future(make())
            self._inflight[key] = future
            future.add_done_callback(functools.partial(self._landed, key))
        # Shielded: one caller going away must not cancel the others' request.
        result: _T = await asyncio.shield(future)
        return result

    def _landed(self, key: Hashable, future: asyncio.Future[Any]) -> None:
        if self._inflight.get(key) is future:
            del self._inflight[key]
        if not future.cancelled():
            future.exception()  # retrieved, even if every caller has gone

    async def _tag_index(
        self, client: SimpleAsyncHTTPClient, job: Job, again: bool = False
    ) -> tuple[Tags, bool]:
        """The job's :class:`Tags`, and whether it was a recent answer reused."""
        now = time.monotonic()
        self._tags = {k: v for k, v in self._tags.items() if now - v[0] < TAGS_FRESH_FOR}
        if job.id in self._tags and not again:
            return self._tags[job.id][1], True
        return await self._shared((job.id, "tags"), lambda: self._fetch_tags(client, job)), False

    async def _fetch_tags(self, client: SimpleAsyncHTTPClient, job: Job) -> Tags:
        chunks = await self._read(client, self._request(job, "tags"), "list of scalar tags")
        tags = await asyncio.get_running_loop().run_in_executor(self._executor, parse_tags, chunks)
        self._tags[job.id] = (time.monotonic(), tags)
        return tags

    async def _fetch_scalars(
        self, client: SimpleAsyncHTTPClient, job: Job, tag: str, runs: list[str]
    ) -> dict[str, list[list[Any]]]:
        form = urllib.parse.urlencode([("tag", tag), *(("runs", run) for run in runs)])
        request = self._request(job, "scalars_multirun", form)
        chunks = await self._read(client, request, "answer of this tag's values")
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, parse_scalars, chunks, runs
        )

    async def tags(self, client: SimpleAsyncHTTPClient, job: Job, again: bool = False) -> Tags:
        """The job's :class:`Tags` (a recent answer reused unless ``again``)."""
        return (await self._tag_index(client, job, again))[0]

    async def export_batch(
        self, client: SimpleAsyncHTTPClient, job: Job, body: bytes, timeout: float
    ) -> list[bytes]:
        """The job's export plugin's answer to ``body`` (``common/scalarwire.py``), capped."""
        request = self._request(
            job, EXPORT_ROUTE, body, content_type="application/json", plugin=EXPORT_PLUGIN
        )
        request.request_timeout = timeout
        return await self._read(client, request, "series")

    def _request(
        self,
        job: Job,
        route: str,
        body: str | bytes | None = None,
        content_type: str = "application/x-www-form-urlencoded",
        plugin: str = "scalars",
    ) -> HTTPRequest:
        # The proxy's form: a Unix socket job's client resolves every host to its socket,
        # a TCP job's to the address proved to be the job's own.
        port = 80 if job.unix_socket else job.port
        path = urllib.parse.quote(
            f"{self.base_url}tb/{job.id}/data/plugin/{plugin}/{route}", safe=PROXY_SAFE_CHARS
        )
        headers = {"Content-Type": content_type} if body else None
        return HTTPRequest(
            f"http://localhost:{port}{path}",
            method="POST" if body is not None else "GET",
            body=body,
            headers=headers,
            connect_timeout=TIMEOUT,
            request_timeout=TIMEOUT,
            follow_redirects=False,
        )

    async def _read(
        self, client: SimpleAsyncHTTPClient, request: HTTPRequest, what: str
    ) -> list[bytes]:
        """The answer's body in chunks, at most ``max_bytes`` of it; ``what`` names it."""
        body = _CappedBody(self.max_bytes)
        request.streaming_callback = body
        try:
            response = await client.fetch(request, raise_error=False)
        except HTTPTimeoutError:
            raise BackendTimeout("TensorBoard did not answer in time") from None
        except (HTTPClientError, OSError) as error:
            if body.over:
                raise AnswerTooLarge(
                    f"TensorBoard's {what} is larger than {format_size(self.max_bytes)}; "
                    "open TensorBoard to see it"
                ) from None
            raise BackendFailed(f"TensorBoard could not be reached: {error}") from None
        if response.code == 599:
            if isinstance(response.error, HTTPTimeoutError):
                raise BackendTimeout("TensorBoard did not answer in time")
            raise BackendFailed("TensorBoard could not be reached")
        if response.code != 200:
            raise BackendFailed(f"TensorBoard answered HTTP {response.code}")
        return body.chunks

    async def preview(
        self, client: SimpleAsyncHTTPClient, job: Job, tag: str | None
    ) -> dict[str, Any]:
        """A running job's preview: ``{"tag", "tags", "runs"}``.

        ``tag`` (or the default one)'s values in the job's first :data:`MAX_RUNS` runs
        by name; :class:`OptionError` for a tag the job does not have.
        """
        tags, reused = await self._tag_index(client, job)
        if reused and (not tags.index or (tag is not None and tag not in tags.index)):
            tags, _ = await self._tag_index(client, job, again=True)
        chosen = tag if tag is not None else tags.default
        if chosen is None:
            return {"tag": "", "tags": [], "runs": {}}
        if chosen not in tags.index:
            raise _tag_unknown(chosen, len(tags.index))
        runs = tags.index[chosen][:MAX_RUNS]
        values = await self._shared(
            (job.id, "scalars", chosen, *runs),
            lambda: self._fetch_scalars(client, job, chosen, runs),
        )
        return {
            "tag": chosen,
            "tags": list(itertools.islice(tags.index, MAX_TAGS)),
            "runs": values,
        }
