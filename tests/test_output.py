"""The bounded output buffer that clients follow by absolute byte offset."""

from __future__ import annotations

import asyncio
import time

import pytest

from jupyter_forgather_tb.server.jobs.output import OutputBuffer

# --- offsets and reading -------------------------------------------------------------------


def test_new_buffer_is_empty_and_open():
    buffer = OutputBuffer(limit=10)
    assert (buffer.start, buffer.end) == (0, 0)
    assert buffer.read(0) == (0, b"")
    assert buffer.closed is False
    assert buffer.tail_lines(5) == []


def test_appends_accumulate_below_the_limit():
    buffer = OutputBuffer(limit=100)
    buffer.append(b"hello ")
    buffer.append(b"world")
    assert (buffer.start, buffer.end) == (0, 11)
    assert buffer.read(0) == (0, b"hello world")
    assert buffer.read(6) == (6, b"world")


def test_offsets_stay_absolute_when_old_bytes_are_dropped():
    buffer = OutputBuffer(limit=10)
    buffer.append(b"0123456789")
    buffer.append(b"abcde")
    assert (buffer.start, buffer.end) == (5, 15)
    assert buffer.read(12) == (12, b"cde")
    assert buffer.read(15) == (15, b"")
    buffer.append(b"fghij")
    assert (buffer.start, buffer.end) == (10, 20)
    assert buffer.read(10) == (10, b"abcdefghij")
    assert buffer.read(17) == (17, b"hij")


def test_a_chunk_larger_than_the_limit_keeps_its_last_bytes():
    buffer = OutputBuffer(limit=4)
    buffer.append(b"ab")
    buffer.append(b"0123456789")
    assert (buffer.start, buffer.end) == (8, 12)
    assert buffer.read(0) == (8, b"6789")


@pytest.mark.parametrize("offset", [0, 1, 4, -3])
def test_read_before_the_kept_start_returns_from_the_start(offset):
    buffer = OutputBuffer(limit=10)
    buffer.append(b"0123456789abcde")
    assert buffer.read(offset) == (5, b"56789abcde")


def test_read_past_the_end_returns_nothing_at_that_offset():
    buffer = OutputBuffer(limit=10)
    buffer.append(b"abc")
    assert buffer.read(3) == (3, b"")
    assert buffer.read(50) == (50, b"")


@pytest.mark.parametrize(
    ("offset", "max_bytes", "expected"),
    [
        (5, 3, (5, b"567")),
        (0, 3, (5, b"567")),  # from the kept start, then capped
        (12, 100, (12, b"cde")),
        (5, 0, (5, b"")),
        (5, None, (5, b"56789abcde")),
    ],
)
def test_max_bytes_caps_a_read(offset, max_bytes, expected):
    buffer = OutputBuffer(limit=10)
    buffer.append(b"0123456789abcde")
    assert buffer.read(offset, max_bytes=max_bytes) == expected


def test_following_by_next_offset_sees_every_kept_byte_once():
    buffer = OutputBuffer(limit=8)
    seen = b""
    offset = 0
    for chunk in [b"abc", b"defg", b"hij"]:
        buffer.append(chunk)
        begin, data = buffer.read(offset, max_bytes=2)
        while data:
            seen += data
            offset = begin + len(data)
            begin, data = buffer.read(offset, max_bytes=2)
    assert seen == b"abcdefghij"
    assert offset == buffer.end == 10


def test_read_returns_bytes_not_a_view():
    buffer = OutputBuffer(limit=10)
    buffer.append(b"abc")
    _, data = buffer.read(0)
    buffer.append(b"0123456789")
    assert type(data) is bytes and data == b"abc"


# --- tail_lines ----------------------------------------------------------------------------


def test_tail_lines_decodes_for_display():
    buffer = OutputBuffer(limit=100)
    buffer.append("one\ntwo\nthr\xe9e\n".encode())
    buffer.append(b"\xff bad byte\n")
    assert buffer.tail_lines(2) == ["thr\xe9e", "\ufffd bad byte"]


@pytest.mark.parametrize(
    ("count", "lines"),
    [(1, ["c"]), (2, ["b", "c"]), (3, ["a", "b", "c"]), (10, ["a", "b", "c"])],
)
def test_tail_lines_returns_at_most_count_lines(count, lines):
    buffer = OutputBuffer(limit=100)
    buffer.append(b"a\r\nb\nc")
    assert buffer.tail_lines(count) == lines


def test_tail_lines_only_sees_kept_bytes():
    buffer = OutputBuffer(limit=6)
    buffer.append(b"first\nsecond\nthird\n")
    assert buffer.tail_lines(10) == ["third"]


def test_tail_lines_zero_returns_no_lines():
    buffer = OutputBuffer(limit=100)
    buffer.append(b"a\nb\n")
    assert buffer.tail_lines(0) == []


# --- close ---------------------------------------------------------------------------------


def test_close_marks_the_end_and_keeps_the_output_readable():
    buffer = OutputBuffer(limit=10)
    buffer.append(b"done")
    buffer.close()
    assert buffer.closed is True
    assert buffer.read(0) == (0, b"done")
    assert buffer.end == 4
    assert buffer.tail_lines(1) == ["done"]


# --- wait ----------------------------------------------------------------------------------


async def test_wait_returns_when_output_arrives():
    buffer = OutputBuffer(limit=100)

    async def later():
        await asyncio.sleep(0.1)
        buffer.append(b"x")

    task = asyncio.ensure_future(later())
    started = time.monotonic()
    await buffer.wait(0, timeout=10)
    assert time.monotonic() - started < 5
    assert buffer.read(0) == (0, b"x")
    await task


async def test_wait_returns_on_close():
    buffer = OutputBuffer(limit=100)
    asyncio.get_running_loop().call_later(0.1, buffer.close)
    started = time.monotonic()
    await buffer.wait(0, timeout=10)
    assert buffer.closed
    assert time.monotonic() - started < 5


async def test_wait_returns_after_the_timeout_when_nothing_comes():
    buffer = OutputBuffer(limit=100)
    started = time.monotonic()
    await buffer.wait(0, timeout=0.2)
    elapsed = time.monotonic() - started
    assert 0.15 < elapsed < 5
    assert buffer.end == 0 and not buffer.closed


async def test_wait_returns_at_once_if_output_is_already_there():
    buffer = OutputBuffer(limit=100)
    buffer.append(b"ready")
    started = time.monotonic()
    await buffer.wait(0, timeout=10)
    await buffer.wait(4, timeout=10)
    assert time.monotonic() - started < 1


async def test_wait_returns_at_once_for_a_dropped_offset():
    buffer = OutputBuffer(limit=4)
    buffer.append(b"0123456789")
    started = time.monotonic()
    await buffer.wait(2, timeout=10)
    assert time.monotonic() - started < 1


async def test_wait_returns_at_once_if_already_closed():
    buffer = OutputBuffer(limit=100)
    buffer.append(b"end")
    buffer.close()
    started = time.monotonic()
    await buffer.wait(3, timeout=10)  # nothing past offset 3, but nothing more will come
    assert time.monotonic() - started < 1


async def test_wait_at_the_end_waits_for_new_output():
    buffer = OutputBuffer(limit=100)
    buffer.append(b"old")
    started = time.monotonic()
    await buffer.wait(3, timeout=0.2)
    assert time.monotonic() - started > 0.15


async def test_one_append_wakes_every_waiter():
    buffer = OutputBuffer(limit=100)
    waiters = [asyncio.ensure_future(buffer.wait(0, timeout=10)) for _ in range(3)]
    await asyncio.sleep(0.05)
    assert not any(w.done() for w in waiters)
    started = time.monotonic()
    buffer.append(b"x")
    await asyncio.wait_for(asyncio.gather(*waiters), timeout=5)
    assert time.monotonic() - started < 5


async def test_wait_can_be_woken_again_after_a_wake():
    buffer = OutputBuffer(limit=100)
    loop = asyncio.get_running_loop()
    loop.call_later(0.05, buffer.append, b"a")
    await buffer.wait(0, timeout=10)
    assert buffer.end == 1
    loop.call_later(0.05, buffer.append, b"b")
    started = time.monotonic()
    await buffer.wait(1, timeout=10)
    assert time.monotonic() - started < 5
    assert buffer.read(1) == (1, b"b")


def test_buffer_made_outside_a_loop_can_be_waited_on_in_one():
    buffer = OutputBuffer(limit=100)  # as when a job is rebuilt before the loop runs

    async def follow():
        asyncio.get_running_loop().call_later(0.05, buffer.append, b"late")
        await buffer.wait(0, timeout=10)
        return buffer.read(0)

    assert asyncio.run(follow()) == (0, b"late")
