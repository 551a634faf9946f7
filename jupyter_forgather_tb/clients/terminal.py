"""Text from a server made safe to print on a terminal."""

from __future__ import annotations

# C0 controls (ESC among them), DEL and C1 controls (0x9b is a one-byte CSI on some
# terminals): written as \xNN.
_CONTROLS = {code: f"\\x{code:02x}" for code in (*range(0x20), *range(0x7F, 0xA0))}
# Bidirectional marks, embeddings, overrides and isolates, which reorder what follows
# them on screen: written as \uNNNN.
_BIDI = (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A))
_ONE_LINE = {**_CONTROLS, **{code: f"\\u{code:04x}" for code in _BIDI}}
_MULTILINE = {code: escape for code, escape in _ONE_LINE.items() if chr(code) not in "\n\t"}


def printable(text: str, *, multiline: bool = False) -> str:
    """``text`` with control and bidi characters written as escapes (``\\x1b``, ``\\u202e``).

    So a name, a path or a message from a server cannot move the cursor, recolour the
    terminal, set its title or clipboard, or reorder the line. ``multiline`` keeps
    newlines and tabs. Backslashes are left as they are: the result is for reading,
    not for parsing back.
    """
    return text.translate(_MULTILINE if multiline else _ONE_LINE)
