"""The sidebar's themes, keyboard use and accessibility, in real headless Chromium.

A server that runs one TensorBoard at a time lists a failed, a running and a queued job;
axe-core checks the sidebar in JupyterLab's light and dark themes, and a test drives the
form, a launch, the tab and a kill with the keyboard alone.
"""

from __future__ import annotations

import json
import os
import re
import signal
import urllib.request
from pathlib import Path

import pytest
import test_lab_ui as ui
from axe_playwright_python.sync_playwright import Axe
from conftest import JupyterServerProcess, lab_env, write_scalars
from test_lab_ui import job_item

# The browser fixture of test_lab_ui, shared: pytest finds it here.
browser = ui.browser
jp_asyncio_loop, jp_server_cleanup = ui.jp_asyncio_loop, ui.jp_server_cleanup

pytestmark = pytest.mark.timeout(240)

STYLE = Path(__file__).parent.parent / "labextension" / "style"
SIDEBAR = "#jp-forgather-tb-sidebar"

# Whether the focused element (or, for a web component, its focused part) shows a focus
# ring, and its accessible name (what axe and screen readers read for a control).
FOCUS = """() => {
    const element = document.activeElement;
    const part = element.shadowRoot?.querySelector('.control') ?? element;
    const style = getComputedStyle(part);
    const ring = (style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0)
        || style.boxShadow !== 'none';
    const label = element.labels?.[0]?.textContent;
    const name = element.getAttribute('aria-label') || label || element.textContent
        || element.getAttribute('title') || '';
    return {ring, name: name.trim(), tag: element.tagName.toLowerCase(),
            inSidebar: !!element.closest('#jp-forgather-tb-sidebar')};
}"""


# Two frames after the Launch button turns busy (its label changes), whether it still
# has the focus: a focused button that is disabled loses it at the next frame.
WATCH_BUSY_FOCUS = """() => {
    const button = document.querySelector('.jp-ForgatherTB-submit');
    window.__busyFocus = null;
    const observer = new MutationObserver(() => {
        if (button.textContent.trim() === 'Launch') return;
        observer.disconnect();
        requestAnimationFrame(() => requestAnimationFrame(() => {
            window.__busyFocus = {
                label: button.textContent.trim(),
                focused: document.activeElement === button,
                active: document.activeElement?.outerHTML.slice(0, 120),
            };
        }));
    });
    observer.observe(button, {subtree: true, childList: true, characterData: true});
}"""


@pytest.fixture(scope="module")
def crowded_lab(tmp_path_factory):
    """A Lab server that runs one TensorBoard at a time: the next one queues."""
    root = tmp_path_factory.mktemp("root")
    write_scalars(root / "logs" / "run1", "loss", [1.0, 0.6, 0.4])
    write_scalars(root / "logs" / "run2", "loss", [2.0, 1.2])
    write_scalars(root / "other" / "run3", "loss", [3.0, 2.0])
    env = lab_env(tmp_path_factory.mktemp("lab-home"))
    runtime = tmp_path_factory.mktemp("runtime")
    server = JupyterServerProcess(root, runtime, args=("--ForgatherTB.max_running=1",))
    server.start(env)
    yield server
    server.stop()


@pytest.fixture
def lab_page(browser, crowded_lab, request):
    """JupyterLab in a fresh context and workspace; every job is stopped and cleared after."""
    with ui.lab_page(browser, crowded_lab, request.node.name.replace("_", "-")) as page:
        yield page


def set_theme(server, theme: str) -> None:
    """Save JupyterLab's theme in the user's settings (what Settings > Theme does)."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.port}{server.base_url}"
        "lab/api/settings/@jupyterlab/apputils-extension:themes",
        method="PUT",
        data=json.dumps({"raw": json.dumps({"theme": theme})}).encode(),
        headers={"Authorization": f"token {server.token}"},
    )
    urllib.request.urlopen(request, timeout=10).close()


def serious_violations(page, context: str = SIDEBAR) -> list[str]:
    """axe-core's serious and critical violations in ``context`` (a selector), one line each."""
    results = Axe().run(page, context=context)
    return [
        f"{violation['id']} ({violation['impact']}): {node['target']} {node['html'][:120]}"
        for violation in results.response["violations"]
        if violation["impact"] in ("serious", "critical")
        for node in violation["nodes"]
    ]


def test_the_style_sheets_take_every_colour_from_jupyterlab_theme():
    colour = re.compile(r"#[0-9a-fA-F]{3,8}\b|\b(?:rgba?|hsla?)\(|\b(?:white|black)\b(?!-)")
    for sheet in STYLE.glob("*.css"):
        for number, line in enumerate(sheet.read_text().splitlines(), start=1):
            declaration = line.split(":", 1)[1] if ":" in line else ""
            if "white-space" in line:
                continue
            assert not colour.search(declaration), f"{sheet.name}:{number}: {line.strip()}"


def test_sidebar_with_failed_running_and_queued_jobs_passes_axe_in_light_and_dark(
    crowded_lab, lab_page
):
    page = lab_page
    crashed = crowded_lab.call("POST", "jobs", {"logdir": "logs", "window_title": "crashed"})
    crashed = crowded_lab.wait_status(crashed["id"], "running")
    os.kill(crashed["pid"], signal.SIGKILL)
    crowded_lab.wait_status(crashed["id"], "failed")
    running = crowded_lab.call("POST", "jobs", {"logdir": "logs", "window_title": "sweep"})
    crowded_lab.wait_status(running["id"], "running")
    queued = crowded_lab.call("POST", "jobs", {"logdir": "other", "window_title": "waiting"})
    assert crowded_lab.call("GET", f"jobs/{queued['id']}")["status"] == "queued"

    shots = os.environ.get("FORGATHER_TB_SCREENSHOTS")
    backgrounds = {}
    try:
        for theme, name in (("JupyterLab Light", "light"), ("JupyterLab Dark", "dark")):
            set_theme(crowded_lab, theme)
            page.reload()
            page.wait_for_selector(f'body[data-jp-theme-name="{theme}"]', state="attached")
            show_sidebar(page)
            for job, status in ((crashed, "failed"), (running, "running"), (queued, "queued")):
                badge = job_item(page, job["id"]).locator(".jp-ForgatherTB-badge")
                badge.filter(has_text=status).wait_for()
            page.locator(".jp-ForgatherTB-meter").wait_for()  # the running job's memory
            assert serious_violations(page) == [], theme
            backgrounds[name] = page.eval_on_selector(
                SIDEBAR, "node => getComputedStyle(node).backgroundColor"
            )
            if shots:
                page.locator(SIDEBAR).screenshot(path=os.path.join(shots, f"sidebar-{name}.png"))
    finally:
        set_theme(crowded_lab, "JupyterLab Light")
    assert backgrounds["light"] != backgrounds["dark"]  # the sidebar follows the theme


def show_sidebar(page, tries: int = 10) -> None:
    """Show the sidebar after a reload, whatever Lab's workspace restore does meanwhile.

    The restore can open or close the sidebar after the first click, so look again.
    """
    tab = page.locator('.jp-SideBar [data-id="jp-forgather-tb-sidebar"]')
    form = page.locator(".jp-ForgatherTB-form")
    for _ in range(tries):
        if "lm-mod-current" not in (tab.get_attribute("class") or ""):
            tab.click()
        page.wait_for_timeout(1000)
        if form.is_visible():
            return
    raise AssertionError("the sidebar did not stay open")


def tab_to(page, name: str, limit: int = 40) -> dict:
    """Press Tab until the control named ``name`` has the focus; check each one on the way.

    Every control reached inside the sidebar must show a focus ring and have a name.
    """
    for _ in range(limit):
        focused = page.evaluate(FOCUS)
        if focused["inSidebar"]:
            assert focused["ring"], f"no visible focus on {focused}"
            assert focused["name"], f"no accessible name on {focused}"
        if focused["name"] == name:
            return focused
        page.keyboard.press("Tab")
    raise AssertionError(f"{name!r} not reached with Tab")


def palette(page, command: str) -> None:
    """Run a command from the command palette, opened with its keyboard shortcut.

    A key press can come before Lab has bound its keys, or while it restores the
    workspace (which takes the focus back): open it again until it stays.
    """
    search = page.locator(".jp-ModalCommandPalette input")
    active = page.locator(".lm-CommandPalette-item.lm-mod-active", has_text=command)
    for _ in range(20):
        page.keyboard.press("Control+Shift+C")
        if not search.is_visible():
            page.wait_for_timeout(500)
            continue
        page.keyboard.type(command)
        if search.is_visible() and active.count():
            page.keyboard.press("Enter")
            return
        page.keyboard.press("Escape")
    raise AssertionError(f"the command palette did not run {command!r}")


def test_the_sidebar_works_with_the_keyboard_alone(crowded_lab, lab_page):
    page = lab_page
    keyboard = page.keyboard
    palette(page, "TensorBoard: Launch")
    page.wait_for_function("document.activeElement?.getAttribute('name') === 'logdir'")

    # The runs picker: Enter opens it, Enter on a folder fills the field and comes back.
    tab_to(page, "Runs…")
    keyboard.press("Enter")
    tab_to(page, "logs2 runs")
    keyboard.press("Enter")
    page.wait_for_function("document.activeElement?.getAttribute('name') === 'logdir'")
    form = page.locator(".jp-ForgatherTB-form")
    assert form.locator('input[name="logdir"]').input_value() == "logs"

    tab_to(page, "Window title")
    keyboard.type("keyboard")
    # Space toggles the checkbox (and its warning), and opens the advanced options.
    tab_to(page, "Bind to all network interfaces")
    keyboard.press("Space")
    form.get_by_role("alert").filter(has_text="without Jupyter's login").wait_for()
    keyboard.press("Space")
    form.get_by_role("alert").wait_for(state="detached")
    tab_to(page, "Advanced")
    keyboard.press("Space")
    tab_to(page, "Reload interval (seconds)")
    keyboard.type("2")

    tab_to(page, "Launch")
    page.evaluate(WATCH_BUSY_FOCUS)
    keyboard.press("Enter")
    form.get_by_role("status").filter(has_text="“keyboard” is running.").wait_for()
    # The button kept the focus while busy (a disabled one loses it to the page's top).
    busy = page.evaluate("window.__busyFocus")
    assert busy["label"] != "Launch" and busy["focused"], busy
    (job,) = crowded_lab.call("GET", "jobs")
    assert job["options"]["window_title"] == "keyboard"
    assert job["options"]["reload_interval"] == 2.0
    assert job["options"]["bind_all"] is False

    # Open, from the notice: TensorBoard shows in a tab.
    tab_to(page, "Open")
    keyboard.press("Enter")
    frame = page.frame_locator(f"#forgather-tb-{job['id']} iframe")
    frame.get_by_text("run1").first.wait_for()

    # Back to the job list from the palette, then Kill and confirm with the keyboard.
    palette(page, "TensorBoard: Show jobs")
    page.wait_for_function("document.activeElement?.matches('.jp-ForgatherTB-jobs')")
    tab_to(page, "Kill")
    keyboard.press("Enter")
    dialog = page.get_by_role("dialog")
    dialog.wait_for()
    for _ in range(5):  # to the dialog's "Stop it" button
        if page.evaluate("document.activeElement?.textContent?.trim()") == "Stop it":
            break
        keyboard.press("Tab")
    keyboard.press("Enter")
    job_item(page, job["id"]).locator(".jp-ForgatherTB-badge", has_text="killed").wait_for()
    assert crowded_lab.call("GET", f"jobs/{job['id']}")["status"] == "killed"
    # The tab says so, in a panel axe finds nothing serious in either.
    panel = page.locator(f"#forgather-tb-{job['id']} .jp-ForgatherTB-gone")
    panel.get_by_role("heading", name="This TensorBoard has ended").wait_for()
    assert serious_violations(page, f"#forgather-tb-{job['id']}") == []
