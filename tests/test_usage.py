"""Live usage of whole jobs from /proc: the pure parsing, then real process trees."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import pid_alive

from jupyter_forgather_tb.server.host.procfs import parse_stat, read_stat
from jupyter_forgather_tb.server.host.usage import (
    JobSample,
    JobTarget,
    UsageSampler,
    cpu_percent,
    limit_error,
    over_limit,
    parse_smaps_rollup,
)

MiB = 1 << 20

# -- pure parsing ------------------------------------------------------------------------------

# A real line's layout; the command name holds a space and both parentheses.
STAT_LINE = (
    "4242 (tb (data) srv) S 4200 4240 4240 0 -1 4194560 9000 0 12 0 "
    "150 30 7 3 30 10 9 0 123456 987654321 2560 18446744073709551615 "
    "1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0\n"
)

SMAPS_ROLLUP = """\
5634a5ff7000-7ffe7fcf7000 ---p 00000000 00:00 0                          [rollup]
Rss:               99328 kB
Pss:               69632 kB
Pss_Anon:          60000 kB
Shared_Clean:      31000 kB
Private_Dirty:     61000 kB
Swap:                  0 kB
"""


def test_stat_fields_are_read_after_the_last_parenthesis():
    stat = parse_stat(STAT_LINE)
    assert stat.state == "S"
    assert stat.session == 4240
    assert stat.cpu_ticks == 150 + 30  # utime + stime, not the children's times
    assert stat.nice == 10
    assert stat.start_time == 123456
    assert stat.rss_pages == 2560


def test_stat_of_a_real_process_matches_what_the_kernel_says_elsewhere():
    stat = read_stat(os.getpid())
    assert stat.session == os.getsid(0)
    assert stat.nice == os.getpriority(os.PRIO_PROCESS, 0)
    with open("/proc/self/statm") as statm:
        resident = int(statm.read().split()[1])
    assert abs(stat.rss_pages - resident) <= resident // 10


def test_smaps_rollup_sizes_are_bytes():
    sizes = parse_smaps_rollup(SMAPS_ROLLUP)
    assert sizes["Rss"] == 99328 * 1024
    assert sizes["Pss"] == 69632 * 1024
    assert sizes["Swap"] == 0
    assert "5634a5ff7000-7ffe7fcf7000 ---p 00000000 00" not in sizes


def test_cpu_percent_is_of_one_core():
    assert cpu_percent(100, 1.0, clock_ticks=100) == 100.0
    assert cpu_percent(50, 2.0, clock_ticks=100) == 25.0
    assert cpu_percent(300, 1.0, clock_ticks=100) == 300.0  # three cores busy
    assert cpu_percent(10, 0.0, clock_ticks=100) == 0.0


def _sample(rss, pss):
    return JobSample(rss, pss, None, rss, 0.0, (1,))


def test_over_limit_needs_rss_and_then_pss_above_the_cap():
    cap = 512 * MiB
    assert not over_limit(_sample(500 * MiB, None), cap)
    assert not over_limit(_sample(600 * MiB, 400 * MiB), cap)  # shared pages: PSS decides
    assert over_limit(_sample(600 * MiB, 530 * MiB), cap)
    assert over_limit(_sample(600 * MiB, None), cap)  # no PSS reading: RSS decides
    assert not over_limit(_sample(10**12, 10**12), None)


def test_the_limit_error_names_the_cap_and_the_peak():
    assert limit_error(512 * MiB, 530 * MiB) == "memory limit 512 MiB exceeded (peak 530 MiB)"
    assert limit_error(2 << 30, None) == "memory limit 2 GiB exceeded"


def test_usage_json_has_the_documented_fields():
    sample = JobSample(3 * MiB, 2 * MiB, 12.5, 4 * MiB, 1700000000.5, (7, 8))
    assert sample.to_json() == {
        "rss_bytes": 3 * MiB,
        "pss_bytes": 2 * MiB,
        "cpu_percent": 12.5,
        "peak_bytes": 4 * MiB,
        "sampled_at": 1700000000.5,
    }


# -- real processes ----------------------------------------------------------------------------

# Touches MiB of memory (one byte per page), prints its pid, then idles or spins.
_TOUCH = "x = bytearray({mib} << 20)\nx[::4096] = b'1' * len(x[::4096])\n"
_CHILD = _TOUCH + "print(flush=True)\n{then}\n"
_PARENT = (
    "import os, subprocess, sys\n"
    "os.setpriority(os.PRIO_PROCESS, 0, {nice})\n"
    "open('/proc/self/autogroup', 'w').write('{nice}') if {nice} else None\n"
    + _TOUCH
    + "child = subprocess.Popen([sys.executable, '-c', {child!r}], stdout=subprocess.PIPE)\n"
    "child.stdout.readline()\n"
    "print(child.pid, flush=True)\n"
    "sys.stdin.read()\n"
)
SLEEP = "import time\ntime.sleep(600)"
SPIN = "while True:\n    pass"


class Tree:
    """A parent and a child in a session of their own, each holding some touched memory.

    Both run at niceness ``nice`` (the child inherits it), and so does the session:
    the kernel shares the CPU between sessions first (autogroup).
    """

    def __init__(self, parent_mib: int, child_mib: int, child_then: str = SLEEP, nice: int = 0):
        child = _CHILD.format(mib=child_mib, then=child_then)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _PARENT.format(mib=parent_mib, child=child, nice=nice)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.pid = self.proc.pid
        self.child = int(self.proc.stdout.readline())

    def end(self):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.proc.wait()
        # The child is not ours to wait for: wait until it is dead (or a zombie).
        deadline = time.monotonic() + 30
        while pid_alive(self.child) and time.monotonic() < deadline:
            time.sleep(0.01)


@pytest.fixture
def tree():
    trees = []

    def make(*args, **kwargs):
        trees.append(Tree(*args, **kwargs))
        return trees[-1]

    yield make
    for made in trees:
        made.end()


def _vm_rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def test_a_job_is_its_whole_session_parent_and_child_summed(tree):
    job = tree(30, 60)
    sampler = UsageSampler()
    sample = sampler.sample({"j": JobTarget(job.pid)})["j"]
    assert set(sample.pids) == {job.pid, job.child}
    assert os.getpid() not in sample.pids
    independent = _vm_rss(job.pid) + _vm_rss(job.child)
    assert abs(sample.rss_bytes - independent) <= independent // 10
    assert sample.rss_bytes > 90 * MiB  # both allocations, not only the first process
    assert sample.peak_bytes == sample.rss_bytes
    assert sample.cpu_percent is None  # a first sample has no interval yet


def test_pss_is_read_a_few_processes_per_round_until_the_job_has_it(tree):
    job = tree(30, 60)
    sampler = UsageSampler(pss_interval=3600, pss_per_round=1)
    first = sampler.sample({"j": JobTarget(job.pid)})["j"]
    assert first.pss_bytes is None  # one of two processes read
    second = sampler.sample({"j": JobTarget(job.pid)})["j"]
    assert second.pss_bytes is not None
    assert 80 * MiB < second.pss_bytes <= second.rss_bytes


def test_busy_and_sleeping_jobs_show_their_cpu_use(tree):
    # The spinning child's session runs at a high priority so that other load on the
    # machine does not hide it; the test is about attribution, not speed.
    busy, idle = tree(1, 1, SPIN, nice=-10 if os.geteuid() == 0 else 0), tree(1, 1, SLEEP)
    sampler = UsageSampler()
    targets = {"busy": JobTarget(busy.pid), "idle": JobTarget(idle.pid)}
    sampler.sample(targets)
    time.sleep(1.0)
    samples = sampler.sample(targets)
    assert samples["busy"].cpu_percent > 50
    assert samples["idle"].cpu_percent < 10


def test_a_job_added_later_is_found_though_its_processes_were_seen_before(tree):
    job, later = tree(1, 1), tree(1, 1)
    sampler = UsageSampler()
    # This round files the later job's processes as nobody's...
    assert set(sampler.sample({"j": JobTarget(job.pid)})["j"].pids) == {job.pid, job.child}
    # ...and this one, with the later job known, must look at them again.
    samples = sampler.sample({"j": JobTarget(job.pid), "k": JobTarget(later.pid)})
    assert set(samples["k"].pids) == {later.pid, later.child}
    assert set(samples["j"].pids) == {job.pid, job.child}


def test_a_child_forked_after_the_first_round_joins_the_sum(tmp_path):
    go = tmp_path / "go"
    code = (
        "import os, subprocess, sys, time\n"
        f"while not os.path.exists({str(go)!r}): time.sleep(0.01)\n"
        "child = subprocess.Popen([sys.executable, '-c', "
        "\"x = bytearray(40 << 20); x[::4096] = b'1' * len(x[::4096]); print(flush=True); "
        'import time; time.sleep(600)"], stdout=subprocess.PIPE)\n'
        "child.stdout.readline()\n"
        "print(child.pid, flush=True)\n"
        "sys.stdin.read()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        sampler = UsageSampler()
        alone = sampler.sample({"j": JobTarget(proc.pid)})["j"]
        assert alone.pids == (proc.pid,)
        go.touch()
        child = int(proc.stdout.readline())
        grown = sampler.sample({"j": JobTarget(proc.pid)})["j"]
        assert set(grown.pids) == {proc.pid, child}
        assert grown.rss_bytes > alone.rss_bytes + 35 * MiB
        assert grown.peak_bytes == grown.rss_bytes
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_the_peak_stays_after_memory_is_freed(tmp_path):
    free = tmp_path / "free"
    code = (
        "import os, sys, time\n"
        "x = bytearray(80 << 20)\nx[::4096] = b'1' * len(x[::4096])\n"
        "print(flush=True)\n"
        f"while not os.path.exists({str(free)!r}): time.sleep(0.01)\n"
        "del x\n"
        "print(flush=True)\n"
        "sys.stdin.read()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        proc.stdout.readline()
        sampler = UsageSampler()
        high = sampler.sample({"j": JobTarget(proc.pid)})["j"]
        free.touch()
        proc.stdout.readline()
        low = sampler.sample({"j": JobTarget(proc.pid)})["j"]
        assert low.rss_bytes < high.rss_bytes - 60 * MiB
        assert low.peak_bytes == high.rss_bytes
    finally:
        proc.kill()
        proc.wait()


def test_shared_pages_do_not_count_twice_against_the_cap():
    # A parent touches 150 MiB, then forks: both map the same pages (copy-on-write),
    # so the session's RSS is about 300 MiB while its PSS is about 150 MiB.
    code = (
        "import os, sys\n"
        "x = bytearray(150 << 20)\nx[::4096] = b'1' * len(x[::4096])\n"
        "if os.fork() == 0:\n"
        "    sys.stdin.read()\n"
        "    os._exit(0)\n"
        "print(flush=True)\n"
        "sys.stdin.read()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        proc.stdout.readline()
        cap = 250 * MiB
        sampler = UsageSampler(pss_interval=3600, pss_per_round=0)
        sample = sampler.sample({"j": JobTarget(proc.pid, memory_cap=cap)})["j"]
        assert len(sample.pids) == 2
        assert sample.rss_bytes > cap  # RSS alone would end this job
        assert sample.pss_bytes is not None  # read at once, above the cap
        assert sample.pss_bytes < cap
        assert not over_limit(sample, cap)
        # The same job with a cap below its real (proportional) use is over it.
        assert over_limit(sample, 100 * MiB)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_a_job_that_allocates_past_its_cap_is_seen_over_it(tmp_path):
    grow = tmp_path / "grow"
    code = (
        "import os, sys, time\n"
        "chunks = []\n"
        "print(flush=True)\n"
        f"while not os.path.exists({str(grow)!r}): time.sleep(0.01)\n"
        "for _ in range(200):\n"
        "    chunks.append(bytearray(1 << 20))\n"
        "    chunks[-1][::4096] = b'1' * 256\n"
        "print(flush=True)\n"
        "sys.stdin.read()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        proc.stdout.readline()
        cap = 100 * MiB
        sampler = UsageSampler()
        target = {"j": JobTarget(proc.pid, memory_cap=cap)}
        assert not over_limit(sampler.sample(target)["j"], cap)
        grow.touch()
        proc.stdout.readline()
        sample = sampler.sample(target)["j"]
        assert over_limit(sample, cap)
        assert sample.peak_bytes > 200 * MiB
    finally:
        proc.kill()
        proc.wait()


def test_jobs_no_longer_asked_for_are_forgotten(tree):
    job = tree(1, 1)
    sampler = UsageSampler()
    sampler.sample({"j": JobTarget(job.pid)})
    assert sampler.sample({}) == {}
    again = sampler.sample({"j": JobTarget(job.pid)})["j"]
    assert again.cpu_percent is None  # a fresh start, not an interval since long ago


def test_an_ended_job_samples_as_empty(tree):
    job = tree(1, 1)
    sampler = UsageSampler()
    sampler.sample({"j": JobTarget(job.pid)})
    job.end()
    sample = sampler.sample({"j": JobTarget(job.pid)})["j"]
    assert sample.pids == ()
    assert sample.rss_bytes == 0 and sample.pss_bytes == 0
    assert sample.peak_bytes > 0
