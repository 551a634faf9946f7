"""TensorBoard's frontend as a job serves it: fonts named relatively, so they load under a prefix.

TensorBoard's own ``index.html`` loads its fonts from absolute ``/font-roboto/...``
paths, outside any ``--path_prefix``; a job serves it with those made relative
(``job/assets.py``). Checked on the real frontend zip, and through the proxy for forked
and plain jobs; ``test_pages.py`` checks whole pages in Chromium.
"""

from __future__ import annotations

import functools
import re
import zipfile
from urllib.parse import urljoin

import pytest

from jupyter_forgather_tb.job.assets import default_assets, read_assets, relative_urls

FONT_URL = re.compile(rb"url\(([^)]*font-roboto/[^)]*)\)")


def _tensorboards_zip() -> dict[str, bytes]:
    from tensorboard import assets

    with assets.get_default_assets_zip_provider()() as packed, zipfile.ZipFile(packed) as zip_:
        return {name: zip_.read(name) for name in zip_.namelist()}


def test_every_font_url_of_tensorboards_index_becomes_relative_and_names_a_file_of_its_zip():
    original = _tensorboards_zip()
    rooted = FONT_URL.findall(original["index.html"])
    assert len(rooted) >= 4 and all(url.startswith(b"/font-roboto/") for url in rooted)

    prepared = default_assets()
    urls = FONT_URL.findall(prepared["index.html"])
    assert len(urls) == len(rooted)
    assert all(url.decode() in original and url.startswith(b"font-roboto/") for url in urls)
    assert b"url(/" not in prepared["index.html"]
    # Only the font URLs changed, and no other file but the fonts' own unused stylesheet.
    assert (
        prepared["index.html"].replace(b"url(font-roboto/", b"url(/font-roboto/")
        == (original["index.html"])
    )
    changed = {name for name in original if prepared[name] != original[name]}
    assert changed <= {"index.html", "font-roboto/roboto.html"}
    assert prepared.keys() == original.keys()


def test_rooted_urls_are_made_relative_to_the_file_that_holds_them():
    names = frozenset({"a.woff2", "fonts/b.woff2", "index.html", "css/site.css"})
    css = (
        b"x{src:url(/a.woff2)} y{src:url('/fonts/b.woff2')} "
        b'z{src:url("/fonts/b.woff2")} w{src:url(/missing.woff2)} v{src:url(//cdn/a.woff2)}'
    )
    assert relative_urls("index.html", css, names) == (
        b"x{src:url(a.woff2)} y{src:url('fonts/b.woff2')} "
        b'z{src:url("fonts/b.woff2")} w{src:url(/missing.woff2)} v{src:url(//cdn/a.woff2)}'
    )
    assert relative_urls("css/site.css", b"url(/fonts/b.woff2)", names) == (
        b"url(../fonts/b.woff2)"
    )


def test_a_zip_is_read_with_only_its_styled_files_rewritten(tmp_path):
    path = tmp_path / "web.zip"
    with zipfile.ZipFile(path, "w") as zip_:
        zip_.writestr("index.html", b"<style>@font-face{src:url(/f/a.woff2)}</style>")
        zip_.writestr("f/a.woff2", b"url(/f/a.woff2)")  # binary files are left alone
        zip_.writestr("app.js", b'"url(/f/a.woff2)"')
    prepared = read_assets(functools.partial(path.open, "rb"))
    assert prepared == {
        "index.html": b"<style>@font-face{src:url(f/a.woff2)}</style>",
        "f/a.woff2": b"url(/f/a.woff2)",
        "app.js": b'"url(/f/a.woff2)"',
    }


@pytest.mark.parametrize("fork_server", [True, False], ids=["forked", "plain"])
async def test_the_fonts_tensorboards_page_names_load_through_the_proxy(
    fork_server, tb_config, api, logdir
):
    tb_config["fork_server"] = fork_server
    job = await api.launch(logdir="logs", force_new=True)
    await api.wait_status(job["id"], "running")
    page = await api.proxied(job["id"])
    assert page.code == 200
    fonts = {url.decode() for url in FONT_URL.findall(page.body)}
    assert fonts and not any(url.startswith("/") for url in fonts)
    base = f"/{job['id']}/"
    for url in sorted(fonts)[:8]:
        font = await api.proxied(job["id"], urljoin(base, url)[len(base) :])
        assert font.code == 200, url
        assert font.headers["Content-Type"] == "font/woff2"
