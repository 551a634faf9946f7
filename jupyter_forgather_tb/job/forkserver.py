"""Warm starts: a process that has imported TensorBoard forks one child per job.

The Jupyter server starts ``python -m jupyter_forgather_tb.forkserver FD`` (with
the configured TensorBoard interpreter) on the first launch. It imports
TensorBoard and its default plugins, prepares the frontend assets once (see
``assets.py``), then forks a child per job that runs ``runner.main``: a new
session, the job's environment and working directory, and stdin/stdout pipes the
Jupyter server made (passed over a Unix socket), so a forked job behaves like one
started with ``python -m jupyter_forgather_tb.runner``. The fork server starts no
thread, so forking it is safe; TensorBoard's data server and gRPC start in the
child. It exits when the Jupyter server closes its end of the socket.

The client half, in the Jupyter server, is :mod:`jupyter_forgather_tb.server.jobs.forkclient`.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import signal
import socket
import sys
from typing import TYPE_CHECKING, Any

from ..common.processes import FORK_MESSAGE_MAX

if TYPE_CHECKING:
    from .servers import AssetsZipProvider

#: Modules of installed plugins whose loaders import them at each start (xprof, and
#: tensorboard-plugin-profile before it).
PLUGIN_MODULES = ("xprof.profile_plugin", "tensorboard_plugin_profile.profile_plugin")

# -- the fork server process ----------------------------------------------------------------


def _warm_up() -> AssetsZipProvider:
    """Import TensorBoard and prepare what every job would otherwise build at start.

    Returns an ``assets_zip_provider`` for ``program.TensorBoard``: the frontend
    files prepared by :mod:`.assets` (complete behind a path prefix), stored
    uncompressed in memory so each job reads them without inflating.
    """
    from tensorboard import default
    from tensorboard.plugins.core import core_plugin

    from . import servers
    from .assets import default_assets, stored_zip

    default.get_plugins()
    # A plugin's loader imports its module at each TensorBoard's start; import the
    # Profile plugin's here (0.26 s, no threads) so forked jobs start without it.
    for module in PLUGIN_MODULES:
        with contextlib.suppress(ImportError):
            importlib.import_module(module)
    servers.make_unix_server_class()
    servers.make_tcp_server_class()
    contents = default_assets()
    # TensorBoard gzips every asset again in each process (a third of a second);
    # compute it once here. core_plugin._gzip is private: without it, jobs still
    # start, only as slowly as a plain subprocess.
    gzip = getattr(core_plugin, "_gzip", None)
    if gzip is not None:
        done = {content: gzip(content) for content in contents.values()}
        core_plugin._gzip = lambda content: done.get(content) or gzip(content)
    return stored_zip(contents)


def _run_child(
    request: dict[str, Any], fds: list[int], closing: list[int], assets: AssetsZipProvider
) -> None:
    """In the forked child: become the job's process and run TensorBoard; never returns."""
    code = 1
    try:
        os.setsid()
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        stdin, stdout = fds
        os.dup2(stdin, 0)
        os.dup2(stdout, 1)
        os.dup2(stdout, 2)
        for fd in (*fds, *closing):
            os.close(fd)
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        from . import runner

        code = runner.main(request["args"], assets_zip_provider=assets)
    except SystemExit as exit_:  # argparse's usage errors, as a plain runner would exit
        code = exit_.code if isinstance(exit_.code, int) else 1
    except BaseException as error:  # report, then leave without running the server's code
        with contextlib.suppress(Exception):
            sys.stderr.write(f"forked TensorBoard job failed: {error!r}\n")
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code if isinstance(code, int) else 1)


def _reap(control: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _send(control, {"exited": pid, "code": os.waitstatus_to_exitcode(status)})


def _send(control: socket.socket, message: dict[str, Any], fds: list[int] | None = None) -> None:
    data = json.dumps(message).encode()
    if fds:
        socket.send_fds(control, [data], fds)
    else:
        control.send(data)


def serve(control_fd: int) -> int:
    """Warm up, then fork a job per request until the Jupyter server closes the socket."""
    import gc
    import selectors
    import threading

    control = socket.socket(fileno=control_fd)
    try:
        assets = _warm_up()
    except Exception as error:
        _send(control, {"ready": False, "error": f"warm-up failed: {error!r}"})
        return 1
    if threading.active_count() != 1:
        _send(control, {"ready": False, "error": "a thread runs after import: unsafe to fork"})
        return 1
    # Keep the warmed-up objects out of the children's garbage collections, so their
    # pages stay shared copy-on-write instead of being touched and copied.
    gc.freeze()
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    selector = selectors.DefaultSelector()
    selector.register(control, selectors.EVENT_READ)
    selector.register(wake_r, selectors.EVENT_READ)
    _send(control, {"ready": True, "pid": os.getpid()})
    while True:
        for key, _ in selector.select():
            if key.fileobj == wake_r:
                os.read(wake_r, 4096)
                _reap(control)
                continue
            message, fds, _, _ = socket.recv_fds(control, FORK_MESSAGE_MAX, 2)
            if not message:
                return 0  # the Jupyter server is gone; running jobs see their stdin close
            request = json.loads(message)
            if len(fds) != 2:
                for fd in fds:
                    os.close(fd)
                _send(control, {"id": request.get("id"), "error": "expected two descriptors"})
                continue
            pid = os.fork()
            if pid == 0:
                inherited = [control.fileno(), wake_r, wake_w, selector.fileno()]
                _run_child(request, fds, inherited, assets)
            for fd in fds:
                os.close(fd)
            _send(control, {"id": request["id"], "pid": pid})
