"""Warm starts: a process that has imported TensorBoard forks one child per job.

The Jupyter server starts ``python -m jupyter_forgather_tb.forkserver FD`` (with
the configured TensorBoard interpreter) on the first launch. It imports
TensorBoard and its default plugins, prepares the frontend assets once, then
forks a child per job that runs ``runner.main``: a new session, the job's
environment and working directory, and stdin/stdout pipes the Jupyter server
made (passed over a Unix socket), so a forked job behaves like one started
with ``python -m jupyter_forgather_tb.runner``. The fork server starts no
thread, so forking it is safe; TensorBoard's data server and gRPC start in the
child. It exits when the Jupyter server closes its end of the socket.

The client half (:class:`ForkServer`) runs in the Jupyter server and imports
only the standard library.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
from typing import Any

_MAX_MESSAGE = 1 << 20


# -- the fork server process ----------------------------------------------------------------


def _warm_up():
    """Import TensorBoard and prepare what every job would otherwise build at start.

    Returns an ``assets_zip_provider`` for ``program.TensorBoard``: the frontend
    zip, stored uncompressed in memory so each job reads it without inflating.
    """
    import io
    import zipfile

    from tensorboard import assets, default
    from tensorboard.plugins.core import core_plugin

    from . import runner

    default.get_plugins()
    runner._make_unix_server_class()
    with assets.get_default_assets_zip_provider()() as packed, zipfile.ZipFile(packed) as source:
        contents = {name: source.read(name) for name in source.namelist()}
    stored = io.BytesIO()
    with zipfile.ZipFile(stored, "w", zipfile.ZIP_STORED) as target:
        for name, content in contents.items():
            target.writestr(name, content)
    # TensorBoard gzips every asset again in each process (a third of a second);
    # compute it once here. core_plugin._gzip is private: without it, jobs still
    # start, only as slowly as a plain subprocess.
    gzip = getattr(core_plugin, "_gzip", None)
    if gzip is not None:
        done = {content: gzip(content) for content in contents.values()}
        core_plugin._gzip = lambda content: done.get(content) or gzip(content)
    data = stored.getvalue()
    return lambda: io.BytesIO(data)


def _run_child(request: dict, fds: list[int], closing: list[int], assets) -> None:
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


def _send(control: socket.socket, message: dict, fds: list[int] | None = None) -> None:
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
            message, fds, _, _ = socket.recv_fds(control, _MAX_MESSAGE, 2)
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


# -- the client, in the Jupyter server ------------------------------------------------------


class ForkedProcess:
    """A job forked by the fork server, with the parts of ``asyncio.subprocess.Process`` we use."""

    def __init__(self, pid: int, stdout: asyncio.StreamReader, stdin_fd: int):
        self.pid = pid
        self.stdout = stdout
        self.returncode: int | None = None
        self._stdin_fd = stdin_fd
        self._exited = asyncio.get_running_loop().create_future()

    def _set_exit(self, code: int) -> None:
        if not self._exited.done():
            self.returncode = code
            self._exited.set_result(code)
        if self._stdin_fd >= 0:
            os.close(self._stdin_fd)
            self._stdin_fd = -1

    async def wait(self) -> int:
        """Wait for the job to exit; its exit code, negative for a signal as with Popen."""
        return await asyncio.shield(self._exited)


class ForkServer:
    """Starts the fork server on first use and forks jobs through it; ``None`` means fall back.

    A launch made while the fork server is still warming up starts a plain
    subprocess instead of waiting, and so does every launch once the fork
    server has failed: it is never a reason for a job not to start.
    """

    def __init__(self, python: str, log_file: str, log: logging.Logger):
        self.python = python
        self.log_file = log_file
        self.log = log
        self.failed = False
        self._control: socket.socket | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._ready = False
        self._starting: asyncio.Task | None = None
        self._reader: asyncio.Task | None = None
        self._pending: dict[int, asyncio.Future] = {}
        self._children: dict[int, ForkedProcess] = {}
        self._early_exits: dict[int, int] = {}
        self._seq = 0

    @property
    def pid(self) -> int | None:
        """The fork server's pid while it runs."""
        return self._proc.pid if self._proc is not None and self._ready else None

    async def spawn(self, argv: list[str], env: dict[str, str]) -> ForkedProcess | None:
        """Fork a job for a runner command line, or None if the caller should start it itself."""
        runner = [self.python, "-m", "jupyter_forgather_tb.runner"]
        if self.failed or argv[:3] != runner:
            return None
        if not self._ready:
            if self._starting is None:
                self._starting = asyncio.ensure_future(self._start(env))
            return None
        try:
            return await self._fork(argv[3:], env)
        except (OSError, ConnectionError) as error:
            self._fail(f"could not fork a job: {error}")
            return None

    async def _start(self, env: dict[str, str]) -> None:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            with open(self.log_file, "ab") as log_file:
                self._proc = await asyncio.create_subprocess_exec(
                    self.python, "-m", "jupyter_forgather_tb.forkserver", str(child.fileno()),
                    stdin=asyncio.subprocess.DEVNULL, stdout=log_file, stderr=log_file,
                    pass_fds=(child.fileno(),), start_new_session=True, env=env,
                )  # fmt: skip
        except OSError as error:
            parent.close()
            self._fail(f"could not start: {error}")
            return
        finally:
            child.close()
        parent.setblocking(False)
        self._control = parent
        loop = asyncio.get_running_loop()
        try:
            first = json.loads(await loop.sock_recv(parent, _MAX_MESSAGE) or b"{}")
        except (OSError, ValueError) as error:
            first = {"error": repr(error)}
        if not first.get("ready"):
            self._fail(first.get("error") or "it exited while warming up")
            return
        self._ready = True
        self.log.info("TensorBoard fork server ready (pid %s)", self._proc.pid)
        self._reader = asyncio.ensure_future(self._read())

    async def _fork(self, args: list[str], env: dict[str, str]) -> ForkedProcess:
        assert self._control is not None
        loop = asyncio.get_running_loop()
        stdin_r, stdin_w = os.pipe()
        stdout_r, stdout_w = os.pipe()
        self._seq += 1
        answer = loop.create_future()
        self._pending[self._seq] = answer
        request = {"id": self._seq, "args": args, "env": env, "cwd": os.getcwd()}
        try:
            socket.send_fds(self._control, [json.dumps(request).encode()], [stdin_r, stdout_w])
        except OSError:
            self._pending.pop(self._seq, None)
            for fd in (stdin_w, stdout_r):
                os.close(fd)
            raise
        finally:
            os.close(stdin_r)
            os.close(stdout_w)
        try:
            reply = await answer
        except BaseException:
            os.close(stdin_w)
            os.close(stdout_r)
            raise
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(stdout_r, "rb", 0)
        )
        child = ForkedProcess(reply["pid"], reader, stdin_w)
        self._children[child.pid] = child
        if child.pid in self._early_exits:
            self._exit(child.pid, self._early_exits.pop(child.pid))
        return child

    def _exit(self, pid: int, code: int) -> None:
        child = self._children.pop(pid, None)
        if child is None:
            self._early_exits[pid] = code  # reaped before its fork was answered
        else:
            child._set_exit(code)

    async def _read(self) -> None:
        assert self._control is not None
        loop = asyncio.get_running_loop()
        while True:
            try:
                data = await loop.sock_recv(self._control, _MAX_MESSAGE)
            except OSError:
                data = b""
            if not data:
                break
            message: dict[str, Any] = json.loads(data)
            if "exited" in message:
                self._exit(message["exited"], message["code"])
            elif message.get("id") in self._pending:
                answer = self._pending.pop(message["id"])
                if "pid" in message:
                    answer.set_result(message)
                else:
                    answer.set_exception(OSError(message.get("error", "fork failed")))
        self._fail("it exited")

    def _fail(self, why: str) -> None:
        if not self.failed:
            self.log.warning(
                "TensorBoard fork server: %s; jobs start as plain subprocesses from now on", why
            )
        self.failed = True
        self._ready = False
        for answer in self._pending.values():
            if not answer.done():
                answer.set_exception(ConnectionError(why))
        self._pending.clear()
        # Its children can no longer be reaped by us: end them, as a crash would.
        for pid, child in list(self._children.items()):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            child._set_exit(-signal.SIGKILL)
        self._children.clear()
        if self._control is not None:
            self._control.close()
            self._control = None
        if self._proc is not None and self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._proc.pid, signal.SIGKILL)

    async def close(self) -> None:
        """Stop the fork server (its jobs must have been stopped first)."""
        if self._starting is not None and not self._starting.done():
            self._starting.cancel()
        if self._reader is not None:
            self._reader.cancel()
        if self._control is not None:
            self._control.close()
            self._control = None
        if self._proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._proc.pid, signal.SIGKILL)
            await self._proc.wait()


if __name__ == "__main__":
    sys.exit(serve(int(sys.argv[1])))
