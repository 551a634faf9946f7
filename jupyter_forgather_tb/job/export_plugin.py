"""A TensorBoard plugin of ours: many series' scalars in one answer, for the server's exports.

TensorBoard's scalars route answers one run's one tag per request; an export of
thousands of series spent its time on those requests. This route reads the pairs
the server asks for from the job's data provider in one ``read_scalars`` call (both
loaders answer it in bulk: the Rust data server over one gRPC call) and answers them
packed (``common/scalarwire.py``). It lists itself as inactive so TensorBoard's
interface shows no dashboard for it, and it is only reached by the Jupyter server:
the job serves on its own socket, and the ``/tb/`` proxy refuses the plugin's paths.
"""

from __future__ import annotations

from typing import Any

import grpc
import numpy as np
from tensorboard import context, errors, plugin_util
from tensorboard.data import provider
from tensorboard.data.proto import data_provider_pb2
from tensorboard.plugins import base_plugin
from tensorboard.plugins.scalar import metadata as scalar_metadata
from werkzeug import wrappers

from ..common.scalarwire import (
    DOWNSAMPLE,
    PLUGIN_NAME,
    ROUTE,
    WireError,
    encode_series,
    parse_request,
)


class ExportPlugin(base_plugin.TBPlugin):  # type: ignore[misc]
    """``POST data/plugin/forgather_export/scalars``: the asked series, every point, packed."""

    plugin_name = PLUGIN_NAME

    def __init__(self, tb_context: base_plugin.TBContext) -> None:
        self._provider = tb_context.data_provider

    def get_plugin_apps(self) -> dict[str, Any]:
        """The plugin's one route."""
        return {f"/{ROUTE}": self._serve}

    def is_active(self) -> bool:
        """Never: it has no dashboard."""
        return False

    def frontend_metadata(self) -> base_plugin.FrontendMetadata:
        """No dashboard, no reload."""
        return base_plugin.FrontendMetadata(disable_reload=True, tab_name="")

    def _serve(self, environ: dict[str, Any], start_response: Any) -> Any:
        return self._answer(wrappers.Request(environ))(environ, start_response)

    def _answer(self, request: wrappers.Request) -> wrappers.Response:
        if request.method != "POST":
            return wrappers.Response("POST only\n", status=405, content_type="text/plain")
        try:
            pairs = parse_request(request.get_data())
        except WireError as error:
            return wrappers.Response(f"{error}\n", status=400, content_type="text/plain")
        body = b"".join(self.read(request.environ, pairs))
        return wrappers.Response(body, content_type="application/octet-stream")

    def read(self, environ: dict[str, Any], pairs: list[tuple[str, str]]) -> list[bytes]:
        """Each pair's encoded series, in the order asked (no points for one not found)."""
        eid = plugin_util.experiment_id(environ)
        rtf = provider.RunTagFilter(
            runs=sorted({run for run, _ in pairs}), tags=sorted({tag for _, tag in pairs})
        )
        stub = getattr(self._provider, "_stub", None)
        if stub is not None:
            found = _read_rust(stub, eid, rtf)
        else:
            found = _read_any(self._provider, context.from_environ(environ), eid, rtf)
        empty = (b"", b"", b"")
        out = []
        for run, tag in pairs:
            columns = found.pop((run, tag), empty)
            out.append(encode_series(run, tag, len(columns[0]) // 8, columns))
        return out


Columns = tuple[bytes, bytes, bytes]


def _read_any(
    data: provider.DataProvider, ctx: Any, eid: str, rtf: provider.RunTagFilter
) -> dict[tuple[str, str], Columns]:
    """Through the data provider's own interface (TensorBoard's Python loader)."""
    answer = data.read_scalars(
        ctx,
        experiment_id=eid,
        plugin_name=scalar_metadata.PLUGIN_NAME,
        downsample=DOWNSAMPLE,
        run_tag_filter=rtf,
    )
    found = {}
    for run, tags in answer.items():
        for tag, points in tags.items():
            count = len(points)
            found[(run, tag)] = (
                np.fromiter((p.step for p in points), "<i8", count).tobytes(),
                np.fromiter((p.wall_time for p in points), "<f8", count).tobytes(),
                np.fromiter((p.value for p in points), "<f8", count).tobytes(),
            )
    return found


def _read_rust(stub: Any, eid: str, rtf: provider.RunTagFilter) -> dict[tuple[str, str], Columns]:
    """Straight from the Rust data server's ReadScalars answer, its repeated fields packed
    by numpy: TensorBoard's own provider makes a Python object of every point."""
    request = data_provider_pb2.ReadScalarsRequest(experiment_id=eid)
    request.plugin_filter.plugin_name = scalar_metadata.PLUGIN_NAME
    request.run_tag_filter.runs.names[:] = rtf.runs
    request.run_tag_filter.tags.names[:] = rtf.tags
    request.downsample.num_points = DOWNSAMPLE
    try:
        answer = stub.ReadScalars(request)
    except grpc.RpcError as error:
        raise errors.UnknownError(f"the data server failed: {error.code()}") from None
    found = {}
    for run in answer.runs:
        for tag in run.tags:
            data = tag.data
            found[(run.run_name, tag.tag_name)] = (
                np.asarray(data.step, "<i8").tobytes(),
                np.asarray(data.wall_time, "<f8").tobytes(),
                np.asarray(data.value, "<f8").tobytes(),
            )
    return found


class ExportLoader(base_plugin.TBLoader):  # type: ignore[misc]
    """Loads :class:`ExportPlugin`."""

    def load(self, context: base_plugin.TBContext) -> ExportPlugin:
        """The plugin, reading from TensorBoard's data provider."""
        return ExportPlugin(context)
