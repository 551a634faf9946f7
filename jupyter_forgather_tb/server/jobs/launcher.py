"""How a job's process is started: the seam where other ways of running TensorBoard plug in.

A :class:`Launcher` turns a command line and an environment into a running
:class:`~.forkclient.JobProcess`. :class:`SubprocessLauncher` starts a plain
subprocess; :class:`ForkLauncher` forks it from the warm fork server when it can, and
falls back to a plain subprocess otherwise.
"""

from __future__ import annotations

import asyncio
import os
from typing import Protocol

from ...common.processes import inherited_env
from .forkclient import ForkServer, JobProcess


def child_env() -> dict[str, str]:
    """The environment of a job's process: ours, without Jupyter's credentials, no GPU."""
    env = inherited_env(os.environ)
    env["CUDA_VISIBLE_DEVICES"] = ""  # TensorBoard never needs a GPU
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Launcher(Protocol):
    """Starts job processes; each in a session (process group) of its own."""

    async def start(self, argv: list[str]) -> JobProcess:
        """Start a job's process for this command line; OSError if it cannot."""
        ...

    def warm_up(self) -> None:
        """Get ready so that the next start is quick (nothing to do for most)."""
        ...

    async def close(self) -> None:
        """Release what the launcher itself holds (its jobs were stopped first)."""
        ...


class SubprocessLauncher:
    """Starts each job as a plain subprocess with its output on a pipe."""

    async def start(self, argv: list[str]) -> JobProcess:
        """A new subprocess in a session of its own, stdout and stderr on one pipe."""
        return await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
            env=child_env(),
        )

    def warm_up(self) -> None:
        """Nothing to warm up."""

    async def close(self) -> None:
        """Nothing to release."""


class ForkLauncher(SubprocessLauncher):
    """Forks jobs from the warm fork server when it can, else starts a plain subprocess."""

    def __init__(self, fork_server: ForkServer):
        self.fork_server = fork_server

    async def start(self, argv: list[str]) -> JobProcess:
        """A job forked by the fork server, or a plain subprocess while it warms up or failed."""
        proc = await self.fork_server.spawn(argv, child_env())
        return proc if proc is not None else await super().start(argv)

    def warm_up(self) -> None:
        """Start the fork server now, so that the next start is a warm one."""
        self.fork_server.warm_up(child_env())

    async def close(self) -> None:
        """Stop the fork server."""
        await self.fork_server.close()
