"""Per-job control groups: the strongest memory and CPU enforcement this machine allows.

:func:`detect` picks, in order:

- ``cgroup2``: the unified hierarchy, when the server's own cgroup (the ``0::``
  line of /proc/self/cgroup) is writable and offers the ``memory`` controller.
  Jobs get ``<own>/forgather-tb-<server pid>/job-<id>`` with ``memory.max``,
  ``memory.swap.max`` 0, ``memory.oom.group`` 1 (an OOM kill ends the whole
  job) and ``cpu.max``.
- ``cgroup1``: the v1 memory hierarchy, writable under the server's own memory
  cgroup: ``<own>/forgather-tb-<server pid>/job-<id>`` with
  ``memory.limit_in_bytes`` and ``memory.memsw.limit_in_bytes`` (where swap is
  accounted, so swapping cannot hide usage from the cap), and likewise in the
  v1 cpu hierarchy for ``cpu.cfs_quota_us``.
- ``watchdog``: no control group; the server samples the job's memory from /proc
  (see ``usage.py``) and ends it above its cap.

The job's runner joins the group itself (``--join-cgroup``, one ``cgroup.procs``
file per hierarchy) before TensorBoard starts, so every process it starts is in
it. Job directories are named ``job-<id>`` so that no job id can collide with a
kernel file such as ``tasks``. Leftover parents of servers that are gone (their pid
no longer runs, or runs outside this cgroup: another process got it) are removed at
detection, when empty.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass

MECHANISMS = ("cgroup2", "cgroup1", "watchdog")
#: ``detect``'s choices: ``auto`` tries cgroup2, then cgroup1; a mechanism's name
#: tries only that one. Either way the watchdog is what remains.
PREFERENCES = ("auto", *MECHANISMS)
PARENT_PREFIX = "forgather-tb-"
JOB_PREFIX = "job-"
#: cgroup v2: the leaf the server moves its cgroup's processes into (see ``_prepare_v2``).
SERVER_LEAF = "forgather-tb-server"
CFS_PERIOD_US = 100_000
MIN_CFS_QUOTA_US = 1_000  # the kernel's minimum

_JOB_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_PARENT_RE = re.compile(re.escape(PARENT_PREFIX) + r"([0-9]+)")
# v1 and v2 names of the files a job's group is read through.
_V1_FILES = {
    "usage": "memory.usage_in_bytes",
    "peak": "memory.max_usage_in_bytes",
    "events": "memory.oom_control",
}
_V2_FILES = {"usage": "memory.current", "peak": "memory.peak", "events": "memory.events"}


class CgroupError(Exception):
    """The kernel refused to set up a job's control group; ``message`` says why."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class _Unusable(Exception):
    """A mechanism cannot be used on this machine (the text says why)."""


# -- pure helpers --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mount:
    """One cgroup file system from /proc/self/mountinfo."""

    root: str  # the cgroup path mounted (not "/" inside some containers)
    mount_point: str
    fstype: str  # "cgroup" (v1) or "cgroup2"
    options: frozenset[str]  # super options: a v1 hierarchy's controllers
    read_only: bool


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal (``\\040``)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), field)


def parse_mountinfo(text: str) -> list[Mount]:
    """The cgroup and cgroup2 mounts listed in a /proc/<pid>/mountinfo text."""
    mounts = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if not sep or len(fields) < 6 or len(tail) < 3 or tail[0] not in ("cgroup", "cgroup2"):
            continue
        mounts.append(
            Mount(
                root=_unescape(fields[3]),
                mount_point=_unescape(fields[4]),
                fstype=tail[0],
                options=frozenset(tail[2].split(",")),
                read_only="ro" in fields[5].split(","),
            )
        )
    return mounts


def parse_proc_cgroup(text: str) -> dict[str, str]:
    """A /proc/<pid>/cgroup text as controller to cgroup path; the v2 path under ``""``.

    ``4:memory:/a`` gives ``{"memory": "/a"}``; ``2:cpu,cpuacct:/b`` gives both
    names; ``0::/c`` gives ``{"": "/c"}``.
    """
    paths = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        for name in controllers.split(",") if controllers else [""]:
            paths[name] = path
    return paths


def hierarchy_dir(mounts: Iterable[Mount], controller: str, path: str) -> str | None:
    """The directory of cgroup ``path`` in the hierarchy of ``controller`` ("" for v2).

    None if no writable mount shows that cgroup.
    """
    for mount in mounts:
        if mount.read_only:
            continue
        if controller and (mount.fstype != "cgroup" or controller not in mount.options):
            continue
        if not controller and mount.fstype != "cgroup2":
            continue
        root = mount.root.rstrip("/")
        if path != root and not path.startswith(root + "/"):
            continue
        return (mount.mount_point.rstrip("/") + path[len(root) :]).rstrip("/") or "/"
    return None


def parse_keyed(text: str) -> dict[str, int]:
    """``name value`` lines (memory.events, memory.oom_control, memory.stat) as a dict."""
    values = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            values[parts[0]] = int(parts[1])
    return values


def cfs_quota(cpu_limit: float, period: int = CFS_PERIOD_US) -> int:
    """The CFS quota in microseconds per ``period`` for a limit in cores (1.5: one and a half)."""
    if not cpu_limit > 0:
        raise ValueError(f"a CPU limit is a number of cores above 0, not {cpu_limit!r}")
    return max(MIN_CFS_QUOTA_US, round(cpu_limit * period))


# The kernel's CPU weight of each niceness from -20 to 19 (sched_prio_to_weight): a
# cgroup v1 ``cpu.shares`` of this weight competes like one process at that niceness.
_NICE_WEIGHTS = (
    88761, 71755, 56483, 46273, 36291, 29154, 23254, 18705, 14949, 11916,
    9548, 7620, 6100, 4904, 3906, 3121, 2501, 1991, 1586, 1277,
    1024, 820, 655, 526, 423, 335, 272, 215, 172, 137,
    110, 87, 70, 56, 45, 36, 29, 23, 18, 15,
)  # fmt: skip


def nice_weight(nice: int) -> int:
    """The CPU weight (``cpu.shares``) of a niceness from -20 to 19."""
    if isinstance(nice, bool) or not isinstance(nice, int) or not -20 <= nice <= 19:
        raise ValueError(f"niceness must be an integer from -20 to 19, not {nice!r}")
    return _NICE_WEIGHTS[nice + 20]


def check_job_id(job_id: str) -> str:
    """A job id usable as a cgroup name, or ValueError."""
    if not isinstance(job_id, str) or not _JOB_ID_RE.fullmatch(job_id):
        raise ValueError(f"job id {job_id!r} is not 1 to 64 of A-Z, a-z, 0-9, _ and -")
    return job_id


# -- file access ---------------------------------------------------------------------------------


def _read(path: str) -> str | None:
    try:
        with open(path) as file:
            return file.read()
    except OSError:
        return None


def _write(path: str, value: object) -> None:
    # One write() per value: the kernel parses each write on its own.
    with open(path, "w") as file:
        file.write(f"{value}\n")


def _pids(procs_file: str) -> list[int]:
    return [int(line) for line in (_read(procs_file) or "").split() if line.isdigit()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _rmdir(path: str) -> bool:
    """Remove one cgroup directory; True if it is gone (or never was)."""
    try:
        os.rmdir(path)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return True


# -- one job's group -----------------------------------------------------------------------------


class JobCgroup:
    """One job's control group: one directory per hierarchy, the memory one first.

    Its readings are None (or 0, or empty) once the group is gone.
    """

    def __init__(self, job_id: str, dirs: list[str], version: int):
        self.job_id = job_id
        self.dirs = dirs
        self.version = version
        self._files = _V2_FILES if version == 2 else _V1_FILES

    @property
    def join_files(self) -> list[str]:
        """The ``cgroup.procs`` files the job's runner writes its pid into."""
        return [os.path.join(directory, "cgroup.procs") for directory in self.dirs]

    def _file(self, kind: str) -> str:
        return os.path.join(self.dirs[0], self._files[kind])

    def _number(self, kind: str) -> int | None:
        text = _read(self._file(kind))
        return int(text) if text and text.strip().isdigit() else None

    def usage_bytes(self) -> int | None:
        """Memory charged to the group now, page cache included."""
        return self._number("usage")

    def peak_bytes(self) -> int | None:
        """The most memory ever charged to the group; None where the kernel keeps no peak."""
        return self._number("peak")

    def oom_kills(self) -> int:
        """How many processes the kernel's OOM killer ended in the group."""
        return parse_keyed(_read(self._file("events")) or "").get("oom_kill", 0)

    def pids(self) -> list[int]:
        """The processes in the group now."""
        return _pids(self.join_files[0])

    def kill(self) -> None:
        """SIGKILL every process in the group (after an OOM kill took only some of them)."""
        kill_file = os.path.join(self.dirs[0], "cgroup.kill")
        if self.version == 2 and os.path.exists(kill_file):
            with contextlib.suppress(OSError):
                _write(kill_file, 1)
            return
        # v1: a process may fork while we kill; a few passes catch its children.
        for _ in range(5):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)

    def remove(self, timeout: float = 0.0) -> bool:
        """Remove the group's directories once its processes are gone; never raises.

        Retries for up to ``timeout`` seconds (a job's last processes may take a
        moment to exit); True when nothing is left. Read what the group counted
        (:meth:`oom_kills`, :meth:`peak_bytes`) before: it goes with it.
        """
        deadline = time.monotonic() + timeout
        while True:
            # A list, not a generator: try every directory, not only up to a busy one.
            if all([_rmdir(directory) for directory in self.dirs]):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)


# -- mechanisms ----------------------------------------------------------------------------------


class Enforcer:
    """What enforces limits here; this base class is the watchdog, which makes no groups.

    ``enforced_by`` names the mechanism; ``reason`` says why a stronger one
    was not used (empty when none was passed over); ``limits_cpu`` is True if
    ``cpu_limit`` can be enforced.
    """

    enforced_by = "watchdog"
    limits_cpu = False

    def __init__(self, reason: str = ""):
        self.reason = reason
        self._leftovers: list[JobCgroup] = []

    def create(
        self,
        job_id: str,
        memory_bytes: int | None,
        cpu_limit: float | None,
        cpu_nice: int | None = None,
    ) -> JobCgroup | None:
        """A new control group for a job capped at ``memory_bytes`` and ``cpu_limit`` cores.

        Where the job gets a CPU group of its own, ``cpu_nice`` sets its weight:
        in a CPU group a process's niceness only ranks it within the group. The
        server's parent group weighs as the lowest niceness asked so far, so all
        jobs together compete with the server's other processes (the user's
        kernels) like one process at that niceness. None for the watchdog.
        Raises :class:`CgroupError` if the kernel refuses (nothing is left
        behind then), ValueError for a bad job id or limit.
        """
        check_job_id(job_id)
        return None

    def find(self, job_id: str) -> JobCgroup | None:
        """The group of a job a previous server started (to re-adopt it), if it is still there."""
        return None

    def release(self, group: JobCgroup) -> bool:
        """Remove an ended job's group now if it is empty, else retry it in :meth:`sweep`."""
        if group.remove():
            return True
        self._leftovers.append(group)
        return False

    def sweep(self) -> bool:
        """Retry removing the groups :meth:`release` could not remove yet; True if none is left.

        Cheap and never blocks: the server can call it with every usage round.
        """
        self._leftovers = [group for group in self._leftovers if not group.remove()]
        return not self._leftovers

    def cleanup(self, timeout: float = 2.0) -> None:
        """On shutdown: remove the groups left and the server's parent groups; never raises."""


class _CgroupEnforcer(Enforcer):
    """The control group mechanisms: job groups under one parent per hierarchy."""

    version = 0

    def __init__(self, parents: list[str], reason: str = ""):
        super().__init__(reason)
        self.parents = parents
        self._lowest_nice: int | None = None

    def create(
        self,
        job_id: str,
        memory_bytes: int | None,
        cpu_limit: float | None,
        cpu_nice: int | None = None,
    ) -> JobCgroup | None:
        check_job_id(job_id)
        # ValueError before anything is made:
        if memory_bytes is not None and (
            isinstance(memory_bytes, bool) or not isinstance(memory_bytes, int) or memory_bytes < 1
        ):
            raise ValueError(f"a memory cap is a number of bytes above 0, not {memory_bytes!r}")
        if cpu_limit is not None:
            cfs_quota(cpu_limit)
        if cpu_nice is not None:
            nice_weight(cpu_nice)
        made: list[str] = []
        try:
            self._make(JOB_PREFIX + job_id, memory_bytes, cpu_limit, cpu_nice, made)
        except OSError as error:
            JobCgroup(job_id, made, self.version).remove()
            raise CgroupError(
                f"could not set up the control group of job {job_id}: "
                f"{error.strerror or error} ({error.filename})"
            ) from None
        return JobCgroup(job_id, made, self.version)

    def _make(
        self,
        name: str,
        memory_bytes: int | None,
        cpu_limit: float | None,
        cpu_nice: int | None,
        made: list[str],
    ) -> None:
        raise NotImplementedError

    def _parent_nice(self, cpu_nice: int) -> int | None:
        """The niceness the parent group should weigh as now, or None if it is unchanged."""
        if self._lowest_nice is not None and self._lowest_nice <= cpu_nice:
            return None
        self._lowest_nice = cpu_nice
        return cpu_nice

    def find(self, job_id: str) -> JobCgroup | None:
        name = JOB_PREFIX + check_job_id(job_id)
        dirs = []
        for parent in self.parents:
            top = os.path.dirname(parent)
            found = [
                os.path.join(top, entry, name)
                for entry in _listdir(top)
                if _PARENT_RE.fullmatch(entry) and os.path.isdir(os.path.join(top, entry, name))
            ]
            dirs += found[:1]
        # The memory group comes first; without it there is nothing to enforce or read.
        if not dirs or os.path.dirname(os.path.dirname(dirs[0])) != os.path.dirname(
            self.parents[0]
        ):
            return None
        return JobCgroup(job_id, dirs, self.version)

    def cleanup(self, timeout: float = 2.0) -> None:
        deadline = time.monotonic() + timeout
        for group in self._leftovers:
            group.remove(max(0.0, deadline - time.monotonic()))
        self._leftovers = []
        for parent in self.parents:
            for entry in _listdir(parent):
                if entry.startswith(JOB_PREFIX):
                    _rmdir(os.path.join(parent, entry))
            _rmdir(parent)
            _remove_stale_parents(os.path.dirname(parent))


class Cgroup1Enforcer(_CgroupEnforcer):
    """cgroup v1: a memory group per job, and a cpu group when a CPU limit is asked."""

    enforced_by = "cgroup1"
    version = 1

    def __init__(self, memory_parent: str, cpu_parent: str | None, reason: str = ""):
        parents = [memory_parent]
        if cpu_parent is not None and cpu_parent != memory_parent:
            parents.append(cpu_parent)
        super().__init__(parents, reason)
        self.memory_parent = memory_parent
        self.cpu_parent = cpu_parent  # the same as memory_parent where both are mounted together
        self.limits_cpu = cpu_parent is not None

    def _make(
        self,
        name: str,
        memory_bytes: int | None,
        cpu_limit: float | None,
        cpu_nice: int | None,
        made: list[str],
    ) -> None:
        memory = os.path.join(self.memory_parent, name)
        _mkdir(memory, made)
        if memory_bytes is not None:
            _write(os.path.join(memory, "memory.limit_in_bytes"), memory_bytes)
            # Memory plus swap: without it, a job at its cap pushes pages out to swap
            # and goes on. The file exists only where swap is accounted (swapaccount=1).
            memsw = os.path.join(memory, "memory.memsw.limit_in_bytes")
            if os.path.exists(memsw):
                _write(memsw, memory_bytes)
        if cpu_limit is not None and self.cpu_parent is not None:
            cpu = os.path.join(self.cpu_parent, name)
            if cpu != memory:
                _mkdir(cpu, made)
            _write(os.path.join(cpu, "cpu.cfs_period_us"), CFS_PERIOD_US)
            _write(os.path.join(cpu, "cpu.cfs_quota_us"), cfs_quota(cpu_limit))
            # Without a CPU group of its own, the job's session carries its niceness
            # (the runner's --nice); in one, the group's weight does.
            if cpu_nice is not None:
                _write(os.path.join(cpu, "cpu.shares"), nice_weight(cpu_nice))
                parent_nice = self._parent_nice(cpu_nice)
                if parent_nice is not None:
                    _write(os.path.join(self.cpu_parent, "cpu.shares"), nice_weight(parent_nice))


class Cgroup2Enforcer(_CgroupEnforcer):
    """cgroup v2: one group per job with the memory (and cpu) controller."""

    enforced_by = "cgroup2"
    version = 2

    def __init__(self, parent: str, limits_cpu: bool, reason: str = ""):
        super().__init__([parent], reason)
        self.limits_cpu = limits_cpu

    def _make(
        self,
        name: str,
        memory_bytes: int | None,
        cpu_limit: float | None,
        cpu_nice: int | None,
        made: list[str],
    ) -> None:
        group = os.path.join(self.parents[0], name)
        _mkdir(group, made)
        if memory_bytes is not None:
            _write(os.path.join(group, "memory.max"), memory_bytes)
            # memory.max caps RAM only: no swap, so the cap is on all the job's memory.
            swap = os.path.join(group, "memory.swap.max")
            if os.path.exists(swap):
                _write(swap, 0)
        # The OOM killer ends the whole job at once rather than one of its processes.
        _write(os.path.join(group, "memory.oom.group"), 1)
        if cpu_limit is not None and self.limits_cpu:
            _write(os.path.join(group, "cpu.max"), f"{cfs_quota(cpu_limit)} {CFS_PERIOD_US}")
        # With the cpu controller every job is a CPU group, where its processes'
        # niceness only ranks them within it: the groups' weights carry cpu_nice.
        if cpu_nice is not None and self.limits_cpu:
            _write(os.path.join(group, "cpu.weight.nice"), cpu_nice)
            parent_nice = self._parent_nice(cpu_nice)
            if parent_nice is not None:
                _write(os.path.join(self.parents[0], "cpu.weight.nice"), parent_nice)


def _mkdir(path: str, made: list[str]) -> None:
    try:
        os.mkdir(path, 0o755)
    except FileExistsError:
        # A group an earlier job with this id left behind: start afresh if it is empty.
        os.rmdir(path)
        os.mkdir(path, 0o755)
    made.append(path)


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


def _may_own(top: str, pid: int) -> bool:
    """True if process ``pid`` may be the server that made a parent group in cgroup ``top``.

    A server makes its parent group in its own cgroup (or, for cgroup v2, in the one
    above the leaf it moved into), so a live process elsewhere got a gone server's
    pid: its name no longer protects the group.
    """
    if pid == os.getpid():
        return True
    if not _alive(pid):
        return False
    return any(
        pid in _pids(os.path.join(directory, "cgroup.procs"))
        for directory in (top, os.path.join(top, SERVER_LEAF))
    )


def _remove_stale_parents(top: str) -> None:
    """Remove the empty parent groups (and empty job groups) of servers that are gone.

    The kernel removes only empty groups: one that still holds a process stays.
    """
    for entry in _listdir(top):
        match = _PARENT_RE.fullmatch(entry)
        if match is None or _may_own(top, int(match[1])):
            continue
        parent = os.path.join(top, entry)
        for job in _listdir(parent):
            if job.startswith(JOB_PREFIX):
                _rmdir(os.path.join(parent, job))
        _rmdir(parent)


# -- detection -----------------------------------------------------------------------------------


def detect(prefer: str = "auto", proc: str = "/proc/self") -> Enforcer:
    """The strongest mechanism allowed here (or the one preferred, if usable); never raises
    for what the machine lacks: the watchdog is always there, with ``reason`` saying why.

    ``prefer`` is one of :data:`PREFERENCES`. Creates the server's parent group(s).
    """
    if prefer not in PREFERENCES:
        raise ValueError(f"limit mechanism must be one of {', '.join(PREFERENCES)}")
    cgroups = parse_proc_cgroup(_read(f"{proc}/cgroup") or "")
    mounts = parse_mountinfo(_read(f"{proc}/mountinfo") or "")
    reasons: list[str] = []
    attempts = [("cgroup2", _prepare_v2), ("cgroup1", _prepare_v1)]
    for name, prepare in attempts:
        if prefer not in ("auto", name):
            continue
        try:
            return prepare(cgroups, mounts, "; ".join(reasons))
        except _Unusable as why:
            reasons.append(f"{name}: {why}")
    return Enforcer("; ".join(reasons) if reasons else "chosen in the configuration")


def _parent_name() -> str:
    return f"{PARENT_PREFIX}{os.getpid()}"


def _prepare_v1(cgroups: dict[str, str], mounts: list[Mount], reason: str) -> Enforcer:
    if "memory" not in cgroups:
        raise _Unusable("no memory controller")
    own = hierarchy_dir(mounts, "memory", cgroups["memory"])
    if own is None or not os.path.exists(os.path.join(own, "memory.limit_in_bytes")):
        raise _Unusable("the memory hierarchy is not mounted writable")
    _remove_stale_parents(own)
    memory_parent = os.path.join(own, _parent_name())
    try:
        os.makedirs(memory_parent, exist_ok=True)
    except OSError as error:
        raise _Unusable(f"cannot create {memory_parent}: {error.strerror}") from None
    if not os.access(os.path.join(memory_parent, "memory.limit_in_bytes"), os.W_OK):
        _rmdir(memory_parent)
        raise _Unusable(f"cannot set limits in {memory_parent}")
    cpu_parent = None
    cpu_own = hierarchy_dir(mounts, "cpu", cgroups.get("cpu", ""))
    if cpu_own == own:  # cpu and memory mounted together: one group per job does both
        cpu_parent = memory_parent
    elif cpu_own is not None and os.path.exists(os.path.join(cpu_own, "cpu.cfs_quota_us")):
        _remove_stale_parents(cpu_own)
        cpu_parent = os.path.join(cpu_own, _parent_name())
        try:
            os.makedirs(cpu_parent, exist_ok=True)
        except OSError:
            cpu_parent = None  # memory limits still work; cpu_limit is not enforced
    return Cgroup1Enforcer(memory_parent, cpu_parent, reason)


def _controllers(directory: str, name: str) -> list[str]:
    return (_read(os.path.join(directory, name)) or "").split()


def _enable(directory: str, controller: str) -> None:
    """Hand ``controller`` to the children of a cgroup (OSError if the kernel refuses)."""
    if controller not in _controllers(directory, "cgroup.subtree_control"):
        _write(os.path.join(directory, "cgroup.subtree_control"), f"+{controller}")


def _delegated(directory: str) -> bool:
    """True if systemd marked the cgroup as delegated to us (a unit with ``Delegate=yes``)."""
    for attribute in ("trusted.delegate", "user.delegate"):
        with contextlib.suppress(OSError):
            if os.getxattr(directory, attribute) == b"1":
                return True
    return False


def _move_processes(source: str, target: str) -> None:
    """Move every process of cgroup ``source`` into ``target`` (a new one may appear meanwhile)."""
    for _ in range(10):
        pids = _pids(os.path.join(source, "cgroup.procs"))
        if not pids:
            return
        for pid in pids:
            try:
                _write(os.path.join(target, "cgroup.procs"), pid)
            except ProcessLookupError:
                continue
    raise OSError(errno.EBUSY, "processes keep appearing", source)


def _prepare_v2(cgroups: dict[str, str], mounts: list[Mount], reason: str) -> Enforcer:
    if "" not in cgroups:
        raise _Unusable("no cgroup2 hierarchy")
    own = hierarchy_dir(mounts, "", cgroups[""])
    if own is None:
        raise _Unusable("the cgroup2 hierarchy is not mounted writable")
    if "memory" not in _controllers(own, "cgroup.controllers"):
        raise _Unusable(f"the memory controller is not available in {own}")
    base = own
    parent_dir = os.path.dirname(own)
    if os.path.basename(own) == SERVER_LEAF and "memory" in _controllers(
        parent_dir, "cgroup.subtree_control"
    ):
        base = parent_dir  # an earlier server here moved us into its leaf already
    if not os.access(base, os.W_OK):
        raise _Unusable(f"{base} is not writable by the server")
    try:
        _enable(base, "memory")
    except OSError as error:
        if error.errno != errno.EBUSY:
            raise _Unusable(f"cannot enable the memory controller in {base}: {error}") from None
        # The "no internal processes" rule: a cgroup with processes of its own cannot
        # hand controllers to children (the root excepted). The processes must move to a
        # leaf first, which is only ours to do in a cgroup delegated to us: a systemd unit
        # with Delegate=yes (systemd marks it), or the root of a container's own cgroup
        # namespace (the path "/"). Elsewhere, systemd or someone else owns the group.
        if not (_delegated(base) or cgroups[""] == "/"):
            raise _Unusable(
                f"{base} holds processes and is not delegated to the server "
                "(systemd Delegate=yes, or a container's private cgroup namespace)"
            ) from None
        try:
            leaf = os.path.join(base, SERVER_LEAF)
            os.makedirs(leaf, exist_ok=True)
            _move_processes(base, leaf)
            _enable(base, "memory")
        except OSError as error:
            raise _Unusable(f"cannot move the server into a leaf of {base}: {error}") from None
    limits_cpu = "cpu" in _controllers(base, "cgroup.controllers")
    if limits_cpu:
        try:
            _enable(base, "cpu")
        except OSError:
            limits_cpu = False  # e.g. a realtime process in the group: memory still works
    _remove_stale_parents(base)
    parent = os.path.join(base, _parent_name())
    try:
        os.makedirs(parent, exist_ok=True)
        _enable(parent, "memory")
        if limits_cpu:
            _enable(parent, "cpu")
    except OSError as error:
        raise _Unusable(f"cannot set up {parent}: {error}") from None
    return Cgroup2Enforcer(parent, limits_cpu, reason)
