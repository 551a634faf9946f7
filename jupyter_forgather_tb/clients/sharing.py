"""``share``, ``unshare``, ``shares``: one set of arguments and answers for the CLI and magic."""

from __future__ import annotations

import argparse
import json
from typing import Any

from .client import Client, ServerInfo
from .terminal import printable

#: The sharing commands and what each does.
SHARING_COMMANDS = {
    "share": "share a job, under JupyterHub, with a user, a group, or a link: that TensorBoard "
    "only, read-only",
    "unshare": "revoke a job's shares (all of them without an option)",
    "shares": "list who a job is shared with",
}


def add_sharing_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    """The arguments of one sharing command."""
    parser.add_argument("id", help="job id (from 'list')")
    if command == "share":
        whom = parser.add_mutually_exclusive_group(required=True)
        whom.add_argument("--user", metavar="NAME", help="a JupyterHub user")
        whom.add_argument("--group", metavar="NAME", help="a JupyterHub group")
        whom.add_argument("--link", action="store_true", help="anyone who opens the link")
        parser.add_argument(
            "--expires-in", type=int, metavar="S", help="end the share after S seconds (>= 60)"
        )
    elif command == "unshare":
        which = parser.add_mutually_exclusive_group()
        which.add_argument("--user", metavar="NAME", help="the share with this user")
        which.add_argument("--group", metavar="NAME", help="the share with this group")
        which.add_argument("--link", action="store_true", help="the link share")
    parser.add_argument("--json", action="store_true", help="print JSON")


def share_line(share: dict[str, Any], server: ServerInfo) -> str:
    """One share as a line: its id, to whom, until when, and a link's URL."""
    whom = f"{share['kind']} {share['name']}" if share["name"] else "link"
    until = f", expires {share['expires_at']}" if share.get("expires_at") else ""
    url = f": {server.browser_url(share['url'])}" if share.get("url") else ""
    return printable(f"{share['id']}  {whom}{until}{url}")


def sharing_text(client: Client, args: argparse.Namespace) -> str:
    """Run a sharing command; what to print."""
    if args.command == "share":
        share = client.share(args.id, args.user, args.group, args.link, args.expires_in)
        return json.dumps(share, indent=2) if args.json else share_line(share, client.server)
    if args.command == "unshare":
        which = {"user": args.user, "group": args.group, "link": "1" if args.link else None}
        listing = client.unshare(args.id, **{k: v for k, v in which.items() if v})
    else:
        listing = client.shares(args.id)
    if args.json:
        return json.dumps(listing["shares"], indent=2)
    lines = [share_line(share, client.server) for share in listing["shares"]]
    return "\n".join(lines) or printable(listing["reason"] or "Not shared with anyone.")
