"""The server extension: configuration, the job manager, routes, and shutdown."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields
from typing import Any, TypeVar

from jupyter_server.extension.application import ExtensionApp
from jupyter_server.serverapp import ServerApp
from traitlets import (
    Bool,
    Bunch,
    Dict,
    Enum,
    Float,
    Integer,
    List,
    TraitError,
    Unicode,
    Union,
    default,
    observe,
    validate,
)

from ..common.connections import parse_connections
from ..common.jobwire import check_nice
from ..common.sizes import parse_size
from .host.rundirs import UnsafeSocketBase
from .jobs.manager import JobManager, ManagerSettings
from .logdirs.find import MAX_SCAN_ENTRIES
from .sharing.handlers import sharing_handlers
from .sharing.service import build_sharing
from .web.backends import BackendClients
from .web.export import Exports
from .web.handlers import api_handlers, turned_off_handlers
from .web.preview import MAX_ANSWER_BYTES, PreviewClient
from .web.proxy import proxy_handlers
from .web.settings import WebSettings

API_PREFIX = "/forgather-tb/api"
_Settings = TypeVar("_Settings")
#: Threads for log directory scans: theirs alone, so a launch never waits behind a scan.
SCAN_WORKERS = 2
#: Old setting names, still read (with a warning), and the settings they now set.
RENAMED_SETTINGS = {
    "s3_cache_dir": "mirror_cache_dir",
    "s3_cache_max_bytes": "mirror_cache_max_bytes",
    "s3_cache_max_objects": "mirror_cache_max_objects",
    "s3_keep_cache": "keep_mirror_cache",
}


class ForgatherTB(ExtensionApp):
    """Runs TensorBoard jobs and serves them at ``<base_url>tb/<id>/`` behind Jupyter's login.

    Configure with ``c.ForgatherTB.<trait> = ...`` in ``jupyter_server_config.py``.
    """

    name = "jupyter_forgather_tb"
    load_other_extensions = True
    #: The shutdown, once begun (SIGINT then SIGTERM may each ask for it).
    _stopping: asyncio.Future[None] | None = None
    #: Why jobs are off on this server (an unsafe socket directory), or None.
    turned_off: str | None = None

    max_running = Integer(
        4, help="How many TensorBoard jobs may run at once; further launches wait in the queue."
    ).tag(config=True)

    max_queued = Integer(
        64,
        help="How many jobs may wait in the queue; further launches are refused with "
        "HTTP 429 and a Retry-After header.",
    ).tag(config=True)

    idle_timeout = Float(
        0.0,
        help="End a job, running or suspended, after this many seconds without a request "
        "through its proxy (0 turns this off). The job shows why it stopped.",
    ).tag(config=True)

    suspend_after = Float(
        900.0,
        help="Suspend a running job after this many seconds without a request through its "
        "proxy: its processes stop and give their memory back, and the job keeps its id, "
        "URL and place in the list; the next request to its URL starts it again (warm, "
        "in about 0.2 s on a small log directory) and is answered once it serves. Jobs on "
        "a TCP port, and jobs whose output is being followed, are never suspended. 0 "
        "turns this off.",
    ).tag(config=True)

    max_finished = Integer(
        200, help="How many finished jobs are kept in the job list before the oldest are dropped."
    ).tag(config=True)

    startup_timeout = Float(
        60.0,
        help="Seconds a TensorBoard job may take to answer its first request before it is "
        "killed and marked failed.",
    ).tag(config=True)

    kill_grace = Float(
        5.0, help="Seconds between SIGTERM and SIGKILL when stopping a TensorBoard job."
    ).tag(config=True)

    output_buffer_size = Integer(
        256 * 1024,
        help="Bytes of each job's TensorBoard output kept in memory (the full output also "
        "goes to a log file under the Jupyter runtime directory).",
    ).tag(config=True)

    allowed_roots = List(
        Unicode(),
        help="Directories log directories must be inside. Empty means the server's root_dir.",
    ).tag(config=True)

    tensorboard_python = Unicode(
        help="The Python interpreter that runs TensorBoard jobs; it must have tensorboard "
        "and this package installed. Defaults to the server's own interpreter.",
    ).tag(config=True)

    socket_dir = Unicode(
        "",
        help="Where the private directory for TensorBoard's Unix sockets is created. "
        "Empty means the system's temporary directory (socket paths must stay short). "
        "It, and every directory above it, must belong to the server's user or root and "
        "be writable by nobody else unless it has the sticky bit (as /tmp has); otherwise "
        "the server says why and TensorBoard jobs are turned off.",
    ).tag(config=True)

    proxy_connect_timeout = Float(
        10.0, help="Seconds the proxy waits to connect to a TensorBoard job."
    ).tag(config=True)

    proxy_request_timeout = Float(
        120.0, help="Seconds the proxy waits for a TensorBoard job to answer a request."
    ).tag(config=True)

    logdir_scan_depth = Integer(
        4,
        help="How many directory levels the log directory picker looks below a path; also "
        "the limit of each scan of a job's log directory for its activity.",
    ).tag(config=True)

    logdir_scan_max_dirs = Integer(
        5000,
        help="How many directories the log directory picker visits at most per request, "
        "and a scan of a job's log directory (all its folders, for a compare job) at most.",
    ).tag(config=True)

    logdir_scan_max_entries = Integer(
        MAX_SCAN_ENTRIES,
        help="How many directory entries (files and folders) the log directory picker reads "
        "at most per request, over the whole walk, so a folder of many files cannot make a "
        "scan slow; the same bound holds for each scan of a job's log directory.",
    ).tag(config=True)

    logdir_scan_max_results = Integer(
        500, help="How many log directories the picker returns at most."
    ).tag(config=True)

    remote_list_timeout = Float(
        20.0,
        min=0.1,
        help="Seconds the log directory picker may spend listing a remote source (s3://, "
        "gs://, az://, ssh://) before it gives up and says so; the listing runs in a "
        "process of its own, killed then. The picker's other limits (depth, directories, "
        "entries, results) hold for remote sources too.",
    ).tag(config=True)

    preview_max_bytes = Integer(
        MAX_ANSWER_BYTES,
        min=1,
        help="Bytes of each TensorBoard answer a job's preview (the sidebar's small chart) "
        "reads at most: the job's list of scalar tags and runs, then one tag's values. A "
        "larger answer makes the preview an HTTP 502 saying so (TensorBoard itself still "
        "shows it all), so previews of a job with a great many tags cannot take the "
        "Jupyter server's memory. TensorBoard lists each tag of each run in about 45 bytes "
        "more than its name: 16 MiB is about 250,000 of them with 16-character names.",
    ).tag(config=True)

    live_window = Float(
        120.0,
        help="A job's activity is 'live' while one of its event files was written within "
        "this many seconds, and 'idle' after (see its JSON's activity).",
    ).tag(config=True)

    stall_after = Float(
        600.0,
        help="A running job whose event files have not been written for this many seconds "
        "is marked stalled in its activity (JupyterLab then says so once). 0 turns this off.",
    ).tag(config=True)

    state_file = Unicode(
        help="Where the job table is saved, so a restarted server re-adopts TensorBoards "
        "that still run and reports the rest as lost. Empty turns saving off. Defaults to "
        "a file under the Jupyter runtime directory, one per server root and base URL. "
        "The file and its directory must belong to the server's user and be writable by "
        "nobody else; otherwise the server says why, starts with an empty table and leaves "
        "the file alone. A running server holds a lock beside the file: a second server on "
        "the same file keeps its table in memory only.",
    ).tag(config=True)

    s3_endpoint_url = Unicode(
        "",
        help="The S3 endpoint for s3:// log directories, for S3-compatible stores such as "
        "MinIO. Empty means boto3's default: AWS_ENDPOINT_URL when set, else AWS.",
    ).tag(config=True)

    connections = Dict(
        help="Named connections for remote log directories, chosen per launch by name: "
        '{"minio": {"protocol": "s3", "endpoint_url": "https://minio:9000", "ca_bundle": '
        '"/etc/ssl/minio.pem"}, "cluster": {"protocol": "ssh", "host": "login1"}}. '
        "Settings per protocol: s3: endpoint_url, region, ca_bundle, profile, key, secret, "
        "anon; gs: endpoint_url, project, token (a credentials file), anon; az: "
        "account_name, connection_string, account_key, sas_token, anon; ssh: host, port, "
        "username, client_keys, known_hosts, config. Without a connection the standard "
        "credential chains apply (AWS env/profile/role, Google ADC, Azure's default "
        "credential, the SSH agent, keys and ~/.ssh/config). Secrets given here are listed "
        "nowhere and reach a job only through a private file.",
    ).tag(config=True)

    mirror_cache_dir = Unicode(
        help="Where remote (s3://, gs://, az://, ssh://) jobs mirror their event files, one "
        "private directory per job. Defaults to a directory under the Jupyter runtime directory.",
    ).tag(config=True)

    mirror_cache_max_bytes = Integer(
        20 * 1024**3,
        help="Bytes of TensorBoard files a remote job may mirror; a job whose source holds "
        "more fails to start, or once running stops fetching and says why in its mirror status.",
    ).tag(config=True)

    mirror_cache_max_objects = Integer(
        100_000,
        help="How many TensorBoard files (objects) a remote job may mirror; a job whose "
        "source holds more fails to start, or once running stops fetching and says why in "
        "its mirror status. Empty objects count nothing toward mirror_cache_max_bytes: this "
        "bounds the mirror's files and memory, and is far more than the event files of "
        "thousands of runs.",
    ).tag(config=True)

    keep_mirror_cache = Bool(
        False,
        help="Keep a remote job's mirror when the job ends (by default it is removed).",
    ).tag(config=True)

    @default("mirror_cache_dir")
    def _default_mirror_cache_dir(self) -> str:
        return os.path.join(self._server.runtime_dir, "forgather-tb", "s3-cache")

    # The names of the mirror's settings from when only s3:// was mirrored: still read.
    s3_cache_dir = Unicode(help="Deprecated: use mirror_cache_dir.").tag(config=True)
    s3_cache_max_bytes = Integer(help="Deprecated: use mirror_cache_max_bytes.").tag(config=True)
    s3_cache_max_objects = Integer(help="Deprecated: use mirror_cache_max_objects.").tag(
        config=True
    )
    s3_keep_cache = Bool(help="Deprecated: use keep_mirror_cache.").tag(config=True)

    @observe(*RENAMED_SETTINGS)
    def _renamed_setting(self, change: dict[str, Any]) -> None:
        new = RENAMED_SETTINGS[change["name"]]
        self.log.warning(
            "ForgatherTB.%s is deprecated: set ForgatherTB.%s instead", change["name"], new
        )
        setattr(self, new, change["new"])

    private_network = Bool(
        True,
        help="Run each job on a Unix socket whose loader may be TensorBoard's Rust data "
        "server (load_fast 'auto' or 'true', a local log directory) in a network namespace "
        "of its own (Linux; as root, or in a user namespace where the kernel allows it). Its "
        "data server's loopback port is then private, so 'auto' picks the Rust loader, "
        "which loads large log directories many times faster and, with the quick ACKs set "
        "on that loopback, answers requests faster too. Such a job has no network: give it "
        "load_fast 'false' if a TensorBoard plugin needs one. Where a namespace cannot be "
        "made, the job starts as without this and says why in its output.",
    ).tag(config=True)

    load_fast_auto_bytes = Integer(
        0,
        help="Where a job has no private network (see private_network), load_fast 'auto' "
        "uses TensorBoard's Rust data server for log directories holding at least this "
        "many bytes of event files, and the Python loader below that. The Rust server "
        "then listens on a loopback TCP port that any local user can read without "
        "Jupyter's login, so 0, the default, keeps 'auto' on the Python loader there "
        "(no TCP port).",
    ).tag(config=True)

    allow_port = Bool(
        True,
        help="Let a launch ask for a TCP port (port or bind_all). TensorBoard on a loopback "
        "port can be read by every user of this machine without Jupyter's login (with "
        "bind_all, by anyone who can reach it); such jobs say so in their JSON, the sidebar "
        "and the CLI. False refuses those launches with HTTP 400, so every job is reached "
        "only through Jupyter: recommended on shared machines and JupyterHub.",
    ).tag(config=True)

    fork_server = Bool(
        True,
        help="Start TensorBoard jobs warm: on the first launch, start a process (with "
        "tensorboard_python) that imports TensorBoard once and forks a child per later job, "
        "which then answers in about a third of the time. TensorBoard still never runs in the "
        "Jupyter server. Launches made before it is ready, and all launches if it fails, "
        "start as plain subprocesses. False starts every job as a plain subprocess.",
    ).tag(config=True)

    memory_limit = Union(
        [Integer(), Unicode()],
        default_value="2G",
        help="The memory cap of a job that does not ask for one: bytes, or a size with a K, "
        "M, G or T suffix (binary multiples, as JupyterHub's mem_limit). A job over its cap "
        "ends 'failed' with the reason. 2G is about 20 times what a job on a small log "
        "directory uses (about 100 MiB) and 10 times one holding 300,000 scalar points, and "
        "still stops a runaway TensorBoard long before it takes a shared machine. 0: no cap, "
        "where there is no max_memory_limit (with one, 0 or a default above it gives the "
        "maximum).",
    ).tag(config=True)

    max_memory_limit = Union(
        [Integer(), Unicode()],
        help="The largest memory_limit one launch may ask for (a size as for memory_limit). "
        "With a maximum no job runs without a cap: asking for 0 (no cap) is refused. "
        "Wakes, relaunches and restored jobs are held to it too. "
        "Default: half of this machine's memory. 0: no maximum.",
    ).tag(config=True)

    total_memory_limit = Union(
        [Integer(), Unicode()],
        default_value=0,
        help="A memory budget for all starting and running jobs together: the sum of their "
        "caps. A launch that does not fit waits in the queue, in priority order, saying so "
        "in its queue_reason, and starts when memory is freed. Every job then needs a cap. "
        "0: no budget.",
    ).tag(config=True)

    cpu_nice = Integer(
        10,
        help="The niceness of every job's processes (-20 to 19; 10 by default, so TensorBoard "
        "never outcompetes training for the CPU). Set on the job's session as well, which "
        "is what counts where the kernel groups processes by session (autogroup).",
    ).tag(config=True)

    cpu_limit = Float(
        0.0,
        help="The most CPU one job may use, in cores (fractions allowed), where the machine "
        "can enforce it (a cgroup CPU controller). 0: no limit.",
    ).tag(config=True)

    limit_mechanism = Enum(
        ["auto", "cgroup2", "cgroup1", "watchdog"],
        default_value="auto",
        help="How job limits are enforced. 'auto' takes the strongest the machine allows: "
        "cgroup v2 where the server's cgroup is delegated to it, else cgroup v1 where its "
        "memory controller is writable, else a watchdog that samples each job's memory "
        "about once a second and ends it above its cap. Naming one that cannot be used "
        "falls back to the watchdog.",
    ).tag(config=True)

    @validate("memory_limit", "max_memory_limit", "total_memory_limit")
    def _valid_size(self, proposal: Bunch) -> int:
        try:
            return parse_size(proposal["value"])
        except ValueError as error:
            raise TraitError(f"c.ForgatherTB.{proposal['trait'].name}: {error}") from None

    @validate("connections")
    def _valid_connections(self, proposal: Bunch) -> dict[str, Any]:
        try:
            parse_connections(proposal["value"])
        except ValueError as error:
            raise TraitError(f"c.ForgatherTB.connections: {error}") from None
        return dict(proposal["value"])

    @validate("cpu_nice")
    def _valid_nice(self, proposal: Bunch) -> int:
        try:
            return check_nice(proposal["value"])
        except ValueError as error:
            raise TraitError(f"c.ForgatherTB.cpu_nice: {error}") from None

    @default("max_memory_limit")
    def _default_max_memory_limit(self) -> int:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2

    @default("state_file")
    def _default_state_file(self) -> str:
        key = hashlib.sha256(
            f"{self._server.root_dir}\0{self._server.base_url}".encode()
        ).hexdigest()[:16]
        return os.path.join(self._server.runtime_dir, "forgather-tb", f"jobs-{key}.json")

    @default("tensorboard_python")
    def _default_python(self) -> str:
        return sys.executable

    @property
    def _server(self) -> ServerApp:
        """The Jupyter server this extension runs in (jupyter_server types it as optional)."""
        if self.serverapp is None:
            raise RuntimeError("ForgatherTB is not linked to a Jupyter server")
        return self.serverapp

    @property
    def root_dir(self) -> str:
        """The Jupyter server's root directory: relative log directories start here."""
        return os.path.abspath(os.path.expanduser(self._server.root_dir))

    @property
    def roots(self) -> list[str]:
        """The allowed roots, defaulting to the server's root directory."""
        return list(self.allowed_roots) or [self.root_dir]

    def initialize_settings(self) -> None:
        """Build the job manager and share it with the handlers."""
        server = self._server
        settings = from_traits(
            ManagerSettings,
            self,
            base_url=server.base_url,
            python=self.tensorboard_python,
            log_dir=os.path.join(server.runtime_dir, "forgather-tb", "logs"),
            socket_dir=self.socket_dir or None,
            state_file=self.state_file or None,
            s3_endpoint_url=self.s3_endpoint_url or None,
            connections=parse_connections(self.connections),
            # parse_size again: traitlets does not validate static default values.
            memory_limit=parse_size(self.memory_limit),
            max_memory_limit=parse_size(self.max_memory_limit),
            total_memory_limit=parse_size(self.total_memory_limit),
            allowed_roots=self.roots,
            scan_depth=self.logdir_scan_depth,
            scan_max_dirs=self.logdir_scan_max_dirs,
            scan_max_entries=self.logdir_scan_max_entries,
        )
        self.scan_executor = ThreadPoolExecutor(
            SCAN_WORKERS, thread_name_prefix="forgather-tb-scan"
        )
        try:
            self.manager = JobManager(settings, log=self.log, scan_executor=self.scan_executor)
        except UnsafeSocketBase as error:
            self.scan_executor.shutdown(wait=False)
            self.turned_off = f"TensorBoard jobs are turned off on this server: {error}"
            self.log.error("%s", self.turned_off)
            return
        self.backends = BackendClients()
        self.manager.on_job_end(lambda job: self.backends.close(job.id))
        self.previews = PreviewClient(self._server.base_url, self.preview_max_bytes)
        self.exports = Exports()
        self.sharing = build_sharing(
            self.manager, self._server.base_url, self.state_file, self._server.authorizer, self.log
        )
        config = from_traits(WebSettings, self)
        self.settings.update(
            {
                "forgather_tb_manager": self.manager,
                "forgather_tb_backends": self.backends,
                "forgather_tb_config": config,
                "forgather_tb_scan_executor": self.scan_executor,
                "forgather_tb_previews": self.previews,
                "forgather_tb_exports": self.exports,
                "forgather_tb_sharing": self.sharing,
            }
        )

    def initialize_handlers(self) -> None:
        """Register the REST API and the proxy routes."""
        if self.turned_off:
            self.handlers.extend(turned_off_handlers(API_PREFIX, self.turned_off))
            return
        self.handlers.extend(api_handlers(API_PREFIX))
        self.handlers.extend(proxy_handlers())
        self.handlers.extend(sharing_handlers(API_PREFIX))

    async def _start_jupyter_server_extension(self, serverapp: ServerApp) -> None:
        """Once the server runs: stop on SIGINT as on SIGTERM (see :func:`stop_on_sigint`)."""
        stop_on_sigint(serverapp)
        if hasattr(self, "sharing"):
            self.sharing.start()

    async def stop_extension(self) -> None:
        """Stop every TensorBoard this server started (once, however often it is asked)."""
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self._stop())
        await asyncio.shield(self._stopping)

    async def _stop(self) -> None:
        if not hasattr(self, "manager"):
            return  # never started: its socket directory was refused
        self.sharing.stop()
        await self.manager.shutdown()
        self.backends.close_all()
        self.previews.close()
        self.exports.close()
        self.scan_executor.shutdown(wait=False, cancel_futures=True)


def from_traits(cls: type[_Settings], app: ForgatherTB, **given: Any) -> _Settings:
    """A settings dataclass filled from the app: ``given`` values, else the same-named trait."""
    names = [field.name for field in fields(cls)]  # type: ignore[arg-type]
    return cls(**{name: given[name] if name in given else getattr(app, name) for name in names})


def stop_on_sigint(serverapp: ServerApp) -> None:
    """Make SIGINT stop the server cleanly, as SIGTERM does, where jupyter_server would not.

    Without a terminal, jupyter_server leaves SIGINT to Python: a KeyboardInterrupt
    stops the event loop and the server exits without its cleanup, so no extension
    is stopped (jobs die with their pipes, but their records still say running, and
    their sockets and control groups stay). JupyterHub's local spawner stops a
    server with SIGINT first. Where Python's handler is still in place, SIGINT then
    calls ``ServerApp.stop``, which runs every extension's ``stop_extension``, as
    SIGTERM does; on a terminal, jupyter_server's own handler (which asks first)
    is kept.
    """
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        return

    def stop(sig: int, frame: object) -> None:
        serverapp.log.critical("received signal %s, stopping", sig)
        serverapp.stop(from_signal=True)

    signal.signal(signal.SIGINT, stop)
