"""Complete TensorBoard pages through ``/tb/<id>/`` in real headless Chromium.

Every response the TensorBoard page gets is 2xx or 304 and comes from under the job's
URL (its fonts included: TensorBoard's own page names them outside any path prefix;
see ``job/assets.py`` and ``test_assets.py``), in a browser tab and in Lab's
TensorBoard tab, under a Jupyter base URL with an escaped character.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.request
from urllib.parse import urlsplit

import pytest
from conftest import JupyterServerProcess, lab_env, write_scalars
from test_lab_ui import CHROMIUM, CHROMIUM_ARGS, job_item, open_sidebar

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(autouse=True)
def jp_asyncio_loop():
    """No pytest-jupyter loop here: Playwright's sync API runs (and owns) its own loop."""
    return None


@pytest.fixture(autouse=True)
def jp_server_cleanup():
    """Nothing to clean: these tests run Jupyter in a subprocess, not in pytest's process."""
    return None


# A base URL whose path has an escaped character (a space).
BASE_URL = "/a%20b/"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A real ``jupyter server`` with Lab and our extension, at ``/a%20b/``."""
    root = tmp_path_factory.mktemp("root")
    write_scalars(root / "logs" / "run1", "loss", [1.0, 0.6, 0.4, 0.3, 0.25])
    write_scalars(root / "logs" / "run2", "loss", [2.0, 1.2, 0.9])
    env = lab_env(tmp_path_factory.mktemp("lab-home"))
    runtime = tmp_path_factory.mktemp("runtime")
    server = JupyterServerProcess(root, runtime, base_url=BASE_URL).start(env)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def jobs_cleared(site):
    """Every job of the site is stopped and cleared after the test."""
    yield
    for job in site.call("GET", "jobs"):
        site.call("DELETE", f"jobs/{job['id']}")
    site.call("DELETE", "jobs")


@pytest.fixture
def context(browser, site, jobs_cleared):
    """A fresh browser context logged in to Jupyter (its cookie)."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    login = context.new_page()
    login.goto(f"{_origin(site)}{site.base_url}api/status?token={site.token}")
    login.close()
    yield context
    context.close()


def _origin(site: JupyterServerProcess) -> str:
    return f"http://127.0.0.1:{site.port}"


def _running_job(site: JupyterServerProcess) -> tuple[dict, str]:
    job = site.call("POST", "jobs", {"logdir": "logs", "window_title": "complete"})
    job = site.wait_status(job["id"], "running")
    assert job["url"] == f"{BASE_URL}tb/{job['id']}/"
    return job, f"{_origin(site)}{job['url']}"


class Traffic:
    """Every response and failed request of one TensorBoard page (a tab or a Lab IFrame)."""

    def __init__(self, page, of_tensorboard) -> None:
        self.responses: list[tuple[int, str]] = []
        self.failures: list[tuple[str, str | None]] = []
        page.on(
            "response",
            lambda r: self.responses.append((r.status, r.url)) if of_tensorboard(r) else None,
        )
        page.on(
            "requestfailed",
            lambda r: self.failures.append((r.url, r.failure)) if of_tensorboard(r) else None,
        )

    def check(self, job_url: str) -> None:
        """All 2xx or 304, all under the job's URL, nothing failed; the fonts among them."""
        assert self.failures == []
        bad = [(status, url) for status, url in self.responses if not _fine(status)]
        assert bad == []
        outside = [url for _, url in self.responses if not url.startswith(job_url)]
        assert outside == []
        urls = [url for _, url in self.responses]
        assert any("/font-roboto/" in url for url in urls), urls
        assert any(url.endswith("/data/plugin/timeseries/timeSeries") for url in urls), urls


def _fine(status: int) -> bool:
    return 200 <= status < 300 or status == 304


# The page's Roboto faces: some loaded (those its text uses), none failed.
ROBOTO_SETTLED = """() => {
  const roboto = [...document.fonts].filter((face) => face.family.includes("Roboto"));
  return roboto.some((face) => face.status === "loaded" || face.status === "error");
}"""
ROBOTO_STATUSES = """() => [...document.fonts]
  .filter((face) => face.family.includes("Roboto") && face.status !== "unloaded")
  .map((face) => face.status)"""


# What each of a page's loads took from the network (bytes: transferred, and its body as
# encoded: 0 transferred for what came from the cache, headers only for a 304).
TRANSFERS = """() => [performance.getEntriesByType("navigation")[0],
  ...performance.getEntriesByType("resource")].map(
  (e) => [e.name, e.transferSize, e.encodedBodySize])"""


def _drawn(frame) -> None:
    """Wait until TensorBoard shows its runs, a scalar chart, and its fonts are settled."""
    frame.wait_for_selector("scalar-card line-chart canvas, scalar-card line-chart svg path")
    frame.wait_for_function(ROBOTO_SETTLED)
    frame.wait_for_load_state("networkidle")


def test_a_tensorboard_page_in_a_browser_tab_loads_completely_under_an_escaped_base_url(
    site, context
):
    _, job_url = _running_job(site)
    page = context.new_page()
    page.set_default_timeout(60_000)
    traffic = Traffic(page, lambda r: True)
    page.goto(job_url)
    _drawn(page.main_frame)
    assert set(page.evaluate(ROBOTO_STATUSES)) == {"loaded"}
    traffic.check(job_url)

    # A reload is complete too, and cheap: TensorBoard's scripts come from the browser's
    # cache without a request (their names carry a hash), its page and fonts are
    # revalidated (304: headers only) by the ETag the proxy gives them.
    reloaded = Traffic(page, lambda r: True)
    page.reload()
    _drawn(page.main_frame)
    reloaded.check(job_url)
    fetched = {name: (transferred, body) for name, transferred, body in page.evaluate(TRANSFERS)}
    (page_sizes,) = [sizes for name, sizes in fetched.items() if name.split("#")[0] == job_url]
    # The page: a 304; the body the cache holds is gzipped (28 KB of 206 KB).
    assert page_sizes[0] < 1000 and 10_000 < page_sizes[1] < 50_000
    scripts = [sizes for name, sizes in fetched.items() if "/index.js?" in name]
    assert len(scripts) == 1 and scripts[0][0] == 0 and scripts[0][1] > 1_000_000  # no request
    fonts = [sizes for name, sizes in fetched.items() if "/font-roboto/" in name]
    assert fonts and all(0 < transferred < 1000 for transferred, _ in fonts)  # 304s (11 KB each)


def test_a_tensorboard_page_in_labs_tab_loads_completely_under_an_escaped_base_url(site, context):
    job, job_url = _running_job(site)
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(f"{_origin(site)}{site.base_url}lab/workspaces/complete-pages")
    page.wait_for_selector("#jp-main-dock-panel")
    # Lab's own requests are not TensorBoard's: only what the TensorBoard IFrame asks for.
    traffic = Traffic(page, lambda r: _in_tensorboard_frame(r, job_url))
    open_sidebar(page)
    item = job_item(page, job["id"])
    assert item.get_by_role("link", name="New tab").get_attribute("href") == job_url
    item.get_by_role("button", name="Open").click()
    page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text="complete").wait_for()
    iframe = page.locator(f"#forgather-tb-{job['id']} iframe")
    assert iframe.get_attribute("src") == job_url
    frame = page.frame_locator(f"#forgather-tb-{job['id']} iframe")
    frame.get_by_text("run1").first.wait_for()
    tensorboard = next(f for f in page.frames if f.url.startswith(job_url))
    _drawn(tensorboard)
    assert set(tensorboard.evaluate(ROBOTO_STATUSES)) == {"loaded"}
    traffic.check(job_url)


def _in_tensorboard_frame(message, job_url: str) -> bool:
    """Whether a response or request belongs to the TensorBoard IFrame (its page included)."""
    request = getattr(message, "request", message)
    try:
        frame = request.frame
    except Exception:  # a service worker's request has no frame: not TensorBoard's
        return False
    return frame.url.startswith(job_url) or request.url.startswith(job_url)


def test_the_command_line_finds_the_job_under_the_escaped_base_url(site, jobs_cleared):
    job, _ = _running_job(site)
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(site.runtime)}
    shown = subprocess.run(
        [sys.executable, "-m", "jupyter_forgather_tb.clients.cli", "show", job["id"]],
        capture_output=True,
        text=True,
        env=env,
        cwd=site.root,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    (url,) = re.findall(r"^url: +(\S+)$", shown.stdout, re.MULTILINE)
    assert urlsplit(url).path == job["url"]
    request = urllib.request.Request(url, headers={"Authorization": f"token {site.token}"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 200
        assert b"tb-relative-root" in answer.read()
