"""The extension in Jupyter Notebook 7, in real headless Chromium against `jupyter notebook`.

The same installed package serves Notebook 7 and JupyterLab: the sidebar lives in
Notebook's left side panel, its commands in the palette and the View menu of every page,
and TensorBoard opens as a tab of the file browser page, beside Files and Running.
"""

from __future__ import annotations

import json
import os

import pytest
import test_lab_ui as ui
from conftest import JupyterServerProcess, lab_env, write_scalars
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from test_lab_ui import job_item

# The browser fixture of test_lab_ui, shared: pytest finds it here.
browser = ui.browser
jp_asyncio_loop, jp_server_cleanup = ui.jp_asyncio_loop, ui.jp_server_cleanup

pytestmark = pytest.mark.timeout(240)

NOTEBOOK = {
    "cells": [{"cell_type": "code", "metadata": {}, "source": "1 + 1", "outputs": []}],
    "metadata": {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
    },
    "nbformat": 4,
    "nbformat_minor": 5,
}


@pytest.fixture(scope="module")
def notebook(tmp_path_factory):
    """A real `jupyter notebook` (Notebook 7) server with a folder of runs and a notebook."""
    root = tmp_path_factory.mktemp("root")
    write_scalars(root / "logs" / "run1", "loss", [1.0, 0.6, 0.4])
    (root / "train.ipynb").write_text(json.dumps(NOTEBOOK))
    env = lab_env(tmp_path_factory.mktemp("notebook-home"))
    runtime = tmp_path_factory.mktemp("runtime")
    server = JupyterServerProcess(root, runtime, app="notebook").start(env)
    yield server
    server.stop()


@pytest.fixture
def context(browser, notebook):
    """A fresh browser context logged in to the Notebook server; no job is left after."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(60_000)
    yield context
    context.close()
    for job in notebook.call("GET", "jobs"):
        notebook.call("DELETE", f"jobs/{job['id']}")
    notebook.call("DELETE", "jobs")


def goto(context, notebook, path):
    """Open a Notebook page (``tree``, ``notebooks/train.ipynb``) and wait for its menus."""
    page = context.new_page()
    query = "&" if "?" in path else "?"
    page.goto(
        f"http://127.0.0.1:{notebook.port}{notebook.base_url}{path}{query}token={notebook.token}"
    )
    page.locator("#menu-panel .lm-MenuBar-itemLabel", has_text="View").wait_for()
    return page


def view_menu(page, *items):
    """Choose an item of the View menu, through its submenus."""
    page.locator(".lm-MenuBar-itemLabel", has_text="View").click()
    for item in items[:-1]:
        page.locator(".lm-Menu-item", has_text=item).last.hover()
    page.locator(".lm-Menu-item", has_text=items[-1]).last.click()


def run_from_palette(page, command):
    """Run a command from the command palette, opened from the View menu.

    While a notebook page loads, the notebook takes the focus, which closes the palette:
    open it again until it stays.
    """
    search = page.locator(".jp-ModalCommandPalette input")
    item = page.locator(".lm-CommandPalette-item", has_text=command)
    for _ in range(10):
        view_menu(page, "Activate Command Palette")
        try:
            search.wait_for(timeout=5000)
            search.fill(command, timeout=5000)
        except PlaywrightTimeoutError:
            continue
        if search.is_visible() and item.is_visible():
            item.click()
            return
    raise AssertionError(f"the command palette did not stay open to run {command!r}")


def test_notebook7_file_browser_page_launches_and_shows_tensorboard_in_its_tabs(notebook, context):
    page = goto(context, notebook, "tree")
    view_menu(page, "TensorBoard", "Launch…")
    form = page.locator("#jp-left-stack .jp-ForgatherTB-form")
    form.wait_for()  # in Notebook's left side panel
    page.wait_for_function("document.activeElement?.getAttribute('name') === 'logdir'")
    form.locator('input[name="logdir"]').fill("logs")
    form.get_by_role("button", name="Launch").click()
    form.get_by_role("status").filter(has_text="“logs” is running.").wait_for()
    (job,) = notebook.call("GET", "jobs")

    form.get_by_role("status").get_by_role("button", name="Open").click()
    tabs = page.locator(".jp-TreePanel > .lm-TabBar .lm-TabBar-tab")
    tabs.filter(has_text="logs").wait_for()
    assert [t.strip() for t in tabs.all_inner_texts()] == ["Files", "Running", "logs"]
    frame = page.frame_locator(f"#forgather-tb-{job['id']} iframe")
    frame.get_by_text("run1").first.wait_for()
    shots = os.environ.get("FORGATHER_TB_SCREENSHOTS")
    if shots:
        page.wait_for_timeout(1500)  # let the charts finish drawing for the screenshot
        page.screenshot(path=os.path.join(shots, "notebook7.png"))

    tabs.filter(has_text="logs").locator(".lm-TabBar-tabCloseIcon").click()
    tabs.filter(has_text="logs").wait_for(state="detached")
    assert tabs.count() == 2


def test_notebook7_open_tensorboard_here_from_the_file_browser(notebook, context):
    page = goto(context, notebook, "tree")
    folder = page.locator(".jp-DirListing-item[data-isdir='true']", has_text="logs")
    folder.click(button="right")
    page.locator(".lm-Menu-item", has_text="Open TensorBoard here").click()
    page.locator(".jp-TreePanel .lm-TabBar-tab", has_text="logs").wait_for()
    (job,) = notebook.call("GET", "jobs")
    page.frame_locator(f"#forgather-tb-{job['id']} iframe").get_by_text("run1").first.wait_for()


def test_notebook7_notebook_page_has_the_panel_and_opens_tensorboard_in_a_new_tab(
    notebook, context
):
    job = notebook.call("POST", "jobs", {"logdir": "logs", "window_title": "from a notebook"})
    notebook.wait_status(job["id"], "running")
    page = goto(context, notebook, "notebooks/train.ipynb")
    page.locator(".jp-Notebook").wait_for()

    # The command palette, from the View menu, shows the job list in the side panel.
    run_from_palette(page, "TensorBoard: Show jobs")
    item = job_item(page, job["id"])
    item.locator(".jp-ForgatherTB-badge", has_text="running").wait_for()
    assert page.locator("#jp-left-stack .jp-ForgatherTB-jobs").is_visible()

    # A notebook page holds one document: TensorBoard opens in a new browser tab, as a
    # tab of the file browser page.
    with context.expect_page() as opened:
        item.get_by_role("button", name="Open").click()
    tensorboard = opened.value
    tensorboard.wait_for_load_state()
    assert f"forgather-tb={job['id']}" in tensorboard.url
    tensorboard.frame_locator(f"#forgather-tb-{job['id']} iframe").get_by_text(
        "run1"
    ).first.wait_for()

    # Its output opens in the notebook page's bottom panel, readable.
    item.get_by_role("button", name="Output").click()
    output = page.locator("#jp-down-stack .jp-ForgatherTB-output")
    output.locator("pre").filter(has_text="TensorBoard").wait_for()
    page.wait_for_function(
        "document.querySelector('#jp-down-stack .jp-ForgatherTB-output')"
        ".getBoundingClientRect().height > 100"
    )

    # Once its job has ended, that tab says so in place of TensorBoard.
    notebook.call("DELETE", f"jobs/{job['id']}")
    panel = tensorboard.locator(".jp-ForgatherTB-gone")
    panel.get_by_role("heading", name="This TensorBoard has ended").wait_for()

    # Closed, it leaves an address that does not reopen it on a reload.
    tab = tensorboard.locator(".jp-TreePanel .lm-TabBar-tab", has_text="from a notebook")
    tab.locator(".lm-TabBar-tabCloseIcon").click()
    tab.wait_for(state="detached")
    assert "forgather-tb=" not in tensorboard.url


def test_notebook7_tab_for_a_job_this_server_does_not_know_says_so(notebook, context):
    page = goto(context, notebook, "tree?forgather-tb=QUJDREVGR0hJSktMTU5PUA")
    panel = page.locator(".jp-TreePanel .jp-ForgatherTB-gone")
    panel.get_by_role("heading", name="This TensorBoard is not on this server").wait_for()
