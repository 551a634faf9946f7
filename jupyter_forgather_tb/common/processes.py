"""How the Jupyter server starts a job's processes: entry module paths and the fork wire.

The module paths are stable names: they appear in ``ps`` and in the job table on
disk, where re-adoption after a restart compares them with a live process.
"""

RUNNER_MODULE = "jupyter_forgather_tb.runner"
FORKSERVER_MODULE = "jupyter_forgather_tb.forkserver"
# The largest JSON message on the fork server's control socket.
FORK_MESSAGE_MAX = 1 << 20
