"""The process a TensorBoard job runs in: TensorBoard served on a Unix socket or a TCP port.

Run as ``python -m jupyter_forgather_tb.runner [--unix-socket PATH] -- <tensorboard flags>``.
Its arguments and the report file it writes are defined in ``common/jobwire.py``.
Only a job's processes import tensorboard (here, in ``servers.py`` and in the fork
server); the Jupyter server never does.
The runner exits when its standard input closes, so a job never outlives the
server that started it, even if that server is killed outright.
"""

from __future__ import annotations

import argparse  # TensorBoard hands its flags to make_server as a Namespace
import contextlib
import logging
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

from ..common.jobwire import (
    JobArgs,
    JobReport,
    MirrorArgs,
    parse_job_argv,
    read_connection_file,
    write_report,
)
from .assets import default_assets, stored_zip
from .capture import (
    Forwarder,
    forward_captures,
    profile_plugin_installed,
    start_connector,
    stop_connector,
)
from .limits import LimitError, join_cgroups, set_nice
from .loader import load_fast_flag, rust_loader_installed
from .servers import (
    AssetsZipProvider,
    listen_tcp,
    make_tcp_server_class,
    make_unix_server_class,
)


def _exit_when_stdin_closes() -> None:
    try:
        while sys.stdin.buffer.read(4096):
            pass
    except (OSError, ValueError):
        pass
    os._exit(0)


def _start_mirror(args: MirrorArgs) -> bool:
    """Mirror a remote source into the job's cache, then keep it fresh; False on a fatal error."""
    from ..common.remotefs import LABELS, SourceError, open_source
    from ..common.s3status import STATUS_FILE
    from ..common.sources import parse_source_url
    from .mirror import Mirror, StatusFile, initial_sync, keep_syncing

    data = os.path.join(args.cache_dir, "data")
    scratch = os.path.join(args.cache_dir, "partial")
    for directory in (data, scratch):
        os.makedirs(directory, mode=0o700, exist_ok=True)
    status = StatusFile(os.path.join(args.cache_dir, STATUS_FILE), args.url)
    parent = os.getppid()
    url = parse_source_url(args.url)
    label = LABELS[url.scheme]
    try:
        conn = None
        if args.connection_file:
            try:
                conn = read_connection_file(args.connection_file)
            except ValueError as error:
                raise SourceError(str(error), fatal=True) from None
            finally:  # read once: the secret stays in this process only
                with contextlib.suppress(OSError):
                    os.unlink(args.connection_file)
        source = open_source(url, conn, args.endpoint_url)
        mirror = Mirror(source, data, scratch, args.max_cache_bytes, args.max_cache_objects)
        # Retrying stops if the server that started us is gone (our parent changed).
        initial_sync(mirror, status, args.sync_interval, lambda: os.getppid() != parent)
    except SourceError as error:
        status.update(None, error)
        sys.stderr.write(f"ERROR: {label} mirror of {args.url}: {error.message}\n")
        return False
    sys.stderr.write(f"Mirrored {mirror.objects} files ({mirror.bytes} bytes) from {args.url}\n")
    if mirror.skipped:
        sys.stderr.write(
            f"Not mirrored: {len(mirror.skipped)} file(s), such as {mirror.skipped[0]['key']!r}: "
            f"{mirror.skipped[0]['reason']} (the job's mirror status lists them)\n"
        )
    keep_syncing(mirror, status, args.sync_interval)
    return True


def _enter_private_network() -> bool:
    """Try a network namespace of our own (see netns.py); say what happened."""
    from .netns import NetnsError, enter_private_network

    try:
        note = enter_private_network()
    except NetnsError as error:
        sys.stderr.write(f"No private network for this job: {error}\n")
        return False
    if note:
        sys.stderr.write(f"Private network without {note}: the Rust loader answers slower\n")
    return True


def _auto_load_fast(tb_args: list[str], threshold: int, private_network: bool) -> str:
    logdir = tb_args[tb_args.index("--logdir") + 1]
    flag, why = load_fast_flag(logdir, threshold, private_network)
    sys.stderr.write(f"load_fast auto: {why}\n")
    return flag


def main(
    argv: list[str] | None = None, assets_zip_provider: AssetsZipProvider | None = None
) -> int:
    """Start TensorBoard as asked and serve until stdin closes or SIGTERM arrives.

    ``assets_zip_provider`` is TensorBoard's own parameter (the fork server
    passes the assets it prepared); None means TensorBoard's packaged ones,
    prepared here the same way (see ``assets.py``).
    """
    args = parse_job_argv(argv)
    # First of all, while this is the job's only process and thread: whatever starts
    # later (TensorBoard's threads, its data server) inherits the groups and niceness.
    try:
        join_cgroups(list(args.join_cgroups))
    except LimitError as error:
        sys.stderr.write(f"ERROR: {error}\n")
        return 1
    if args.nice is not None and (note := set_nice(args.nice)):
        sys.stderr.write(f"Note: {note}\n")
    tb_args = list(args.tensorboard_args)
    # Before any thread starts: a user namespace needs a single-threaded process. Not
    # without the Rust loader: the namespace would only take the job's network away.
    wants_private = bool(args.private_network and args.unix_socket) and rust_loader_installed()
    # Before leaving the machine's network: what lets the Profile plugin capture from it.
    connector = start_connector() if wants_private and profile_plugin_installed() else None
    private = wants_private and _enter_private_network()
    if connector and not private:
        stop_connector(*connector)
        connector = None
    if args.mirror and not _start_mirror(args.mirror):
        return 3
    if args.fast_loader_above is not None:
        tb_args = [*tb_args, _auto_load_fast(tb_args, args.fast_loader_above, private)]
    rust = "--load_fast=true" in tb_args
    if rust and not private:
        sys.stderr.write("Note: the Rust data server's loopback port is open to local users\n")
    report = JobReport(loader={"name": "rust" if rust else "python", "private_network": private})
    # Said before serving, so a job that fails to start has said it too.
    _report(args.report_file, report)

    from tensorboard import default, program

    from .export_plugin import ExportLoader

    if assets_zip_provider is None:
        assets_zip_provider = stored_zip(default_assets())
    servers: list[Any] = []

    def make_server(wsgi_app: WSGIApplication, flags: argparse.Namespace) -> Any:
        if connector:
            wsgi_app = forward_captures(wsgi_app, Forwarder(connector[0]))
        servers.append(_server(wsgi_app, flags, args))
        return servers[-1]

    board = program.TensorBoard(
        plugins=[*default.get_plugins(), ExportLoader()],
        assets_zip_provider=assets_zip_provider,
        server_class=make_server,
    )
    board.configure(argv=["tensorboard", *tb_args])
    # One log line per request would flood the job's output buffer.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    try:
        url = board.launch()
    except program.TensorBoardServerException as error:
        sys.stderr.write(f"ERROR: {error.msg}\n")
        return 1
    if not args.unix_socket:
        # Where it listens, as bound: the server checks that listener is ours, then probes it.
        ip, port = servers[0].address
        _report(args.report_file, JobReport(report.loader, address=(ip, port)))
    sys.stderr.write(f"TensorBoard serving at {url}\n")
    sys.stderr.flush()
    # Exit at once: TensorBoard keeps nothing to flush, and a normal interpreter
    # shutdown would wait on the stdin watcher thread's lock.
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    watcher = threading.Thread(target=_exit_when_stdin_closes, daemon=True)
    watcher.start()
    signal.pause() if hasattr(signal, "pause") else watcher.join()
    return 0


def _report(path: str | None, report: JobReport) -> None:
    if path:
        write_report(path, report)


def _server(wsgi_app: WSGIApplication, flags: argparse.Namespace, args: JobArgs) -> Any:
    """TensorBoard's server for this job: on its Unix socket, or on exactly its TCP address."""
    from tensorboard import program

    if args.unix_socket:
        return make_unix_server_class()(wsgi_app, flags, args.unix_socket)
    try:
        listener = listen_tcp(flags.host, flags.port, flags.bind_all)
    except OSError as error:
        where = "every interface" if flags.bind_all else flags.host
        raise program.TensorBoardServerException(
            f"could not listen on port {flags.port} of {where}: {error.strerror}"
        ) from None
    return make_tcp_server_class()(wsgi_app, flags, listener)
