"""``GET jobs/<id>/scalars``: a running job's scalars as one streamed download."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import cast

from jupyter_server.auth.decorator import authorized
from tornado import web
from tornado.http1connection import HTTP1Connection
from tornado.iostream import StreamClosedError
from tornado.simple_httpclient import SimpleAsyncHTTPClient

from ..jobs.job import Job
from .handlers import ForgatherTBHandler
from .preview import PreviewClient
from .scalars import (
    MEDIA_TYPES,
    Encoder,
    ParquetUnavailable,
    check_format,
    check_names,
    make_encoder,
    parse_series,
    plan,
)

log = logging.getLogger(__name__)


class Exports:
    """The exports under way: their encoding thread, and how many run per job."""

    def __init__(self, workers: int = 1):
        self.executor = ThreadPoolExecutor(workers, thread_name_prefix="forgather-tb-export")
        self.active: dict[str, int] = {}

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


def _encode(encoder: Encoder, run: str, tag: str, chunks: list[bytes]) -> bytes:
    return encoder.series(parse_series(run, tag, chunks))


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
        index = (await self.previews.tags(client, job, again=True)).index
        pairs = plan(index, runs, tags)
        try:
            encoder = make_encoder(fmt)
        except ParquetUnavailable as error:
            self.send_error_json(501, str(error), field="format")
            return
        self.set_header("Content-Type", MEDIA_TYPES[fmt])
        self.set_header("Content-Disposition", f'attachment; filename="{job.id}-scalars.{fmt}"')
        self.set_header("Cache-Control", "no-store")
        with self.exports.running(job.id):
            try:
                await self._stream(client, job, pairs, encoder, fmt)
            finally:
                encoder.close()

    def _fetch(
        self, client: SimpleAsyncHTTPClient, job: Job, run: str, tag: str
    ) -> asyncio.Future[list[bytes]]:
        query = urllib.parse.urlencode({"run": run, "tag": tag})
        return asyncio.ensure_future(
            self.previews.answer(client, job, "scalars", query, "values of one run's tag")
        )

    async def _stream(
        self,
        client: SimpleAsyncHTTPClient,
        job: Job,
        pairs: list[tuple[str, str]],
        encoder: Encoder,
        fmt: str,
    ) -> None:
        """Send the download piece by piece, asking for the next series while one is sent."""
        loop = asyncio.get_running_loop()
        executor = self.exports.executor
        ahead = self._fetch(client, job, *pairs[0]) if pairs else None
        try:
            self.write(encoder.start())
            for number, (run, tag) in enumerate(pairs):
                assert ahead is not None
                chunks = await ahead
                following = pairs[number + 1] if number + 1 < len(pairs) else None
                ahead = self._fetch(client, job, *following) if following else None
                data = await loop.run_in_executor(executor, _encode, encoder, run, tag, chunks)
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
