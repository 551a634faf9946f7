"""``%forgather_tb``: launch TensorBoard from a notebook and show it inline, through Jupyter.

Every display carries ``text/plain`` beside its HTML, so a frontend without HTML
(a terminal IPython) shows the progress and the URL as plain lines.
"""

from __future__ import annotations

import argparse
import html
import shlex
import sys
from typing import TYPE_CHECKING, Any, NoReturn

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.display import IFrame, display

from ..common.options import OptionError
from .activity import activity_text
from .client import ENDED, LIVE, Client, ClientError, find_server
from .exposure import exposure_warning
from .launch_args import (
    add_keep_shares_argument,
    add_launch_arguments,
    add_memory_limit_argument,
    launch_body,
)
from .resources import cpu_column, doubled_memory_limit, memory_column, size_argument
from .scalars import read_frame
from .sharing import SHARING_COMMANDS, add_sharing_arguments, sharing_text
from .snapshot import add_snapshot, caption_text, job_snapshot, snapshot_bundle
from .terminal import printable

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

USAGE = """\
%forgather_tb --logdir DIR [--title T] [--port P] [--reload_interval S]
              [--samples_per_plugin SPEC] [--memory_limit SIZE] [--height 800] [--new] [...]
%forgather_tb list | kill ID | output ID | relaunch ID [--memory_limit SIZE] [--keep-shares]
%forgather_tb scalars ID (a DataFrame) | snapshot ID (a picture of its main scalars)
(%forgather_tb --help for every option)"""

COMMANDS = ("list", "kill", "output", "relaunch", "scalars", "snapshot", *SHARING_COMMANDS)
#: States whose URL serves TensorBoard: a request to a suspended job wakes it.
OPENABLE = ("running", "suspended")


class _HelpShown(Exception):
    """``--help`` was printed; nothing else to do."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports to IPython instead of exiting the kernel."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}\n{USAGE}")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            print(message, file=sys.stderr)
        raise _HelpShown()


def _parser(command: str | None = None) -> _Parser:
    prog = f"%forgather_tb {command}" if command else "%forgather_tb"
    parser = _Parser(prog=prog, description="TensorBoard through this notebook's Jupyter server.")
    if command is None:
        add_launch_arguments(parser, logdir_flag=True)
    elif command in SHARING_COMMANDS:
        add_sharing_arguments(parser, command)
    elif command != "list":
        parser.add_argument("id", help="job id (from %%forgather_tb list)")
    if command == "relaunch":
        add_memory_limit_argument(parser, default="the old job's")
        add_keep_shares_argument(parser)
    if command in (None, "relaunch"):
        parser.add_argument(
            "--height", type=int, default=800, help="height of the inline view in pixels"
        )
    parser.add_argument("--server", help="Jupyter server URL with its base URL (default: found)")
    parser.add_argument("--token", help="token for --server")
    return parser


def _bundle(text: str, markup: str | None = None) -> dict[str, str]:
    return {"text/plain": text, "text/html": markup or f"<pre>{html.escape(text)}</pre>"}


def _progress(job: dict[str, Any], reused: bool) -> str:
    where = f", position {job['queue_position']} in the queue" if job.get("queue_position") else ""
    if job.get("queue_reason"):
        where += f": {job['queue_reason']}"
    note = " (reusing a live job)" if reused else ""
    return printable(f"TensorBoard {job['label']}{note}: {job['status']}{where}…")


def _failure(job: dict[str, Any]) -> dict[str, str]:
    tail = "\n".join(job.get("output_tail") or [])
    head = f"TensorBoard {job['label']} {job['status']}: {job.get('error') or 'no error given'}"
    markup = f"<p><b>TensorBoard {html.escape(job['label'])} {job['status']}</b>: " + (
        f"{html.escape(job.get('error') or 'no error given')}</p>"
    )
    if tail:
        markup += f"<pre>{html.escape(tail)}</pre>"
    text = f"{head}\n{tail}".rstrip()
    doubled = doubled_memory_limit(job)
    if doubled:
        retry = f"%forgather_tb relaunch {job['id']} --memory_limit {size_argument(doubled)}"
        text += f"\nTo relaunch it with twice the memory: {retry}"
        markup += f"<p>To relaunch it with twice the memory: <code>{html.escape(retry)}</code></p>"
    return _bundle(printable(text, multiline=True), markup)


def _view(job: dict[str, Any], client: Client, height: int, reused: bool) -> dict[str, str]:
    # The job's url is server-relative (it holds the base URL), so the browser loads
    # it from the notebook's own origin, wherever the kernel runs.
    url = job["url"]
    note = " (reused a live job)" if reused else ""
    markup = (
        IFrame(url, width="100%", height=height)._repr_html_()
        + f'<p><a href="{html.escape(url)}" target="_blank" rel="noopener">'
        f"Open TensorBoard {html.escape(job['label'])} in a new tab</a>{note}</p>"
    )
    state = "is running" if job["status"] == "running" else "is suspended and wakes when opened"
    lines = [f"TensorBoard {job['label']} {state} at {client.server.browser_url(url)}{note}"]
    warning = exposure_warning(job)
    if warning:
        lines.append(f"Warning: TensorBoard {job['label']} {warning}")
        markup += (
            f"<p><b>Warning</b>: TensorBoard {html.escape(job['label'])} {html.escape(warning)}</p>"
        )
    return _bundle("\n".join(map(printable, lines)), markup)


def _jobs_table(jobs: list[dict[str, Any]]) -> dict[str, str]:
    if not jobs:
        return _bundle("No TensorBoard jobs.")
    rows = [
        (j["id"], j["status"], memory_column(j), cpu_column(j), j["label"], j["options"]["logdir"])
        for j in jobs
    ]
    shown = [[printable(cell) for cell in row] for row in rows]
    width = [max(len(row[i]) for row in shown) for i in range(5)]
    text = "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row[:5], width, strict=True)) + f"  {row[5]}"
        for row in shown
    )
    cells = "".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape(c)}</td>" for c in (*row[:4], activity_text(job) or "-", *row[4:])
        )
        + (
            f'<td><a href="{html.escape(job["url"])}" target="_blank" rel="noopener">open</a></td>'
            if job["status"] in OPENABLE
            else "<td></td>"
        )
        + "</tr>"
        for job, row in zip(jobs, rows, strict=True)
    )
    head = (
        "<tr><th>id</th><th>status</th><th>memory</th><th>CPU</th><th>activity</th><th>label</th>"
        "<th>logdir</th><th></th></tr>"
    )
    warnings = [
        (job, warning)
        for job in jobs
        if job["status"] not in ENDED and (warning := exposure_warning(job))
    ]
    text += "".join(
        "\nWarning: " + printable(f"{job['id']} {warning}") for job, warning in warnings
    )
    notes = "".join(
        f"<p><b>Warning</b>: {html.escape(job['id'])} {html.escape(warning)}</p>"
        for job, warning in warnings
    )
    return _bundle(text, f"<table>{head}{cells}</table>{notes}")


@magics_class
class ForgatherTBMagics(Magics):
    """The ``%forgather_tb`` line magic."""

    @line_magic
    def forgather_tb(self, line: str) -> Any:
        """Launch or reuse TensorBoard on a log directory and show it here.

        ``%forgather_tb --logdir runs/ [--title T] [--port P] [--height 800] [--new] ...``;
        also ``%forgather_tb list``, ``%forgather_tb kill ID``, ``%forgather_tb output ID``,
        ``%forgather_tb relaunch ID [--memory_limit SIZE] [--keep-shares]``,
        ``%forgather_tb scalars ID`` (returns a DataFrame), ``%forgather_tb snapshot ID``,
        and under JupyterHub
        ``%forgather_tb share ID --user NAME|--group NAME|--link``, ``unshare``, ``shares``.
        """
        try:
            words = shlex.split(line)
        except ValueError as error:
            raise UsageError(f"%forgather_tb: {error}") from None
        command = words[0] if words[:1] and words[0] in COMMANDS else None
        try:
            args = _parser(command).parse_args(words[1:] if command else words)
            body = launch_body(args) if command is None else None
            client = Client(find_server(args.server, args.token))
            if body is not None:
                self._show(client, *client.launch(body), args.height)
            elif command == "relaunch":
                self._show(
                    client,
                    client.relaunch(args.id, args.memory_limit, args.keep_shares),
                    False,
                    args.height,
                )
            elif command in SHARING_COMMANDS:
                args.command = command
                print(sharing_text(client, args))
            elif command == "list":
                display(_jobs_table(client.jobs()), raw=True)
            elif command == "scalars":
                return read_frame(client, args.id)
            elif command == "snapshot":
                job = client.job(args.id)
                display(snapshot_bundle(job_snapshot(client, job), caption_text(job)), raw=True)
            elif command == "kill":
                job = client.kill(args.id)
                print(printable(f"TensorBoard {job['label']} ({job['id']}) is {job['status']}."))
            else:
                for text in client.output_text(args.id):
                    print(printable(text, multiline=True), end="")
        except _HelpShown:
            pass
        except OptionError as error:
            raise UsageError(str(error)) from None
        except ClientError as error:
            print(printable(error.message, multiline=True), file=sys.stderr)

    def _show(self, client: Client, job: dict[str, Any], reused: bool, height: int) -> None:
        """Show a launched job's progress in place, then TensorBoard or its failure."""
        handle = None
        if job["status"] in LIVE:
            shown = _progress(job, reused)
            handle = display(_bundle(shown), raw=True, display_id=True)

            def on_poll(current: dict[str, Any]) -> None:
                nonlocal shown
                if current["status"] in LIVE and _progress(current, reused) != shown:
                    shown = _progress(current, reused)
                    handle.update(_bundle(shown), raw=True)

            try:
                job = client.wait(job, on_poll=on_poll)
            except KeyboardInterrupt:
                text = printable(
                    f"Stopped waiting for TensorBoard {job['label']}; it goes on starting. "
                    f"%forgather_tb kill {job['id']} cancels it."
                )
                handle.update(_bundle(text), raw=True)
                return
        # A suspended job's view wakes it: the IFrame's request is enough.
        openable = job["status"] in OPENABLE
        result = _view(job, client, height, reused) if openable else _failure(job)
        view = handle
        if view is None:
            view = display(result, raw=True, display_id=True)
        else:
            view.update(result, raw=True)
        if view is not None and job["status"] == "running":
            add_snapshot(view, result, client, job)


def load_ipython_extension(ipython: InteractiveShell) -> None:
    """Register ``%forgather_tb`` (``%load_ext jupyter_forgather_tb``)."""
    ipython.register_magics(ForgatherTBMagics)
