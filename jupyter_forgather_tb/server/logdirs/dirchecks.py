"""Whether a job's log directories still exist, asked off the event loop, within a time bound.

A log directory may sit on a network file system that stops answering: a ``stat``
there can block for minutes. The answer a job's JSON shows is therefore the last
one a check in a thread of its own gave; a check that has not answered within
:data:`CHECK_TIMEOUT` makes the answer unknown (None) until it does.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

#: Seconds a check may go unanswered before the answer is unknown.
CHECK_TIMEOUT = 5.0
#: Seconds an answer is shown before a request for the job's JSON checks again.
RECHECK_AFTER = 1.0


@dataclass
class _Check:
    answer: bool | None = None
    asked_at: float | None = None  # when the check in flight started (monotonic); None: none
    answered_at: float = float("-inf")


class DirChecks:
    """The last known answer, per job, to "do all its log directories exist?".

    Each check runs in a daemon thread of its own, one at a time per job: a file
    system that never answers holds one thread per job, and neither the event
    loop nor the server's exit.
    """

    def __init__(self, timeout: float = CHECK_TIMEOUT):
        self.timeout = timeout
        self._checks: dict[str, _Check] = {}

    def answer(self, key: str, paths: Sequence[str]) -> bool | None:
        """The last answer for ``key`` (None while unknown); checks again if due.

        Called on the event loop; never touches the file system itself.
        """
        check = self._checks.setdefault(key, _Check())
        now = time.monotonic()
        if check.asked_at is None and now - check.answered_at >= RECHECK_AFTER:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return check.answer
            check.asked_at = now
            threading.Thread(
                target=self._check,
                args=(loop, check, tuple(paths)),
                name="forgather-tb-dircheck",
                daemon=True,
            ).start()
        if check.asked_at is not None and now - check.asked_at > self.timeout:
            return None
        return check.answer

    def forget(self, key: str) -> None:
        """Drop what is known for ``key`` (its job ended)."""
        self._checks.pop(key, None)

    @staticmethod
    def _check(loop: asyncio.AbstractEventLoop, check: _Check, paths: tuple[str, ...]) -> None:
        exists = all(os.path.isdir(path) for path in paths)
        with contextlib.suppress(RuntimeError):  # the server stopped meanwhile
            loop.call_soon_threadsafe(DirChecks._answered, check, exists)

    @staticmethod
    def _answered(check: _Check, exists: bool) -> None:
        check.answer = exists
        check.asked_at = None
        check.answered_at = time.monotonic()
