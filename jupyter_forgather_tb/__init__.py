"""jupyter-forgather-tb: TensorBoard from Jupyter, through Jupyter's own login."""

from __future__ import annotations

import importlib.metadata
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

# One version source: labextension/package.json, read by the build (hatch-nodejs-version)
# into the package's metadata.
__version__ = importlib.metadata.version("jupyter-forgather-tb")


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """Where the prebuilt JupyterLab extension lives (for ``jupyter labextension develop``)."""
    return [{"src": "labextension", "dest": "jupyter-forgather-tb"}]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from .server.app import ForgatherTB

    return [{"module": "jupyter_forgather_tb.server.app", "app": ForgatherTB}]


def scalars(job_or_logdir: Any, runs: Any = None, tags: Any = None, **server: Any) -> Any:
    """A job's scalars as a pandas DataFrame (run, tag, step, wall_time, value).

    See :func:`jupyter_forgather_tb.clients.scalars.scalars`.
    """
    from .clients.scalars import scalars as read

    return read(job_or_logdir, runs, tags, **server)


def load_ipython_extension(ipython: InteractiveShell) -> None:
    """``%load_ext jupyter_forgather_tb`` registers the ``%forgather_tb`` magic."""
    from .clients.magic import load_ipython_extension as load

    load(ipython)
