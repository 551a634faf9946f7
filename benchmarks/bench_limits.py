"""Memory of a default job, and what sampling the usage of running jobs costs the server.

``python benchmarks/bench_limits.py`` (as root for the control group figures):

1. A default job (the runner as the server starts it: a Unix socket, a private
   network, ``load_fast`` auto) on a small log directory, started plain and
   forked by the fork server: RSS, PSS and private memory summed over its
   processes, and what its control group was charged (cgroup v1), after one
   scalars request. This is what a default ``memory_limit`` must leave room for.
2. ``--jobs`` such jobs running (forked), sampled by ``UsageSampler``: the time of
   one round (session scan, or control groups), and the server CPU it costs at
   one round per second, with PSS read one process per round as by default.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from jupyter_forgather_tb.common.options import build_argv, parse_launch  # noqa: E402
from jupyter_forgather_tb.server.host import cgroups  # noqa: E402
from jupyter_forgather_tb.server.host.usage import JobTarget, UsageSampler  # noqa: E402

MiB = 1 << 20


def write_logdir(path: Path) -> Path:
    """Two runs of a few scalars, as the tests' small log directory."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    for run, values in (("run1", [1.0, 0.5, 0.25]), ("run2", [2.0, 1.5])):
        (path / run).mkdir(parents=True)
        writer = EventFileWriter(str(path / run))
        for step, value in enumerate(values):
            summary = summary_pb2.Summary(
                value=[summary_pb2.Summary.Value(tag="loss", simple_value=value)]
            )
            writer.add_event(event_pb2.Event(wall_time=1.7e9, step=step, summary=summary))
        writer.close()
    return path


def runner_args(logdir: Path, sock: str, join: list[str]) -> list[str]:
    options = parse_launch({"logdir": str(logdir)})[0].resolved(str(logdir))
    argv = build_argv(
        options,
        python=sys.executable,
        path_prefix="/tb/x",
        unix_socket=sock,
        private_network=True,
        join_cgroups=join,
    )
    return argv[3:]


def get(sock: str, path: str) -> int:
    connection = http.client.HTTPConnection("localhost", timeout=30)
    connection.sock = socket.socket(socket.AF_UNIX)
    try:
        connection.sock.connect(sock)
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        return response.status
    except OSError:
        return 0
    finally:
        connection.close()


def wait_serving(sock: str) -> None:
    deadline = time.monotonic() + 120
    while get(sock, "/tb/x/data/plugin/scalars/scalars?run=run1&tag=loss") != 200:
        if time.monotonic() > deadline:
            raise SystemExit(f"no answer on {sock}")
        time.sleep(0.1)


def session_pids(session: int) -> list[int]:
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as stat:
                    if int(stat.read().rsplit(")", 1)[1].split()[3]) == session:
                        pids.append(int(name))
            except (OSError, IndexError, ValueError):
                continue
    return pids


def memory_of(pids: list[int]) -> dict[str, int]:
    totals = {"rss": 0, "pss": 0, "private": 0}
    for pid in pids:
        sizes = {}
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                name, _, value = line.partition(":")
                if value.strip().endswith("kB"):
                    sizes[name] = int(value.split()[0]) * 1024
        totals["rss"] += sizes["Rss"]
        totals["pss"] += sizes["Pss"]
        totals["private"] += sizes["Private_Clean"] + sizes["Private_Dirty"]
    return totals


class ForkServer:
    """The real fork server, driven over its socket as the Jupyter server does."""

    def __init__(self):
        self.control, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyter_forgather_tb.forkserver", str(child.fileno())],
            pass_fds=(child.fileno(),),
            start_new_session=True,
            cwd=ROOT,
        )
        child.close()
        ready = json.loads(self.control.recv(1 << 20))
        if not ready.get("ready"):
            raise SystemExit(f"fork server: {ready}")
        self.ends: list[int] = []

    def fork(self, args: list[str]) -> int:
        stdin_r, stdin_w = os.pipe()
        stdout_r, stdout_w = os.pipe()
        request = {"id": 1, "args": args, "env": dict(os.environ), "cwd": str(ROOT)}
        socket.send_fds(self.control, [json.dumps(request).encode()], [stdin_r, stdout_w])
        os.close(stdin_r)
        os.close(stdout_w)
        self.ends += [stdin_w, stdout_r]
        return json.loads(self.control.recv(1 << 20))["pid"]

    def close(self):
        """Say we are done, read what it still sends (exit notices), then let it exit."""
        for fd in self.ends:
            os.close(fd)
        self.control.shutdown(socket.SHUT_WR)
        while self.control.recv(1 << 20):
            pass
        self.control.close()
        self.proc.wait(timeout=30)


def start_plain(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "jupyter_forgather_tb.runner", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        cwd=ROOT,
    )


def kill_session(pid: int) -> None:
    for member in session_pids(pid):
        try:
            os.kill(member, signal.SIGKILL)
        except ProcessLookupError:
            continue


def report_job(name: str, pid: int, group) -> None:
    time.sleep(2)  # settle after the first request
    memory = memory_of(session_pids(pid))
    line = (
        f"{name:8} processes {len(session_pids(pid))}  RSS {memory['rss'] / MiB:6.1f} MiB  "
        f"PSS {memory['pss'] / MiB:6.1f} MiB  private {memory['private'] / MiB:6.1f} MiB"
    )
    if group is not None:
        line += (
            f"  cgroup now {group.usage_bytes() / MiB:6.1f} MiB, "
            f"peak {group.peak_bytes() / MiB:6.1f} MiB"
        )
    print(line, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=8, help="running jobs to sample")
    parser.add_argument("--seconds", type=float, default=30, help="sampling at 1 Hz for this long")
    args = parser.parse_args()
    enforcer = cgroups.detect()
    print(f"limits enforced by {enforcer.enforced_by} ({enforcer.reason or 'strongest'})")
    groups = enforcer.enforced_by != "watchdog"
    with tempfile.TemporaryDirectory() as scratch:
        logdir = write_logdir(Path(scratch) / "logs")
        fork_server = ForkServer()
        started: list[tuple[int, object]] = []
        try:
            print("\n1. A default job on a small log directory, after one request:")
            group = enforcer.create("plain", None, None) if groups else None
            sock = f"{scratch}/plain.sock"
            plain = start_plain(runner_args(logdir, sock, group.join_files if group else []))
            wait_serving(sock)
            report_job("plain", plain.pid, group)
            kill_session(plain.pid)
            plain.wait()
            if group is not None:
                group.remove(timeout=5)
            for index in range(args.jobs):
                group = enforcer.create(f"job{index}", None, None) if groups else None
                sock = f"{scratch}/job{index}.sock"
                pid = fork_server.fork(runner_args(logdir, sock, group.join_files if group else []))
                started.append((pid, group))
                wait_serving(sock)
                if index == 0:
                    report_job("forked", pid, group)
            time.sleep(2)
            report_job("forked", started[0][0], started[0][1])
            print(f"   (with {args.jobs} forked jobs running, the first of them again)")

            print(f"\n2. Sampling {args.jobs} running jobs:")
            modes = {
                "session scan": {f"j{i}": JobTarget(pid) for i, (pid, _) in enumerate(started)}
            }
            if groups:
                modes["control groups"] = {
                    f"j{i}": JobTarget(pid, procs_file=group.join_files[0])
                    for i, (pid, group) in enumerate(started)
                }
            for mode, targets in modes.items():
                sizes = {len(s.pids) for s in UsageSampler().sample(targets).values()}
                for label, sampler in (
                    ("RSS and CPU only", UsageSampler(pss_per_round=0)),
                    (
                        "with PSS of every process",
                        UsageSampler(pss_interval=0, pss_per_round=10**6),
                    ),
                ):
                    sampler.sample(targets)
                    times = []
                    for _ in range(50):
                        begin = time.perf_counter()
                        sampler.sample(targets)
                        times.append(time.perf_counter() - begin)
                    print(
                        f"   {mode:15} {label:26} one round: median "
                        f"{statistics.median(times) * 1e3:6.2f} ms, max {max(times) * 1e3:6.2f} ms "
                        f"({sorted(sizes)} processes per job)"
                    )
                sampler = UsageSampler()  # the defaults: PSS one process per round
                cpu_before, wall_before = time.process_time(), time.monotonic()
                rounds = 0
                while time.monotonic() - wall_before < args.seconds:
                    sampler.sample(targets)
                    rounds += 1
                    time.sleep(max(0.0, wall_before + rounds - time.monotonic()))
                cpu = time.process_time() - cpu_before
                wall = time.monotonic() - wall_before
                print(
                    f"   {mode:15} at 1 Hz with the default PSS pacing for {wall:.0f} s: "
                    f"{100 * cpu / wall:.2f} % of a core ({cpu / rounds * 1e3:.2f} ms per round)"
                )
        finally:
            for pid, _ in started:
                kill_session(pid)
            fork_server.close()
            time.sleep(0.5)
            enforcer.cleanup(timeout=5)


if __name__ == "__main__":
    main()
