"""``%forgather_tb``: launch TensorBoard from a notebook and show it inline, through Jupyter."""

from __future__ import annotations

import argparse
import html
import shlex

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.display import display

from .client import Client, ClientError, find_server
from .launch_args import add_launch_arguments, launch_body
from .options import OptionError


class _Parser(argparse.ArgumentParser):
    """argparse that reports to IPython instead of exiting the kernel."""

    def error(self, message):
        raise UsageError(f"{self.prog}: {message}")

    def exit(self, status=0, message=None):
        if message:
            print(message)
        if status:
            raise UsageError("")
        raise _HelpShown()


class _HelpShown(Exception):
    """``--help`` was printed; nothing else to do."""


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="%forgather_tb", description="TensorBoard through this Jupyter server.")
    parser.add_argument("--server", help="Jupyter server URL (default: found automatically)")
    parser.add_argument("--token", help="token for --server")
    parser.add_argument(
        "--height", type=int, default=800, help="height of the inline view in pixels"
    )
    add_launch_arguments(parser, logdir_flag=True)
    return parser


def _bundle(text: str, markup: str) -> dict:
    return {"text/plain": text, "text/html": markup}


def _failure(job: dict) -> dict:
    lines = "\n".join(job.get("output_tail") or [])
    text = f"TensorBoard {job['label']} {job['status']}: {job.get('error') or ''}\n{lines}".rstrip()
    markup = (
        f"<p><b>TensorBoard {html.escape(job['label'])} {job['status']}</b>: "
        f"{html.escape(job.get('error') or '')}</p>"
        + (f"<pre>{html.escape(lines)}</pre>" if lines else "")
    )
    return _bundle(text, markup)


@magics_class
class ForgatherTBMagics(Magics):
    """The ``%forgather_tb`` line magic."""

    def _client(self, server=None, token=None) -> Client:
        return Client(find_server(server, token))

    @line_magic
    def forgather_tb(self, line: str):
        """Launch or reuse TensorBoard on a log directory and show it here.

        ``%forgather_tb --logdir runs/ [--title T] [--port P] [--height 800] [--new] ...``;
        also ``%forgather_tb list``, ``%forgather_tb kill ID``, ``%forgather_tb output ID``.
        """
        words = shlex.split(line)
        try:
            if words[:1] == ["list"]:
                return self._list(words[1:])
            if words[:1] in (["kill"], ["output"]):
                return self._one(words[0], words[1:])
            return self._launch(words)
        except _HelpShown:
            return None
        except ClientError as error:
            print(error.message)
        except OptionError as error:
            raise UsageError(str(error)) from None

    def _common(self, prog: str, words: list[str], with_id: bool) -> argparse.Namespace:
        parser = _Parser(prog=f"%forgather_tb {prog}")
        if with_id:
            parser.add_argument("id", help="job id")
        parser.add_argument("--server")
        parser.add_argument("--token")
        return parser.parse_args(words)

    def _list(self, words):
        args = self._common("list", words, with_id=False)
        jobs = self._client(args.server, args.token).jobs()
        if not jobs:
            print("No TensorBoard jobs.")
        for job in jobs:
            print(f"{job['id']}  {job['status']:<8}  {job['label']}  {job['url']}")

    def _one(self, command, words):
        args = self._common(command, words, with_id=True)
        client = self._client(args.server, args.token)
        if command == "kill":
            job = client.kill(args.id)
            print(f"TensorBoard {job['label']} ({job['id']}) is {job['status']}.")
        else:
            print(client.output(args.id, 0)["text"], end="")

    def _launch(self, words):
        args = _parser().parse_args(words)
        body = launch_body(args)
        client = self._client(args.server, args.token)
        job, reused = client.launch(body)
        progress = display(
            _bundle(f"TensorBoard {job['label']}: {job['status']}…", ""), raw=True, display_id=True
        )

        def show(current: dict) -> None:
            note = " (reused)" if reused else ""
            text = f"TensorBoard {current['label']}{note}: {current['status']}…"
            progress.update(_bundle(text, f"<p>{html.escape(text)}</p>"), raw=True)

        job = client.wait(job["id"], on_change=show)
        if job["status"] != "running":
            progress.update(_failure(job), raw=True)
            return None
        url = job["url"]  # server-relative: the browser loads it from the notebook's own origin
        markup = (
            f'<iframe src="{html.escape(url)}" width="100%" height="{args.height}" '
            'frameborder="0"></iframe>'
            f'<p><a href="{html.escape(url)}" target="_blank">Open TensorBoard in a new tab</a>'
            f"{' (reused a running job)' if reused else ''}</p>"
        )
        text = f"TensorBoard {job['label']} is running at {client.server.browser_url(url)}"
        progress.update(_bundle(text, markup), raw=True)
        return None


def load_ipython_extension(ipython) -> None:
    """Register ``%forgather_tb`` (``%load_ext jupyter_forgather_tb``)."""
    ipython.register_magics(ForgatherTBMagics)
