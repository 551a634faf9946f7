"""Launch options on a command line, shared by the magic and the CLI.

The names match the REST fields (``--reload_interval``, as TensorBoard spells
its own flags) and are checked with the same validation as the server, except
``--memory_limit``, whose allowed range is the server's own setting: the server
checks it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, TypeVar

from ..common.options import OptionError, parse_launch
from .client import LOGDIR_HELP

#: How ``--logdir`` may be given more than once, or as ``name=path``.
COMPARE_HELP = (
    "; give it more than once to compare runs from several folders in one TensorBoard "
    "(shown as name/run, each folder named after its last part), or as NAME=PATH to name "
    "them (./a=b for a path with '=' in its first part)"
)

T = TypeVar("T")


def _lenient(kind: Callable[[str], T]) -> Callable[[str], T | str]:
    """Convert when possible; otherwise pass the text on so the API's own message explains."""

    def convert(text: str) -> T | str:
        try:
            return kind(text)
        except ValueError:
            return text

    convert.__name__ = kind.__name__
    return convert


def _boolean(text: str) -> bool | str:
    """true/false (also yes/no, 1/0); anything else is passed on to be refused."""
    lowered = text.lower()
    if lowered in ("1", "true", "yes"):
        return True
    if lowered in ("0", "false", "no"):
        return False
    return text


def _loader(text: str) -> str:
    """auto, or a boolean word as true/false; anything else is passed on to be refused."""
    value = _boolean(text)
    return str(value).lower() if isinstance(value, bool) else text


def _size(text: str) -> int | str:
    """Digits as bytes; anything else ("2G") as typed, for the server to read or refuse."""
    return int(text) if text.isascii() and text.isdigit() else text


def add_memory_limit_argument(
    parser: argparse.ArgumentParser, default: str = "the server's"
) -> None:
    """Add ``--memory_limit SIZE``; ``default`` says what applies without it."""
    parser.add_argument(
        "--memory_limit",
        type=_size,
        metavar="SIZE",
        help="memory cap for the job: bytes, or with a K, M, G or T suffix (binary: "
        f"2G is 2 GiB); default: {default}",
    )


def add_keep_shares_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--keep-shares`` (a relaunch shares the new job as the old one was)."""
    parser.add_argument(
        "--keep-shares",
        action="store_true",
        help="share the new job with whoever the old one was shared with (JupyterHub)",
    )


def add_launch_arguments(parser: argparse.ArgumentParser, logdir_flag: bool) -> None:
    """Add every launch option; the log directory is ``--logdir`` or a positional.

    ``--logdir`` may be given more than once; the positional takes one or more
    (with ``--logdir`` too). See :func:`log_directories`.
    """
    if logdir_flag:
        parser.add_argument(
            "--logdir", action="append", required=True, help=LOGDIR_HELP + COMPARE_HELP
        )
    else:
        parser.add_argument("logdir", nargs="*", metavar="LOGDIR", help=LOGDIR_HELP + COMPARE_HELP)
        parser.add_argument(
            "--logdir",
            dest="more_logdirs",
            action="append",
            default=[],
            help="another log directory to compare (after LOGDIR, or alone; repeatable)",
        )
    parser.add_argument(
        "--title", dest="window_title", help="window title (default: the directory name)"
    )
    parser.add_argument(
        "--port", type=_lenient(int), help="also listen on this loopback TCP port (default: none)"
    )
    parser.add_argument("--host", help="loopback address for --port (default 127.0.0.1)")
    parser.add_argument(
        "--bind_all",
        action="store_true",
        help="listen on all interfaces (bypasses Jupyter's login)",
    )
    parser.add_argument(
        "--priority", type=_lenient(int), help="queue priority, higher first (default 0)"
    )
    parser.add_argument(
        "--reload_interval", type=_lenient(float), help="seconds between data reloads"
    )
    parser.add_argument(
        "--reload_multifile",
        type=_boolean,
        metavar="{true,false}",
        help="poll every file in a run, not only the newest",
    )
    parser.add_argument("--samples_per_plugin", help="e.g. scalars=1000,images=10")
    parser.add_argument(
        "--sync_interval",
        type=_lenient(float),
        help="seconds between syncs of a remote log directory's mirror (default 5)",
    )
    parser.add_argument(
        "--connection",
        metavar="NAME",
        help="the server's named connection to open a remote log directory with "
        "(default: the standard credentials of its store)",
    )
    parser.add_argument(
        "--load_fast",
        type=_loader,
        metavar="{auto,true,false}",
        help="TensorBoard's loader: false Python, true Rust, auto the server's choice "
        "(default: Rust in the job's private network where possible)",
    )
    add_memory_limit_argument(parser)
    parser.add_argument(
        "--new", dest="force_new", action="store_true", help="start a new job even if one matches"
    )


def _named(word: str) -> tuple[str, str] | None:
    """``(name, path)`` for ``NAME=PATH``; None for a path (whose first part has no ``=``)."""
    name, sep, path = word.partition("=")
    if not sep or not name or any(c in name for c in "/\\") or name.startswith((".", "~")):
        return None
    return name, path


def log_directories(words: list[str]) -> dict[str, Any]:
    """The launch body's ``logdir``, or ``logdirs`` for several folders or named ones.

    One path is ``{"logdir": path}``; several are ``{"logdirs": [paths]}`` (named after
    their folders by the server); ``NAME=PATH`` words ``{"logdirs": {name: path}}``.
    Named and unnamed folders cannot be mixed, nor a name given twice.
    """
    if not words:
        raise OptionError("logdir", "is required")
    named = [_named(word) for word in words]
    if all(pair is None for pair in named):
        return {"logdir": words[0]} if len(words) == 1 else {"logdirs": list(words)}
    if any(pair is None for pair in named):
        raise OptionError("logdirs", "give every folder a name (NAME=PATH) or none")
    logdirs: dict[str, str] = {}
    for name, path in (pair for pair in named if pair is not None):
        if name in logdirs:
            raise OptionError("logdirs", f"the name {name!r} is given twice")
        logdirs[name] = path
    return {"logdirs": logdirs}


def launch_body(args: argparse.Namespace) -> dict[str, Any]:
    """The REST launch body for parsed arguments, checked like the server checks it.

    Raises ``options.OptionError`` with the server's own message for a bad value.
    The memory limit is passed on unchecked: its maximum is the server's setting.
    """
    names = (
        "window_title", "port", "host", "bind_all", "priority",
        "reload_interval", "reload_multifile", "samples_per_plugin", "sync_interval",
        "connection", "load_fast", "memory_limit", "force_new",
    )  # fmt: skip
    words = [*(args.logdir or []), *getattr(args, "more_logdirs", [])]
    body = {**log_directories(words), **{name: getattr(args, name) for name in names}}
    # Unset options are left out; flags that are off too (but an explicit
    # --reload_multifile false is kept).
    body = {
        k: v
        for k, v in body.items()
        if v is not None and not (v is False and k in ("bind_all", "force_new"))
    }
    parse_launch({k: v for k, v in body.items() if k != "memory_limit"})
    return body
