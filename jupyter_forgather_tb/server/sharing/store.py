"""The shares of each job, kept in a file beside the job table so they survive a restart.

This store, not JupyterHub, is what the authorizer asks on every request: a revoked or
expired share stops working at the next request, whatever the Hub's identity cache
(``HubOAuth.cache_max_age``, 300 s by default) still remembers about the visitor.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import tempfile
import weakref
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

ShareKind = Literal["user", "group", "link"]


class Closable(Protocol):
    """An open websocket of a visitor (the proxy's handler)."""

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        """Close the websocket with a code and a reason."""


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Share:
    """One grant of one job: to a Hub user, a Hub group, or whoever holds a link."""

    id: str
    kind: ShareKind
    name: str | None = None
    created: str = field(default_factory=lambda: _now().isoformat())
    expires_at: str | None = None
    #: Link shares: the secret in the link's URL, the Hub's share code id, and the link.
    secret: str | None = None
    code_id: str | None = None
    url: str | None = None
    #: The users given JupyterHub's share on this share's behalf: those who came with a
    #: link, a group's members when it was shared.
    visitors: list[str] = field(default_factory=list)

    def expired(self, now: datetime) -> bool:
        """Whether the share's optional expiry has passed."""
        return self.expires_at is not None and datetime.fromisoformat(self.expires_at) <= now

    def seconds_left(self, now: datetime) -> int | None:
        """Whole seconds until the share expires (None: it never does)."""
        if self.expires_at is None:
            return None
        return int((datetime.fromisoformat(self.expires_at) - now).total_seconds())

    def admits(self, user: str, groups: Iterable[str]) -> bool:
        """Whether this share (unexpired) lets ``user``, a member of ``groups``, in."""
        if self.kind == "user":
            return self.name == user
        return user in self.visitors or (self.kind == "group" and self.name in set(groups))

    def public_json(self) -> dict[str, Any]:
        """The share as the REST API shows it to the owner (never the link's secret)."""
        shown = asdict(self)
        del shown["secret"], shown["code_id"]
        if self.kind == "user":
            del shown["url"], shown["visitors"]
        elif self.kind == "group":
            del shown["url"]
        return shown


def new_share(kind: ShareKind, name: str | None, expires_in: float | None) -> Share:
    """A share with a fresh id (and, for a link, a fresh secret)."""
    expires = (_now() + timedelta(seconds=expires_in)).isoformat() if expires_in else None
    secret = secrets.token_urlsafe(24) if kind == "link" else None
    return Share(secrets.token_urlsafe(9), kind, name, expires_at=expires, secret=secret)


class ShareStore:
    """The shares of every job by job id, saved to ``path`` (None: in memory only).

    The shares of jobs that ended are kept aside (admitting no one) until the job is
    relaunched with its shares or forgotten. It also remembers each visitor's open
    websockets, to close those a revocation cuts.
    """

    def __init__(self, path: str | None):
        self.path = path
        self._shares: dict[str, list[Share]] = {}
        self._ended: dict[str, list[Share]] = {}
        self._sockets: dict[tuple[str, str], weakref.WeakKeyDictionary[Any, list[str]]] = {}
        if path:
            self._load(path)

    def _load(self, path: str) -> None:
        try:
            with open(path, encoding="utf-8") as file:
                saved = json.load(file)
        except FileNotFoundError:
            return
        except (OSError, ValueError):
            return  # unreadable: start with no shares rather than guess
        for part, table in (("live", self._shares), ("ended", self._ended)):
            for job_id, shares in saved.get(part, {}).items():
                table[job_id] = [Share(**share) for share in shares]

    def _save(self) -> None:
        if not self.path:
            return
        directory = os.path.dirname(self.path)
        os.makedirs(directory, mode=0o700, exist_ok=True)
        saved = {
            part: {job_id: [asdict(s) for s in shares] for job_id, shares in table.items()}
            for part, table in (("live", self._shares), ("ended", self._ended))
        }
        fd, temporary = tempfile.mkstemp(dir=directory, prefix=".shares-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                json.dump(saved, file)
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise

    def job_ids(self) -> list[str]:
        """The ids of the jobs that have shares (expired ones included)."""
        return list(self._shares)

    def of_job(self, job_id: str) -> list[Share]:
        """The job's shares that have not expired, oldest first."""
        now = _now()
        return [share for share in self._shares.get(job_id, []) if not share.expired(now)]

    def expired_of_job(self, job_id: str) -> list[Share]:
        """The job's shares whose expiry has passed (to revoke in the Hub and drop)."""
        now = _now()
        return [share for share in self._shares.get(job_id, []) if share.expired(now)]

    def find(self, job_id: str, kind: ShareKind, name: str | None) -> Share | None:
        """The job's live share of this kind to this name (any link share for ``link``)."""
        for share in self.of_job(job_id):
            if share.kind == kind and (kind == "link" or share.name == name):
                return share
        return None

    def add(self, job_id: str, share: Share) -> None:
        """Record a new share of a job."""
        self._shares.setdefault(job_id, []).append(share)
        self._save()

    def remove(self, job_id: str, shares: Iterable[Share]) -> None:
        """Drop shares of a job and close the websockets of visitors they no longer admit."""
        gone = {share.id for share in shares}
        kept = [share for share in self._shares.get(job_id, []) if share.id not in gone]
        if kept:
            self._shares[job_id] = kept
        else:
            self._shares.pop(job_id, None)
        self._save()
        self.close_refused(job_id)

    def set_aside(self, job_id: str, shares: Iterable[Share]) -> None:
        """Keep an ended job's shares aside, for a relaunch to carry (they admit no one)."""
        kept = [share for share in shares if not share.expired(_now())]
        if kept:
            self._ended.setdefault(job_id, []).extend(kept)
            self._save()

    def take_ended(self, job_id: str) -> list[Share]:
        """Remove and return the unexpired shares an ended job had."""
        now = _now()
        taken = [share for share in self._ended.pop(job_id, []) if not share.expired(now)]
        self._save()
        return taken

    def ended_job_ids(self) -> list[str]:
        """The ids of ended jobs whose shares are kept aside."""
        return list(self._ended)

    def admits(self, job_id: str, user: str, groups: Iterable[str]) -> bool:
        """Whether a live share of the job lets ``user`` (in ``groups``) in."""
        groups = list(groups)
        return any(share.admits(user, groups) for share in self.of_job(job_id))

    def join_link(self, job_id: str, secret: str, user: str) -> bool:
        """Let ``user``, who came with a link share's secret, in for as long as it lasts."""
        for share in self.of_job(job_id):
            if (
                share.kind == "link"
                and share.secret
                and secrets.compare_digest(share.secret, secret)
            ):
                if user not in share.visitors:
                    share.visitors.append(user)
                    self._save()
                return True
        return False

    def jobs_shared_with(self, user: str, groups: Iterable[str]) -> list[str]:
        """The ids of the jobs a live share lets ``user`` into."""
        groups = list(groups)
        return [job_id for job_id in list(self._shares) if self.admits(job_id, user, groups)]

    def track(self, job_id: str, user: str, groups: Iterable[str], socket: Closable) -> None:
        """Remember a visitor's open websocket to a job (and the groups it was let in by)."""
        self._sockets.setdefault((job_id, user), weakref.WeakKeyDictionary())[socket] = list(groups)

    def close_refused(self, job_id: str) -> None:
        """Close the open websockets of the job's visitors whom no share admits any more."""
        for (socket_job, user), sockets in list(self._sockets.items()):
            if socket_job != job_id:
                continue
            for socket, groups in list(sockets.items()):
                if not self.admits(job_id, user, groups):
                    with contextlib.suppress(Exception):
                        socket.close(4403, "this TensorBoard is no longer shared with you")
                    del sockets[socket]
            if not sockets:
                del self._sockets[(socket_job, user)]
