"""A bounded buffer of a process's output that readers can follow by byte offset."""

from __future__ import annotations

import asyncio
import contextlib


class OutputBuffer:
    """Keeps the last ``limit`` bytes written; offsets count from the first byte ever written."""

    def __init__(self, limit: int):
        self.limit = limit
        self._data = bytearray()
        self._start = 0  # absolute offset of self._data[0]
        self.closed = False
        self._changed = asyncio.Event()

    @property
    def end(self) -> int:
        """Absolute offset just past the last byte written."""
        return self._start + len(self._data)

    @property
    def start(self) -> int:
        """Absolute offset of the oldest byte still kept."""
        return self._start

    def append(self, chunk: bytes) -> None:
        """Add output, dropping the oldest bytes beyond the limit."""
        self._data += chunk
        overflow = len(self._data) - self.limit
        if overflow > 0:
            del self._data[:overflow]
            self._start += overflow
        self._wake()

    def note(self, text: str) -> None:
        """Add a line of this server's own (not the process's), marked as such."""
        self.append(f"[jupyter-forgather-tb] {text}\n".encode())

    def close(self) -> None:
        """Mark the output complete: the process has ended."""
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def read(self, offset: int, max_bytes: int | None = None) -> tuple[int, bytes]:
        """Bytes from ``offset`` (or from the oldest kept byte, if that is later)."""
        begin = max(offset, self._start)
        data = bytes(self._data[begin - self._start :])
        if max_bytes is not None:
            data = data[:max_bytes]
        return begin, data

    async def wait(self, offset: int, timeout: float) -> None:
        """Return once there is output past ``offset``, the buffer closes, or time runs out."""
        if self.end > offset or self.closed:
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)

    def tail_lines(self, count: int) -> list[str]:
        """The last ``count`` lines, decoded for display."""
        if count <= 0:
            return []
        text = self._data.decode("utf-8", errors="replace")
        return text.splitlines()[-count:]
