"""Which files of a remote source are TensorBoard's, and which a mirror must leave out.

Pure functions shared by the job's mirror, the uploader and the server's run listings.
"""

from __future__ import annotations

from collections.abc import Iterable

EVENT_FILE_MARK = "tfevents"
PLUGINS_DIR = "plugins"


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
