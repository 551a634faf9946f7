"""A compare job's log directory: a private folder of links, one per compared folder.

TensorBoard's ``--logdir_spec`` (``name:path,...``) is refused by its fast loader, and
both loaders follow directory links; so a compare job gets ``--logdir`` pointing at a
folder holding a link ``name -> real path`` per compared folder, and shows each
folder's runs as ``name/run``. The folder lives in the server run's private socket
directory and goes when the job ends.
"""

from __future__ import annotations

import contextlib
import os

#: What a compare job's folder of links is called, after the job's id.
TREE_SUFFIX = ".logdirs"


def make_tree(path: str, members: tuple[tuple[str, str], ...]) -> None:
    """Create ``path`` (private) holding a link ``name -> real path`` for each member.

    Names were checked by the launch options (no ``/``, no leading ``.``), so each
    link lands inside ``path``.
    """
    os.mkdir(path, 0o700)
    for name, real in members:
        os.symlink(real, os.path.join(path, name))


def remove_tree(path: str) -> None:
    """Remove a folder :func:`make_tree` made: its links, then itself (never what they lead to)."""
    try:
        entries = list(os.scandir(path))
    except OSError:
        return
    for entry in entries:
        if entry.is_symlink():
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
    with contextlib.suppress(OSError):
        os.rmdir(path)
