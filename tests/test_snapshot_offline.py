"""A notebook's exported HTML shows the magic's picture in real headless Chromium once its
Jupyter server and TensorBoard are gone.

A real kernel runs ``%forgather_tb`` against a real ``jupyter server`` (``jupyter nbconvert
--execute``, as a notebook is run and saved), the server is stopped, ``jupyter nbconvert
--to html`` exports the saved notebook, and Chromium opens the file.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.error
import urllib.request

import nbformat
import pytest
from conftest import JupyterServerProcess, write_scalars
from test_lab_ui import (  # noqa: F401 (fixtures)
    browser,
    jp_asyncio_loop,
    jp_server_cleanup,
)

pytestmark = pytest.mark.timeout(240)


def jupyter(*args: str, cwd, env=None) -> None:
    """Run a ``jupyter`` command of this environment; fail with its output if it fails."""
    done = subprocess.run(
        [sys.executable, "-m", "jupyter", *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def run_notebook(root, runtime) -> dict:
    """Execute ``root/analysis.ipynb`` (the magic on ``curves``) in a real kernel that finds
    the server in ``runtime``, saved in place as Jupyter saves it; its last output's data."""
    cells = [
        nbformat.v4.new_code_cell("%load_ext jupyter_forgather_tb"),
        nbformat.v4.new_code_cell("%forgather_tb --logdir curves"),
    ]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), root / "analysis.ipynb")
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(runtime)}
    for name in ("FORGATHER_TB_SERVER", "FORGATHER_TB_TOKEN", "JUPYTERHUB_API_TOKEN"):
        env.pop(name, None)
    jupyter(
        "nbconvert",
        "--to",
        "notebook",
        "--execute",
        "--inplace",
        "--ExecutePreprocessor.timeout=120",
        "analysis.ipynb",
        cwd=root,
        env=env,
    )
    saved = nbformat.read(root / "analysis.ipynb", as_version=4)
    return saved.cells[1].outputs[-1]["data"]


def test_exported_html_shows_the_picture_with_the_tags_when_the_server_is_gone(
    browser,  # noqa: F811
    tmp_path,
):
    root = tmp_path / "root"
    write_scalars(root / "curves" / "a", "train/loss", [1.0, 0.5, 0.25, 0.2])
    write_scalars(root / "curves" / "b", "accuracy", [0.1, 0.4, 0.6])
    server = JupyterServerProcess(root, tmp_path / "runtime").start()
    try:
        data = run_notebook(root, tmp_path / "runtime")
        (job,) = server.call("GET", "jobs")
        assert job["status"] == "running"
    finally:
        server.stop()
    live_url = f"{server.base_url}tb/{job['id']}/"
    assert f'src="{live_url}"' in data["text/html"]  # the live view, saved with its picture
    assert "<svg" in data["text/html"] and "train/loss" in data["image/svg+xml"]
    with pytest.raises(urllib.error.URLError):  # the server, and TensorBoard with it, is gone
        urllib.request.urlopen(f"http://127.0.0.1:{server.port}{live_url}", timeout=5)

    jupyter("nbconvert", "--to", "html", "analysis.ipynb", cwd=root)
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    failed = []
    page.on("requestfailed", lambda request: failed.append(request.url))
    page.goto((root / "analysis.html").as_uri(), wait_until="load")

    frame = page.locator(f'iframe[src="{live_url}"]')
    assert frame.count() == 1  # the live view is in the page, and cannot load
    assert any(url.endswith(live_url) for url in failed), failed
    picture = page.locator("figure svg")
    assert picture.count() == 1
    picture.evaluate("(node) => node.scrollIntoView()")
    assert picture.is_visible()
    box = picture.bounding_box()
    assert box["width"] > 200 and box["height"] > 100, box
    for name in ("train/loss", "accuracy", "a", "b"):
        text = picture.locator("text", has_text=re.compile(f"^{re.escape(name)}$"))
        assert text.is_visible(), name
        # Drawn on top, not under the frame: the page's topmost element at the name is its text.
        on_top = text.evaluate(
            """(node) => {
                const r = node.getBoundingClientRect();
                const hit = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);
                return node.contains(hit);
            }"""
        )
        assert on_top, name
    caption = picture.locator("text", has_text="Scalars of")
    assert caption.is_visible() and "/curves at " in caption.text_content()
    context.close()
