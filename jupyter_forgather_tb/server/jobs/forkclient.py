"""The Jupyter server's handle on the fork server: start it on first use, fork jobs through it.

The fork server itself (:mod:`jupyter_forgather_tb.job.forkserver`) imports TensorBoard
once and forks a child per job; this side imports only the standard library.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
from typing import Any, Protocol

from ...common.processes import FORK_MESSAGE_MAX, FORKSERVER_MODULE, RUNNER_MODULE


class JobProcess(Protocol):
    """A job's process as the manager sees it: an asyncio subprocess or a :class:`ForkedProcess`."""

    @property
    def pid(self) -> int: ...
    @property
    def stdout(self) -> asyncio.StreamReader | None: ...
    async def wait(self) -> int: ...


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
        self._starting: asyncio.Task[None] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._children: dict[int, ForkedProcess] = {}
        self._early_exits: dict[int, int] = {}
        self._seq = 0

    @property
    def pid(self) -> int | None:
        """The fork server's pid while it runs."""
        return self._proc.pid if self._proc is not None and self._ready else None

    async def spawn(self, argv: list[str], env: dict[str, str]) -> ForkedProcess | None:
        """Fork a job for a runner command line, or None if the caller should start it itself."""
        runner = [self.python, "-m", RUNNER_MODULE]
        if self.failed or argv[:3] != runner:
            return None
        if not self._ready:
            self.warm_up(env)
            return None
        try:
            return await self._fork(argv[3:], env)
        except (OSError, ConnectionError) as error:
            self._fail(f"could not fork a job: {error}")
            return None

    def warm_up(self, env: dict[str, str]) -> None:
        """Start the fork server now, if it has not started (or failed), for the next job."""
        if not self.failed and self._starting is None:
            self._starting = asyncio.ensure_future(self._start(env))

    async def _start(self, env: dict[str, str]) -> None:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            with open(self.log_file, "ab") as log_file:
                self._proc = await asyncio.create_subprocess_exec(
                    self.python, "-m", FORKSERVER_MODULE, str(child.fileno()),
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
            first = json.loads(await loop.sock_recv(parent, FORK_MESSAGE_MAX) or b"{}")
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
                data = await loop.sock_recv(self._control, FORK_MESSAGE_MAX)
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
