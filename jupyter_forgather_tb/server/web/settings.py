"""What the web layer needs from configuration: one object, built once from the traits."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WebSettings:
    """The settings the REST handlers and the proxy read (built from ``app.ForgatherTB``).

    No defaults here: the traits (with their help text) are the one place they live.
    """

    allow_port: bool  # False: no job may listen on a TCP port
    root_dir: str  # the Jupyter server's root: relative log directories start here
    roots: list[str]  # local log directories must resolve inside one of these
    logdir_scan_depth: int
    logdir_scan_max_dirs: int
    logdir_scan_max_entries: int
    logdir_scan_max_results: int
    proxy_connect_timeout: float
    proxy_request_timeout: float
    remote_list_timeout: float  # seconds the picker may spend listing a remote source
    tensorboard_python: str  # the job side's Python, which lists remote sources
    s3_endpoint_url: str  # "" for boto3's default
