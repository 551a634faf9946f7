"""Links to the repository's top-level Markdown files lead to their pages on the site.

The README, CONTRIBUTING.md and docs/development.md link to files such as CHANGELOG.md
beside the README, which are not in the documentation's source directory; the site
shows each on a page of its own that includes it (``root_pages`` in conf.py maps the
file's name to that page). This rewrites such links before MyST resolves them, so they
are checked like any other link between pages.
"""

from __future__ import annotations

from pathlib import Path

from sphinx import addnodes
from sphinx.transforms.post_transforms import SphinxPostTransform


class RootPageLinks(SphinxPostTransform):
    """Point MyST's document links to a top-level file at the page that shows it."""

    default_priority = 5  # before MyST's own resolver (9)

    def run(self, **kwargs) -> None:
        root = Path(self.env.srcdir).parent
        pages = {str(root / name): page for name, page in self.config.root_pages.items()}
        for node in self.document.findall(addnodes.pending_xref):
            if node.get("reftype") == "myst" and node.get("refdomain") == "doc":
                node["reftarget"] = pages.get(node["reftarget"], node["reftarget"])


def setup(app):
    app.add_config_value("root_pages", {}, "env")
    app.add_post_transform(RootPageLinks)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
