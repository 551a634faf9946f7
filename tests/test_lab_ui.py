"""The JupyterLab sidebar in real headless Chromium, against a real server and TensorBoard.

Chromium is Debian's (``/usr/bin/chromium``, installed by ``.ci/run``), driven by
Playwright with an explicit executable path. Without it these tests skip, except under CI
(``CI`` set), where a missing browser is a failure.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import re
import shutil
import signal
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import JupyterServerProcess, lab_env, pid_alive, write_scalars
from s3_helpers import TEST_ENV, UNSET_ENV, event_key, new_bucket, scalar_records
from test_cgroups import _scalars_logdir

CHROMIUM = os.environ.get("FORGATHER_TB_CHROMIUM") or shutil.which("chromium") or ""
# `make screenshots` sets this to docs/ to refresh the README's pictures.
SCREENSHOTS = os.environ.get("FORGATHER_TB_SCREENSHOTS")
# Headless as root on a machine with no network beyond its registries (FACTS.md).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

if not CHROMIUM:
    if os.environ.get("CI"):
        raise RuntimeError("browser tests need chromium: .ci/run installs it with apt-get")
    pytest.skip("chromium is not installed (apt-get install chromium)", allow_module_level=True)

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(autouse=True)
def jp_asyncio_loop():
    """No pytest-jupyter loop here: Playwright's sync API runs (and owns) its own loop."""
    return None


@pytest.fixture(autouse=True)
def jp_server_cleanup():
    """Nothing to clean: these tests run Jupyter in a subprocess, not in pytest's process."""
    return None


def _lab_env(tmp_path_factory, **extra) -> dict:
    """The environment of a test server: JupyterLab settings of its own, test credentials."""
    environ = {name: value for name, value in os.environ.items() if name not in UNSET_ENV}
    return lab_env(tmp_path_factory.mktemp("lab-home"), {**environ, **TEST_ENV, **extra})


@pytest.fixture(scope="module")
def lab(tmp_path_factory, moto_endpoint):
    """A real ``jupyter server`` with JupyterLab and our extension, on two runs of scalars.

    Its ``bucket`` on moto's S3 server holds two runs too, for ``s3://`` launches.
    """
    root = tmp_path_factory.mktemp("root")
    write_scalars(root / "logs" / "run1", "loss", [1.0, 0.6, 0.4, 0.3, 0.25])
    write_scalars(root / "logs" / "run2", "loss", [2.0, 1.2, 0.9])
    (root / "notes").mkdir()
    env = _lab_env(tmp_path_factory, AWS_ENDPOINT_URL=moto_endpoint)
    import boto3

    client = boto3.client("s3", endpoint_url=moto_endpoint, **_credentials())
    bucket = new_bucket(client)
    for run, values in (("a", [1.0, 0.5]), ("b", [2.0, 1.0, 0.5])):
        client.put_object(
            Bucket=bucket, Key=f"runs/{event_key(run)}", Body=scalar_records("loss", values)
        )
    # A named connection to moto, for the form's Connection select and a remote Runs… list.
    config = tmp_path_factory.mktemp("config") / "jupyter_server_config.json"
    moto = {
        "protocol": "s3",
        "endpoint_url": moto_endpoint,
        "key": TEST_ENV["AWS_ACCESS_KEY_ID"],
        "secret": TEST_ENV["AWS_SECRET_ACCESS_KEY"],
    }
    config.write_text(json.dumps({"ForgatherTB": {"connections": {"moto": moto}}}))
    server = JupyterServerProcess(root, tmp_path_factory.mktemp("runtime")).start(
        env, args=(f"--config={config}",)
    )
    server.bucket = bucket
    yield server
    server.stop()


def _credentials() -> dict:
    return {
        "aws_access_key_id": TEST_ENV["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": TEST_ENV["AWS_SECRET_ACCESS_KEY"],
        "region_name": TEST_ENV["AWS_DEFAULT_REGION"],
    }


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@contextlib.contextmanager
def lab_page(browser, server, workspace):
    """JupyterLab of ``server`` in a fresh browser context and workspace, logged in with the token.

    Every job is stopped and cleared afterwards, so each test starts with none.
    """
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(
        f"http://127.0.0.1:{server.port}{server.base_url}lab/workspaces/{workspace}"
        f"?token={server.token}"
    )
    page.wait_for_selector("#jp-main-dock-panel")
    # Once its workspace is restored, Lab opens a Launcher in the empty main area, and the
    # Launcher takes the keyboard focus (closing a palette opened before it): wait for it.
    page.locator(".jp-Launcher").wait_for()
    page.evaluate("() => new Promise((done) => requestAnimationFrame(() => setTimeout(done, 100)))")
    yield page
    context.close()
    for job in server.call("GET", "jobs"):
        server.call("DELETE", f"jobs/{job['id']}")
    server.call("DELETE", "jobs")


@pytest.fixture
def page(browser, lab, request):
    """JupyterLab on ``lab`` in a fresh browser context and workspace named after the test."""
    with lab_page(browser, lab, request.node.name.replace("_", "-")) as page:
        yield page


def open_sidebar(page):
    page.click('.jp-SideBar [data-id="jp-forgather-tb-sidebar"]')
    form = page.locator(".jp-ForgatherTB-form")
    form.wait_for()
    return form


def job_item(page, job_id):
    return page.locator(f'.jp-ForgatherTB-job[data-job-id="{job_id}"]')


def test_sidebar_launches_a_job_opens_it_in_a_tab_shows_output_and_kills_it(lab, page, tmp_path):
    shots = Path(SCREENSHOTS) if SCREENSHOTS else tmp_path
    form = open_sidebar(page)
    tab = page.locator('.jp-SideBar [data-id="jp-forgather-tb-sidebar"]')
    assert tab.get_attribute("title") == "TensorBoard"

    # The picker lists the folders that hold runs; choosing one fills the field.
    form.get_by_role("button", name="Runs…").click()
    picker = page.get_by_role("list", name="Folders holding runs")
    picker.get_by_role("button", name=re.compile(r"^logs\s*2 runs")).click()
    assert form.locator('input[name="logdir"]').input_value() == "logs"
    assert form.locator('input[name="window_title"]').get_attribute("placeholder") == "logs"
    form.locator('input[name="window_title"]').fill("lr sweep")

    # Bind-all warns, and disables the host field while on.
    form.locator('input[name="bind_all"]').check()
    assert "without Jupyter's login" in form.get_by_role("alert").inner_text()
    form.locator("summary", has_text="Advanced").click()
    assert form.locator('input[name="host"]').is_disabled()
    form.locator('input[name="bind_all"]').uncheck()
    assert form.locator('input[name="host"]').is_enabled()
    form.locator('input[name="reload_interval"]').fill("2")

    form.get_by_role("button", name="Launch").click()
    notice = form.get_by_role("status")
    notice.filter(has_text="“lr sweep” is running.").wait_for()
    (job,) = lab.call("GET", "jobs")
    assert job["status"] == "running"
    assert job["options"]["reload_interval"] == 2.0
    assert job["options"]["window_title"] == "lr sweep"
    assert job["transport"] == "unix"
    item = job_item(page, job["id"])
    item.locator(".jp-ForgatherTB-badge", has_text="running").wait_for()
    assert item.locator(".jp-ForgatherTB-logdir").inner_text().endswith("/logs")
    assert job["loader"] == {"name": "rust", "private_network": True}
    assert item.locator(".jp-ForgatherTB-loader").inner_text() == "Rust loader, private network"
    href = item.get_by_role("link", name="New tab").get_attribute("href")
    assert href == f"http://127.0.0.1:{lab.port}{lab.base_url}tb/{job['id']}/"
    page.locator(".jp-ForgatherTB-sidebar").screenshot(path=str(shots / "sidebar.png"))

    # Open in a Lab tab: TensorBoard's own page renders the runs' scalars in the IFrame.
    with page.expect_response(
        lambda r: (
            r.url.startswith(href)
            and r.url.endswith("/plugin/timeseries/timeSeries")
            and r.request.method == "POST"
        )
    ) as series:
        item.get_by_role("button", name="Open").click()
    assert series.value.status == 200
    answered = json.dumps(series.value.json())
    assert "run1" in answered and "run2" in answered
    tab_title = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text="lr sweep")
    tab_title.wait_for()
    frame = page.frame_locator(f"#forgather-tb-{job['id']} iframe")
    frame.get_by_text("run1").first.wait_for()
    frame.get_by_text("run2").first.wait_for()
    frame.locator("card-view, .card-view, [class*=card]").filter(has_text="loss").first.wait_for()
    page.wait_for_timeout(1500)  # let the charts finish drawing for the screenshot
    page.screenshot(path=str(shots / "tensorboard-in-lab.png"))

    # The output tab follows TensorBoard's output live.
    item.get_by_role("button", name="Output").click()
    output = page.locator(".jp-ForgatherTB-output pre")
    output.filter(has_text="TensorBoard").wait_for()

    # Kill asks first; "Keep it" keeps it running.
    item.get_by_role("button", name="Kill").click()
    page.get_by_role("button", name="Keep it").click()
    assert lab.call("GET", f"jobs/{job['id']}")["status"] == "running"
    item.get_by_role("button", name="Kill").click()
    page.get_by_role("button", name="Stop it").click()
    item.locator(".jp-ForgatherTB-badge", has_text="killed").wait_for()
    assert not pid_alive(job["pid"])
    page.locator(".jp-ForgatherTB-outputStatus", has_text="TensorBoard ended: killed.").wait_for()

    # Finished jobs can be cleared from the list.
    page.get_by_role("button", name="Clear finished").click()
    item.wait_for(state="detached")
    assert lab.call("GET", "jobs") == []


def test_server_field_error_shows_next_to_its_field(lab, page):
    form = open_sidebar(page)
    form.locator('input[name="logdir"]').fill("logs")
    form.locator("summary", has_text="Advanced").click()
    form.locator('input[name="reload_interval"]').fill("-1")
    form.get_by_role("button", name="Launch").click()
    error = form.locator('[data-field="reload_interval"] .jp-ForgatherTB-fieldError')
    error.wait_for()
    assert error.inner_text() == "must be a number of seconds above 0 and at most 604800"
    assert form.locator(".jp-ForgatherTB-field.jp-mod-error").count() == 1
    assert lab.call("GET", "jobs") == []

    form.locator('input[name="logdir"]').fill("no/such/dir")
    form.locator('input[name="reload_interval"]').fill("")
    form.get_by_role("button", name="Launch").click()
    logdir_error = form.locator('[data-field="logdir"] .jp-ForgatherTB-fieldError')
    logdir_error.wait_for()
    assert logdir_error.inner_text() == "'no/such/dir' is not an existing directory"


def test_last_values_are_remembered_and_reset_restores_defaults(lab, page):
    form = open_sidebar(page)
    form.locator('input[name="logdir"]').fill("notes")
    form.locator('input[name="priority"]').fill("7")
    form.get_by_role("button", name="Launch").click()  # notes holds no runs: still launches
    form.get_by_role("status").wait_for()
    page.reload()
    form = page.locator(".jp-ForgatherTB-form")
    form.wait_for()  # the workspace restores the sidebar open
    page.wait_for_function(
        "document.querySelector('.jp-ForgatherTB-form input[name=logdir]')?.value === 'notes'"
    )
    assert form.locator('input[name="priority"]').input_value() == "7"
    form.get_by_role("button", name="Reset to defaults").click()
    assert form.locator('input[name="logdir"]').input_value() == ""
    assert form.locator('input[name="priority"]').input_value() == "0"


def test_open_tensorboard_here_from_the_file_browser(lab, page):
    # A new workspace starts with the file browser shown.
    folder = page.locator(".jp-DirListing-item[data-isdir='true']", has_text="logs")
    folder.click(button="right")
    page.locator(".lm-Menu-item", has_text="Open TensorBoard here").click()
    tab_title = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text="logs")
    tab_title.wait_for()
    (job,) = [j for j in lab.call("GET", "jobs") if j["status"] == "running"]
    assert job["options"]["window_title"] == "logs"
    frame = page.frame_locator(f"#forgather-tb-{job['id']} iframe")
    frame.get_by_text("run1").first.wait_for()

    # The tab comes back, still showing TensorBoard, when the page is reloaded.
    page.reload()
    restored = page.frame_locator(f"#forgather-tb-{job['id']} iframe")
    restored.get_by_text("run1").first.wait_for()
    src = page.locator(f"#forgather-tb-{job['id']} iframe").get_attribute("src")
    assert src == f"http://127.0.0.1:{lab.port}{job['url']}"


def test_a_crashed_job_shows_failed_with_its_error_and_last_output(lab, page):
    open_sidebar(page)
    job = lab.call("POST", "jobs", {"logdir": "logs", "window_title": "doomed"})
    job = lab.wait_status(job["id"], "running")
    item = job_item(page, job["id"])
    item.locator(".jp-ForgatherTB-badge", has_text="running").wait_for()
    os.kill(job["pid"], signal.SIGKILL)
    item.locator(".jp-ForgatherTB-badge", has_text="failed").wait_for()
    failed = lab.call("GET", f"jobs/{job['id']}")
    failure = item.locator(".jp-ForgatherTB-failure")
    assert failed["error"] in failure.inner_text()
    assert "TensorBoard" in failure.locator("pre").inner_text()  # its last output lines
    assert item.get_by_role("button", name="Kill").count() == 0


def test_s3_logdir_with_its_sync_interval_and_loader_shows_its_mirror(lab, page):
    form = open_sidebar(page)
    form.locator("summary", has_text="Advanced").click()
    sync = form.locator('input[name="sync_interval"]')
    assert sync.is_disabled()  # only for s3:// log directories
    form.locator('input[name="logdir"]').fill(f"s3://{lab.bucket}/runs")
    assert sync.is_enabled()
    sync.fill("1")
    form.locator('select[name="load_fast"]').select_option("false")
    form.get_by_role("button", name="Launch").click()
    form.get_by_role("status").filter(has_text="is running.").wait_for()
    (job,) = lab.call("GET", "jobs")
    assert job["options"]["sync_interval"] == 1.0
    assert job["options"]["load_fast"] == "false"
    mirror = job_item(page, job["id"]).locator(".jp-ForgatherTB-mirror")
    mirror.filter(has_text=re.compile(r"S3 mirror: 2 objects, .* synced")).wait_for()
    job_item(page, job["id"]).locator(".jp-ForgatherTB-loader", has_text="Python loader").wait_for()


def test_a_remote_source_with_a_connection_is_listed_and_launched_from_the_form(lab, page):
    form = open_sidebar(page)
    connection = form.locator('select[name="connection"]')
    assert connection.is_disabled()  # a local log directory takes none
    form.locator('input[name="logdir"]').fill(f"s3://{lab.bucket}")
    assert connection.is_enabled()
    names = connection.locator("option").all_inner_texts()
    assert names == ["Standard credentials", "moto (s3)"]
    connection.select_option("moto")

    # Runs… lists the source's run folders (a process of its own does it); pick one.
    form.get_by_role("button", name="Runs…").click()
    picker = page.get_by_role("list", name="Folders holding runs")
    url = f"s3://{lab.bucket}/runs"
    # (Filters, not a name pattern: Playwright's selectors cannot hold the URL's slashes.)
    picker.get_by_role("button").filter(has_text=url).filter(has_text="2 runs").click()
    assert form.locator('input[name="logdir"]').input_value() == url

    form.get_by_role("button", name="Launch").click()
    form.get_by_role("status").filter(has_text="is running.").wait_for()
    (job,) = lab.call("GET", "jobs")
    assert job["options"]["connection"] == "moto"
    mirror = job_item(page, job["id"]).locator(".jp-ForgatherTB-mirror")
    mirror.filter(has_text=re.compile(r"S3 mirror: 2 objects")).wait_for()


DOUBLE_MEMORY = "Relaunch with 2\N{MULTIPLICATION SIGN} memory"
ENFORCEMENT_TEXT = {
    "cgroup2": "limited by cgroup v2",
    "cgroup1": "limited by cgroup v1",
    "watchdog": "limited by a watchdog",
}


def test_memory_limit_field_meter_and_relaunch(lab, page):
    form = open_sidebar(page)
    form.locator('input[name="logdir"]').fill("logs")
    form.locator("summary", has_text="Advanced").click()
    memory = form.locator('input[name="memory_limit"]')
    assert memory.get_attribute("placeholder") == "server default"
    memory.fill("lots")
    form.get_by_role("button", name="Launch").click()
    form.locator('[data-field="memory_limit"] .jp-ForgatherTB-fieldError').wait_for()
    assert lab.call("GET", "jobs") == []

    memory.fill("1G")
    form.get_by_role("button", name="Launch").click()
    form.get_by_role("status").filter(has_text="is running.").wait_for()
    (job,) = lab.call("GET", "jobs")
    assert job["limits"]["memory_bytes"] == 2**30
    item = job_item(page, job["id"])
    meter = item.get_by_role("meter", name="Memory")
    meter.wait_for()  # from the first usage sample on
    assert meter.get_attribute("aria-valuemax") == str(2**30)
    text = meter.get_attribute("aria-valuetext")
    assert re.fullmatch(r"[0-9.]+ [KMG]?i?B of 1 GiB", text)
    assert item.locator(".jp-ForgatherTB-memory").inner_text() == text
    assert re.fullmatch(r"CPU \d+ %", item.locator(".jp-ForgatherTB-cpu").inner_text())
    enforced_by = lab.call("GET", f"jobs/{job['id']}")["limits"]["enforced_by"]
    enforcement = item.locator(".jp-ForgatherTB-enforcement").inner_text()
    assert enforcement == ENFORCEMENT_TEXT[enforced_by]
    assert enforcement in item.locator(".jp-ForgatherTB-usage").get_attribute("title")
    assert item.get_by_role("button", name="Relaunch").count() == 0

    # An ended job relaunches with its options; the new job is announced and listed.
    lab.call("DELETE", f"jobs/{job['id']}")
    item.locator(".jp-ForgatherTB-badge", has_text="killed").wait_for()
    assert item.get_by_role("meter").count() == 0
    assert item.get_by_role("button", name=DOUBLE_MEMORY).count() == 0
    item.get_by_role("button", name="Relaunch").click()
    page.locator(".Toastify__toast", has_text=re.compile(r"as job \S+: running")).wait_for()
    (new,) = [j for j in lab.call("GET", "jobs") if j["id"] != job["id"]]
    assert new["options"]["logdir"] == job["options"]["logdir"]
    assert new["limits"]["memory_bytes"] == 2**30
    job_item(page, new["id"]).locator(".jp-ForgatherTB-badge", has_text="running").wait_for()


def test_a_job_over_its_memory_limit_offers_a_relaunch_with_twice_the_memory(lab, page):
    open_sidebar(page)
    # 300,000 points: TensorBoard's Rust loader needs about 200 MiB for them, so the
    # limit stops it for real.
    _scalars_logdir(Path(lab.root) / "big", 300, 1000)
    body = {"logdir": "big", "memory_limit": "150M", "load_fast": "true"}
    job = lab.call("POST", "jobs", body)
    job = lab.wait_status(job["id"], "failed", timeout=180)
    assert "memory limit 150 MiB exceeded" in job["error"]
    item = job_item(page, job["id"])
    item.locator(".jp-ForgatherTB-failure", has_text="memory limit 150 MiB exceeded").wait_for()
    double = item.get_by_role("button", name=DOUBLE_MEMORY)
    assert "300 MiB" in double.get_attribute("title")
    double.click()
    page.locator(".Toastify__toast", has_text="Relaunched").wait_for()
    (new,) = [j for j in lab.call("GET", "jobs") if j["id"] != job["id"]]
    assert new["limits"]["memory_bytes"] == 300 * 2**20


def test_job_list_polls_only_while_the_sidebar_is_shown(lab, page):
    listed = []
    page.on(
        "request",
        lambda r: listed.append(r.url) if r.url.split("?")[0].endswith("/api/jobs") else None,
    )
    open_sidebar(page)
    page.wait_for_timeout(5000)
    assert len(listed) >= 2  # the first fetch, then the poll (every 2 s by default)
    page.click('.jp-SideBar [data-id="jp-forgather-tb-sidebar"]')  # hide it again
    page.locator(".jp-ForgatherTB-form").wait_for(state="hidden")
    page.wait_for_timeout(500)  # a fetch already in flight may still land
    shown = len(listed)
    page.wait_for_timeout(5000)
    assert len(listed) == shown


def test_palette_and_view_menu_reach_the_sidebar(lab, page):
    # The palette from the View menu: a key press can come before Lab binds its keys.
    # While Lab restores a new workspace (the Launcher) it takes the focus, which closes
    # a modal palette: open it again until it stays.
    search = page.locator(".jp-ModalCommandPalette input")
    item = page.locator(".lm-CommandPalette-item", has_text="TensorBoard: Launch…")
    for _ in range(10):
        page.locator(".lm-MenuBar-itemLabel", has_text="View").click()
        page.locator(".lm-Menu-item", has_text="Activate Command Palette").click()
        page.wait_for_timeout(300)
        if not search.is_visible():
            continue
        search.fill("TensorBoard: Launch")
        if item.is_visible():
            break
        page.keyboard.press("Escape")
    item.click()
    focused = page.locator(".jp-ForgatherTB-form input[name='logdir']")
    page.wait_for_function("document.activeElement?.getAttribute('name') === 'logdir'")
    assert focused.is_visible()

    page.locator(".lm-MenuBar-itemLabel", has_text="View").click()
    page.locator(".lm-Menu-item", has_text="TensorBoard").hover()
    page.locator(".lm-Menu-item", has_text="Show jobs").click()
    assert page.locator(".jp-ForgatherTB-jobs").is_visible()


def test_another_site_cannot_frame_tensorboard(lab, page, tmp_path):
    # Lab frames it (same origin, above); a page from another origin gets Chromium's refusal.
    job = lab.call("POST", "jobs", {"logdir": "logs"})
    lab.wait_status(job["id"], "running")
    url = f"http://127.0.0.1:{lab.port}{job['url']}?token={lab.token}"
    (tmp_path / "index.html").write_text(f'<iframe src="{url}"></iframe>')
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    site = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    try:
        with page.expect_console_message(lambda m: "frame-ancestors" in m.text) as refused:
            page.goto(f"http://127.0.0.1:{site.server_address[1]}/index.html")
    finally:
        site.shutdown()
        site.server_close()
    assert "violates" in refused.value.text and "frame-ancestors 'self'" in refused.value.text
    assert page.frames[1].url != url


WAITING = "Waiting for event files (a trainer writes them a few seconds after it starts)"


def test_job_card_waits_for_event_files_then_shows_live_runs_and_a_preview(lab, page, tmp_path):
    shots = Path(SCREENSHOTS) if SCREENSHOTS else tmp_path
    folder = Path(lab.root) / "fresh"
    folder.mkdir()
    open_sidebar(page)
    job = lab.call("POST", "jobs", {"logdir": "fresh", "reload_interval": 1})
    job = lab.wait_status(job["id"], "running")
    item = job_item(page, job["id"])
    item.locator(".jp-ForgatherTB-activity", has_text=WAITING).wait_for()
    assert item.get_by_role("img").count() == 0

    # A trainer starts writing: two runs, a loss and an accuracy each.
    write_scalars(folder / "run1", "loss", [1.0, 0.6, 0.4, 0.3, 0.25])
    write_scalars(folder / "run1", "accuracy", [0.1, 0.5, 0.7, 0.8, 0.875])
    write_scalars(folder / "run2", "loss", [2.0, 1.2, 0.9])
    activity = item.locator(".jp-ForgatherTB-activity")
    activity.filter(has_text=re.compile(r"^2 runs · last write \d+ s ago$")).wait_for()

    # The preview draws the loss (the default tag) of both runs, with the latest value.
    sparkline = item.get_by_role("img", name="loss: latest 0.25 (run1, step 4)")
    sparkline.wait_for()
    lines = sparkline.locator("polyline")
    assert lines.count() == 2
    assert [len(lines.nth(i).get_attribute("points").split()) for i in range(2)] == [5, 3]
    assert item.locator(".jp-ForgatherTB-latest").inner_text() == "0.25"
    assert lines.first.evaluate("line => getComputedStyle(line).stroke") != "none"
    item.scroll_into_view_if_needed()
    item.screenshot(path=str(shots / "job-card-preview.png"))

    # Another tag is remembered for this log directory, across a reload.
    tag = item.get_by_role("combobox", name="Scalar tag shown")
    assert tag.locator("option").all_inner_texts() == ["accuracy", "loss"]
    # (Lab saves its state database with the workspace, shortly after a change.)
    with page.expect_request(lambda r: r.method == "PUT" and "/api/workspaces/" in r.url):
        tag.select_option("accuracy")
    item.get_by_role("img", name="accuracy: latest 0.875 (run1, step 4)").wait_for()
    page.reload()
    item = job_item(page, job["id"])  # the workspace restores the sidebar open
    item.get_by_role("img", name="accuracy: latest 0.875 (run1, step 4)").wait_for()

    # Previews are asked for only while the sidebar is shown.
    previews = []
    page.on("request", lambda r: previews.append(r.url) if "/preview" in r.url else None)
    page.wait_for_timeout(6000)  # longer than a live preview may get
    assert previews
    page.click('.jp-SideBar [data-id="jp-forgather-tb-sidebar"]')  # hide it
    page.locator(".jp-ForgatherTB-form").wait_for(state="hidden")
    page.wait_for_timeout(500)  # a request already in flight may still land
    shown = len(previews)
    page.wait_for_timeout(6000)
    assert len(previews) == shown

    # Clicking the preview opens the job's TensorBoard in a tab.
    page.click('.jp-SideBar [data-id="jp-forgather-tb-sidebar"]')
    item.get_by_role("button", name=re.compile(r"^accuracy: latest .*Show in TensorBoard$")).click()
    page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text="fresh").wait_for()
    frame = page.frame_locator(f"#forgather-tb-{job['id']} iframe")
    frame.get_by_text("run2").first.wait_for()


@pytest.fixture
def stall_lab(tmp_path_factory):
    """A server of its own on which a job is idle 10 s, and stalled 15 s, after its last write."""
    root = tmp_path_factory.mktemp("stall-root")
    (root / "training").mkdir()
    server = JupyterServerProcess(root, tmp_path_factory.mktemp("stall-runtime"))
    server.start(
        _lab_env(tmp_path_factory),
        args=("--ForgatherTB.live_window=10", "--ForgatherTB.stall_after=15"),
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def sleepy_lab(tmp_path_factory):
    """A second server whose jobs are suspended after 3 s without a request."""
    root = tmp_path_factory.mktemp("sleepy-root")
    write_scalars(root / "logs" / "run1", "loss", [1.0, 0.6, 0.4])
    write_scalars(root / "logs" / "run2", "loss", [2.0, 1.2])
    env = lab_env(tmp_path_factory.mktemp("sleepy-home"))
    server = JupyterServerProcess(root, tmp_path_factory.mktemp("sleepy-runtime"))
    server.start(env, args=("--ForgatherTB.suspend_after=3",))
    yield server
    server.stop()


def test_a_stalled_job_is_told_once_per_stall_with_an_action_that_opens_it(stall_lab, browser):
    folder = Path(stall_lab.root) / "training"
    stall = re.compile(r"TensorBoard “training”: no new events for \d+ s")
    with lab_page(browser, stall_lab, "stall") as page:
        open_sidebar(page)
        job = stall_lab.call("POST", "jobs", {"logdir": "training", "reload_interval": 1})
        job = stall_lab.wait_status(job["id"], "running")
        item = job_item(page, job["id"])
        write_scalars(folder / "run1", "loss", [1.0, 0.5])
        item.locator(".jp-ForgatherTB-activity", has_text="last write").wait_for()

        # The sidebar closed, a background check still notices the stall (every 30 s).
        page.click('.jp-SideBar [data-id="jp-forgather-tb-sidebar"]')
        page.locator(".jp-ForgatherTB-form").wait_for(state="hidden")
        toast = page.locator(".Toastify__toast", has_text=stall)
        toast.wait_for(timeout=90_000)
        assert toast.count() == 1

        # One notice per stall: the list refreshing more often adds none.
        open_sidebar(page)
        item.locator(".jp-ForgatherTB-activity.jp-mod-warn", has_text="idle for").wait_for()
        page.wait_for_timeout(5000)
        assert toast.count() == 1

        # New events withdraw it; the next stall is told again.
        write_scalars(folder / "run1", "loss", [0.4, 0.3], start_step=2)
        toast.wait_for(state="detached")
        toast.wait_for()
        assert toast.count() == 1

        # Its action opens the job's TensorBoard in a tab.
        toast.get_by_role("button", name="Open TensorBoard").click()
        page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text="training").wait_for()
        page.frame_locator(f"#forgather-tb-{job['id']} iframe").get_by_text("run1").first.wait_for()

        # A reload lists the jobs again, and the stall, still on, is not told again.
        def lists_jobs(response) -> bool:
            url = response.url.split("?")[0]
            return response.request.method == "GET" and url.endswith("/forgather-tb/api/jobs")

        with page.expect_response(lists_jobs, timeout=60_000):
            page.reload()
        page.wait_for_timeout(3000)
        assert stall_lab.call("GET", f"jobs/{job['id']}")["activity"]["stalled"] is True
        assert toast.count() == 0


def test_runs_picker_ticks_two_folders_and_launches_one_comparison(lab, page):
    root = Path(lab.root)
    write_scalars(root / "exp-a" / "runs" / "lr1", "loss", [1.0, 0.5])
    write_scalars(root / "exp-b" / "other" / "lr2", "loss", [2.0, 1.0])
    form = open_sidebar(page)
    form.get_by_role("button", name="Runs…").click()
    picker = page.get_by_role("list", name="Folders holding runs")
    picker.get_by_role("checkbox", name="Compare exp-a/runs", exact=True).check()
    assert form.locator('input[name="logdir"]').is_visible()  # one folder: no comparison yet
    picker.get_by_role("checkbox", name="Compare exp-b/other", exact=True).check()
    compared = form.get_by_role("group", name="Folders to compare")
    assert compared.locator("li > span").all_inner_texts() == ["exp-a/runs", "exp-b/other"]
    assert compared.get_by_role("button", name="Stop comparing exp-a/runs").is_visible()
    assert form.locator('input[name="logdir"]').count() == 0

    form.get_by_role("button", name="Launch").click()
    form.get_by_role("status").filter(has_text="is running.").wait_for()
    (job,) = lab.call("GET", "jobs")
    assert sorted(job["logdirs"].values()) == [
        str((root / "exp-a" / "runs").resolve()),
        str((root / "exp-b" / "other").resolve()),
    ]
    form.get_by_role("status").get_by_role("button", name="Open").click()
    frame = page.frame_locator(f"#forgather-tb-{job['id']} iframe")
    frame.get_by_text("runs/lr1").first.wait_for()
    frame.get_by_text("other/lr2").first.wait_for()


def test_file_browser_compares_several_selected_folders_in_one_tensorboard(lab, page):
    root = Path(lab.root)
    write_scalars(root / "cmp-x" / "lr1", "loss", [1.0, 0.5])
    write_scalars(root / "cmp-y" / "lr2", "loss", [2.0, 1.0])
    page.locator(".jp-DirListing-item[data-isdir='true']", has_text="cmp-x").click()
    second = page.locator(".jp-DirListing-item[data-isdir='true']", has_text="cmp-y")
    second.click(modifiers=["Control"])
    second.click(button="right")
    # Lumino keeps a menu's hidden items, undisplayed.
    assert page.locator(".lm-Menu-item:visible", has_text="Open TensorBoard here").count() == 0
    page.locator(".lm-Menu-item", has_text="Compare in TensorBoard").click()
    page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text="compare: cmp-x, cmp-y").wait_for()
    (job,) = lab.call("GET", "jobs")
    assert sorted(job["logdirs"]) == ["cmp-x", "cmp-y"]
    frame = page.frame_locator(f"#forgather-tb-{job['id']} iframe")
    frame.get_by_text("cmp-x/lr1").first.wait_for()
    frame.get_by_text("cmp-y/lr2").first.wait_for()


def _workspace_holds(lab, workspace: str, text: str) -> bool:
    request = urllib.request.Request(
        f"http://127.0.0.1:{lab.port}{lab.base_url}lab/api/workspaces/{workspace}",
        headers={"Authorization": f"token {lab.token}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return text in response.read().decode()


def test_a_lab_tab_of_a_suspended_job_shows_tensorboard_again_when_reloaded(sleepy_lab, browser):
    lab = sleepy_lab
    job = lab.call("POST", "jobs", {"logdir": "logs", "window_title": "sleepy"})
    lab.wait_status(job["id"], "running")
    lab_url = f"http://127.0.0.1:{lab.port}{lab.base_url}lab/workspaces"
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        page = context.new_page()
        page.set_default_timeout(60_000)
        page.goto(f"{lab_url}/sleepy?token={lab.token}")
        page.wait_for_selector("#jp-main-dock-panel")
        open_sidebar(page)
        job_item(page, job["id"]).get_by_role("button", name="Open").click()
        page.frame_locator(f"#forgather-tb-{job['id']} iframe").get_by_text("run1").first.wait_for()
        deadline = time.monotonic() + 30
        while not _workspace_holds(lab, "sleepy", f"forgather-tb-{job['id']}"):
            assert time.monotonic() < deadline, "Lab did not save its tab"
            time.sleep(0.2)

        # The browser goes away (a visible TensorBoard polls, which wakes it again).
        page.goto("about:blank")
        wakes = lab.wait_status(job["id"], "suspended", timeout=60)["wakes"]
        other = context.new_page()  # the sidebar alone, in a workspace with no TensorBoard tab
        other.goto(f"{lab_url}/sleepy-list")
        other.wait_for_selector("#jp-main-dock-panel")
        open_sidebar(other)
        item = job_item(other, job["id"])
        item.locator(".jp-ForgatherTB-badge", has_text="suspended, wakes when opened").wait_for()
        assert item.get_by_role("button", name="Open").is_visible()
        assert lab.call("GET", f"jobs/{job['id']}")["wakes"] == wakes  # the sidebar wakes nothing
        other.close()

        page.goto(f"{lab_url}/sleepy")  # Lab restores the tab, whose request wakes the job
        frame = page.frame_locator(f"#forgather-tb-{job['id']} iframe")
        frame.get_by_text("run1").first.wait_for()
        frame.get_by_text("run2").first.wait_for()
        woken = lab.call("GET", f"jobs/{job['id']}")
        assert woken["status"] == "running" and woken["wakes"] == wakes + 1
    finally:
        context.close()
        lab.call("DELETE", f"jobs/{job['id']}")
