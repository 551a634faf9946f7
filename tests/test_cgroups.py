"""Per-job control groups on the real kernel: caps, OOM kills, CPU quotas, joining, removal.

The tests that need control groups run where the cgroup v1 memory hierarchy is
writable (as on the project's test machines, as root) and are skipped elsewhere,
saying why. The parsing tests run everywhere.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import data_server_pids, pid_alive

from jupyter_forgather_tb.common.options import build_argv, parse_launch
from jupyter_forgather_tb.server.host import cgroups
from jupyter_forgather_tb.server.host.procfs import read_stat
from jupyter_forgather_tb.server.host.usage import JobTarget, UsageSampler

MiB = 1 << 20


def _own_memory_cgroup() -> str | None:
    with open("/proc/self/cgroup") as lines:
        for line in lines:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            if "memory" in controllers.split(","):
                return "/sys/fs/cgroup/memory" + path.rstrip("/")
    return None


def _v2_has_memory() -> bool:
    for path in ("/sys/fs/cgroup/unified/cgroup.controllers", "/sys/fs/cgroup/cgroup.controllers"):
        with contextlib.suppress(OSError), open(path) as controllers:
            if "memory" in controllers.read().split():
                return True
    return False


_OWN = _own_memory_cgroup()
needs_cgroup1 = pytest.mark.skipif(
    _OWN is None or not os.access(_OWN, os.W_OK),
    reason="the cgroup v1 memory hierarchy (/sys/fs/cgroup/memory) is not writable here",
)


@pytest.fixture
def enforcer():
    found = cgroups.detect("cgroup1")
    if found.enforced_by != "cgroup1":
        pytest.skip(f"cgroup v1 is not usable here: {found.reason}")
    yield found
    found.cleanup()


def _wait_for(condition, what: str, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)
    return result


# -- parsing (pure) ------------------------------------------------------------------------------

MOUNTINFO_V1 = """\
25 30 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
33 25 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
36 33 0:31 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
38 33 0:33 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 33 0:34 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""

# A container: the host's paths of the container's groups are mounted as its roots.
MOUNTINFO_CONTAINER = """\
700 690 0:40 /docker/abc /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup rw,memory
701 690 0:41 /docker/abc /sys/fs/cgroup/cpu rw,nosuid - cgroup cgroup rw,cpu
702 690 0:42 / /sys/fs/cgroup/my\\040groups rw - cgroup2 cgroup2 rw,nsdelegate
"""


def test_mountinfo_gives_each_hierarchy_its_controllers_and_root():
    mounts = cgroups.parse_mountinfo(MOUNTINFO_V1)
    assert [m.mount_point for m in mounts] == [
        "/sys/fs/cgroup/cpu,cpuacct",
        "/sys/fs/cgroup/memory",
        "/sys/fs/cgroup/unified",
    ]
    assert {"cpu", "cpuacct"} <= mounts[0].options
    assert mounts[2].fstype == "cgroup2"
    container = cgroups.parse_mountinfo(MOUNTINFO_CONTAINER)
    assert container[0].root == "/docker/abc" and container[0].read_only
    assert container[2].mount_point == "/sys/fs/cgroup/my groups"


def test_proc_cgroup_maps_each_controller_to_its_path():
    paths = cgroups.parse_proc_cgroup(
        "9:name=systemd:/\n4:memory:/process_api/x\n2:cpu,cpuacct:/a b\n0::/user.slice\n"
    )
    assert paths["memory"] == "/process_api/x"
    assert paths["cpu"] == paths["cpuacct"] == "/a b"
    assert paths[""] == "/user.slice"
    assert paths["name=systemd"] == "/"


def test_a_cgroup_path_is_found_under_the_mount_that_shows_it():
    v1 = cgroups.parse_mountinfo(MOUNTINFO_V1)
    assert cgroups.hierarchy_dir(v1, "memory", "/a/b") == "/sys/fs/cgroup/memory/a/b"
    assert cgroups.hierarchy_dir(v1, "cpu", "/") == "/sys/fs/cgroup/cpu,cpuacct"
    assert cgroups.hierarchy_dir(v1, "", "/") == "/sys/fs/cgroup/unified"
    assert cgroups.hierarchy_dir(v1, "pids", "/") is None
    container = cgroups.parse_mountinfo(MOUNTINFO_CONTAINER)
    assert cgroups.hierarchy_dir(container, "cpu", "/docker/abc/j") == "/sys/fs/cgroup/cpu/j"
    assert cgroups.hierarchy_dir(container, "cpu", "/docker/other") is None  # not visible
    assert cgroups.hierarchy_dir(container, "memory", "/docker/abc") is None  # read-only


def test_keyed_files_and_quotas():
    assert cgroups.parse_keyed("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")["oom_kill"] == 2
    assert cgroups.parse_keyed("low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\n")["max"] == 5
    assert cgroups.cfs_quota(0.5) == 50_000
    assert cgroups.cfs_quota(2) == 200_000
    assert cgroups.cfs_quota(0.001) == cgroups.MIN_CFS_QUOTA_US
    for bad in (0, -1, float("nan")):
        with pytest.raises(ValueError):
            cgroups.cfs_quota(bad)


def test_nice_weights_are_the_kernels():
    assert cgroups.nice_weight(0) == 1024
    assert cgroups.nice_weight(10) == 110
    assert cgroups.nice_weight(-20) == 88761 and cgroups.nice_weight(19) == 15
    with pytest.raises(ValueError):
        cgroups.nice_weight(20)


@pytest.mark.parametrize("job_id", ["", "../x", "a/b", "x" * 65, "tasks.", None, "é"])
def test_job_ids_that_are_not_safe_names_are_refused(job_id):
    with pytest.raises(ValueError):
        cgroups.check_job_id(job_id)


def test_an_unknown_mechanism_is_refused():
    with pytest.raises(ValueError, match="auto, cgroup2, cgroup1, watchdog"):
        cgroups.detect("cgroup3")


def test_the_watchdog_makes_no_groups():
    enforcer = cgroups.detect("watchdog")
    assert enforcer.enforced_by == "watchdog"
    assert not enforcer.limits_cpu
    assert enforcer.create("job1", 100 * MiB, 0.5) is None
    enforcer.cleanup()


# -- detection on this machine -------------------------------------------------------------------


@needs_cgroup1
def test_auto_picks_cgroup1_where_cgroup2_has_no_memory_controller():
    if _v2_has_memory():
        pytest.skip("cgroup v2 offers the memory controller here: auto may pick it")
    enforcer = cgroups.detect("auto")
    try:
        assert enforcer.enforced_by == "cgroup1"
        assert "cgroup2" in enforcer.reason and "memory controller" in enforcer.reason
        assert enforcer.parents[0] == f"{_OWN}/forgather-tb-{os.getpid()}"
        assert os.path.isdir(enforcer.parents[0])
    finally:
        enforcer.cleanup()


@needs_cgroup1
def test_cgroup2_asked_for_where_it_cannot_work_falls_back_to_the_watchdog():
    if _v2_has_memory():
        pytest.skip("cgroup v2 offers the memory controller here")
    enforcer = cgroups.detect("cgroup2")
    assert enforcer.enforced_by == "watchdog"
    assert enforcer.reason.startswith("cgroup2: ")


# -- enforcement ---------------------------------------------------------------------------------

# Joins the groups as the runner does, then allocates MiB one at a time, touching each.
ALLOCATE = """
import sys, time
from jupyter_forgather_tb.job.limits import join_cgroups
join_cgroups(sys.argv[2:])
chunks = []
for _ in range(int(sys.argv[1])):
    chunks.append(bytearray(1 << 20))
    chunks[-1][::4096] = b"1" * 256
print("allocated", flush=True)
time.sleep(600)
"""


def _allocate(mib: int, group: cgroups.JobCgroup) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", ALLOCATE, str(mib), *group.join_files],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


@needs_cgroup1
def test_a_job_over_its_cap_is_oom_killed_inside_its_group_only(enforcer):
    over = enforcer.create("over", 100 * MiB, None)
    under = enforcer.create("under", 400 * MiB, None)
    memsw = os.path.join(over.dirs[0], "memory.memsw.limit_in_bytes")
    if os.path.exists(memsw):  # swap cannot hide the cap
        assert int(Path(memsw).read_text()) == 100 * MiB
    big, small = _allocate(200, over), _allocate(150, under)
    try:
        assert small.stdout.readline() == "allocated\n"
        assert big.wait(timeout=60) == -signal.SIGKILL
        assert big.stdout.read() == ""  # it never got its 200 MiB
        assert over.oom_kills() == 1
        assert 90 * MiB <= over.peak_bytes() <= 100 * MiB
        assert over.pids() == []
        # The other job, under its own cap, and this test process are untouched.
        assert small.poll() is None
        assert under.oom_kills() == 0
        assert under.pids() == [small.pid]
        assert 150 * MiB <= under.usage_bytes() <= 400 * MiB
    finally:
        for proc in (big, small):
            proc.kill()
            proc.wait()
    assert enforcer.release(over)
    assert _wait_for(lambda: under.remove(timeout=5), "the group to empty")
    assert not any(os.path.exists(d) for d in over.dirs + under.dirs)


@needs_cgroup1
def test_a_busy_job_is_held_to_its_cpu_limit(enforcer):
    if not enforcer.limits_cpu:
        pytest.skip("the cgroup v1 cpu hierarchy is not writable here")
    group = enforcer.create("cpu", None, 0.1, cpu_nice=10)
    assert Path(group.dirs[1], "cpu.cfs_quota_us").read_text().strip() == "10000"
    assert Path(group.dirs[1], "cpu.shares").read_text().strip() == "110"
    # All jobs together weigh like one process at the lowest niceness asked.
    assert Path(enforcer.cpu_parent, "cpu.shares").read_text().strip() == "110"
    code = (
        "import sys\n"
        "from jupyter_forgather_tb.job.limits import join_cgroups, set_nice\n"
        "join_cgroups(sys.argv[1:])\n"
        "set_nice(-10)\n"  # as high a priority as can be: only the quota holds it back
        "while True: pass\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, *group.join_files], start_new_session=True)
    try:
        _wait_for(lambda: group.pids() == [proc.pid], "the process to join its group")
        sampler = UsageSampler()
        target = {"cpu": JobTarget(proc.pid, procs_file=group.join_files[0])}
        sampler.sample(target)
        time.sleep(1.5)
        assert sampler.sample(target)["cpu"].cpu_percent < 25  # 10 % of a core, and noise
    finally:
        proc.kill()
        proc.wait()
    assert group.remove(timeout=5)


@needs_cgroup1
def test_a_new_group_starts_afresh_and_bad_requests_leave_nothing(enforcer):
    first = enforcer.create("again", 100 * MiB, None)
    second = enforcer.create("again", None, None)  # the same id, left behind empty
    assert second.dirs == first.dirs[:1]
    assert int(Path(second.dirs[0], "memory.limit_in_bytes").read_text()) > 1 << 50
    assert second.remove()
    for bad in ({"job_id": "../escape"}, {"memory_bytes": -5}, {"cpu_limit": 0}):
        with pytest.raises(ValueError):
            enforcer.create(**{"job_id": "bad", "memory_bytes": MiB, "cpu_limit": None, **bad})
    assert not os.path.exists(os.path.join(enforcer.memory_parent, "job-bad"))


@needs_cgroup1
def test_a_group_the_kernel_refuses_is_an_error_that_leaves_nothing(enforcer):
    if not enforcer.limits_cpu:
        pytest.skip("the cgroup v1 cpu hierarchy is not writable here")
    # The cpu half fails after the memory half was made: the memory half goes too.
    os.rmdir(enforcer.cpu_parent)
    with pytest.raises(cgroups.CgroupError) as error:
        enforcer.create("half", 100 * MiB, 0.5)
    assert "job half" in error.value.message
    assert "No such file or directory" in error.value.message
    assert os.listdir(enforcer.memory_parent) == [
        name for name in os.listdir(enforcer.memory_parent) if not name.startswith("job-")
    ]
    # Without a CPU limit the job still gets its memory group.
    assert enforcer.create("whole", 100 * MiB, None).dirs[0].startswith(enforcer.memory_parent)


@needs_cgroup1
def test_groups_are_removed_once_empty_and_the_parent_on_cleanup(enforcer):
    group = enforcer.create("removal", 200 * MiB, 0.5 if enforcer.limits_cpu else None)
    proc = _allocate(10, group)
    assert proc.stdout.readline() == "allocated\n"
    assert not enforcer.release(group)  # busy: kept for a later sweep
    assert all(os.path.isdir(d) for d in group.dirs)
    assert not enforcer.sweep()
    assert all(os.path.isdir(d) for d in group.dirs)
    proc.kill()
    proc.wait()
    _wait_for(enforcer.sweep, "the sweep to remove the group")
    assert not any(os.path.exists(d) for d in group.dirs)
    assert group.pids() == [] and group.usage_bytes() is None and group.oom_kills() == 0
    parents = list(enforcer.parents)
    enforcer.cleanup()
    assert not any(os.path.exists(parent) for parent in parents)


@needs_cgroup1
def test_leftovers_of_a_server_that_died_are_removed_at_detection():
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    stale = Path(_OWN, f"forgather-tb-{gone.pid}")
    (stale / "job-old").mkdir(parents=True)
    enforcer = cgroups.detect("cgroup1")
    try:
        assert not stale.exists()
    finally:
        enforcer.cleanup()


@needs_cgroup1
def test_leftovers_named_for_a_pid_now_run_elsewhere_are_removed_and_a_live_servers_kept():
    """A pid alive outside this cgroup was reused; one alive in it may be a live server's."""
    elsewhere = Path(_OWN, f"probe-{os.getpid()}")
    elsewhere.mkdir()
    reused = subprocess.Popen(["sleep", "60"])
    here = subprocess.Popen(["sleep", "60"])
    try:
        (elsewhere / "cgroup.procs").write_text(f"{reused.pid}\n")
        stale = Path(_OWN, f"forgather-tb-{reused.pid}")
        kept = Path(_OWN, f"forgather-tb-{here.pid}")
        (stale / "job-old").mkdir(parents=True)
        (kept / "job-live").mkdir(parents=True)
        enforcer = cgroups.detect("cgroup1")
        try:
            assert not stale.exists()
            assert (kept / "job-live").is_dir()
        finally:
            enforcer.cleanup()
    finally:
        for proc in (reused, here):
            proc.kill()
            proc.wait()
        for group in (
            Path(_OWN, f"forgather-tb-{here.pid}") / "job-live",
            Path(_OWN, f"forgather-tb-{here.pid}"),
            elsewhere,
        ):
            with contextlib.suppress(OSError):
                group.rmdir()


@needs_cgroup1
def test_a_job_of_an_earlier_server_is_found_again(enforcer):
    group = enforcer.create("adopt", 100 * MiB, None)
    again = cgroups.detect("cgroup1").find("adopt")
    assert again is not None and again.dirs == group.dirs
    assert enforcer.find("nobody") is None


# -- the runner joins and takes its niceness -----------------------------------------------------


def _scalars_logdir(root: Path, tags: int, steps: int) -> Path:
    """One run with ``tags`` scalar series of ``steps`` points, written by tensorboard's writer."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    run = root / "run1"
    run.mkdir(parents=True)
    writer = EventFileWriter(str(run))
    for step in range(steps):
        values = [
            summary_pb2.Summary.Value(tag=f"tag{i}", simple_value=float(step)) for i in range(tags)
        ]
        writer.add_event(
            event_pb2.Event(wall_time=1.0, step=step, summary=summary_pb2.Summary(value=values))
        )
    writer.close()
    return root


@pytest.fixture(scope="module")
def small_logdir(tmp_path_factory):
    return _scalars_logdir(tmp_path_factory.mktemp("small"), 1, 3)


@pytest.fixture(scope="module")
def big_logdir(tmp_path_factory):
    """300,000 points: a job with the Rust loader is charged about 200 MiB for them."""
    return _scalars_logdir(tmp_path_factory.mktemp("big"), 300, 1000)


def _runner_argv(logdir: Path, sock: str, **limits) -> list[str]:
    options = parse_launch({"logdir": str(logdir), "load_fast": "true"})[0].resolved(str(logdir))
    return build_argv(
        options, python=sys.executable, path_prefix="/tb/x", unix_socket=sock, **limits
    )


def _get(sock: str, path: str) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("localhost", timeout=30)
    connection.sock = socket.socket(socket.AF_UNIX)
    connection.sock.connect(sock)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _serves(sock: str, path: str = "/tb/x/") -> bool:
    try:
        return _get(sock, path)[0] == 200
    except OSError:
        return False


@pytest.fixture
def runner():
    procs = []

    def start(argv):
        procs.append(
            subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
        return procs[-1]

    yield start
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        proc.stdin.close()


def _autogroup_nice(pid: int) -> int:
    return int(Path(f"/proc/{pid}/autogroup").read_text().split()[-1])


@needs_cgroup1
def test_the_runner_and_its_data_server_join_the_group_and_take_the_niceness(
    enforcer, runner, small_logdir, tmp_path
):
    group = enforcer.create("tb", 512 * MiB, None)
    sock = str(tmp_path / "tb.sock")
    proc = runner(_runner_argv(small_logdir, sock, join_cgroups=group.join_files, nice=7))
    _wait_for(lambda: _serves(sock), "TensorBoard to answer")
    data_server = _wait_for(lambda: data_server_pids(proc.pid), "the data server")[0]
    assert set(group.pids()) == {proc.pid, data_server}
    for pid in (proc.pid, data_server):
        assert read_stat(pid).nice == 7  # field 19 of /proc/<pid>/stat
    if os.path.exists(f"/proc/{proc.pid}/autogroup"):
        assert _autogroup_nice(proc.pid) == 7  # the job's session, where autogroup applies


def _all_points(sock: str, tag: str, count: int) -> bool:
    path = f"/tb/x/data/plugin/scalars/scalars?run=run1&tag={tag}"
    try:
        status, body = _get(sock, path)
    except OSError:
        return False
    return status == 200 and len(json.loads(body)) == count


@needs_cgroup1
def test_tensorboard_over_its_cap_is_killed_and_one_under_it_serves(
    enforcer, runner, big_logdir, tmp_path
):
    tight = enforcer.create("tight", 150 * MiB, None)
    roomy = enforcer.create("roomy", 1024 * MiB, None)
    over = runner(_runner_argv(big_logdir, str(tmp_path / "a.sock"), join_cgroups=tight.join_files))
    sock = str(tmp_path / "b.sock")
    under = runner(_runner_argv(big_logdir, sock, join_cgroups=roomy.join_files))
    # The kernel ends the group's largest process (TensorBoard or its data server) once
    # the job needs more than its cap; the server then ends the rest (cgroup v1).
    _wait_for(lambda: tight.oom_kills() >= 1, "an OOM kill in the capped job", timeout=120)
    assert tight.peak_bytes() >= 140 * MiB
    tight.kill()
    _wait_for(lambda: over.poll() is not None, "the capped job to end")
    _wait_for(lambda: tight.pids() == [], "the capped job's processes to go")
    # The job with room serves every point, and nothing of it was killed.
    _wait_for(lambda: _all_points(sock, "tag299", 1000), "every point", timeout=120)
    assert roomy.oom_kills() == 0
    assert under.poll() is None and pid_alive(under.pid)
    assert 150 * MiB < roomy.peak_bytes() < 1024 * MiB


def test_a_group_that_cannot_be_joined_stops_the_runner_before_tensorboard(
    runner, small_logdir, tmp_path
):
    missing = str(tmp_path / "no-such-group" / "cgroup.procs")
    proc = runner(_runner_argv(small_logdir, str(tmp_path / "s.sock"), join_cgroups=[missing]))
    assert proc.wait(timeout=60) == 1
    output = proc.stdout.read().decode()
    assert f"ERROR: could not join the control group {tmp_path / 'no-such-group'}" in output
    assert "TensorBoard" not in output


# -- the fork server's children do it first too --------------------------------------------------


class ForkServer:
    """The real fork server process, driven over its socket as the Jupyter server does."""

    def __init__(self):
        self.control, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyter_forgather_tb.forkserver", str(child.fileno())],
            pass_fds=(child.fileno(),),
            start_new_session=True,
        )
        child.close()
        self.control.settimeout(120)
        ready = json.loads(self.control.recv(1 << 20))
        assert ready.get("ready"), ready
        self.ends = []

    def fork(self, args: list[str]) -> tuple[int, int, int]:
        """A forked job running ``runner.main(args)``: its pid, stdin and stdout ends."""
        stdin_r, stdin_w = os.pipe()
        stdout_r, stdout_w = os.pipe()
        request = {"id": 1, "args": args, "env": dict(os.environ), "cwd": os.getcwd()}
        socket.send_fds(self.control, [json.dumps(request).encode()], [stdin_r, stdout_w])
        os.close(stdin_r)
        os.close(stdout_w)
        reply = json.loads(self.control.recv(1 << 20))
        self.ends += [stdin_w, stdout_r]
        return reply["pid"], stdin_w, stdout_r

    def close(self):
        """Say we are done, read what it still sends (exit notices), then let it exit."""
        for fd in self.ends:
            os.close(fd)
        self.control.shutdown(socket.SHUT_WR)
        while self.control.recv(1 << 20):
            pass
        self.control.close()
        self.proc.wait(timeout=30)


@needs_cgroup1
def test_a_forked_job_joins_its_group_and_takes_its_niceness_first(
    enforcer, small_logdir, tmp_path
):
    group = enforcer.create("forked", 512 * MiB, None)
    sock = str(tmp_path / "f.sock")
    argv = _runner_argv(small_logdir, sock, join_cgroups=group.join_files, nice=5)
    server = ForkServer()
    try:
        pid, _, _ = server.fork(argv[3:])  # what forkclient sends: the runner's arguments
        _wait_for(lambda: _serves(sock), "the forked TensorBoard to answer")
        data_server = _wait_for(lambda: data_server_pids(pid), "the data server")[0]
        assert set(group.pids()) == {pid, data_server}
        assert read_stat(pid).nice == 5 and read_stat(data_server).nice == 5
        if os.path.exists(f"/proc/{pid}/autogroup"):
            assert _autogroup_nice(pid) == 5
        assert read_stat(server.proc.pid).nice == 0  # the fork server itself is untouched
        assert server.proc.pid not in group.pids()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        server.close()
    _wait_for(lambda: group.pids() == [], "the forked job to end")
