"""Sharing's pure parts: the shares store, the visitor's routes, the token's scopes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from jupyter_forgather_tb.server.sharing.hub import NEEDED_SCOPES, missing_scopes
from jupyter_forgather_tb.server.sharing.rules import (
    is_landing_page,
    shared_export_route,
    shared_job_route,
)
from jupyter_forgather_tb.server.sharing.store import ShareStore, new_share

JOB = "AbCdEfGhIjKlMnOpQrStUv"
OTHER = "ZyXwVuTsRqPoNmLkJiHgFe"


class Socket:
    """Records its closing. TensorBoard serves no websocket a visitor could hold open, so
    the proxy's websocket handler is stood in for by this."""

    def __init__(self):
        self.closed: tuple[int | None, str | None] | None = None

    def close(self, code=None, reason=None):
        self.closed = (code, reason)


def test_a_user_share_admits_that_user_on_that_job_only():
    store = ShareStore(None)
    store.add(JOB, new_share("user", "victor", None))
    assert store.admits(JOB, "victor", [])
    assert not store.admits(JOB, "otto", [])
    assert not store.admits(OTHER, "victor", [])


def test_a_group_share_admits_its_members_by_the_hubs_groups_or_the_members_shared():
    store = ShareStore(None)
    share = new_share("group", "team", None)
    share.visitors = ["gina"]
    store.add(JOB, share)
    assert store.admits(JOB, "gina", [])
    assert store.admits(JOB, "newcomer", ["team"])
    assert not store.admits(JOB, "otto", ["other"])


def test_a_link_admits_only_who_came_with_its_secret():
    store = ShareStore(None)
    share = new_share("link", None, None)
    store.add(JOB, share)
    assert not store.join_link(JOB, "a wrong secret", "lena")
    assert not store.admits(JOB, "lena", [])
    assert share.secret and store.join_link(JOB, share.secret, "lena")
    assert store.admits(JOB, "lena", [])
    assert "secret" not in share.public_json() and share.public_json()["visitors"] == ["lena"]


def test_an_expired_share_admits_no_one():
    store = ShareStore(None)
    share = new_share("user", "victor", 60)
    store.add(JOB, share)
    assert store.admits(JOB, "victor", [])
    share.expires_at = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    assert not store.admits(JOB, "victor", [])
    assert store.expired_of_job(JOB) == [share] and store.of_job(JOB) == []


def test_revoking_closes_the_viewers_open_websockets_and_no_one_elses():
    store = ShareStore(None)
    victor, gina = new_share("user", "victor", None), new_share("user", "gina", None)
    store.add(JOB, victor)
    store.add(JOB, gina)
    victors, ginas = Socket(), Socket()
    store.track(JOB, "victor", [], victors)
    store.track(JOB, "gina", [], ginas)
    store.remove(JOB, [victor])
    assert victors.closed is not None and victors.closed[0] == 4403
    assert ginas.closed is None


def test_shares_survive_a_restart_in_their_file(tmp_path):
    path = str(tmp_path / "state" / "shares-jobs.json")
    store = ShareStore(path)
    link = new_share("link", None, 3600)
    store.add(JOB, new_share("user", "victor", None))
    store.add(JOB, link)
    assert link.secret and store.join_link(JOB, link.secret, "lena")
    again = ShareStore(path)
    assert again.admits(JOB, "victor", []) and again.admits(JOB, "lena", [])
    assert [s.kind for s in again.of_job(JOB)] == ["user", "link"]
    assert (tmp_path / "state").stat().st_mode & 0o077 == 0
    assert json.loads((tmp_path / "state" / "shares-jobs.json").read_text())["live"][JOB]


def test_an_ended_jobs_shares_are_kept_aside_across_a_restart_until_taken(tmp_path):
    path = str(tmp_path / "state" / "shares-jobs.json")
    store = ShareStore(path)
    victors = new_share("user", "victor", None)
    store.add(JOB, victors)
    store.add(JOB, new_share("user", "gina", 60))
    store.set_aside(JOB, store.of_job(JOB))
    store.remove(JOB, store.of_job(JOB))
    again = ShareStore(path)
    assert not again.admits(JOB, "victor", []) and again.ended_job_ids() == [JOB]
    assert [share.name for share in again.take_ended(JOB)] == ["victor", "gina"]
    assert ShareStore(path).take_ended(JOB) == []


def test_a_visitor_may_read_a_jobs_url_and_send_tensorboards_read_queries_only():
    base = "/user/olivia/"
    tb = f"{base}tb/{JOB}/"
    assert shared_job_route(base, tb, "GET") == JOB
    assert shared_job_route(base, tb + "data/plugin/scalars/scalars", "HEAD") == JOB
    assert shared_job_route(base, tb + "data/plugin/timeseries/timeSeries", "POST") == JOB
    assert shared_job_route(base, tb + "index.html", "POST") is None
    assert shared_job_route(base, tb, "DELETE") is None
    assert shared_job_route(base, tb + "data/x", "PUT") is None
    assert shared_job_route(base, f"{base}tb/not-an-id/", "GET") is None
    assert shared_job_route(base, f"{base}lab", "GET") is None
    assert shared_job_route(base, f"{base}forgather-tb/api/jobs", "GET") is None
    assert shared_job_route(base, f"/user/other/tb/{JOB}/", "GET") is None
    assert shared_job_route(base, f"{base}forgather-tb/api/jobs/{JOB}/scalars", "GET") is None
    assert is_landing_page(base, f"{base}forgather-tb/shared", "GET")
    assert not is_landing_page(base, f"{base}forgather-tb/shared", "POST")


def test_a_visitor_may_only_get_a_jobs_scalars_download_of_the_extensions_api():
    base = "/user/olivia/"
    api = f"{base}forgather-tb/api/jobs/{JOB}"
    assert shared_export_route(base, f"{api}/scalars", "GET") == JOB
    assert shared_export_route(base, f"{api}/scalars", "HEAD") == JOB
    assert shared_export_route(base, f"{api}/scalars", "POST") is None
    assert shared_export_route(base, f"{api}/scalars", "DELETE") is None
    assert shared_export_route(base, f"{api}/preview", "GET") is None
    assert shared_export_route(base, api, "GET") is None
    assert shared_export_route(base, f"{api}/scalars/x", "GET") is None
    assert shared_export_route(base, f"{base}forgather-tb/api/jobs/x/scalars", "GET") is None
    assert (
        shared_export_route(base, f"/user/other/forgather-tb/api/jobs/{JOB}/scalars", "GET") is None
    )


def test_the_start_up_check_names_each_missing_scope_and_accepts_broader_ones():
    assert set(missing_scopes([])) == set(NEEDED_SCOPES)
    held = ["shares!user=olivia", "read:users:name", "read:groups", "read:users:shares"]
    assert missing_scopes(held) == {}
    assert list(missing_scopes(["shares!user=olivia", "read:users:name", "read:groups"])) == [
        "read:users:shares!user"
    ]
