"""TensorBoard tabs whose job is gone, in real headless Chromium against a real server.

JupyterLab keeps a user's workspace (its open tabs) per user, not per server: a tab can
come back for a job this server never ran, or one that ended while nobody looked. Such a
tab shows a panel in place of TensorBoard, offers to launch it again, and follows its
job's relaunch.
"""

from __future__ import annotations

import json
import os
import signal
import urllib.request

import pytest
import test_lab_ui as ui
from conftest import JupyterServerProcess, lab_env, write_scalars
from test_lab_ui import job_item, open_sidebar

# The browser and Lab server fixtures of test_lab_ui, shared: pytest finds them here.
browser, lab, page = ui.browser, ui.lab, ui.page
jp_asyncio_loop, jp_server_cleanup = ui.jp_asyncio_loop, ui.jp_server_cleanup

pytestmark = pytest.mark.timeout(240)

# Ids of jobs another server ran (the shape of ours: 16 random bytes, URL-safe).
OTHER_SERVERS_JOB = "QUJDREVGR0hJSktMTU5PUA"
UNKNOWN_JOB = "UVJTVFVWV1hZWjAxMjM0NQ"


def put_workspace(server, name: str, tabs: list[dict]) -> None:
    """Save a JupyterLab workspace with these TensorBoard tabs, as Lab saves one."""
    names = [f"forgather-tb:forgather-tb-{tab['id']}" for tab in tabs]
    data = {
        "layout-restorer:data": {
            "main": {
                "dock": {"type": "tab-area", "currentIndex": 0, "widgets": names},
                "current": names[0],
            }
        },
        **{name: {"data": tab} for name, tab in zip(names, tabs, strict=True)},
    }
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.port}{server.base_url}lab/api/workspaces/{name}",
        method="PUT",
        data=json.dumps({"data": data, "metadata": {"id": name}}).encode(),
        headers={"Authorization": f"token {server.token}"},
    )
    urllib.request.urlopen(request, timeout=10).close()


def tab_of(page, tab_id):
    """The TensorBoard tab opened for job ``tab_id`` (it keeps that name when it follows)."""
    return page.locator(f"#forgather-tb-{tab_id}")


def test_a_restored_tab_for_a_job_this_server_never_ran_says_so_and_launches_it_again(lab, page):
    requested = []
    page.on("request", lambda r: requested.append(r.url) if "/tb/" in r.url else None)
    options = {
        "logdir": os.path.realpath(lab.root / "logs"),
        "window_title": "lr sweep",
        "port": 6006,
        "priority": 0,
        "bind_all": False,
        "host": "127.0.0.1",
        "reload_interval": 2.0,
        "reload_multifile": None,
        "samples_per_plugin": None,
        "sync_interval": None,
        "load_fast": "auto",
        "memory_limit": None,
    }
    put_workspace(
        lab,
        "from-another-server",
        [
            {
                "id": OTHER_SERVERS_JOB,
                "title": "lr sweep",
                "url": f"/elsewhere/tb/{OTHER_SERVERS_JOB}/",
                "options": options,
            },
            {"id": UNKNOWN_JOB, "title": "old run", "url": f"/elsewhere/tb/{UNKNOWN_JOB}/"},
        ],
    )
    page.goto(
        f"http://127.0.0.1:{lab.port}{lab.base_url}lab/workspaces/from-another-server"
        f"?token={lab.token}"
    )
    tab = tab_of(page, OTHER_SERVERS_JOB)
    panel = tab.locator(".jp-ForgatherTB-gone")
    panel.get_by_role("heading", name="This TensorBoard is not on this server").wait_for()
    assert OTHER_SERVERS_JOB in panel.inner_text()
    assert panel.locator("code").inner_text() == options["logdir"]
    assert tab.locator("iframe").is_hidden()
    assert requested == []  # no 404 page from the proxy behind the panel

    # Launching it again starts TensorBoard on the same folder, in the same tab, with
    # the same settings but not its port: exposure is this server's choice.
    panel.get_by_role("button", name="Launch it again").click()
    page.frame_locator(f"#forgather-tb-{OTHER_SERVERS_JOB} iframe").get_by_text(
        "run1"
    ).first.wait_for()
    (job,) = lab.call("GET", "jobs")
    assert job["status"] == "running"
    assert job["options"]["logdir"] == options["logdir"]
    assert job["options"]["window_title"] == "lr sweep"
    assert job["options"]["reload_interval"] == 2.0
    assert job["options"]["port"] is None
    assert tab.locator("iframe").get_attribute("src") == (
        f"http://127.0.0.1:{lab.port}{job['url']}"
    )

    # A tab restored without its options can only point to the launch form.
    page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text="old run").click()
    other = tab_of(page, UNKNOWN_JOB).locator(".jp-ForgatherTB-gone")
    other.get_by_role("heading", name="This TensorBoard is not on this server").wait_for()
    assert other.get_by_role("button", name="Launch it again").count() == 0
    other.get_by_role("button", name="Open the launch form").click()
    page.wait_for_function("document.activeElement?.getAttribute('name') === 'logdir'")


def test_a_tab_whose_job_ended_says_why_and_follows_its_relaunch(lab, page):
    open_sidebar(page)
    first = lab.call("POST", "jobs", {"logdir": "logs", "window_title": "sweep"})
    first = lab.wait_status(first["id"], "running")
    job_item(page, first["id"]).get_by_role("button", name="Open").click()
    tab = tab_of(page, first["id"])
    page.frame_locator(f"#forgather-tb-{first['id']} iframe").get_by_text("run1").first.wait_for()

    # Killed from the sidebar: the tab says it ended, and why.
    job_item(page, first["id"]).get_by_role("button", name="Kill").click()
    page.get_by_role("button", name="Stop it").click()
    panel = tab.locator(".jp-ForgatherTB-gone")
    panel.get_by_role("heading", name="This TensorBoard has ended").wait_for()
    assert panel.locator(".jp-ForgatherTB-goneStatus").inner_text() == "killed"
    assert panel.locator(".jp-ForgatherTB-goneReason").inner_text() == "it was stopped on request"
    assert tab.locator("iframe").get_attribute("src") == "about:blank"
    shots = os.environ.get("FORGATHER_TB_SCREENSHOTS")
    if shots:
        page.screenshot(path=os.path.join(shots, "tab-ended.png"))

    # Relaunch brings TensorBoard back in the same tab, from a new job.
    panel.get_by_role("button", name="Relaunch").click()
    frame = page.frame_locator(f"#forgather-tb-{first['id']} iframe")
    frame.get_by_text("run1").first.wait_for()
    (second,) = [j for j in lab.call("GET", "jobs") if j["id"] != first["id"]]
    assert second["options"]["window_title"] == "sweep"
    assert tab.locator("iframe").get_attribute("src").endswith(second["url"])

    # A crash shows the server's reason and TensorBoard's last output.
    second = lab.wait_status(second["id"], "running")
    os.kill(second["pid"], signal.SIGKILL)
    panel.locator(".jp-ForgatherTB-goneStatus", has_text="failed").wait_for()
    error = lab.call("GET", f"jobs/{second['id']}")["error"]
    assert panel.locator(".jp-ForgatherTB-goneReason").inner_text() == error
    assert "TensorBoard" in panel.get_by_label("Last output").inner_text()

    # Relaunched from the sidebar, or anywhere else: the tab follows the new job.
    job_item(page, second["id"]).get_by_role("button", name="Relaunch").click()
    frame.get_by_text("run1").first.wait_for()
    (third,) = [j for j in lab.call("GET", "jobs") if j["id"] not in (first["id"], second["id"])]
    assert tab.locator("iframe").get_attribute("src").endswith(third["url"])

    # The workspace keeps the job the tab follows now.
    page.reload()
    page.frame_locator(f"#forgather-tb-{first['id']} iframe").get_by_text("run1").first.wait_for()
    assert tab.locator("iframe").get_attribute("src").endswith(third["url"])
    assert page.locator(".jp-ForgatherTB-view").count() == 1


def test_after_a_server_restart_a_restored_tab_says_its_job_was_lost_and_relaunches(
    browser, tmp_path
):
    root = tmp_path / "root"
    write_scalars(root / "logs" / "run1", "loss", [1.0, 0.5, 0.25])
    env = lab_env(tmp_path)
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    server = JupyterServerProcess(root, runtime).start(env)
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        page = context.new_page()
        page.set_default_timeout(60_000)
        page.goto(
            f"http://127.0.0.1:{server.port}{server.base_url}lab/workspaces/restart"
            f"?token={server.token}"
        )
        open_sidebar(page)
        job = server.call("POST", "jobs", {"logdir": "logs", "window_title": "before"})
        job = server.wait_status(job["id"], "running")
        job_item(page, job["id"]).get_by_role("button", name="Open").click()
        page.frame_locator(f"#forgather-tb-{job['id']} iframe").get_by_text("run1").first.wait_for()
        page.wait_for_function(  # Lab has saved the workspace with the tab
            f"""async () => {{
                const answer = await fetch('{server.base_url}lab/api/workspaces/restart');
                return (await answer.text()).includes('forgather-tb-{job["id"]}');
            }}"""
        )

        # The server dies with its TensorBoard and comes back: the job is lost.
        server.stop(signal.SIGKILL)
        server.start(env)
        page.reload()
        panel = tab_of(page, job["id"]).locator(".jp-ForgatherTB-gone")
        panel.get_by_role("heading", name="This TensorBoard has ended").wait_for()
        assert panel.locator(".jp-ForgatherTB-goneStatus").inner_text() == "lost"
        lost = server.call("GET", f"jobs/{job['id']}")
        assert panel.locator(".jp-ForgatherTB-goneReason").inner_text() == lost["error"]

        panel.get_by_role("button", name="Relaunch").click()
        page.frame_locator(f"#forgather-tb-{job['id']} iframe").get_by_text("run1").first.wait_for()
        (new,) = [j for j in server.call("GET", "jobs") if j["id"] != job["id"]]
        assert new["status"] == "running"
    finally:
        context.close()
        server.stop()
