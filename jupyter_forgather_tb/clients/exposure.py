"""Who can open a job without Jupyter's login: the warning the CLI and the magic show."""

from __future__ import annotations

from typing import Any


def exposure_warning(job: dict[str, Any]) -> str | None:
    """Who can open a job on a TCP port without Jupyter's login (None for other jobs).

    A job's Rust data server on a loopback port (``exposure`` "local" on a job
    reached by a Unix socket) is not said here: the CLI says it on its loader line.
    """
    port = f"port {job['port']}" if job.get("port") else "a port"
    if job.get("exposure") == "network":
        return (
            f"listens on {port} of all interfaces: anyone who can reach this machine "
            "can open it without Jupyter's login"
        )
    if job.get("exposure") == "local" and job.get("transport") == "tcp":
        return (
            f"listens on {port} of {job['options']['host']}: every user of this machine "
            "can open it without Jupyter's login"
        )
    return None
