"""The ``module-map`` directive: the source tree as text, checked against the files.

The directive's content is shown as it is written. Its block for the Python package (the
line ``jupyter_forgather_tb/`` and the lines indented under it, two spaces a level) must
name every module and subpackage on disk (a subpackage's ``__init__.py`` goes with its
folder), and nothing that is not there: the build warns otherwise (an error under
``-W``), so the map cannot drift from the tree.
"""

from __future__ import annotations

import re
from pathlib import Path

from docutils import nodes
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)

PACKAGE = "jupyter_forgather_tb"
# Files of the package the map lists (caches and the built JupyterLab extension aside).
LISTED_SUFFIXES = (".py", ".json")
NOT_IN_GIT = {"labextension"}
ENTRY = re.compile(r"^( *)(\S+)")


def mapped_paths(lines: list[str]) -> set[str]:
    """Paths (``common/options.py``, ``server/``) the package's block of the map names."""
    paths: set[str] = set()
    stack: list[str] = []
    inside = False
    for line in lines:
        match = ENTRY.match(line)
        if not match:
            continue
        depth, name = len(match.group(1)) // 2, match.group(2)
        if depth == 0:
            inside = name == f"{PACKAGE}/"
            continue
        if not inside or len(match.group(1)) % 2 or depth > len(stack) + 1:
            continue  # a description wrapped onto the next line
        del stack[depth - 1 :]
        path = "".join(stack) + name
        paths.add(path)
        if name.endswith("/"):
            stack.append(name)
    return paths


def package_paths(root: Path) -> set[str]:
    """The same paths as found on disk under the package directory ``root``."""
    paths: set[str] = set()
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        if relative.parts[0] in NOT_IN_GIT or "__pycache__" in relative.parts:
            continue
        if len(relative.parts) > 1 and path.name == "__init__.py":
            continue  # a subpackage's __init__.py goes with its folder
        if path.is_dir():
            paths.add(f"{relative.as_posix()}/")
        elif path.suffix in LISTED_SUFFIXES:
            paths.add(relative.as_posix())
    return paths


class ModuleMap(SphinxDirective):
    """The tree in the directive's content, as a literal block, checked against the files."""

    has_content = True

    def run(self) -> list[nodes.Node]:
        root = Path(self.env.srcdir).parent / PACKAGE
        written = mapped_paths(list(self.content))
        on_disk = package_paths(root)
        if missing := sorted(on_disk - written):
            logger.warning(
                "module map: not listed: %s", ", ".join(missing), location=self.get_location()
            )
        if stale := sorted(written - on_disk - {f"{name}/" for name in NOT_IN_GIT}):
            logger.warning(
                "module map: no such file: %s", ", ".join(stale), location=self.get_location()
            )
        text = "\n".join(self.content)
        return [nodes.literal_block(text, text)]


def setup(app):
    app.add_directive("module-map", ModuleMap)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
