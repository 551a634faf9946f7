"""Bucket URLs as log directories (``s3://``, ``gs://``) and which keys are TensorBoard's.

Pure functions shared by the launch options, the S3 mirror and the uploader.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

#: Schemes a log directory may use; anything else with ``://`` is refused.
REMOTE_SCHEMES = ("s3", "gs")
EVENT_FILE_MARK = "tfevents"
PLUGINS_DIR = "plugins"

_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
# S3's bucket naming rules (GCS also allows "_" and longer dotted names).
_BUCKET_RE = {
    "s3": re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"),
    "gs": re.compile(r"[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]"),
}


def url_scheme(value: str) -> str | None:
    """The lower-cased scheme of a URL-like string (``"s3"``), or None for a path."""
    match = _SCHEME_RE.match(value)
    return match.group(1).lower() if match else None


def parse_bucket_url(value: str) -> tuple[str, str, str]:
    """``(scheme, bucket, prefix)`` of ``s3://bucket/prefix``; the prefix has no outer slashes.

    Raises ``ValueError`` with a message for the user when the URL is not one
    we accept.
    """
    scheme = url_scheme(value)
    if scheme not in REMOTE_SCHEMES:
        raise ValueError("only s3://bucket/prefix and gs://bucket/prefix URLs are accepted")
    bucket, _, prefix = value[len(scheme) + 3 :].partition("/")
    if not _BUCKET_RE[scheme].fullmatch(bucket):
        raise ValueError(f"{bucket!r} is not a valid {scheme.upper()} bucket name")
    prefix = prefix.strip("/")
    if prefix and any(part in ("", ".", "..") for part in prefix.split("/")):
        raise ValueError("the prefix must not contain empty, '.' or '..' path parts")
    if "?" in value or "#" in value:
        raise ValueError("the URL must not carry a query or a fragment")
    return scheme, bucket, prefix


def normalize_bucket_url(value: str) -> str:
    """The canonical spelling of a bucket URL: lower-case scheme, no trailing slash."""
    scheme, bucket, prefix = parse_bucket_url(value)
    return f"{scheme}://{bucket}/{prefix}" if prefix else f"{scheme}://{bucket}"


def is_s3_url(value: str) -> bool:
    """True for an ``s3://`` log directory (one the job mirrors)."""
    return url_scheme(value) == "s3"


def key_prefix(prefix: str) -> str:
    """The listing prefix for a log directory prefix: ``runs`` lists ``runs/``, not ``runs2/``."""
    return f"{prefix}/" if prefix else ""


def tensorboard_path(relative_key: str) -> str | None:
    """The local relative path for a key below the prefix, or None if TensorBoard never reads it.

    Kept: event files (``*tfevents*``) and anything in a ``plugins/`` folder
    (plugin assets); not checkpoints or other files. Keys that could not be a
    safe local path (``..``, empty parts, names over 255 bytes) are skipped too.
    """
    parts = relative_key.split("/")
    if any(part in ("", ".", "..") or "\0" in part or len(part.encode()) > 255 for part in parts):
        return None
    if EVENT_FILE_MARK in parts[-1] or PLUGINS_DIR in parts[:-1]:
        return "/".join(parts)
    return None


#: Why a mirror leaves out a path TensorBoard would otherwise read (see :func:`paths_to_skip`).
EVENT_FILE_FOLDER = (
    "a folder in its path is named like an event file, which TensorBoard's Python loader "
    "would try to read as one (failing every request for the list of runs)"
)
FOLDER_CLASH = "a folder of the same name holds other objects, which are mirrored instead"


def paths_to_skip(paths: Iterable[str]) -> dict[str, str]:
    """``{path: why}`` for the local paths a mirror must leave out, so one key cannot break it.

    A path below a folder named like an event file is left out. Of a file and
    a folder under one name (``a/b`` and ``a/b/c``), which no file system can
    hold both of, the folder is kept, as TensorBoard reads folders.
    """
    paths = set(paths)
    skipped = {path: EVENT_FILE_FOLDER for path in paths if EVENT_FILE_MARK in _folder(path)}
    kept = paths - set(skipped)
    folders = {path[:i] for path in kept for i, char in enumerate(path) if char == "/"}
    skipped.update((path, FOLDER_CLASH) for path in kept & folders)
    return skipped


def _folder(path: str) -> str:
    return path.rpartition("/")[0]
