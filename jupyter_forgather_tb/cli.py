"""``jupyter forgather-tb``: TensorBoard jobs of a Jupyter server from a terminal.

Exit codes: 0 done, 1 the server or the job said no, 2 bad usage.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
import webbrowser
from datetime import datetime, timezone

from .client import Client, ClientError, find_server, running_servers
from .launch_args import add_launch_arguments, launch_body
from .options import OptionError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jupyter forgather-tb",
        description="Launch and manage TensorBoard jobs served through a Jupyter server.",
    )
    parser.add_argument("--server", help="Jupyter server URL, with its base URL (default: found)")
    parser.add_argument("--token", help="Jupyter token for --server")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    launch = commands.add_parser("launch", help="launch (or reuse) TensorBoard on a log directory")
    add_launch_arguments(launch, logdir_flag=False)
    launch.add_argument("--wait", action="store_true", help="wait until it runs; print its URL")
    launch.add_argument("--open", action="store_true", help="open it in a browser (implies --wait)")
    launch.add_argument("--json", action="store_true", help="print the job as JSON")

    listing = commands.add_parser("list", help="list jobs")
    listing.add_argument("--json", action="store_true", help="print JSON for scripts")

    show = commands.add_parser("show", help="show one job")
    show.add_argument("id", help="job id")

    kill = commands.add_parser("kill", help="stop a job (or cancel it if queued)")
    kill.add_argument("id", help="job id")

    output = commands.add_parser("output", help="print a job's TensorBoard output")
    output.add_argument("id", help="job id")
    output.add_argument("-f", "--follow", action="store_true", help="keep printing until it ends")

    commands.add_parser("servers", help="list the Jupyter servers this command can see")
    return parser


def _age(iso: str | None) -> str:
    if not iso:
        return "-"
    seconds = (datetime.now(timezone.utc) - datetime.fromisoformat(iso)).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows)


def _describe(job: dict, client: Client) -> str:
    lines = [
        f"id:       {job['id']}",
        f"label:    {job['label']}",
        f"status:   {job['status']}"
        + (f" (position {job['queue_position']})" if job.get("queue_position") else ""),
        f"logdir:   {job['options']['logdir']}",
        f"url:      {client.server.browser_url(job['url'])}",
    ]
    if job.get("error"):
        lines.append(f"error:    {job['error']}")
    lines += [f"  | {line}" for line in job.get("output_tail") or []]
    return "\n".join(lines)


def _wait(client: Client, job: dict) -> dict:
    spinner = itertools.cycle("|/-\\")
    tty = sys.stderr.isatty()

    def progress(current):
        if not tty:
            print(f"{current['label']}: {current['status']}", file=sys.stderr)

    deadline = time.monotonic() + 120
    while job["status"] not in ("running", "exited", "failed", "killed", "lost"):
        if tty:
            sys.stderr.write(f"\r{next(spinner)} {job['label']}: {job['status']} ")
            sys.stderr.flush()
        if time.monotonic() > deadline:
            raise ClientError(f"TensorBoard job {job['id']} is still {job['status']} after 120 s")
        time.sleep(0.2)
        previous, job = job["status"], client.job(job["id"])
        if job["status"] != previous:
            progress(job)
    if tty:
        sys.stderr.write("\r" + " " * 60 + "\r")
    return job


def _run(args: argparse.Namespace) -> int:
    if args.command == "servers":
        servers = running_servers()
        if not servers:
            print("No running Jupyter servers found.")
        for server in servers:
            print(f"{server.url}  root: {server.root_dir}  ({server.source})")
        return 0
    client = Client(find_server(args.server, args.token))
    if args.command == "launch":
        job, reused = client.launch(launch_body(args))
        if args.wait or args.open:
            job = _wait(client, job)
        if args.json:
            print(json.dumps({**job, "reused": reused}))
        elif job["status"] in ("failed", "killed", "exited", "lost"):
            print(_describe(job, client), file=sys.stderr)
        else:
            note = " (reused)" if reused else ""
            print(f"{job['label']}{note}: {job['status']}  {client.server.browser_url(job['url'])}")
        if args.open and job["status"] == "running":
            webbrowser.open(client.server.browser_url(job["url"]))
        return 1 if job["status"] in ("failed", "killed", "exited", "lost") else 0
    if args.command == "list":
        jobs = client.jobs()
        if args.json:
            print(json.dumps(jobs))
        elif not jobs:
            print("No TensorBoard jobs.")
        else:
            rows = [["ID", "STATUS", "AGE", "LABEL", "LOGDIR"]]
            rows += [
                [j["id"], j["status"], _age(j["created"]), j["label"], j["options"]["logdir"]]
                for j in jobs
            ]
            print(_table(rows))
        return 0
    if args.command == "show":
        print(_describe(client.job(args.id), client))
        return 0
    if args.command == "kill":
        job = client.kill(args.id)
        print(f"{job['label']} ({job['id']}): {job['status']}")
        return 0
    offset = 0
    while True:
        chunk = client.output(args.id, offset)
        sys.stdout.write(chunk["text"])
        sys.stdout.flush()
        offset = chunk["next_offset"]
        if not args.follow or chunk["complete"]:
            return 0
        if not chunk["text"]:
            time.sleep(0.5)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except OptionError as error:
        parser.error(str(error))  # exits 2, like any other usage error
    except ClientError as error:
        print(f"error: {error.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 1


if __name__ == "__main__":
    sys.exit(main())
