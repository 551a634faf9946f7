"""The bounded output buffer that clients follow by absolute byte offset."""

from __future__ import annotations

import asyncio
import time

from jupyter_forgather_tb.output import OutputBuffer


def test_offsets_stay_absolute_when_old_bytes_are_dropped():
    buffer = OutputBuffer(limit=10)
    buffer.append(b"0123456789")
    buffer.append(b"abcde")
    assert (buffer.start, buffer.end) == (5, 15)
    assert buffer.read(12) == (12, b"cde")
    assert buffer.read(0) == (5, b"56789abcde")  # asked for dropped bytes: from the oldest kept
    assert buffer.read(15) == (15, b"")
    assert buffer.read(5, max_bytes=3) == (5, b"567")


def test_tail_lines_decodes_for_display():
    buffer = OutputBuffer(limit=100)
    buffer.append("one\ntwo\nthr\xe9e\n".encode())
    buffer.append(b"\xff bad byte\n")
    assert buffer.tail_lines(2) == ["thr\xe9e", "\ufffd bad byte"]


async def test_wait_returns_when_output_arrives():
    buffer = OutputBuffer(limit=100)

    async def later():
        await asyncio.sleep(0.1)
        buffer.append(b"x")

    task = asyncio.ensure_future(later())
    started = time.monotonic()
    await buffer.wait(0, timeout=5)
    assert time.monotonic() - started < 2
    assert buffer.read(0) == (0, b"x")
    await task


async def test_wait_returns_on_close_and_on_timeout():
    buffer = OutputBuffer(limit=100)
    started = time.monotonic()
    await buffer.wait(0, timeout=0.2)
    assert 0.15 < time.monotonic() - started < 2
    asyncio.get_running_loop().call_later(0.1, buffer.close)
    started = time.monotonic()
    await buffer.wait(0, timeout=5)
    assert buffer.closed and time.monotonic() - started < 2


async def test_wait_returns_at_once_if_output_is_already_there():
    buffer = OutputBuffer(limit=100)
    buffer.append(b"ready")
    started = time.monotonic()
    await buffer.wait(0, timeout=5)
    assert time.monotonic() - started < 0.5
