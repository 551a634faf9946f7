"""Checking a job record read back from the state file before the server acts on it.

The server only reads a state file that its own user alone can write (see
``state.py``), and still treats each record as untrusted: the id must be one
``new_job_id`` could make, the options must pass the launch checks, and every
path must be the one this server gives that job id, inside its own directories
(compared as real paths, so neither ``..`` nor a symbolic link leads out). The
record's ``url`` and ``argv`` are never used: the URL is rebuilt from the id, and
re-adoption compares a live process with the command line this server builds.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Container
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ...common.addresses import bind_ip
from ...common.jobwire import loader_report
from ...common.options import CONTROL_FIELDS, LaunchOptions, OptionError, parse_launch
from ...common.sources import is_remote, url_scheme
from ..host.cgroups import JOB_PREFIX, MECHANISMS
from ..host.rundirs import RUN_DIR_RE
from ..logdirs.compare import TREE_SUFFIX
from .job import Job, JobStatus, is_job_id, new_job_id
from .state import unsafe_reason


class RecordError(ValueError):
    """A saved job record failed validation; the message says which part and why."""


@dataclass(frozen=True)
class OwnDirs:
    """Where this server keeps a job's files."""

    base_url: str
    log_dir: str  # <id>.log
    socket_base: str  # one private directory per server run, holding <id>.sock and <id>.json
    cache_root: str  # <id>/ for an s3:// job's mirror


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:77]}..."


def _job_id(value: Any) -> str:
    if not is_job_id(value):
        raise RecordError(f"its id {_show(value)} is not one this server makes")
    return str(value)


def _options(value: Any) -> LaunchOptions:
    if not isinstance(value, dict) or CONTROL_FIELDS & value.keys():
        raise RecordError("its options are not launch options")
    try:
        options, _ = parse_launch(value)
    except OptionError as error:
        raise RecordError(f"its options are invalid: {error}") from None
    if options.logdirs is not None:
        if not all(os.path.isabs(path) for _, path in options.logdirs):
            raise RecordError("a folder it compares is not an absolute path")
    elif not url_scheme(options.logdir) and not os.path.isabs(options.logdir):
        raise RecordError("its log directory is not an absolute path")
    return options


def _integer(record: dict[str, Any], key: str, low: int, high: int | None = None) -> int | None:
    value = record.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise RecordError(f"its {key} {_show(value)} is not a valid number")
    if high is not None and value > high:
        raise RecordError(f"its {key} {_show(value)} is not a valid number")
    return value


def _when(record: dict[str, Any], key: str) -> datetime | None:
    value = record.get(key)
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise RecordError(f"its {key} {_show(value)} is not a time") from None


def _own_dir(directory: str, what: str) -> None:
    """Refuse a directory that exists but is a link, not a directory, or not ours alone."""
    try:
        info = os.lstat(directory)
    except FileNotFoundError:
        return
    except OSError as error:
        raise RecordError(f"its {what} directory {directory} cannot be checked: {error}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise RecordError(f"its {what} directory {directory} is not a directory")
    why = unsafe_reason(info, os.geteuid())
    if why:
        raise RecordError(f"its {what} directory {directory}: {why}")


def _inside(path: Any, directory: str, name: str, what: str) -> str:
    """``directory/name`` if ``path`` is that very file (compared as real paths)."""
    expected = os.path.join(directory, name)
    if not isinstance(path, str) or "\0" in path:
        raise RecordError(f"its {what} {_show(path)} is not a path")
    if os.path.realpath(path) != os.path.join(os.path.realpath(directory), name):
        raise RecordError(f"its {what} {_show(path)} is not {expected}")
    return expected


def _in_run_dir(path: Any, dirs: OwnDirs, name: str, what: str) -> str:
    """The path of ``name`` in the server-run directory ``path`` names, if it is ours."""
    run_dir = os.path.basename(os.path.dirname(path)) if isinstance(path, str) else ""
    if not RUN_DIR_RE.fullmatch(run_dir):
        raise RecordError(f"its {what} {_show(path)} is not in a socket directory of this server")
    directory = os.path.join(dirs.socket_base, run_dir)
    _own_dir(directory, what)
    return _inside(path, directory, name, what)


def restore_job(record: Any, dirs: OwnDirs) -> Job:
    """The job a saved record describes, every path its own; raises :class:`RecordError`."""
    if not isinstance(record, dict):
        raise RecordError("it is not a JSON object")
    job_id = _job_id(record.get("id"))
    options = _options(record.get("options"))
    try:
        status = JobStatus(str(record.get("status")))
    except ValueError:
        raise RecordError(f"its status {_show(record.get('status'))} is not a job state") from None
    error = record.get("error")
    if error is not None and not isinstance(error, str):
        raise RecordError("its error is not text")
    port = _integer(record, "port", 1, 65535)
    unix_socket = record.get("unix_socket")
    if options.uses_tcp and unix_socket is not None:
        raise RecordError("it names a Unix socket for a job on a TCP port")
    if not options.uses_tcp and port is not None:
        raise RecordError("it names a TCP port for a job on a Unix socket")
    if port is not None and options.port is not None and port != options.port:
        raise RecordError(f"its port {port} is not the one its options ask for")
    host = record.get("host")
    # bind_all listens on "::", or on 0.0.0.0 where the machine has no IPv6.
    allowed = {bind_ip(options.host, options.bind_all)} | (
        {"0.0.0.0"} if options.bind_all else set()
    )
    if host is not None and (port is None or host not in allowed):
        raise RecordError(f"its address {_show(host)} is not the one its options ask for")
    if unix_socket is not None:
        unix_socket = _in_run_dir(unix_socket, dirs, f"{job_id}.sock", "socket")
    # Versions before report_file was saved put it beside the socket.
    report_file = record.get("report_file")
    if report_file is None and unix_socket is not None:
        report_file = os.path.join(os.path.dirname(unix_socket), f"{job_id}.json")
    if report_file is not None:
        report_file = _in_run_dir(report_file, dirs, f"{job_id}.json", "report file")
    log_file = record.get("log_file")
    if log_file is not None:
        log_file = _inside(log_file, dirs.log_dir, f"{job_id}.log", "log file")
    if is_remote(options.logdir):
        _own_dir(os.path.join(dirs.cache_root, job_id), "S3 cache")
    logdir_tree = record.get("logdir_tree")
    if logdir_tree is not None:
        if options.logdirs is None:
            raise RecordError("it names a compare folder for a job that compares nothing")
        logdir_tree = _in_run_dir(logdir_tree, dirs, f"{job_id}{TREE_SUFFIX}", "compare folder")
        _own_dir(logdir_tree, "compare")
    cgroup_files = _cgroup_files(record.get("cgroup_files"), job_id)
    cpu_limit = record.get("cpu_limit")
    if cpu_limit is not None and (
        isinstance(cpu_limit, bool) or not isinstance(cpu_limit, (int, float)) or cpu_limit <= 0
    ):
        raise RecordError(f"its cpu_limit {_show(cpu_limit)} is not a number of cores")
    enforced_by = record.get("enforced_by")
    if enforced_by not in (None, *MECHANISMS):
        raise RecordError(f"its enforced_by {_show(enforced_by)} is not a mechanism")
    suspended_at = _when(record, "suspended_at")
    if status == JobStatus.SUSPENDED:
        _check_suspended(record, options, suspended_at)
    elif suspended_at is not None:
        raise RecordError(f"it says when it was suspended, but it is {status.value}")
    return Job(
        options=options,
        url=f"{dirs.base_url}tb/{job_id}/",
        id=job_id,
        status=status,
        seq=_integer(record, "seq", 0) or 0,
        created=_when(record, "created") or datetime.now(UTC),
        started=_when(record, "started"),
        ended=_when(record, "ended"),
        pid=_integer(record, "pid", 1),
        exit_code=_integer(record, "exit_code", -128, 255),
        error=error,
        port=port,
        host=host,
        unix_socket=unix_socket,
        report_file=report_file,
        log_file=log_file,
        proc_start_time=_integer(record, "proc_start_time", 0),
        loader=loader_report(record.get("loader")),
        memory_limit=_integer(record, "memory_limit", 1),
        cpu_nice=_integer(record, "cpu_nice", -20, 19),
        cpu_limit=float(cpu_limit) if cpu_limit is not None else None,
        enforced_by=enforced_by,
        cgroup_files=cgroup_files,
        logdir_tree=logdir_tree,
        last_activity=_when(record, "last_activity"),
        suspended_at=suspended_at,
        wakes=_integer(record, "wakes", 0) or 0,
    )


def _check_suspended(
    record: dict[str, Any], options: LaunchOptions, since: datetime | None
) -> None:
    """A suspended job's record names when, and no process, socket or port: it has none."""
    if since is None:
        raise RecordError("it is suspended but does not say since when")
    if options.uses_tcp:
        raise RecordError("it is suspended, which a job on a TCP port never is")
    for key in ("pid", "proc_start_time", "unix_socket", "report_file", "cgroup_files"):
        if record.get(key) is not None:
            raise RecordError(f"it is suspended, so it has no {key}, but names one")


# Where cgroup hierarchies are mounted on every distribution we know of; a record naming
# groups elsewhere is not re-adopted (reported lost), which is safe.
_CGROUP_ROOT = "/sys/fs/cgroup/"


def _cgroup_files(value: Any, job_id: str) -> list[str] | None:
    """The cgroup.procs files a record says its job joined: only a job group of ours."""
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(path, str) for path in value):
        raise RecordError("its cgroup_files are not a list of paths")
    suffix = f"/{JOB_PREFIX}{job_id}/cgroup.procs"
    for path in value:
        if not path.startswith(_CGROUP_ROOT) or not path.endswith(suffix) or ".." in path:
            raise RecordError(f"its cgroup file {_show(path)} is not a job group of ours")
    return list(value)


def lost_job(record: Any, why: str, dirs: OwnDirs, taken: Container[str]) -> Job:
    """A record that failed validation, kept in the list as lost and never acted on.

    It keeps only its id (when valid and not in ``taken``, else a new one), its
    place in the list, its creation time and its options (when valid).
    """
    fields = record if isinstance(record, dict) else {}
    job_id = fields.get("id")
    if not is_job_id(job_id) or job_id in taken:
        job_id = new_job_id()
    try:
        options = _options(fields.get("options"))
    except RecordError:
        options = LaunchOptions(logdir="", window_title="(unreadable job record)")
    try:
        seq = _integer(fields, "seq", 0) or 0
        created = _when(fields, "created")
    except RecordError:
        seq, created = 0, None
    now = datetime.now(UTC)
    return Job(
        options=options,
        url=f"{dirs.base_url}tb/{job_id}/",
        id=job_id,
        status=JobStatus.LOST,
        seq=seq,
        created=created or now,
        ended=now,
        error=f"not re-adopted: its record failed validation ({why})",
    )
