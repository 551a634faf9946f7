"""jupyter-forgather-tb: TensorBoard from Jupyter, through Jupyter's own login."""

import importlib.metadata

# One version source: labextension/package.json, read by the build (hatch-nodejs-version)
# into the package's metadata.
__version__ = importlib.metadata.version("jupyter-forgather-tb")


def _jupyter_labextension_paths():
    """Where the prebuilt JupyterLab extension lives (for ``jupyter labextension develop``)."""
    return [{"src": "labextension", "dest": "jupyter-forgather-tb"}]


def _jupyter_server_extension_points():
    from .server.app import ForgatherTB

    return [{"module": "jupyter_forgather_tb.server.app", "app": ForgatherTB}]


def load_ipython_extension(ipython):
    """``%load_ext jupyter_forgather_tb`` registers the ``%forgather_tb`` magic."""
    from .clients.magic import load_ipython_extension as load

    load(ipython)
