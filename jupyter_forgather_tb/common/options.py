"""Launch options: validation of a REST launch body and the TensorBoard command line.

Everything here is pure: no file system, no network. The log directory is only
checked for shape here; ``logdirs.resolve_logdir`` checks it against the disk (and
``logdirs.resolve_members`` the folders of a compare launch, ``logdirs``).
"""

from __future__ import annotations

import ipaddress
import math
import os.path
import re
import unicodedata
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from .connections import CONNECTION_NAME_RE
from .jobwire import JobArgs, MirrorArgs, job_argv
from .sizes import format_size, parse_size
from .sources import REMOTE_SCHEMES, is_remote, parse_source_url, url_scheme

if TYPE_CHECKING:
    from typing import TypeGuard  # Python 3.10+; annotations only

MAX_LOGDIR_LENGTH = 4096
MAX_TITLE_LENGTH = 200
MAX_RELOAD_INTERVAL = 7 * 24 * 3600
MAX_PRIORITY = 1_000_000
DEFAULT_SYNC_INTERVAL = 5.0
MIN_SYNC_INTERVAL = 0.5
DEFAULT_HOST = "127.0.0.1"
# The smallest memory cap a launch may ask for: a forked job is charged about 21 MiB
# before it loads anything (docs/limits.md).
MIN_MEMORY_LIMIT = 32 << 20
#: TensorBoard's loaders: ``false`` the Python one, ``true`` the Rust data server,
#: ``auto`` the server's choice by the log directory's size (see ``loader.py``).
LOAD_FAST_VALUES = ("auto", "true", "false")

#: How many folders one compare launch (``logdirs``) may name.
MAX_COMPARE = 32
#: The longest name of a folder in a compare launch.
MAX_MEMBER_NAME = 100
#: Characters a compare folder's name or path must not hold: ``,`` and ``:`` separate
#: the parts of TensorBoard's own ``name:path,...`` notation (``--logdir_spec``), ``=``
#: a name from its path on our command lines, ``/`` the folder from the run in
#: TensorBoard's run names (``name/run``).
_MEMBER_PATH_FORBIDDEN = ",:"
_MEMBER_NAME_FORBIDDEN = ",:=/\\"

#: Fields a launch request may carry besides the options themselves.
CONTROL_FIELDS = frozenset({"force_new"})

_PLUGIN_NAME = r"[A-Za-z][A-Za-z0-9_]{0,63}"
# [0-9], not \d: \d also matches non-ASCII digits. Used with fullmatch: "$" alone
# would let a trailing line break through.
_SAMPLES_RE = re.compile(rf"^{_PLUGIN_NAME}=[0-9]{{1,9}}(,{_PLUGIN_NAME}=[0-9]{{1,9}})*$")
# A URL or an fsspec chain ("simplecache::..."): TensorBoard would fetch such a
# "directory" over the network on every reload. Bucket URLs are checked apart.
_REMOTE_RE = re.compile(r"://|::")
_HOSTNAME_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$")


class OptionError(ValueError):
    """A launch option is invalid; ``field`` names it for the client."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class LaunchOptions:
    """Validated, normalized options of one TensorBoard job.

    ``logdir`` is the real (symlink-free) absolute path once resolved.
    A compare launch has ``logdirs`` instead, ``(name, path)`` pairs sorted by name
    (a name is ``""`` until :meth:`compared` names it), and ``logdir`` ``""``.
    ``host`` is ``None`` when it does not apply (bind_all, or no TCP port).
    """

    logdir: str
    window_title: str
    port: int | None = None
    priority: int = 0
    bind_all: bool = False
    host: str | None = None
    reload_interval: float | None = None
    reload_multifile: bool | None = None
    samples_per_plugin: str | None = None
    sync_interval: float | None = None  # remote (mirrored) log directories only
    load_fast: str = "auto"
    memory_limit: int | None = None  # bytes; None: the server's default
    logdirs: tuple[tuple[str, str], ...] | None = None  # a compare launch's folders
    connection: str | None = None  # a named connection for a remote log directory

    @property
    def uses_tcp(self) -> bool:
        """True when TensorBoard listens on a TCP port rather than a Unix socket."""
        return self.port is not None or self.bind_all

    def reuse_key(self) -> tuple[tuple[str, Any], ...]:
        """What makes two launches the same TensorBoard (priority only orders the queue)."""
        fields = asdict(self)
        fields.pop("priority")
        return tuple(sorted(fields.items()))

    def resolved(self, real_logdir: str) -> LaunchOptions:
        """These options with the real log directory, titled after it unless a title was given."""
        name = os.path.basename(real_logdir.rstrip("/"))
        name = "".join(c for c in name if unicodedata.category(c) != "Cc").strip()
        title = self.window_title or name or "TensorBoard"
        return replace(self, logdir=real_logdir, window_title=title[:MAX_TITLE_LENGTH])

    def compared(self, members: list[tuple[str, str]]) -> LaunchOptions:
        """These options with a compare launch's named, real folders, titled after them."""
        ordered = tuple(sorted(members))
        title = self.window_title or "compare: " + ", ".join(name for name, _ in ordered)
        return replace(self, logdirs=ordered, window_title=title[:MAX_TITLE_LENGTH])

    @property
    def shown_logdir(self) -> str:
        """The log directory in words: its path, or a compare launch's ``name=path, ...``."""
        if self.logdirs is None:
            return self.logdir
        return ", ".join(f"{name}={path}" for name, path in self.logdirs)

    def to_json(self) -> dict[str, Any]:
        """The options as the REST API shows them; ``logdirs`` only for a compare launch."""
        data = asdict(self)
        if self.logdirs is None:
            del data["logdirs"]
        else:
            data["logdir"] = self.shown_logdir
            data["logdirs"] = dict(self.logdirs)
        return data

    def to_body(self) -> dict[str, Any]:
        """A launch body :func:`parse_launch` turns back into these very options."""
        data = self.to_json()
        if self.logdirs is not None:
            del data["logdir"]
        return data


FIELDS = frozenset(LaunchOptions.__dataclass_fields__)


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _optional_bool(body: dict[str, Any], name: str) -> bool | None:
    value = body.get(name)
    if value is None or isinstance(value, bool):
        return value
    raise OptionError(name, "must be true or false")


def check_logdir_shape(value: Any) -> str:
    """Check that a log directory is a plausible local path, or a remote source URL.

    Remote URLs come back in their canonical spelling (see ``sources.py``).
    """
    if not isinstance(value, str):
        raise OptionError("logdir", "must be a string path")
    if not value.strip():
        raise OptionError("logdir", "is required")
    if len(value) > MAX_LOGDIR_LENGTH:
        raise OptionError("logdir", f"is longer than {MAX_LOGDIR_LENGTH} characters")
    if any(c in value for c in "\0\n\r"):
        raise OptionError("logdir", "must not contain NUL or line breaks")
    if url_scheme(value) in REMOTE_SCHEMES:
        try:
            return str(parse_source_url(value))
        except ValueError as error:
            raise OptionError("logdir", str(error)) from None
    if _REMOTE_RE.search(value):
        raise OptionError(
            "logdir",
            "must be a local directory, s3://, gs://, az:// or ssh:// URL; "
            "other URLs and fsspec chains are not accepted",
        )
    return value


def _has_any(text: str, characters: str) -> bool:
    return any(c in text for c in characters)


def _quoted(text: str) -> str:
    """``text`` quoted for a message, cut short when long."""
    return repr(text if len(text) <= 80 else text[:77] + "...")


def _member_name(name: Any) -> str:
    """A compare folder's name, as TensorBoard will show it before each of its runs."""
    if not isinstance(name, str) or not name.strip():
        raise OptionError("logdirs", "every folder needs a name that is not blank")
    shown = _quoted(name)
    if len(name) > MAX_MEMBER_NAME:
        raise OptionError(
            "logdirs", f"the name {shown} is longer than {MAX_MEMBER_NAME} characters"
        )
    if name != name.strip() or name.startswith(".") or _has_control(name):
        raise OptionError(
            "logdirs",
            f"the name {shown} must not start with '.', nor hold control characters or "
            "surrounding spaces",
        )
    if _has_any(name, _MEMBER_NAME_FORBIDDEN):
        raise OptionError(
            "logdirs",
            f"the name {shown} must not contain a comma, colon, '=', '/' or '\\': "
            "TensorBoard shows runs as name/run and would misread it",
        )
    return name


def _member_path(value: Any) -> str:
    """A compare folder's path, checked for shape: local, and free of ``,`` and ``:``."""
    if isinstance(value, str) and (url_scheme(value) or _REMOTE_RE.search(value)):
        raise OptionError(
            "logdirs",
            f"{_quoted(value)} cannot be compared: only local folders can (launch remote "
            "log directories one at a time)",
        )
    try:
        path = check_logdir_shape(value)
    except OptionError as error:
        raise OptionError("logdirs", f"a folder {error.message}") from None
    if _has_any(path, _MEMBER_PATH_FORBIDDEN):
        raise OptionError(
            "logdirs",
            f"{_quoted(path)} contains a comma or colon, which TensorBoard's name:path,... "
            "notation would misread; rename the folder, or link to it from a path without them",
        )
    return path


def check_logdirs_shape(value: Any) -> tuple[tuple[str, str], ...]:
    """A compare launch's folders, checked for shape: ``(name, path)`` pairs.

    ``value`` is an object ``{"name": "path"}``, or a list of paths whose names
    (``""`` here) are given after their folders once resolved (see :func:`member_names`).
    """
    if isinstance(value, dict):
        members = [(_member_name(name), _member_path(path)) for name, path in value.items()]
    elif isinstance(value, list):
        members = [("", _member_path(path)) for path in value]
    else:
        raise OptionError("logdirs", 'must be an object {"name": "path", ...} or a list of paths')
    if not members:
        raise OptionError("logdirs", "must name at least one folder")
    if len(members) > MAX_COMPARE:
        raise OptionError("logdirs", f"may name at most {MAX_COMPARE} folders")
    return tuple(members)


def member_names(paths: list[tuple[str, str]]) -> list[str]:
    """Names for a list of compare folders, ``(as given, real path)``: their last parts.

    The last part of the path as given (that of the real path for ``.``, ``..`` or
    ``~``), made unique: the second ``a`` becomes ``a-2``, the third ``a-3``. Each
    name is checked as a name given in an object would be.
    """
    names: list[str] = []
    for given, real in paths:
        base = os.path.basename(os.path.normpath(given))
        if base in ("", ".", "..", "~"):
            base = os.path.basename(real) or "root"
        name, count = base, 1
        while name in names:
            count += 1
            name = f"{base}-{count}"
        try:
            names.append(_member_name(name))
        except OptionError as error:
            raise OptionError(
                "logdirs",
                f'{error.message}; give the folders names instead: {{"name": "path", ...}}',
            ) from None
    return names


def _port(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if not _is_int(value) or not 1024 <= value <= 65535:
        raise OptionError("port", "must be an integer from 1024 to 65535, or empty for none")
    return value


def _priority(value: Any) -> int:
    if value is None:
        return 0
    if not _is_int(value) or abs(value) > MAX_PRIORITY:
        raise OptionError("priority", f"must be an integer from -{MAX_PRIORITY} to {MAX_PRIORITY}")
    return value


def _host(value: Any) -> str:
    if value is None or value == "":
        return DEFAULT_HOST
    if not isinstance(value, str) or len(value) > 253:
        raise OptionError("host", "must be a host name or IP address")
    if value == "localhost":
        return value
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        if _HOSTNAME_RE.match(value):
            raise OptionError(
                "host", "must be a loopback address; use bind_all to listen on the network"
            ) from None
        raise OptionError("host", "must be a host name or IP address") from None
    if not address.is_loopback:
        raise OptionError(
            "host", "must be a loopback address; use bind_all to listen on the network"
        )
    return str(address)


def _reload_interval(value: Any) -> float | None:
    return None if value is None else _seconds(value, "reload_interval")


def _seconds(value: Any, field: str) -> float:
    try:
        # float() of a huge JSON integer raises OverflowError rather than giving inf.
        number = None if isinstance(value, bool) else float(value)
    except (TypeError, ValueError, OverflowError):
        number = None
    if (
        not isinstance(value, (int, float))
        or number is None
        or not math.isfinite(number)
        or not 0 < number <= MAX_RELOAD_INTERVAL
    ):
        raise OptionError(
            field, f"must be a number of seconds above 0 and at most {MAX_RELOAD_INTERVAL}"
        )
    return number


def _sync_interval(value: Any, logdir: str) -> float | None:
    if not is_remote(logdir):
        if value is not None:
            raise OptionError(
                "sync_interval",
                "applies only to remote (s3://, gs://, az://, ssh://) log directories",
            )
        return None
    if value is None:
        return DEFAULT_SYNC_INTERVAL
    number = _seconds(value, "sync_interval")
    if number < MIN_SYNC_INTERVAL:
        raise OptionError(
            "sync_interval",
            f"must be a number of seconds from {MIN_SYNC_INTERVAL} to {MAX_RELOAD_INTERVAL}",
        )
    return number


def _samples_per_plugin(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _SAMPLES_RE.fullmatch(value.replace(" ", "")):
        raise OptionError(
            "samples_per_plugin",
            "must look like 'scalars=1000,images=10': plugin names with counts of 0 or more",
        )
    return value.replace(" ", "")


def _load_fast(value: Any) -> str:
    if value is None:
        choice = "auto"
    elif isinstance(value, bool):
        choice = str(value).lower()
    elif value in LOAD_FAST_VALUES:
        choice = value
    else:
        raise OptionError("load_fast", "must be 'auto', 'true' or 'false'")
    return choice


def _connection(value: Any) -> str | None:
    """A connection's name as given (whether the server has one of that name is checked there)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not CONNECTION_NAME_RE.fullmatch(value):
        raise OptionError(
            "connection", "must be the name of a connection (letters, digits, '.', '_', '-')"
        )
    return value


def _has_control(text: str) -> bool:
    return any(unicodedata.category(c) == "Cc" for c in text)


def _window_title(value: Any) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        return ""  # filled in from the resolved log directory by LaunchOptions.resolved
    if not isinstance(value, str):
        raise OptionError("window_title", "must be a string")
    title = value.strip()
    if len(title) > MAX_TITLE_LENGTH:
        raise OptionError("window_title", f"must be at most {MAX_TITLE_LENGTH} characters")
    if _has_control(title):
        raise OptionError("window_title", "must not contain control characters")
    return title


def parse_launch(body: Any) -> tuple[LaunchOptions, bool]:
    """Validate a launch request body.

    Returns the options (with the log directory as given, not yet resolved)
    and the ``force_new`` flag. Raises :class:`OptionError` naming the first
    bad field.
    """
    if not isinstance(body, dict):
        raise OptionError("body", "must be a JSON object")
    unknown = sorted(set(body) - FIELDS - CONTROL_FIELDS)
    if unknown:
        raise OptionError(
            unknown[0], f"unknown field (accepted: {', '.join(sorted(FIELDS | CONTROL_FIELDS))})"
        )
    logdir, logdirs = _log_directories(body)
    bind_all = _optional_bool(body, "bind_all") or False
    port = _port(body.get("port"))
    host = _host(body.get("host"))
    options = LaunchOptions(
        logdir=logdir,
        window_title=_window_title(body.get("window_title")),
        port=port,
        priority=_priority(body.get("priority")),
        bind_all=bind_all,
        # bind_all wins over host, as in the tensorboard CLI; without TCP no host applies.
        host=None if bind_all or port is None else host,
        reload_interval=_reload_interval(body.get("reload_interval")),
        reload_multifile=_optional_bool(body, "reload_multifile"),
        samples_per_plugin=_samples_per_plugin(body.get("samples_per_plugin")),
        sync_interval=_sync_interval(body.get("sync_interval"), logdir),
        load_fast=_load_fast(body.get("load_fast")),
        memory_limit=memory_limit(body.get("memory_limit")),
        logdirs=logdirs,
        connection=_connection(body.get("connection")),
    )
    force_new = _optional_bool(body, "force_new") or False
    return options, force_new


def _log_directories(body: dict[str, Any]) -> tuple[str, tuple[tuple[str, str], ...] | None]:
    """``(logdir, None)``, or ``("", folders)`` for a compare launch: exactly one is given."""
    if body.get("logdirs") is None:
        if body.get("logdir") is None:
            raise OptionError("logdir", "is required (or logdirs, to compare several folders)")
        return check_logdir_shape(body.get("logdir")), None
    if body.get("logdir") is not None:
        raise OptionError("logdirs", "give either logdir or logdirs, not both")
    return "", check_logdirs_shape(body["logdirs"])


def memory_limit(value: Any) -> int | None:
    """A requested memory cap in bytes (None when not given), or :class:`OptionError`.

    Bytes or a size such as "2G" (binary multiples); 0 asks for no cap. Whether
    the server allows that much is the manager's to say.
    """
    if value is None:
        return None
    try:
        size = parse_size(value)
    except ValueError as error:
        raise OptionError("memory_limit", str(error)) from None
    if 0 < size < MIN_MEMORY_LIMIT:
        raise OptionError(
            "memory_limit",
            f"must be 0 (no cap) or at least {format_size(MIN_MEMORY_LIMIT)}: "
            "TensorBoard cannot even start in less",
        )
    return size


def refuse_tcp(options: LaunchOptions) -> None:
    """Refuse options that ask for a TCP port, where the administrator has turned them off."""
    if options.port is not None:
        raise OptionError(
            "port",
            "the administrator has disabled TCP ports on this server (allow_port); leave it "
            "empty: the TensorBoard is then served through Jupyter only",
        )
    if options.bind_all:
        raise OptionError(
            "bind_all",
            "the administrator has disabled TCP ports on this server (allow_port), and "
            "bind_all needs one; leave it off",
        )


def build_argv(
    options: LaunchOptions,
    *,
    python: str,
    path_prefix: str,
    unix_socket: str | None = None,
    port: int | None = None,
    logdir: str | None = None,
    mirror: MirrorArgs | None = None,
    fast_loader_above: int = 0,
    private_network: bool = False,
    report_file: str | None = None,
    join_cgroups: list[str] | tuple[str, ...] = (),
    nice: int | None = None,
) -> list[str]:
    """The command line that runs one TensorBoard job through our runner.

    Exactly one of ``unix_socket`` and ``port`` is given: where TensorBoard
    listens. ``logdir`` replaces the options' own (a remote job's local mirror, which
    the runner fills from ``mirror``). ``fast_loader_above`` is the
    ``auto`` threshold in bytes of event files outside a private network (0:
    never). ``private_network`` lets the runner try a network namespace of its
    own for a job that may use the Rust loader and needs no network. The runner
    writes which loader and network it got to ``report_file``. The runner joins
    the control groups whose ``cgroup.procs`` files are in ``join_cgroups`` and
    takes niceness ``nice`` before anything else (see :class:`~.jobwire.JobArgs`).
    The result is an argv list, never a shell string.
    """
    if (unix_socket is None) == (port is None):
        raise ValueError("give exactly one of unix_socket and port")
    load_fast = options.load_fast
    scheme = url_scheme(options.logdir)
    tb_args = ["--logdir", logdir or options.logdir, "--path_prefix", path_prefix.rstrip("/")]
    tb_args += [f"--window_title={options.window_title}"]
    if load_fast != "auto":
        tb_args += [f"--load_fast={load_fast}"]
    if port is not None:
        tb_args += ["--port", str(port)]
        tb_args += ["--bind_all"] if options.bind_all else ["--host", options.host or DEFAULT_HOST]
    if options.reload_interval is not None:
        tb_args += ["--reload_interval", repr(options.reload_interval)]
    if options.reload_multifile is not None:
        tb_args += [f"--reload_multifile={str(options.reload_multifile).lower()}"]
    if options.samples_per_plugin:
        tb_args += ["--samples_per_plugin", options.samples_per_plugin]
    args = JobArgs(
        tensorboard_args=tuple(tb_args),
        join_cgroups=tuple(join_cgroups),
        nice=nice,
        unix_socket=unix_socket,
        # A job on a TCP port must stay reachable, and a remote one needs the
        # network; the Python loader opens no port, so it has nothing to hide.
        private_network=bool(
            private_network and unix_socket and scheme is None and load_fast != "false"
        ),
        mirror=mirror,
        report_file=report_file,
        # The runner picks the loader itself (see loader.py).
        fast_loader_above=fast_loader_above if load_fast == "auto" else None,
    )
    return job_argv(python, args)
