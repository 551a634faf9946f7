"""``jupyter forgather-tb``: TensorBoard jobs of a Jupyter server from a terminal.

Exit codes: 0 done, 1 the server or the job said no, 2 bad usage.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import signal
import sys
import threading
import webbrowser
from collections.abc import Callable
from datetime import UTC, datetime
from types import FrameType
from typing import Any, NoReturn

from .. import __version__
from ..common.options import OptionError
from ..common.sizes import format_size
from .activity import activity_text
from .client import (
    ENDED,
    ENV_SERVER,
    ENV_TOKEN,
    LIVE,
    Client,
    ClientError,
    NoServerFound,
    ServerInfo,
    find_server,
    running_servers,
)
from .exposure import exposure_warning
from .launch_args import (
    add_keep_shares_argument,
    add_launch_arguments,
    add_memory_limit_argument,
    launch_body,
)
from .resources import (
    cpu_column,
    doubled_memory_limit,
    limits_text,
    memory_column,
    size_argument,
    usage_text,
)
from .scalars import add_export_arguments, export_command
from .sharing import SHARING_COMMANDS, add_sharing_arguments, sharing_text
from .terminal import printable

DESCRIPTION = """\
Launch and manage TensorBoard jobs served through a Jupyter server, at <base_url>tb/<id>/
behind Jupyter's own login. The server is found by itself (see the 'servers' command)
unless --server and --token say which one to use."""

EPILOG = f"""\
The server is, in order: --server (with --token); {ENV_SERVER} (with {ENV_TOKEN});
JupyterHub's variables inside a single-user server; the running server of this Jupyter
terminal, or whose root directory holds the current directory, or the only one running.
On a server found on this machine, a relative LOGDIR starts at the current directory.
Exit codes: 0 done, 1 the server or the job said no, 2 bad usage."""


def _server_arguments(parser: argparse.ArgumentParser, default: str | None = None) -> None:
    parser.add_argument(
        "--server",
        default=default,
        metavar="URL",
        help=f"Jupyter server URL including its base URL (default: ${ENV_SERVER}, or found)",
    )
    parser.add_argument(
        "--token", default=default, help=f"token for the server (default: ${ENV_TOKEN})"
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jupyter forgather-tb",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=__version__)
    _server_arguments(parser)
    # Accepted after the command too; SUPPRESS keeps a value given before it.
    common = argparse.ArgumentParser(add_help=False)
    _server_arguments(common, default=argparse.SUPPRESS)
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", help="what to do (COMMAND -h for more)"
    )

    def command(name: str, text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=text, description=text, parents=[common])
        sub.set_defaults(usage_error=sub.error)  # a bad option value is this command's usage
        return sub

    launch = command("launch", "launch TensorBoard on a log directory, or reuse the live one")
    add_launch_arguments(launch, logdir_flag=False)
    launch.add_argument(
        "--wait", action="store_true", help="wait until it runs (a spinner on a terminal)"
    )
    launch.add_argument(
        "--open", action="store_true", help="open it in a web browser (implies --wait)"
    )
    launch.add_argument("--json", action="store_true", help="print the job as JSON")

    relaunch = command("relaunch", "launch a new job with an ended job's options")
    relaunch.add_argument("id", help="job id (from 'list')")
    add_memory_limit_argument(relaunch, default="the old job's")
    add_keep_shares_argument(relaunch)
    relaunch.add_argument(
        "--wait", action="store_true", help="wait until it runs (a spinner on a terminal)"
    )
    relaunch.add_argument(
        "--open", action="store_true", help="open it in a web browser (implies --wait)"
    )
    relaunch.add_argument("--json", action="store_true", help="print the new job as JSON")

    listing = command("list", "list the server's TensorBoard jobs")
    listing.add_argument("--json", action="store_true", help="print a JSON array, for scripts")

    show = command("show", "show one job: status, URL, options, error and last output")
    show.add_argument("id", help="job id (from 'list')")
    show.add_argument("--json", action="store_true", help="print the job as JSON")

    kill = command("kill", "stop a job (or cancel it while it is queued)")
    kill.add_argument("id", help="job id (from 'list')")

    resume = command(
        "resume", "wake a suspended job (opening its URL wakes it too), and wait until it runs"
    )
    resume.add_argument("id", help="job id (from 'list')")

    output = command("output", "print a job's TensorBoard output")
    output.add_argument("id", help="job id (from 'list')")
    output.add_argument(
        "-f", "--follow", action="store_true", help="keep printing until the process ends"
    )

    for name in SHARING_COMMANDS:
        add_sharing_arguments(command(name, SHARING_COMMANDS[name]), name)

    command("servers", "list the Jupyter servers this command can see, and the one it uses")

    add_export_arguments(command("export", "write a running job's scalars to a file"))

    upload = commands.add_parser(
        "upload",
        help="copy a local log directory's event files to a remote source, once or while "
        "training runs",
        description="Copy the TensorBoard files (event files and plugin assets) of a local "
        "log directory to s3://bucket/prefix, gs://bucket/prefix, az://container/prefix or "
        "ssh://[user@]host[:port]/path. Only new bytes are sent where the store allows: a "
        "grown event file is appended to (S3: a server-side copy and the new bytes; GCS: "
        "compose; Azure: append blobs; SSH: SFTP append). Uses the store's standard "
        "credentials, or a named connection of this machine's Jupyter configuration. "
        "Needs no Jupyter server.",
    )
    upload.set_defaults(usage_error=upload.error)
    upload.add_argument("local", metavar="LOCAL_LOGDIR", help="the local log directory")
    upload.add_argument(
        "url", metavar="URL", help="where to: s3://, gs://, az:// or ssh:// URL of a folder"
    )
    upload.add_argument(
        "--follow",
        action="store_true",
        help="keep uploading until SIGTERM or Ctrl-C, then upload once more and exit",
    )
    upload.add_argument(
        "--interval",
        type=float,
        default=10.0,
        metavar="S",
        help="seconds between uploads with --follow (default 10)",
    )
    upload.add_argument(
        "--connection",
        metavar="NAME",
        help="a connection of c.ForgatherTB.connections in this machine's Jupyter "
        "configuration (endpoint, region, account, SSH host...)",
    )
    upload.add_argument(
        "--endpoint-url",
        metavar="URL",
        help="S3-compatible endpoint for s3:// (default: the connection's, "
        "$AWS_ENDPOINT_URL, else AWS)",
    )
    return parser


def _age(iso: str | None) -> str:
    if not iso:
        return "-"
    seconds = (datetime.now(UTC) - datetime.fromisoformat(iso)).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{max(0, int(seconds))}s"


def _table(rows: list[list[str]]) -> str:
    rows = [[printable(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )


def _loader_text(loader: dict[str, Any]) -> str:
    if loader["name"] == "python":
        return "Python"
    if loader["private_network"]:
        return "Rust data server, in the job's private network"
    return "Rust data server; its loopback port is open to local users"


def _mirror_text(mirror: dict[str, Any]) -> str:
    """A remote job's mirror in a line: its first copy while it runs, else what it holds."""
    progress = mirror.get("progress")
    if progress and not progress.get("done"):
        text = (
            f"first copy: {progress['files']} of {progress['files_total']} files, "
            f"{format_size(progress['bytes'])} of {format_size(progress['bytes_total'])}"
        )
        if progress.get("eta_seconds") is not None:
            text += f", about {round(progress['eta_seconds'])} s left"
        return text
    text = f"{mirror['objects']} files, {format_size(mirror['bytes'])}"
    text += f", synced {_age(mirror['last_sync'])} ago" if mirror.get("last_sync") else ""
    if mirror.get("requests") is not None:
        text += f", {mirror['requests']} requests"
    return text


def _describe(job: dict[str, Any], server: ServerInfo) -> str:
    detail = f" (position {job['queue_position']})" if job.get("queue_position") else ""
    if job["status"] == "suspended":
        detail = f" since {job['suspended_at']}, wakes when opened"
    options = ", ".join(
        f"{name}={value}"
        for name, value in sorted(job["options"].items())
        if name not in ("logdir", "window_title") and value not in (None, False, 0)
    )
    lines = [
        f"id:       {job['id']}",
        f"label:    {job['label']}",
        f"status:   {job['status']}{detail}",
        f"logdir:   {job['options']['logdir']}",
        f"url:      {server.browser_url(job['url'])}",
        f"created:  {job['created']}",
    ]
    activity = activity_text(job)
    if activity:
        lines.append(f"activity: {activity}")
    if job.get("queue_reason"):
        lines.append(f"waiting:  {job['queue_reason']}")
    if job.get("wakes"):
        lines.append(f"wakes:    {job['wakes']}")
    if options:
        lines.append(f"options:  {options}")
    lines.append(f"limits:   {limits_text(job.get('limits'))}")
    usage = usage_text(job)
    if usage:
        lines.append(f"usage:    {usage}")
    if job.get("loader"):
        lines.append(f"loader:   {_loader_text(job['loader'])}")
    if job.get("mirror"):
        lines.append(f"mirror:   {_mirror_text(job['mirror'])}")
    warning = exposure_warning(job)
    if warning:
        lines.append(f"warning:  {warning}")
    if job.get("error"):
        lines.append(f"error:    {job['error']}")
    doubled = doubled_memory_limit(job)
    if doubled:
        lines.append(
            f"retry:    jupyter forgather-tb relaunch {job['id']} "
            f"--memory_limit {size_argument(doubled)}"
        )
    lines += [f"  | {line}" for line in job.get("output_tail") or []]
    return "\n".join(printable(line) for line in lines)


def _wait(client: Client, job: dict[str, Any]) -> dict[str, Any]:
    """Wait for a job to run or end: a spinner on a terminal, status lines otherwise."""
    tty = sys.stderr.isatty()
    spinner = itertools.cycle("|/-\\")
    last = None

    def on_poll(current: dict[str, Any]) -> None:
        nonlocal last
        if current["status"] not in LIVE:
            return
        status = current["status"]
        if current.get("queue_position"):
            status += f", position {current['queue_position']} in the queue"
        if current.get("queue_reason"):
            status += f": {current['queue_reason']}"
        status = printable(status)
        label = printable(current["label"])
        if tty:
            sys.stderr.write(f"\r\033[K{next(spinner)} TensorBoard {label}: {status}")
            sys.stderr.flush()
        elif status != last:
            print(f"TensorBoard {label}: {status}", file=sys.stderr)
        last = status

    try:
        return client.wait(job, on_poll=on_poll)
    finally:
        if tty:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def _launch(client: Client, args: argparse.Namespace) -> int:
    job, reused = client.launch(launch_body(args))
    return _started(client, args, job, reused)


def _started(client: Client, args: argparse.Namespace, job: dict[str, Any], reused: bool) -> int:
    """Report a launched (or relaunched) job, after waiting for it with --wait or --open."""
    if (args.wait or args.open) and job["status"] == "suspended":  # a reused one
        job = client.resume(job["id"])
    if args.wait or args.open:
        job = _wait(client, job)
    url = client.server.browser_url(job["url"])
    if args.json:
        print(json.dumps({**job, "reused": reused}))
    elif job["status"] in ENDED:
        print(_describe(job, client.server), file=sys.stderr)
    else:
        note = ", reused a live job" if reused else ""
        label, status = printable(job["label"]), printable(job["status"])
        print(f"TensorBoard {label}: {status}{note}", file=sys.stderr)
        warning = exposure_warning(job)
        if warning:
            print(f"warning: TensorBoard {label} {printable(warning)}", file=sys.stderr)
        print(printable(url))
    if job["status"] in ENDED:
        return 1
    if args.open:
        webbrowser.open(url)
    return 0


def _jobs_table(jobs: list[dict[str, Any]]) -> str:
    """The jobs as a table; a queued job's reason for waiting goes on a line below it."""
    rows = [["ID", "STATUS", "AGE", "MEM", "CPU", "ACTIVITY", "LABEL", "LOGDIR"]]
    rows += [
        [
            j["id"],
            j["status"],
            _age(j["created"]),
            memory_column(j),
            cpu_column(j),
            activity_text(j) or "-",
            j["label"],
            j["options"]["logdir"],
        ]
        for j in jobs
    ]
    header, *lines = _table(rows).splitlines()
    out = [header]
    for job, line in zip(jobs, lines, strict=True):
        out.append(line)
        if job["status"] == "queued" and job.get("queue_reason"):
            out.append(f"    {job['queue_reason']}")
    return "\n".join(out)


def _list(client: Client, args: argparse.Namespace) -> int:
    jobs = client.jobs()
    if args.json:
        print(json.dumps(jobs, indent=2))
    elif not jobs:
        print("No TensorBoard jobs.")
    else:
        print(_jobs_table(jobs))
        for job in jobs:
            warning = exposure_warning(job)
            if warning and job["status"] not in ENDED:
                print(f"warning: {job['id']} {warning}", file=sys.stderr)
    return 0


def _servers(args: argparse.Namespace) -> int:
    try:
        chosen: ServerInfo | None = find_server(args.server, args.token)
    except NoServerFound as error:
        chosen, problem = None, error.message
    servers = running_servers()
    if servers:
        rows = [["", "URL", "ROOT", "PID"]]
        rows += [
            [
                "*" if chosen and chosen.url == s.url else "",
                s.url,
                s.root_dir or "-",
                str(s.pid or "-"),
            ]
            for s in servers
        ]
        print(_table(rows))
    else:
        print("No running Jupyter servers in Jupyter's runtime directory.")
    if chosen is None:
        print(printable(problem, multiline=True), file=sys.stderr)
        return 1
    print(printable(f"Using {chosen.url} ({chosen.source})."))
    return 0


def _progress_line(files: int, of_files: int, sent: int, of_bytes: int) -> None:
    """Show an upload's progress on the terminal's last line (a line of its own at the end)."""
    line = f"Uploading: {files}/{of_files} file(s), {format_size(sent)} of {format_size(of_bytes)}"
    end = "\n" if files == of_files else ""
    sys.stderr.write(f"\r\033[K{line}{end}")
    sys.stderr.flush()


def _upload(args: argparse.Namespace) -> int:
    from ..common.remotefs import SourceError
    from .connconfig import find_connection
    from .upload import Uploader

    if not args.interval > 0:
        args.usage_error("--interval must be a number of seconds above 0")
    if not os.path.isdir(args.local):
        args.usage_error(f"{args.local} is not a directory")
    try:
        connection = find_connection(args.connection) if args.connection else None
        uploader = Uploader(
            args.local, args.url, connection=connection, endpoint_url=args.endpoint_url
        )
    except ValueError as error:
        args.usage_error(f"{args.url}: {error}")
    except SourceError as error:  # the store's extra missing
        print(f"error: {printable(error.message, multiline=True)}", file=sys.stderr)
        return 1
    if sys.stderr.isatty():
        uploader.on_progress = _progress_line
    stop = threading.Event()
    if args.follow:
        # The first signal asks for a last sync; a second one ends at once.
        def on_signal(signum: int, frame: FrameType | None) -> None:
            if stop.is_set():
                raise KeyboardInterrupt
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
    else:
        stop.set()
        # SIGTERM like Ctrl-C, so an upload under way is aborted rather than left in parts.
        signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        uploader.follow(args.interval, stop)
    except SourceError as error:
        print(printable(f"error: {args.url}: {error.message}", multiline=True), file=sys.stderr)
        return 1
    total = uploader.total
    print(
        f"Uploaded {total.files} file(s) to {args.url}: {total.bytes_sent} bytes sent, "
        f"{total.bytes_copied} copied within the store.",
        file=sys.stderr,
    )
    return 0


def _run(args: argparse.Namespace) -> int:
    if args.command == "upload":
        return _upload(args)
    if args.command == "servers":
        return _servers(args)
    if args.command == "launch" and not args.logdir and not args.more_logdirs:
        args.usage_error("the following arguments are required: logdir")  # as argparse says
    client = Client(find_server(args.server, args.token))
    if args.command == "launch":
        return _launch(client, args)
    if args.command == "relaunch":
        return _started(
            client, args, client.relaunch(args.id, args.memory_limit, args.keep_shares), False
        )
    if args.command == "list":
        return _list(client, args)
    if args.command == "export":
        return export_command(client, args)
    if args.command == "show":
        job = client.job(args.id)
        print(json.dumps(job, indent=2) if args.json else _describe(job, client.server))
        return 0
    if args.command == "kill":
        job = client.kill(args.id)
        print(printable(f"TensorBoard {job['label']} ({job['id']}): {job['status']}"))
        return 0
    if args.command in SHARING_COMMANDS:
        print(sharing_text(client, args))
        return 0
    if args.command == "resume":
        job = _wait(client, client.resume(args.id))
        print(printable(f"TensorBoard {job['label']} ({job['id']}): {job['status']}"))
        return 0 if job["status"] == "running" else 1
    for text in client.output_text(args.id, follow=args.follow):
        sys.stdout.write(printable(text, multiline=True))
        sys.stdout.flush()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except OptionError as error:
        usage_error: Callable[[str], NoReturn] = args.usage_error  # argparse's error()
        usage_error(str(error))  # exits 2, like any other usage error
    except ClientError as error:
        print(f"error: {printable(error.message, multiline=True)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
