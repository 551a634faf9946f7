"""The wire format between the Jupyter server and a job: the runner's arguments, its report.

The server describes a job as :class:`JobArgs` and turns it into the runner's command
line with :func:`job_argv`; the runner reads it back with :func:`parse_job_argv`. The
runner says which loader and network it got, and the TCP address it bound, in its
report file (:func:`write_report`), which the server reads with :func:`read_report`,
checking its shape: the file is written by another process.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
from dataclasses import dataclass
from typing import Any

from .addresses import bind_ip
from .connections import Connection, parse_connection
from .jsonfile import read_json, write_json
from .processes import RUNNER_MODULE

#: The range of a process's niceness (``cpu_nice``).
NICE_MIN, NICE_MAX = -20, 19

#: The loaders a runner reports: TensorBoard's Rust data server or its Python loader.
LOADER_NAMES = ("rust", "python")


def check_nice(nice: Any) -> int:
    """A niceness from -20 (first) to 19 (last), or ValueError."""
    is_int = isinstance(nice, int) and not isinstance(nice, bool)
    if not is_int or not NICE_MIN <= nice <= NICE_MAX:
        raise ValueError(f"niceness must be an integer from {NICE_MIN} to {NICE_MAX}, not {nice!r}")
    return int(nice)


@dataclass(frozen=True)
class MirrorArgs:
    """A remote source the runner mirrors into its job's private cache before TensorBoard.

    ``endpoint_url`` is the server's default S3 endpoint; ``connection_file`` a private
    file holding the job's named connection (see :func:`write_connection_file`): its
    secrets never go on a command line.
    """

    url: str
    cache_dir: str
    sync_interval: float = 5.0
    max_cache_bytes: int = 2**63
    max_cache_objects: int = 2**63
    endpoint_url: str | None = None
    connection_file: str | None = None


def write_connection_file(path: str, conn: Connection) -> None:
    """Write a connection for a job's runner into a new file only its owner may read (0600)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"name": conn.name, "protocol": conn.protocol, **conn.settings}, out)


def read_connection_file(path: str) -> Connection:
    """The connection a server wrote with :func:`write_connection_file`; ValueError if bad."""
    try:
        with open(path, encoding="utf-8") as src:
            entry = json.load(src)
    except (OSError, ValueError) as error:
        raise ValueError(f"the job's connection file could not be read: {error}") from None
    if not isinstance(entry, dict):
        raise ValueError("the job's connection file holds no connection")
    name = entry.pop("name", None)
    return parse_connection(name, entry)


@dataclass(frozen=True)
class JobArgs:
    """What the runner is asked to do; ``tensorboard_args`` go to TensorBoard unchanged.

    The runner joins the control groups whose ``cgroup.procs`` files are in
    ``join_cgroups`` and takes niceness ``nice`` before anything else; serves on
    ``unix_socket`` (else on the TCP port in its TensorBoard flags); tries a network
    namespace of its own if ``private_network``; mirrors ``mirror`` first; writes
    its report to ``report_file``; and, given ``fast_loader_above``, picks the loader
    itself (``load_fast`` auto: the Rust one from these bytes of event files, 0: never).
    """

    tensorboard_args: tuple[str, ...] = ()
    join_cgroups: tuple[str, ...] = ()
    nice: int | None = None
    unix_socket: str | None = None
    private_network: bool = False
    mirror: MirrorArgs | None = None
    report_file: str | None = None
    fast_loader_above: int | None = None


def job_argv(python: str, args: JobArgs) -> list[str]:
    """The command line that runs ``args`` through the runner, with the interpreter ``python``."""
    argv = [python, "-m", RUNNER_MODULE]
    argv += [f"--join-cgroup={procs_file}" for procs_file in args.join_cgroups]
    argv += [f"--nice={check_nice(args.nice)}"] if args.nice is not None else []
    argv += ["--unix-socket", args.unix_socket] if args.unix_socket else []
    argv += ["--private-network"] if args.private_network else []
    if (mirror := args.mirror) is not None:
        argv += ["--mirror", mirror.url, "--cache-dir", mirror.cache_dir]
        argv += ["--sync-interval", repr(mirror.sync_interval)]
        argv += ["--max-cache-bytes", str(mirror.max_cache_bytes)]
        argv += ["--max-cache-objects", str(mirror.max_cache_objects)]
        argv += ["--s3-endpoint-url", mirror.endpoint_url] if mirror.endpoint_url else []
        argv += ["--connection-file", mirror.connection_file] if mirror.connection_file else []
    argv += ["--report-file", args.report_file] if args.report_file else []
    if args.fast_loader_above is not None:
        argv += ["--fast-loader-above", str(args.fast_loader_above)]
    return [*argv, "--", *args.tensorboard_args]


def _nice(text: str) -> int:
    try:
        return check_nice(int(text))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=RUNNER_MODULE)
    parser.add_argument(
        "--join-cgroup",
        action="append",
        default=[],
        metavar="FILE",
        help="join this control group (its cgroup.procs file) before anything starts; repeatable",
    )
    parser.add_argument(
        "--nice", type=_nice, help="run the job at this niceness (-20 to 19), children included"
    )
    parser.add_argument("--unix-socket", help="serve on this Unix socket instead of TCP")
    parser.add_argument(
        "--fast-loader-above",
        type=int,
        help="load_fast 'auto': pick the loader here; outside a private network, the Rust "
        "loader from these bytes of event files (0: never)",
    )
    parser.add_argument(
        "--private-network",
        action="store_true",
        help="run in a network namespace of our own (Linux), where the Rust loader's port "
        "is private; TensorBoard must listen on --unix-socket",
    )
    parser.add_argument(
        "--report-file",
        help="write the loader and network this job got here, as JSON, and once serving "
        "on TCP, the address it bound",
    )
    parser.add_argument("--mirror", metavar="URL", help="mirror this remote source first")
    parser.add_argument("--cache-dir", help="the job's private directory for the mirror")
    parser.add_argument("--sync-interval", type=float, default=5.0)
    parser.add_argument("--max-cache-bytes", type=int, default=2**63)
    parser.add_argument("--max-cache-objects", type=int, default=2**63)
    parser.add_argument("--s3-endpoint-url", default=None)
    parser.add_argument(
        "--connection-file", default=None, help="a private file holding the source's connection"
    )
    parser.add_argument("tensorboard_args", nargs=argparse.REMAINDER)
    return parser


def parse_job_argv(argv: list[str] | None = None) -> JobArgs:
    """The runner's arguments (``argv`` after ``-m <runner>``; None: ``sys.argv``).

    A malformed command line exits with argparse's usage message (status 2).
    """
    parser = _parser()
    args = parser.parse_args(argv)
    mirror = None
    if args.mirror:
        if not args.cache_dir:
            parser.error("--mirror needs --cache-dir")
        mirror = MirrorArgs(
            url=args.mirror,
            cache_dir=args.cache_dir,
            sync_interval=args.sync_interval,
            max_cache_bytes=args.max_cache_bytes,
            max_cache_objects=args.max_cache_objects,
            endpoint_url=args.s3_endpoint_url,
            connection_file=args.connection_file,
        )
    tb_args = args.tensorboard_args
    if tb_args[:1] == ["--"]:
        tb_args = tb_args[1:]
    return JobArgs(
        tensorboard_args=tuple(tb_args),
        join_cgroups=tuple(args.join_cgroup),
        nice=args.nice,
        unix_socket=args.unix_socket,
        private_network=args.private_network,
        mirror=mirror,
        report_file=args.report_file,
        fast_loader_above=args.fast_loader_above,
    )


@dataclass(frozen=True)
class JobReport:
    """What a runner reports: its loader (``{"name", "private_network"}``), its TCP address.

    The file holds ``{"name", "private_network"}``, plus ``"address": {"host", "port"}``
    once a job on a TCP port serves. Read back, a part that is missing or malformed is None.
    """

    loader: dict[str, Any] | None
    address: tuple[str, int] | None = None


def loader_report(value: Any) -> dict[str, Any] | None:
    """A runner's loader report ``{"name", "private_network"}`` if well formed, else None."""
    if (
        isinstance(value, dict)
        and value.get("name") in LOADER_NAMES
        and isinstance(value.get("private_network"), bool)
    ):
        return {"name": value["name"], "private_network": value["private_network"]}
    return None


def reported_address(report: Any) -> tuple[str, int] | None:
    """The ``(ip, port)`` a TCP job's runner says it bound, if its report says so validly."""
    address = report.get("address") if isinstance(report, dict) else None
    if not isinstance(address, dict):
        return None
    host, port = address.get("host"), address.get("port")
    if not isinstance(host, str) or not isinstance(port, int) or isinstance(port, bool):
        return None
    try:
        return bind_ip(host, False), port
    except ValueError:
        return None


def write_report(path: str, report: JobReport) -> None:
    """Write a runner's report whole (a reader sees the old file or the new one)."""
    data: dict[str, Any] = dict(report.loader or {})
    if report.address is not None:
        host, port = report.address
        data["address"] = {"host": host, "port": port}
    write_json(path, data)


def read_report(path: str) -> JobReport:
    """The report in ``path``, each part checked (None: absent, unreadable or malformed)."""
    value = read_json(path)
    return JobReport(loader=loader_report(value), address=reported_address(value))
