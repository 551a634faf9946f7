"""How the Jupyter server starts its child processes: entry modules, environment, fork wire.

The module paths are stable names: they appear in ``ps`` and in the job table on
disk, where re-adoption after a restart compares them with a live process.
"""

from collections.abc import Mapping

RUNNER_MODULE = "jupyter_forgather_tb.runner"
FORKSERVER_MODULE = "jupyter_forgather_tb.forkserver"
# The largest JSON message on the fork server's control socket.
FORK_MESSAGE_MAX = 1 << 20

# Variables no child of the server inherits (a job, the fork server, a remote listing):
# Jupyter's own credentials.
ENV_DENYLIST = frozenset(
    ("JUPYTER_TOKEN", "JPY_API_TOKEN", "JUPYTERHUB_API_TOKEN", "JPY_SESSION_NAME")
)


def inherited_env(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` as a child of the server gets it: without Jupyter's credentials."""
    return {k: v for k, v in environ.items() if k not in ENV_DENYLIST}
