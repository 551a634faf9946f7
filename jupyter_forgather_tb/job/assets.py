"""TensorBoard's frontend files, prepared once so its pages are complete behind a path prefix.

TensorBoard serves its frontend from a zip (``webfiles.zip``). Its ``index.html``
loads the Roboto font with absolute ``url(/font-roboto/<hash>.woff2)`` paths, which
ignore ``--path_prefix``: behind ``<base_url>tb/<id>/`` the browser asks the host's
root for them and gets 404s. Here such URLs are made relative to the file that holds
them, once per process, before TensorBoard reads the zip; nothing is done per request.
"""

from __future__ import annotations

import io
import posixpath
import re
import zipfile
from collections.abc import Mapping

from .servers import AssetsZipProvider

# A CSS ``url(/path)``, bare or quoted; group 2 is the path after the leading slash.
_ROOTED_URL = re.compile(rb"""url\((['"]?)/([^'")/][^'")]*)\1\)""")
# Text files of the frontend that may hold CSS.
_STYLED = (".html", ".css")


def relative_urls(member: str, text: bytes, names: frozenset[str]) -> bytes:
    """``text`` of the zip member ``member``, its ``url(/X)`` made relative where X is in ``names``.

    A URL naming no file of the zip is left as it is.
    """
    folder = posixpath.dirname(member) or "."

    def relative(match: re.Match[bytes]) -> bytes:
        target = match.group(2).decode("ascii", "replace")
        if target not in names:
            return match.group(0)
        quote = match.group(1)
        path = posixpath.relpath(target, folder).encode()
        return b"url(" + quote + path + quote + b")"

    return _ROOTED_URL.sub(relative, text)


def read_assets(provider: AssetsZipProvider) -> dict[str, bytes]:
    """Every file of a frontend zip by name, with rooted ``url()``s made relative."""
    with provider() as packed, zipfile.ZipFile(packed) as source:
        contents = {name: source.read(name) for name in source.namelist()}
    names = frozenset(contents)
    return {
        name: relative_urls(name, content, names) if name.endswith(_STYLED) else content
        for name, content in contents.items()
    }


def stored_zip(contents: Mapping[str, bytes]) -> AssetsZipProvider:
    """An ``assets_zip_provider`` for these files: a zip kept uncompressed in memory."""
    stored = io.BytesIO()
    with zipfile.ZipFile(stored, "w", zipfile.ZIP_STORED) as target:
        for name, content in contents.items():
            target.writestr(name, content)
    data = stored.getvalue()
    return lambda: io.BytesIO(data)


def default_assets() -> dict[str, bytes]:
    """TensorBoard's own frontend files, prepared by :func:`read_assets`."""
    from tensorboard import assets

    return read_assets(assets.get_default_assets_zip_provider())
