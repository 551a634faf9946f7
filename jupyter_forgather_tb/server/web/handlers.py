"""REST handlers under ``<base_url>forgather-tb/api/``: parse, call the manager, map errors."""

from __future__ import annotations

import asyncio
import json
import os
from concurrent.futures import Executor
from importlib import resources
from typing import Any, Protocol, cast

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from tornado import web
from tornado.iostream import StreamClosedError

from ...common.connections import Connection, check_connection_for, public_view
from ...common.options import LaunchOptions, OptionError, memory_limit, parse_launch, refuse_tcp
from ...common.sources import is_remote, parse_source_url
from ..jobs.errors import BackendFailed, BackendTimeout, JobNotRunning
from ..jobs.job import Job
from ..jobs.manager import (
    JobNotFound,
    JobStillLive,
    ManagerError,
    NotSuspended,
    PortInUse,
    QueueFull,
)
from ..jobs.output import OutputBuffer
from ..logdirs.find import find_logdirs, resolve_logdir, resolve_members
from ..logdirs.remote import ListLimits, RemoteListError, list_remote
from .auth import AUTH_RESOURCE
from .parts import ServerParts
from .preview import PreviewClient, check_tag

MAX_BODY_BYTES = 64 * 1024
MAX_OUTPUT_CHUNK = 256 * 1024
_ERROR_STATUS = {
    JobNotFound: 404,
    PortInUse: 409,
    JobStillLive: 409,
    JobNotRunning: 409,
    NotSuspended: 409,
    QueueFull: 429,
    BackendFailed: 502,
    BackendTimeout: 504,
}
RETRY_AFTER_SECONDS = 5


def error_status(error: ManagerError) -> int:
    """The HTTP status of a manager error: its own class's, or its nearest base's, else 400."""
    for cls in type(error).__mro__:
        if cls in _ERROR_STATUS:
            return _ERROR_STATUS[cls]
    return 400


class BadBody(Exception):
    """A request body that is not one JSON object: answered with ``status`` and the message."""

    def __init__(self, message: str, status: int = 400, field: str | None = None):
        super().__init__(message)
        self.status = status
        self.field = field


class _RepeatedKey(ValueError):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key if len(key) <= 80 else key[:77] + "..."


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refusing a key given twice (json keeps only the last one silently)."""
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise _RepeatedKey(key)
        obj[key] = value
    return obj


def _json_kind(value: Any) -> str:
    """What a JSON value that is not an object is, for an error message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return "a string" if isinstance(value, str) else "an array"


def parse_json_object(body: bytes) -> dict[str, Any]:
    """The JSON object a request body holds, or :class:`BadBody` saying what is wrong."""
    if len(body) > MAX_BODY_BYTES:
        raise BadBody(f"request body is larger than {MAX_BODY_BYTES} bytes", status=413)
    try:
        # Decoded here: jupyter_server's get_json_body answers 500 on invalid UTF-8.
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadBody("the request body must be UTF-8 text") from None
    if not text.strip():
        raise BadBody("the request body must be a JSON object, not empty", field="body")
    try:
        value = json.loads(text, object_pairs_hook=_unique_keys)
    except _RepeatedKey as error:
        raise BadBody(f"request body names {error.key!r} twice in one object") from None
    except ValueError:
        raise BadBody("the request body must be a JSON object, and is not JSON") from None
    if not isinstance(value, dict):
        raise BadBody(
            f"the request body must be a JSON object, not {_json_kind(value)}", field="body"
        )
    return value


def find_connection(
    connections: dict[str, Connection], name: str | None, logdir: str | None
) -> Connection | None:
    """The named connection a launch or a listing asks for, checked against its source.

    Raises :class:`OptionError` (field ``connection``) for a name the server does not
    have (naming those it has), for a connection of another protocol than the URL's,
    and for a connection given with a local log directory.
    """
    if name is None:
        return None
    if name not in connections:
        known = ", ".join(sorted(connections))
        raise OptionError(
            "connection",
            f"no connection named {name!r} on this server "
            + (f"(configured: {known})" if known else "(none are configured)"),
        )
    if not logdir or not is_remote(logdir):
        raise OptionError("connection", "applies only to remote log directories")
    try:
        check_connection_for(parse_source_url(logdir), connections[name])
    except ValueError as error:
        raise OptionError("connection", str(error)) from None
    return connections[name]


class ForgatherTBHandler(ServerParts, APIHandler):
    """Base of our API handlers: the manager, JSON errors, and the auth resource."""

    auth_resource = AUTH_RESOURCE

    @property
    def scan_executor(self) -> Executor:
        """The threads log directory scans run in (never the ones launches use)."""
        return cast(Executor, self.settings["forgather_tb_scan_executor"])

    @property
    def connections(self) -> dict[str, Connection]:
        """The server's named connections, checked at start."""
        return self.manager.settings.connections

    def send_error_json(self, status: int, message: str, **extra: Any) -> None:
        """Finish with ``{"message": ...}`` and a 4xx status, without raising."""
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"message": message, **extra}))

    # The one place where the manager's and the options' errors become HTTP answers:
    # handlers let them propagate, and tornado hands them to these two methods.

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        """Log server faults only: our own errors are answers for the user."""
        if not isinstance(value, (ManagerError, OptionError, BadBody)):
            super().log_exception(typ, value, tb)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Answer our own errors (options, body, manager) with their 4xx and message."""
        error = kwargs["exc_info"][1] if "exc_info" in kwargs else None
        if isinstance(error, OptionError):
            self.send_error_json(400, str(error), field=error.field)
        elif isinstance(error, BadBody):
            field = {"field": error.field} if error.field else {}
            self.send_error_json(error.status, str(error), **field)
        elif isinstance(error, ManagerError):
            if isinstance(error, QueueFull):
                self.set_header("Retry-After", str(RETRY_AFTER_SECONDS))
            self.send_error_json(error_status(error), str(error))
        else:
            super().write_error(status_code, **kwargs)

    def read_json_object(self, empty: dict[str, Any] | None = None) -> dict[str, Any]:
        """The body's JSON object (``empty`` when there is no body and it is given)."""
        body = self.request.body or b""
        if not body and empty is not None:
            return dict(empty)
        return parse_json_object(body)


class JobsHandler(ForgatherTBHandler):
    """``GET jobs``: list; ``POST jobs``: launch or reuse; ``DELETE jobs``: clear ended."""

    @web.authenticated
    @authorized
    def get(self) -> None:
        self.finish(json.dumps([self.manager.job_json(job) for job in self.manager.list()]))

    @web.authenticated
    @authorized
    async def post(self) -> None:
        options, force_new = parse_launch(self.read_json_object())
        config = self.tb_config
        if not config.allow_port:
            refuse_tcp(options)
        _check_launch_connection(options, self.connections)
        loop = asyncio.get_running_loop()
        if options.logdirs is None:
            real = await loop.run_in_executor(
                None, resolve_logdir, options.logdir, config.root_dir, config.roots
            )
            options = options.resolved(real)
        else:
            members = await loop.run_in_executor(
                None, resolve_members, options.logdirs, config.root_dir, config.roots
            )
            options = options.compared(members)
        job, reused = self.manager.launch(options, force_new=force_new)
        self.set_status(200 if reused else 201)
        self.set_header("Location", job.url)
        self.finish(json.dumps({**self.manager.job_json(job), "reused": reused}))

    @web.authenticated
    @authorized
    def delete(self) -> None:
        self.finish(json.dumps({"removed": self.manager.forget_ended()}))


def _check_launch_connection(options: LaunchOptions, connections: dict[str, Connection]) -> None:
    if options.connection is not None:
        find_connection(connections, options.connection, options.logdir or None)


class JobHandler(ForgatherTBHandler):
    """``GET jobs/<id>``: one job; ``DELETE jobs/<id>``: kill or cancel it."""

    @web.authenticated
    @authorized
    def get(self, job_id: str) -> None:
        job = self.manager.get(job_id)
        self.finish(json.dumps(self.manager.job_json(job)))

    @web.authenticated
    @authorized
    async def delete(self, job_id: str) -> None:
        job = await self.manager.kill(job_id)
        self.finish(json.dumps(self.manager.job_json(job)))


class ShareCarrier(Protocol):
    """What a relaunch asks of sharing (the layer above) to carry an ended job's shares."""

    #: Why sharing is refused on this server, or None where it works.
    refusal: str | None

    async def carry(self, old_id: str, new_id: str) -> list[Any]:
        """Share the new job as the ended one was; the shares made."""


class RelaunchHandler(ForgatherTBHandler):
    """``POST jobs/<id>/relaunch``: a new job with an ended job's options.

    The body may give a new ``memory_limit``, and ``keep_shares: true`` to share the new
    job as the old one was; it may be empty.
    """

    @web.authenticated
    @authorized
    async def post(self, job_id: str) -> None:
        self.manager.get(job_id)  # an unknown job is a 404 whatever the body
        body = self.read_json_object(empty={})
        unknown = sorted(set(body) - {"memory_limit", "keep_shares"})
        if unknown:
            raise OptionError(unknown[0], "unknown field (accepted: memory_limit, keep_shares)")
        keep_shares = body.get("keep_shares", False)
        if not isinstance(keep_shares, bool):
            raise BadBody("keep_shares must be true or false", field="keep_shares")
        sharing = cast(ShareCarrier | None, self.settings.get("forgather_tb_sharing"))
        if keep_shares and (sharing is None or sharing.refusal is not None):
            reason = sharing.refusal if sharing is not None else "sharing is not set up"
            raise BadBody(f"keep_shares: {reason}", status=409, field="keep_shares")
        job = self.manager.relaunch(job_id, memory_limit(body.get("memory_limit")))
        answer = self.manager.job_json(job)
        if keep_shares:
            assert sharing is not None
            carried = await sharing.carry(job_id, job.id)
            answer["shares"] = [share.public_json() for share in carried]
        self.set_status(201)
        self.set_header("Location", job.url)
        self.finish(json.dumps(answer))


class ResumeHandler(ForgatherTBHandler):
    """``POST jobs/<id>/resume``: wake a suspended job (as a request to its URL would)."""

    @web.authenticated
    @authorized
    def post(self, job_id: str) -> None:
        job = self.manager.wake(job_id)
        self.finish(json.dumps(self.manager.job_json(job)))


def _offset_arg(handler: ForgatherTBHandler) -> int | None:
    raw = handler.get_query_argument("offset", "0")
    # isascii: str.isdigit also accepts "²", which int() then refuses (a 500).
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        handler.send_error_json(400, "offset must be a whole number of bytes", field="offset")
        return None
    return int(raw)


def _output_json(
    job: Job, output: OutputBuffer, begin: int, data: bytes, requested: int
) -> dict[str, Any]:
    return {
        "offset": begin,
        "next_offset": begin + len(data),
        "text": data.decode("utf-8", errors="replace"),
        "dropped": begin > requested,
        "complete": output.closed and begin + len(data) >= output.end,
        "status": job.status.value,
    }


class OutputHandler(ForgatherTBHandler):
    """``GET jobs/<id>/output?offset=N``: output bytes from an absolute offset."""

    @web.authenticated
    @authorized
    def get(self, job_id: str) -> None:
        offset = _offset_arg(self)
        if offset is None:
            return
        job = self.manager.get(job_id)
        output = self.manager.live(job).output
        begin, data = output.read(offset, MAX_OUTPUT_CHUNK)
        self.finish(json.dumps(_output_json(job, output, begin, data, offset)))


class OutputStreamHandler(ForgatherTBHandler):
    """``GET jobs/<id>/output/stream?offset=N``: the output as server-sent events.

    Each ``output`` event carries the same JSON as the output endpoint; an
    ``end`` event follows when the process has ended and all output was sent.
    """

    keepalive_seconds = 15.0

    def on_connection_close(self) -> None:
        self._closed = True

    @web.authenticated
    @authorized
    async def get(self, job_id: str) -> None:
        self._closed = False
        offset = _offset_arg(self)
        if offset is None:
            return
        job = self.manager.get(job_id)
        self.set_header("Content-Type", "text/event-stream")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Accel-Buffering", "no")
        with self.manager.following_output(job):
            await self._stream(job, offset)

    async def _stream(self, job: Job, offset: int) -> None:
        output = self.manager.live(job).output
        try:
            while not self._closed:
                begin, data = output.read(offset, MAX_OUTPUT_CHUNK)
                if data:
                    payload = json.dumps(_output_json(job, output, begin, data, offset))
                    self.write(f"event: output\ndata: {payload}\n\n")
                    offset = begin + len(data)
                    await self.flush()
                    continue
                if output.closed:
                    self.write(f"event: end\ndata: {json.dumps({'status': job.status.value})}\n\n")
                    break
                self.write(": keepalive\n\n")
                await self.flush()
                await output.wait(offset, self.keepalive_seconds)
            # APIHandler.finish would otherwise label the stream as JSON.
            self.finish(set_content_type="text/event-stream")
        except StreamClosedError:
            pass


class PreviewHandler(ForgatherTBHandler):
    """``GET jobs/<id>/preview?tag=T``: one scalar tag's values per run, for a glance."""

    @property
    def previews(self) -> PreviewClient:
        return cast(PreviewClient, self.settings["forgather_tb_previews"])

    @web.authenticated
    @authorized
    async def get(self, job_id: str) -> None:
        job = self.manager.get(job_id)
        tag = check_tag(self.get_query_argument("tag", None))
        self.manager.check_running(job)
        preview = await self.previews.preview(self.backends.client_for(job), job, tag)
        self.finish(json.dumps(preview))


class LogdirsHandler(ForgatherTBHandler):
    """``GET logdirs?path=...[&connection=NAME]``: directories holding runs, for a picker.

    A remote ``path`` (``s3://...``) is listed by a short-lived process of the job
    side's Python (the server imports no store's client), bounded in time and count.
    """

    @web.authenticated
    @authorized
    async def get(self) -> None:
        path = self.get_query_argument("path", "")
        name = self.get_query_argument("connection", "") or None
        config = self.tb_config
        if is_remote(path):
            await self._remote(path, name)
            return
        if name is not None:
            raise OptionError("connection", "applies only to remote log directories")
        loop = asyncio.get_running_loop()
        top = await loop.run_in_executor(
            self.scan_executor, resolve_logdir, path or ".", config.root_dir, config.roots, "path"
        )
        entries, truncated = await loop.run_in_executor(
            self.scan_executor,
            find_logdirs,
            top,
            config.logdir_scan_depth,
            config.logdir_scan_max_dirs,
            config.logdir_scan_max_entries,
        )
        entries = entries[: config.logdir_scan_max_results]
        self.finish(
            json.dumps(
                {
                    "path": os.path.relpath(top, config.root_dir) if path else "",
                    "logdirs": [entry.to_json(config.root_dir) for entry in entries],
                    "truncated": truncated or len(entries) == config.logdir_scan_max_results,
                }
            )
        )

    async def _remote(self, path: str, name: str | None) -> None:
        try:
            url = str(parse_source_url(path))
        except ValueError as error:
            raise OptionError("path", str(error)) from None
        connection = find_connection(self.connections, name, url)
        config = self.tb_config
        limits = ListLimits(
            max_depth=config.logdir_scan_depth,
            max_dirs=config.logdir_scan_max_dirs,
            max_entries=config.logdir_scan_max_entries,
            max_results=config.logdir_scan_max_results,
            timeout=config.remote_list_timeout,
        )
        try:
            entries, truncated = await list_remote(
                config.tensorboard_python, url, connection, limits, config.s3_endpoint_url or None
            )
        except RemoteListError as error:
            self.send_error_json(error.status, error.message, field="path")
            return
        self.finish(json.dumps({"path": url, "logdirs": entries, "truncated": truncated}))


class ConnectionsHandler(ForgatherTBHandler):
    """``GET connections``: the server's named connections, without their secrets."""

    @web.authenticated
    @authorized
    def get(self) -> None:
        shown = [public_view(conn) for _, conn in sorted(self.connections.items())]
        self.finish(json.dumps({"connections": shown}))


class OpenAPIHandler(ForgatherTBHandler):
    """``GET openapi.json``: this API as an OpenAPI document."""

    _document: bytes | None = None

    @web.authenticated
    @authorized
    def get(self) -> None:
        if OpenAPIHandler._document is None:
            OpenAPIHandler._document = (
                resources.files(__package__).joinpath("openapi.json").read_bytes()
            )
        self.set_header("Content-Type", "application/json")
        self.finish(OpenAPIHandler._document)


def api_handlers(prefix: str) -> list[tuple[str, type[ForgatherTBHandler]]]:
    """Routes of the REST API under ``prefix`` (relative to the server's base_url)."""
    from .export import ScalarsHandler  # it builds on this module's base handler

    job_id = r"(?P<job_id>[^/]+)"
    return [
        (rf"{prefix}/jobs", JobsHandler),
        (rf"{prefix}/jobs/{job_id}", JobHandler),
        (rf"{prefix}/jobs/{job_id}/relaunch", RelaunchHandler),
        (rf"{prefix}/jobs/{job_id}/resume", ResumeHandler),
        (rf"{prefix}/jobs/{job_id}/output", OutputHandler),
        (rf"{prefix}/jobs/{job_id}/output/stream", OutputStreamHandler),
        (rf"{prefix}/jobs/{job_id}/preview", PreviewHandler),
        (rf"{prefix}/jobs/{job_id}/scalars", ScalarsHandler),
        (rf"{prefix}/logdirs", LogdirsHandler),
        (rf"{prefix}/connections", ConnectionsHandler),
        (rf"{prefix}/openapi.json", OpenAPIHandler),
    ]


class TurnedOffHandler(APIHandler):
    """Every route of ours while jobs are off: a 503 saying why, behind Jupyter's login."""

    auth_resource = AUTH_RESOURCE

    def initialize(self, reason: str) -> None:
        """Keep the reason to answer with."""
        self.reason = reason

    def _refuse(self) -> None:
        self.set_status(503)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"message": self.reason}))

    @web.authenticated
    @authorized
    def get(self, *args: str) -> None:
        self._refuse()

    @web.authenticated
    @authorized
    def post(self, *args: str) -> None:
        self._refuse()

    @web.authenticated
    @authorized
    def delete(self, *args: str) -> None:
        self._refuse()


def turned_off_handlers(
    prefix: str, reason: str
) -> list[tuple[str, type[TurnedOffHandler], dict[str, str]]]:
    """Routes that answer every request of ours with ``reason`` (under ``prefix`` and ``tb/``)."""
    return [
        (rf"{prefix}(/.*)?", TurnedOffHandler, {"reason": reason}),
        (r"/tb/(.*)", TurnedOffHandler, {"reason": reason}),
    ]
