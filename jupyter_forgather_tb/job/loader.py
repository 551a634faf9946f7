"""Which of TensorBoard's loaders serves a job: the ``auto`` policy of ``load_fast``.

The Rust data server ingests log directories many times faster than the Python
loader, but listens on a loopback TCP port without authentication. In the job's
own network namespace (see ``netns.py``) that port is private, and with quick
ACKs on that loopback the Rust server also answers requests faster, so ``auto``
picks it there. Elsewhere ``auto`` picks Rust only at or above a size threshold
the administrator sets (``ForgatherTB.load_fast_auto_bytes``; 0, the default,
means never). Runs in the job's process (the runner), never in the Jupyter server.
"""

from __future__ import annotations

import os

from ..common.tbfiles import EVENT_FILE_MARK


def choose_load_fast(event_bytes: int, threshold: int, rust_installed: bool) -> bool:
    """Outside a private network, True to use the Rust loader: installed, enabled, reached."""
    return threshold > 0 and rust_installed and event_bytes >= threshold


def _tops(logdir: str) -> list[str]:
    """``logdir``, and the folders its own links lead to (a compare job's folder of links).

    Links deeper down are not followed, as ``os.walk`` does not: a loop cannot trap it.
    """
    try:
        with os.scandir(logdir) as entries:
            linked = [entry.path for entry in entries if entry.is_symlink() and entry.is_dir()]
    except OSError:
        linked = []
    return [logdir, *sorted(linked)]


def event_file_bytes(logdir: str, stop_at: int) -> int:
    """Bytes of TensorBoard event files under ``logdir``, counted until ``stop_at`` is reached."""
    total = 0
    for top in _tops(logdir):
        for directory, _, files in os.walk(top):
            for name in files:
                if EVENT_FILE_MARK in name:
                    try:
                        total += os.stat(os.path.join(directory, name)).st_size
                    except OSError:
                        continue
                    if total >= stop_at:
                        return total
    return total


def rust_loader_installed() -> bool:
    """True if TensorBoard's Rust data server is installed in this environment."""
    try:
        import tensorboard_data_server
    except ImportError:
        return False
    return tensorboard_data_server.server_binary() is not None


def load_fast_flag(logdir: str, threshold: int, private_network: bool) -> tuple[str, str]:
    """TensorBoard's ``--load_fast`` flag for ``auto`` on this log directory, and why."""
    installed = rust_loader_installed()
    if not installed:
        return "--load_fast=false", "the Rust data server is not installed: Python loader"
    if private_network:
        return "--load_fast=true", "private network: Rust data server"
    if threshold <= 0:
        return "--load_fast=false", "no private network: Python loader (opens no port)"
    size = event_file_bytes(logdir, threshold)
    if choose_load_fast(size, threshold, installed):
        return "--load_fast=true", f"{size} bytes of event files or more: Rust data server"
    return "--load_fast=false", f"{size} bytes of event files, below {threshold}: Python loader"
