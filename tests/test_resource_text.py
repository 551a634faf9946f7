"""A job's limits and use as the CLI and the magic print them, from sample job objects.

These are the shapes of the server's job JSON (``limits``, ``usage``, ``queue_reason``);
the real server's answers are checked in test_cli.py, test_client.py and test_magic.py.
"""

from __future__ import annotations

import pytest

from jupyter_forgather_tb.clients.cli import _describe, _jobs_table
from jupyter_forgather_tb.clients.client import ServerInfo
from jupyter_forgather_tb.clients.magic import _failure
from jupyter_forgather_tb.clients.magic import _jobs_table as magic_table
from jupyter_forgather_tb.clients.resources import (
    cpu_column,
    doubled_memory_limit,
    limits_text,
    memory_column,
    short_size,
    size_argument,
    size_text,
    usage_text,
)

MiB, GiB = 2**20, 2**30


def job(status="running", memory=GiB, usage=True, **fields) -> dict:
    """A job object as the server answers it."""
    return {
        "id": "j1",
        "label": "sweep",
        "status": status,
        "created": "2026-01-01T12:00:00+00:00",
        "url": "/base/tb/j1/",
        "options": {"logdir": "/srv/runs", "window_title": "sweep", "priority": 0},
        "queue_position": None,
        "queue_reason": None,
        "error": None,
        "output_tail": [],
        "limits": {
            "memory_bytes": memory,
            "cpu_nice": None,
            "cpu_limit": None,
            "enforced_by": "cgroup1" if memory else None,
        },
        "usage": {
            "rss_bytes": 312 * MiB,
            "pss_bytes": 280 * MiB,
            "cpu_percent": 4.4,
            "peak_bytes": 400 * MiB,
            "sampled_at": "2026-01-01T12:00:05+00:00",
        }
        if usage
        else None,
        **fields,
    }


@pytest.mark.parametrize(
    ("count", "text", "short"),
    [
        (0, "0 B", "0B"),
        (812, "812 B", "812B"),
        (1536, "1.5 KiB", "1.5K"),
        (312.4 * MiB, "312 MiB", "312M"),
        (GiB, "1 GiB", "1G"),
        (3.5 * GiB, "3.5 GiB", "3.5G"),
        (1023.7 * MiB, "1 GiB", "1G"),  # rounds up into the next unit
        (5 * 2**40, "5 TiB", "5T"),
    ],
)
def test_sizes_are_written_in_binary_units(count, text, short):
    assert size_text(count) == text
    assert short_size(count) == short


def test_a_size_argument_is_exact():
    assert size_argument(GiB) == "1G"
    assert size_argument(1536 * MiB) == "1536M"
    assert size_argument(3 * 2**40) == "3T"
    assert size_argument(1000) == "1000"


def test_memory_and_cpu_columns_show_a_running_jobs_sample_against_its_limit():
    assert (memory_column(job()), cpu_column(job())) == ("312M/1G", "4%")
    assert memory_column(job(memory=None)) == "312M"
    assert (memory_column(job(usage=False)), cpu_column(job(usage=False))) == ("-", "-")
    for status in ("queued", "starting", "exited", "failed"):
        assert (memory_column(job(status)), cpu_column(job(status))) == ("-", "-")


def test_limits_and_usage_lines():
    assert limits_text(job()["limits"]) == "memory 1 GiB, enforced by cgroup v1"
    assert limits_text(job(memory=None)["limits"]) == "none"
    assert limits_text(None) == "none"
    every = {"memory_bytes": 512 * MiB, "cpu_nice": 10, "cpu_limit": 1.5, "enforced_by": None}
    assert limits_text(every) == "memory 512 MiB, CPU nice 10, CPU 1.5 cores"
    assert usage_text(job()) == (
        "312 MiB of 1 GiB resident (proportional 280 MiB, peak 400 MiB), CPU 4 %"
    )
    unlimited = job(memory=None)
    unlimited["usage"]["pss_bytes"] = None
    assert usage_text(unlimited) == "312 MiB resident (peak 400 MiB), CPU 4 %"
    assert usage_text(job("exited")) is None and usage_text(job(usage=False)) is None


def test_twice_the_limit_is_offered_only_after_going_over_it():
    over = job("failed", memory=512 * MiB, error="memory limit 512 MiB exceeded (peak 530 MiB)")
    assert doubled_memory_limit(over) == GiB
    assert doubled_memory_limit({**over, "error": "TensorBoard exited with code 1"}) is None
    assert doubled_memory_limit({**over, "status": "running"}) is None
    assert doubled_memory_limit(job("failed", memory=None, error=over["error"])) is None


def test_cli_list_has_memory_and_cpu_columns_and_a_queued_jobs_reason():
    queued = job(
        "queued", usage=False, id="j2", label="later", queue_position=1,
        queue_reason="waiting for memory: 3.5 of 4 GiB in use",
    )  # fmt: skip
    header, running, waiting, reason = _jobs_table([job(), queued]).splitlines()
    assert header.split() == ["ID", "STATUS", "AGE", "MEM", "CPU", "ACTIVITY", "LABEL", "LOGDIR"]
    cells = running.split()
    assert cells[:2] == ["j1", "running"]
    assert cells[3:] == ["312M/1G", "4%", "-", "sweep", "/srv/runs"]
    cells = waiting.split()
    assert cells[:2] == ["j2", "queued"] and cells[3:] == ["-", "-", "-", "later", "/srv/runs"]
    assert reason == "    waiting for memory: 3.5 of 4 GiB in use"
    # Columns line up: MEM starts at the same place in the header and the rows.
    assert header.index("MEM") == running.index("312M/1G") == waiting.index("-  ")


def test_cli_show_prints_limits_usage_the_queue_reason_and_a_retry():
    server = ServerInfo("http://127.0.0.1:8888/base/", "", "test")
    shown = _describe(job(), server).splitlines()
    assert "limits:   memory 1 GiB, enforced by cgroup v1" in shown
    assert (
        "usage:    312 MiB of 1 GiB resident (proportional 280 MiB, peak 400 MiB), CPU 4 %"
    ) in shown
    queued = job("queued", usage=False, queue_reason="waiting for memory: 3.5 of 4 GiB in use")
    shown = _describe(queued, server).splitlines()
    assert "waiting:  waiting for memory: 3.5 of 4 GiB in use" in shown
    assert not any(line.startswith("usage:") for line in shown)
    failed = job(
        "failed", memory=512 * MiB, usage=False,
        error="memory limit 512 MiB exceeded (peak 530 MiB)",
    )  # fmt: skip
    shown = _describe(failed, server).splitlines()
    assert "error:    memory limit 512 MiB exceeded (peak 530 MiB)" in shown
    assert "retry:    jupyter forgather-tb relaunch j1 --memory_limit 1G" in shown
    assert _describe(job(memory=None, usage=False), server).count("limits:   none") == 1


def test_magic_list_shows_memory_and_cpu_in_text_and_html():
    shown = magic_table([job(), job("exited", id="j2", label="old", usage=False)])
    first, second = shown["text/plain"].splitlines()
    assert first.split() == ["j1", "running", "312M/1G", "4%", "sweep", "/srv/runs"]
    assert second.split() == ["j2", "exited", "-", "-", "old", "/srv/runs"]
    markup = shown["text/html"]
    assert "<th>memory</th><th>CPU</th>" in markup
    assert "<td>312M/1G</td><td>4%</td><td>-</td><td>sweep</td>" in markup
    assert "<td>-</td><td>-</td><td>-</td><td>old</td>" in markup


def test_magic_failure_after_going_over_the_limit_says_how_to_relaunch():
    failed = job(
        "failed", memory=512 * MiB, usage=False,
        error="memory limit 512 MiB exceeded (peak 530 MiB)", output_tail=["loading"],
    )  # fmt: skip
    shown = _failure(failed)
    assert shown["text/plain"] == (
        "TensorBoard sweep failed: memory limit 512 MiB exceeded (peak 530 MiB)\nloading\n"
        "To relaunch it with twice the memory: %forgather_tb relaunch j1 --memory_limit 1G"
    )
    assert "<code>%forgather_tb relaunch j1 --memory_limit 1G</code>" in shown["text/html"]
