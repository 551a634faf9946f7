"""Sphinx configuration of the documentation site (built by ``make docs``)."""

import sys
from pathlib import Path

DOCS = Path(__file__).parent
# This checkout's package (for the settings table and the version), and our extensions.
sys.path[:0] = [str(DOCS.parent), str(DOCS / "_ext")]

import jupyter_forgather_tb  # noqa: E402

project = "jupyter-forgather-tb"
author = "jupyter-forgather-tb contributors"
copyright = author
release = version = jupyter_forgather_tb.__version__

extensions = [
    "myst_parser",
    "settings_table",
    "openapi_reference",
    "module_map",
    "root_pages",
]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]

# Links to headings (`page.md#a-heading`) are checked by the build; a broken one fails it.
myst_heading_anchors = 4
nitpicky = True

# Top-level files shown on pages of their own (links to them lead there).
root_pages = {"CHANGELOG": "changelog", "CONTRIBUTING": "contributing", "RELEASE": "release"}

# The REST API reference: rendered from the OpenAPI document the server itself serves.
openapi_reference_pages = {
    "rest-api-reference": DOCS.parent / "jupyter_forgather_tb" / "server" / "web" / "openapi.json"
}

html_theme = "pydata_sphinx_theme"
html_title = f"{project} {release}"
html_theme_options = {
    "navbar_end": ["navbar-icon-links"],
    "secondary_sidebar_items": ["page-toc"],
    "show_toc_level": 2,
}
# Every page is at the top level (the navigation bar lists them): no left sidebar.
html_sidebars = {"**": []}
html_show_sourcelink = False
