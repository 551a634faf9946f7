"""``GET jobs/<id>/scalars``: a running job's scalars as one streamed download."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

from jupyter_server.auth.decorator import authorized
from tornado import web
from tornado.http1connection import HTTP1Connection
from tornado.iostream import StreamClosedError
from tornado.simple_httpclient import SimpleAsyncHTTPClient

from ...common.scalarwire import request_body
from ..jobs.job import Job
from .handlers import ForgatherTBHandler
from .preview import AnswerTooLarge, PreviewClient
from .scalars import (
    MEDIA_TYPES,
    Encoder,
    ParquetUnavailable,
    check_format,
    check_names,
    make_encoder,
    parse_batch,
    plan,
)

log = logging.getLogger(__name__)

#: Series asked of the job at once (a batch whose answer is too large is split in two).
BATCH_SERIES = 32
#: Seconds the job may take to read and send one batch.
BATCH_TIMEOUT = 120.0
Pair = tuple[str, str]


class Exports:
    """The exports under way: their encoding thread, and how many run per job."""

    def __init__(self, workers: int = 1, batch_series: int = BATCH_SERIES):
        self.executor = ThreadPoolExecutor(workers, thread_name_prefix="forgather-tb-export")
        self.active: dict[str, int] = {}
        self.batch_series = batch_series

    @contextlib.contextmanager
    def running(self, job_id: str) -> Iterator[None]:
        """Count one export of ``job_id`` while the block runs."""
        self.active[job_id] = self.active.get(job_id, 0) + 1
        try:
            yield
        finally:
            self.active[job_id] -= 1
            if not self.active[job_id]:
                del self.active[job_id]

    def close(self) -> None:
        """Stop the encoding thread (the server is stopping)."""
        self.executor.shutdown(wait=False, cancel_futures=True)


def batches(pairs: list[Pair], size: int) -> list[list[Pair]]:
    """``pairs`` in order, cut into lists of at most ``size``."""
    return [pairs[start : start + size] for start in range(0, len(pairs), size)]


def _close_made(making: asyncio.Future[Encoder]) -> None:
    """Close the encoder made for a request that failed before it took it."""
    if not making.cancelled() and making.exception() is None:
        making.result().close()


def _quiet(future: asyncio.Future[Any]) -> None:
    """Take a dropped future's error, so that it is not logged as never retrieved."""
    if not future.cancelled():
        future.exception()


class ScalarsHandler(ForgatherTBHandler):
    """``GET jobs/<id>/scalars?format=csv|json|parquet&runs=R&tags=T``: every point, streamed."""

    @property
    def previews(self) -> PreviewClient:
        return cast(PreviewClient, self.settings["forgather_tb_previews"])

    @property
    def exports(self) -> Exports:
        return cast(Exports, self.settings["forgather_tb_exports"])

    def on_connection_close(self) -> None:
        self._gone = True

    @web.authenticated
    @authorized
    async def get(self, job_id: str) -> None:
        self._gone = False
        job = self.manager.get(job_id)
        fmt = check_format(self.get_query_argument("format", None))
        runs = check_names("runs", self.get_query_arguments("runs"))
        tags = check_names("tags", self.get_query_arguments("tags"))
        self.manager.check_running(job)
        client = self.backends.client_for(job)
        # The first Parquet encoder imports pyarrow (a good part of a second): on a
        # thread, while the job is asked for its tags and first batch.
        making = asyncio.get_running_loop().run_in_executor(None, make_encoder, fmt)
        try:
            index = (await self.previews.tags(client, job, again=True)).index
            todo = batches(plan(index, runs, tags), self.exports.batch_series)
        except BaseException:
            making.add_done_callback(_close_made)
            raise
        ahead = self._fetch(client, job, todo[0]) if todo else None
        try:
            encoder = await making
        except ParquetUnavailable as error:
            if ahead is not None:
                ahead.cancel()
                ahead.add_done_callback(_quiet)
            self.send_error_json(501, str(error), field="format")
            return
        self.set_header("Content-Type", MEDIA_TYPES[fmt])
        self.set_header("Content-Disposition", f'attachment; filename="{job.id}-scalars.{fmt}"')
        self.set_header("Cache-Control", "no-store")
        with self.exports.running(job.id):
            try:
                await self._stream(client, job, todo, ahead, encoder, fmt)
            finally:
                encoder.close()

    async def _read_batch(
        self, client: SimpleAsyncHTTPClient, job: Job, pairs: list[Pair]
    ) -> list[tuple[list[Pair], list[bytes]]]:
        """The job's answers for ``pairs``: one, or more if one answer would be too large."""
        try:
            body = request_body(pairs)
            return [(pairs, await self.previews.export_batch(client, job, body, BATCH_TIMEOUT))]
        except AnswerTooLarge:
            if len(pairs) == 1:
                raise
        half = len(pairs) // 2
        return [
            *await self._read_batch(client, job, pairs[:half]),
            *await self._read_batch(client, job, pairs[half:]),
        ]

    def _fetch(
        self, client: SimpleAsyncHTTPClient, job: Job, pairs: list[Pair]
    ) -> asyncio.Future[list[tuple[list[Pair], list[bytes]]]]:
        return asyncio.ensure_future(self._read_batch(client, job, pairs))

    async def _stream(
        self,
        client: SimpleAsyncHTTPClient,
        job: Job,
        todo: list[list[Pair]],
        ahead: asyncio.Future[list[tuple[list[Pair], list[bytes]]]] | None,
        encoder: Encoder,
        fmt: str,
    ) -> None:
        """Send the download batch by batch (``todo``; the first one's answer ``ahead``),
        asking for the next batch while one is sent."""
        loop = asyncio.get_running_loop()
        executor = self.exports.executor
        try:
            self.write(encoder.start())
            for number in range(len(todo)):
                assert ahead is not None
                answers = await ahead
                following = todo[number + 1] if number + 1 < len(todo) else None
                ahead = self._fetch(client, job, following) if following else None
                while answers:
                    asked, chunks = answers.pop(0)
                    found = await loop.run_in_executor(executor, parse_batch, asked, chunks)
                    del chunks  # the answer's bytes, now parsed
                    # One series at a time: the server holds one series' bytes, not a batch's.
                    while found:
                        data = await loop.run_in_executor(executor, encoder.series, found.pop(0))
                        if self._gone:
                            return
                        if data:
                            self.write(data)
                            await self.flush()
            self.write(await loop.run_in_executor(executor, encoder.end))
            self.finish(set_content_type=MEDIA_TYPES[fmt])
        except StreamClosedError:
            return
        except Exception as error:
            if not self._headers_written:
                raise
            # Headers are sent: cut the connection so the download fails rather than
            # ending as if complete (the job ended, its TensorBoard failed...).
            log.warning("Export of job %s stopped: %s", job.id, error)
            cast(HTTP1Connection, self.request.connection).close()
        finally:
            if ahead is not None:
                ahead.cancel()
