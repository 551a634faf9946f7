"""What the job manager needs from configuration: one object, built once from the traits."""

from __future__ import annotations

from dataclasses import dataclass

from ...common.connections import Connection


@dataclass
class ManagerSettings:
    """What the manager needs from configuration: built from ``app.ForgatherTB``'s traits.

    No defaults here: the traits (with their help text) are the one place they live.
    The manager and its parts share this one object, so a change to it (tests make
    some) holds for every job started afterwards.
    """

    base_url: str
    python: str
    max_running: int
    max_queued: int
    startup_timeout: float
    kill_grace: float
    idle_timeout: float
    suspend_after: float  # 0: never suspend
    output_buffer_size: int
    max_finished: int
    log_dir: str
    socket_dir: str | None
    state_file: str | None
    mirror_cache_dir: str  # "" for "s3-cache" next to log_dir
    mirror_cache_max_bytes: int
    mirror_cache_max_objects: int
    keep_mirror_cache: bool
    s3_endpoint_url: str | None
    connections: dict[str, Connection]  # by name, from c.ForgatherTB.connections
    load_fast_auto_bytes: int
    private_network: bool
    fork_server: bool
    memory_limit: int  # 0: no cap
    max_memory_limit: int  # 0: no maximum
    total_memory_limit: int  # 0: no budget
    allow_port: bool  # False: no job may listen on a TCP port
    allowed_roots: list[str]  # local log directories must resolve inside one of these
    cpu_nice: int
    cpu_limit: float  # 0: no limit
    limit_mechanism: str
    live_window: float
    stall_after: float  # 0: off
    scan_depth: int  # the log directory picker's limits, which activity scans keep too
    scan_max_dirs: int
    scan_max_entries: int
