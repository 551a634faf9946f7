"""Making and revoking shares: our store and JupyterHub's shares, kept in step."""

from __future__ import annotations

import asyncio
import logging
import os
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from tornado.ioloop import PeriodicCallback

from ..jobs.manager import JobManager, JobNotFound
from .hub import HubClient, HubEnv, HubError, missing_scopes
from .rules import LINK_ARGUMENT
from .store import Share, ShareKind, ShareStore, new_share

#: A link's share code, when the share itself has no expiry, can be accepted this long.
LINK_ACCEPT_SECONDS = 86400
#: Milliseconds between sweeps for expired shares and the shares of ended jobs.
SWEEP_MS = 10_000
#: JupyterHub's bounds for a share code's life.
MIN_EXPIRES_IN, MAX_EXPIRES_IN = 60, 525600 * 60


class SharingRefused(Exception):
    """Sharing cannot be done here (no JupyterHub, the plain authorizer), with why."""


class ShareNotFound(Exception):
    """No share of the job matches."""


class Sharing:
    """The shares of this server's jobs: made through JupyterHub, checked from our store."""

    def __init__(
        self,
        manager: JobManager,
        store: ShareStore,
        hub: HubClient | None,
        base_url: str,
        refusal: str | None,
        log: logging.Logger,
    ):
        self.manager = manager
        self.store = store
        self.hub = hub
        self.base_url = base_url
        #: Why sharing is refused on this server, or None where it works.
        self.refusal = refusal
        self.log = log
        self._sweeper = PeriodicCallback(self.revoke_expired, SWEEP_MS)
        self._checked: asyncio.Task[list[str]] | None = None

    def start(self) -> None:
        """Once the server runs: check the token's scopes, then sweep expired shares."""
        if self.refusal is None:
            self._checked = asyncio.ensure_future(self.check_scopes())
            self._sweeper.start()

    def stop(self) -> None:
        """Stop sweeping."""
        self._sweeper.stop()

    def job_is_live(self, job_id: str) -> bool:
        """Whether the job exists and has not ended: an ended job is shared with no one."""
        try:
            return self.manager.get(job_id).status.is_live
        except JobNotFound:
            return False

    def shares(self, job_id: str) -> list[Share]:
        """The job's live shares (the job must exist)."""
        self.manager.get(job_id)
        return self.store.of_job(job_id)

    def _hub(self) -> HubClient:
        if self.refusal is not None or self.hub is None:
            raise SharingRefused(self.refusal or "sharing needs JupyterHub")
        return self.hub

    async def share(
        self,
        job_id: str,
        kind: ShareKind,
        name: str | None,
        expires_in: int | None,
        visitors: list[str] | None = None,
    ) -> Share:
        """Share a live job with a user, a group, or a link (made in JupyterHub first).

        A link share may start with ``visitors`` (who came with an earlier link).
        """
        hub = self._hub()
        job = self.manager.get(job_id)
        if not job.status.is_live:
            raise SharingRefused(f"TensorBoard job {job.label} has ended: it cannot be shared")
        existing = self.store.find(job_id, kind, name)
        if existing is not None and kind != "link":
            return existing
        share = new_share(kind, name, expires_in)
        if kind == "link":
            code = await hub.share_code(max(expires_in or LINK_ACCEPT_SECONDS, MIN_EXPIRES_IN))
            share.code_id = str(code["id"])
            target = f"{self.base_url}tb/{job_id}/?" + urlencode({LINK_ARGUMENT: share.secret})
            share.url = f"{code['accept_url']}&next={quote(target, safe='')}"
            for visitor in visitors or []:
                await hub.share("user", visitor)
            share.visitors = list(visitors or [])
        else:
            assert name is not None
            await hub.share(kind, name)
        if kind == "group":
            # JupyterHub 6's tokens (browsers' too) leave a group's shares out of a member's
            # scopes: each member present now gets a user share as well.
            assert name is not None
            members = [m for m in await hub.group_members(name) if m != hub.env.owner]
            for member in members:
                await hub.share("user", member)
            share.visitors = members
        self.store.add(job_id, share)
        return share

    async def revoke(self, job_id: str, shares: list[Share]) -> None:
        """Revoke shares of a job: at once here, then in JupyterHub where nothing else needs it."""
        self.store.remove(job_id, shares)
        if self.hub is None:
            return
        for share in shares:
            try:
                await self._revoke_in_hub(share)
            except HubError as error:
                self.log.warning("JupyterHub did not revoke share %s: %s", share.id, error)

    async def _revoke_in_hub(self, share: Share) -> None:
        assert self.hub is not None
        if share.code_id:
            await self.hub.revoke_code(share.code_id)
        for visitor in share.visitors:
            if not self._still_shared("user", visitor):
                await self.hub.unshare("user", visitor)
        if share.kind != "link" and share.name and not self._still_shared(share.kind, share.name):
            await self.hub.unshare(share.kind, share.name)

    def _still_shared(self, kind: ShareKind, name: str) -> bool:
        """Whether another live share of any job still gives ``name`` JupyterHub's access."""
        for job_id in self.store.job_ids():
            for share in self.store.of_job(job_id):
                if share.kind == kind and share.name == name:
                    return True
                if kind == "user" and name in share.visitors:
                    return True
        return False

    async def revoke_expired(self) -> None:
        """Drop expired shares and those of ended jobs, and revoke them in JupyterHub.

        An ended job's shares are kept aside for a relaunch to carry, until the job is
        forgotten.
        """
        for job_id in self.store.job_ids():
            ended = not self.job_is_live(job_id)
            gone = self.store.of_job(job_id) if ended else []
            if gone:
                self.store.set_aside(job_id, gone)
            gone += self.store.expired_of_job(job_id)
            if gone:
                await self.revoke(job_id, gone)
        for job_id in self.store.ended_job_ids():
            if not self._known(job_id):
                self.store.take_ended(job_id)

    def _known(self, job_id: str) -> bool:
        try:
            self.manager.get(job_id)
        except JobNotFound:
            return False
        return True

    async def carry(self, old_id: str, new_id: str) -> list[Share]:
        """Share a relaunched job as the ended job it replaces was (unexpired shares only).

        The ended job's shares move to the new job, made again through JupyterHub; a link
        share gets a new link, and keeps the visitors who came with the old one.
        """
        self._hub()
        await self.revoke_expired()
        now = datetime.now(UTC)
        carried = []
        for old in self.store.take_ended(old_id):
            left = old.seconds_left(now)
            if left is not None and left <= 0:
                continue
            try:
                carried.append(await self.share(new_id, old.kind, old.name, left, old.visitors))
            except (HubError, SharingRefused) as error:
                self.log.warning(
                    "Sharing: share %s not carried to job %s: %s", old.id, new_id, error
                )
        return carried

    async def shared_with_owner(self) -> list[dict[str, Any]]:
        """Servers others share with this server's owner, each with its landing page."""
        return await self._hub().shared_with_owner()

    async def check_scopes(self) -> list[str]:
        """Log, and return, the scopes this server's token lacks for sharing."""
        if self.hub is None:
            return []
        try:
            have = await self.hub.token_scopes()
        except HubError as error:
            self.log.warning("Sharing: cannot read this server's token scopes: %s", error)
            return []
        missing = missing_scopes(have)
        for scope, why in missing.items():
            self.log.warning(
                "Sharing: this server's token lacks the scope %s (needed to %s); add it to "
                "c.Spawner.server_token_scopes and the owner's roles (docs/deploy.md)",
                scope,
                why,
            )
        return list(missing)


def refusal_reason(env: HubEnv | None, authorizer: object) -> str | None:
    """Why sharing must be refused on this server, or None where it is safe."""
    if env is None:
        return "sharing needs JupyterHub: this server was not started by a Hub"
    # By its mark, not its class: importing the authorizer would import JupyterHub.
    if not getattr(authorizer, "confines_visitors", False):
        return (
            "sharing is turned off: under JupyterHub's plain authorizer a share would give "
            "the whole server (notebooks, files, terminals) away. The admin turns it on with "
            "c.ServerApp.authorizer_class = "
            '"jupyter_forgather_tb.server.sharing.authorizer.ShareAuthorizer"'
        )
    return None


def build_sharing(
    manager: JobManager,
    base_url: str,
    state_file: str | None,
    authorizer: object,
    log: logging.Logger,
) -> Sharing:
    """The sharing service of a server: its shares saved beside the job table."""
    env = HubEnv.from_environ()
    path = None
    if state_file:
        directory, name = os.path.split(state_file)
        path = os.path.join(directory, f"shares-{name}")
    refusal = refusal_reason(env, authorizer)
    hub = HubClient(env) if env is not None else None
    return Sharing(manager, ShareStore(path), hub, base_url, refusal, log)
