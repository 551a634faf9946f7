"""Live memory and CPU usage of whole jobs, read cheaply from /proc.

A job's processes are the members of its session (the runner is the session
leader, so the session id is the runner's pid), or the members of its control
group when it has one. One :class:`UsageSampler` samples every running job in a
single round, meant to be called about once a second:

- one ``listdir("/proc")`` per round finds new processes; a process seen in an
  earlier round and found in no job's session is not read again (a process can
  leave a session but never join another one), so a round reads
  ``/proc/<pid>/stat`` of the jobs' processes and of processes new since the
  last round, nothing else. Jobs with a control group skip the scan and read
  its ``cgroup.procs`` instead.
- ``/proc/<pid>/stat`` alone gives the session, CPU times and resident set
  (its ``rss`` field is the same kernel counter as ``statm``'s resident pages),
  so each process costs one read per round.
- PSS needs ``/proc/<pid>/smaps_rollup``, which walks the process's page
  tables: 2 to 15 ms for one TensorBoard process (forked ones, which map the
  fork server's memory, cost the most), against 0.05 ms for ``stat``. So each
  round refreshes the PSS of at most ``pss_per_round`` processes, the stalest
  first, each at most every ``pss_interval`` seconds; only a job whose RSS is
  above its memory cap gets all its PSS read, in every round it stays there
  (see :func:`over_limit`).

A round without PSS costs about 0.5 ms for 8 jobs of 2 processes; one PSS read
can add 10 ms or more, so the server should run rounds in a worker thread (the
reads release the GIL) rather than on its event loop.

Parsing is pure and kept apart from the reads. Not thread-safe: one round at a time.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ...common.sizes import format_size
from .procfs import ProcStat, read_small, read_stat

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# -- pure parsing ------------------------------------------------------------------------------


def parse_smaps_rollup(text: str) -> dict[str, int]:
    """The ``kB`` lines of ``/proc/<pid>/smaps_rollup`` as bytes: {"Rss": ..., "Pss": ...}."""
    sizes = {}
    for line in text.splitlines():
        name, _, value = line.partition(":")
        parts = value.split()
        if len(parts) == 2 and parts[1] == "kB" and parts[0].isdigit():
            sizes[name] = int(parts[0]) * 1024
    return sizes


def cpu_percent(ticks: int, seconds: float, clock_ticks: int = CLOCK_TICKS) -> float:
    """CPU use over an interval in percent of one core, from clock ticks spent in it."""
    if seconds <= 0:
        return 0.0
    return round(100.0 * ticks / clock_ticks / seconds, 1)


def over_limit(sample: JobSample, cap: int | None) -> bool:
    """True if a job's memory is above its cap, for the watchdog.

    RSS is checked first (cheap, and an upper bound of PSS); above the cap, PSS
    decides, so pages a forked job shares with the fork server or a library
    shared with other processes are not all charged to it. The sampler reads a
    fresh PSS in the round a job's RSS passes its cap. Without a PSS reading,
    RSS decides.
    """
    if cap is None or sample.rss_bytes <= cap:
        return False
    return sample.pss_bytes is None or sample.pss_bytes > cap


def limit_error(cap: int, peak: int | None) -> str:
    """The error of a job ended over its memory limit."""
    if peak is None:
        return f"memory limit {format_size(cap)} exceeded"
    return f"memory limit {format_size(cap)} exceeded (peak {format_size(peak)})"


# -- samples -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobTarget:
    """How to find a job's processes: its session, or its control group's ``cgroup.procs``.

    ``memory_cap`` (bytes) makes the sampler read a fresh PSS when RSS passes it.
    """

    session: int
    procs_file: str | None = None
    memory_cap: int | None = None


@dataclass(frozen=True)
class JobSample:
    """One job's usage at one moment: the sums over all its processes.

    ``cpu_percent`` is None on a job's first sample (it needs an interval);
    ``pss_bytes`` is None until every process of the job has had its PSS read.
    ``peak_bytes`` is the highest ``rss_bytes`` sampled so far.
    """

    rss_bytes: int
    pss_bytes: int | None
    cpu_percent: float | None
    peak_bytes: int
    sampled_at: float  # seconds since the epoch
    pids: tuple[int, ...]

    def to_json(self) -> dict[str, Any]:
        """The ``usage`` object of a job's JSON."""
        return {
            "rss_bytes": self.rss_bytes,
            "pss_bytes": self.pss_bytes,
            "cpu_percent": self.cpu_percent,
            "peak_bytes": self.peak_bytes,
            "sampled_at": self.sampled_at,
        }


# -- reading /proc -----------------------------------------------------------------------------


def read_pss(pid: int, proc: str = "/proc") -> int | None:
    """A process's proportional set size in bytes, or None if it is gone (or unreadable)."""
    text = read_small(f"{proc}/{pid}/smaps_rollup")
    return parse_smaps_rollup(text).get("Pss") if text else None


def read_pids(procs_file: str) -> list[int]:
    """The pids listed in a control group's ``cgroup.procs``; empty if it is gone."""
    text = read_small(procs_file) or ""
    return [int(line) for line in text.split() if line.isdigit()]


@dataclass
class _Process:
    start_time: int
    cpu_ticks: int  # at the last round
    pss: int | None = None
    pss_at: float = float("-inf")  # monotonic time of the PSS reading


@dataclass
class _JobState:
    processes: dict[int, _Process] = field(default_factory=dict)
    sampled: float | None = None  # monotonic time of the last round
    peak: int = 0


class UsageSampler:
    """Samples the usage of all running jobs together; see the module's docstring."""

    def __init__(self, pss_interval: float = 30.0, pss_per_round: int = 1, proc: str = "/proc"):
        self.pss_interval = pss_interval
        self.pss_per_round = pss_per_round
        self.proc = proc
        self._jobs: dict[str, _JobState] = {}
        self._sessions: frozenset[int] = frozenset()
        self._others: set[int] = set()  # live pids found in no job's session

    def sample(self, targets: Mapping[str, JobTarget]) -> dict[str, JobSample]:
        """One round: the usage of each job in ``targets`` (job id to target).

        Jobs missing from ``targets`` are forgotten (their peak with them).
        """
        now, wall = time.monotonic(), time.time()
        for gone in set(self._jobs) - set(targets):
            del self._jobs[gone]
        members = self._session_members(
            target.session for target in targets.values() if target.procs_file is None
        )
        stats: dict[str, dict[int, ProcStat]] = {}
        for job_id, target in targets.items():
            if target.procs_file is not None:
                stats[job_id] = self._read_stats(read_pids(target.procs_file))
            else:
                stats[job_id] = members.get(target.session, {})
        samples = {}
        due: list[tuple[float, _Process, int]] = []
        for job_id, target in targets.items():
            state = self._jobs.setdefault(job_id, _JobState())
            cpu = self._track(state, stats[job_id], now)
            rss = sum(stat.rss_pages for stat in stats[job_id].values()) * PAGE_SIZE
            if target.memory_cap is not None and rss > target.memory_cap:
                for pid, process in state.processes.items():
                    self._read_pss(process, pid, now)
            else:
                due += [
                    (process.pss_at, process, pid)
                    for pid, process in state.processes.items()
                    if now - process.pss_at >= self.pss_interval
                ]
            state.peak = max(state.peak, rss)
            samples[job_id] = (state, rss, cpu)
        # The stalest first; the pid only breaks ties.
        for _, process, pid in sorted(due, key=lambda item: (item[0], item[2]))[
            : self.pss_per_round
        ]:
            self._read_pss(process, pid, now)
        return {
            job_id: JobSample(
                rss_bytes=rss,
                pss_bytes=_sum_or_none(process.pss for process in state.processes.values()),
                cpu_percent=cpu,
                peak_bytes=state.peak,
                sampled_at=wall,
                pids=tuple(sorted(state.processes)),
            )
            for job_id, (state, rss, cpu) in samples.items()
        }

    def _read_stats(self, pids: Iterable[int]) -> dict[int, ProcStat]:
        stats = {}
        for pid in pids:
            stat = read_stat(pid, self.proc)
            if stat is not None and stat.state != "Z":
                stats[pid] = stat
        return stats

    def _session_members(self, sessions: Iterable[int]) -> dict[int, dict[int, ProcStat]]:
        """The live processes of each session, reading only processes not known as others."""
        wanted = frozenset(sessions)
        if not wanted:
            return {}
        if wanted != self._sessions:
            # A new job's processes may have been filed as others before it was known.
            self._others.clear()
            self._sessions = wanted
        try:
            listed = {int(name) for name in os.listdir(self.proc) if name.isdigit()}
        except OSError:
            return {}
        self._others &= listed
        members: dict[int, dict[int, ProcStat]] = {session: {} for session in wanted}
        for pid, stat in self._read_stats(listed - self._others).items():
            if stat.session in wanted:
                members[stat.session][pid] = stat
            else:
                self._others.add(pid)
        return members

    @staticmethod
    def _track(state: _JobState, stats: dict[int, ProcStat], now: float) -> float | None:
        """Update a job's processes to this round's; its CPU percent since the last round."""
        last = state.sampled
        first = last is None
        ticks = 0
        processes = {}
        for pid, stat in stats.items():
            process = state.processes.get(pid)
            if process is None or process.start_time != stat.start_time:
                # New since the last round: all its ticks were spent in the interval.
                process = _Process(stat.start_time, stat.cpu_ticks if first else 0)
            ticks += stat.cpu_ticks - process.cpu_ticks
            process.cpu_ticks = stat.cpu_ticks
            processes[pid] = process
        cpu = None if last is None else cpu_percent(ticks, now - last)
        state.processes = processes
        state.sampled = now
        return cpu

    def _read_pss(self, process: _Process, pid: int, now: float) -> None:
        process.pss = read_pss(pid, self.proc)
        process.pss_at = now


def _sum_or_none(values: Iterable[int | None]) -> int | None:
    total = 0
    for value in values:
        if value is None:
            return None
        total += value
    return total
