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

from array import array
from typing import Any

from tensorboard import context, plugin_util
from tensorboard.data import provider
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
        data = self._provider.read_scalars(
            context.from_environ(environ),
            experiment_id=plugin_util.experiment_id(environ),
            plugin_name=scalar_metadata.PLUGIN_NAME,
            downsample=DOWNSAMPLE,
            run_tag_filter=provider.RunTagFilter(
                runs=sorted({run for run, _ in pairs}), tags=sorted({tag for _, tag in pairs})
            ),
        )
        out = []
        for run, tag in pairs:
            points = data.get(run, {}).get(tag, [])
            out.append(
                encode_series(
                    run,
                    tag,
                    array("q", [p.step for p in points]),
                    array("d", [p.wall_time for p in points]),
                    array("d", [p.value for p in points]),
                )
            )
            data.get(run, {}).pop(tag, None)  # what is encoded can go
        return out


class ExportLoader(base_plugin.TBLoader):  # type: ignore[misc]
    """Loads :class:`ExportPlugin`."""

    def load(self, context: base_plugin.TBContext) -> ExportPlugin:
        """The plugin, reading from TensorBoard's data provider."""
        return ExportPlugin(context)
