"""The ``forgather-settings`` directive: a table of the server extension's settings.

Made from the traits themselves (``ForgatherTB.class_own_traits(config=True)``), so the
documentation shows each setting's type, default and help text as the code has them.
"""

from __future__ import annotations

import importlib
import inspect

from docutils import nodes
from sphinx.util.docutils import SphinxDirective
from traitlets import HasTraits, TraitType

# Traitlets class names as Python types, for the Type column.
TYPE_NAMES = {"Bool": "bool", "Int": "int", "Float": "float", "Unicode": "str", "List": "list"}
COMPUTED = "computed at start"


def setting_rows(cls: type[HasTraits]) -> list[tuple[str, str, str, str]]:
    """(name, type, default, help) of each configurable trait ``cls`` itself defines."""
    rows = []
    for name, trait in sorted(cls.class_own_traits(config=True).items()):
        rows.append((name, type_name(trait), default_text(cls, name, trait), trait.help))
    return rows


def type_name(trait: TraitType) -> str:
    """``int``, ``list of str``, ... for a trait."""
    name = TYPE_NAMES.get(type(trait).__name__, type(trait).__name__)
    item = getattr(trait, "_trait", None)
    if item is not None:
        name += f" of {type_name(item)}"
    return name


def default_text(cls: type[HasTraits], name: str, trait: TraitType) -> str:
    """The default as Python source, or a note that the server computes it at start."""
    if name in cls._trait_default_generators:
        return COMPUTED
    return trait.default_value_repr()


class SettingsTable(SphinxDirective):
    """``forgather-settings module:Class``: the table of that class's settings."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        module_name, class_name = self.arguments[0].split(":")
        cls = getattr(importlib.import_module(module_name), class_name)
        self.env.note_dependency(inspect.getfile(cls))
        group = nodes.tgroup(cols=4)
        group += [nodes.colspec(colwidth=width) for width in (18, 10, 14, 58)]
        group += nodes.thead(
            "", _row([nodes.Text(h) for h in ("Name", "Type", "Default", "Meaning")])
        )
        group += nodes.tbody("", *[_setting_row(*row) for row in setting_rows(cls)])
        return [nodes.table("", group)]


def _setting_row(name: str, kind: str, default: str, help_text: str) -> nodes.row:
    shown_default = (
        nodes.emphasis(text=default) if default == COMPUTED else nodes.literal(text=default)
    )
    return _row(
        [nodes.literal(text=name), nodes.literal(text=kind), shown_default, nodes.Text(help_text)]
    )


def _row(cells: list[nodes.Node]) -> nodes.row:
    row = nodes.row()
    row += [nodes.entry("", nodes.paragraph("", "", cell)) for cell in cells]
    return row


def setup(app):
    app.add_directive("forgather-settings", SettingsTable)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
