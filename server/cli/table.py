"""Plain-text tables for the terminal, aligned by display width.

Vietnamese text may arrive decomposed (a base letter followed by combining marks) and names can
contain wide (CJK) characters; counting ``len()`` would misalign the columns, so each cell is
measured by how many terminal columns it takes.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence


def display_width(text: str) -> int:
    """Terminal columns ``text`` takes: combining marks 0, East Asian wide/full-width 2."""
    width = 0
    for char in text:
        if unicodedata.combining(char) or unicodedata.category(char) in {"Mn", "Me", "Cf"}:
            continue
        width += 2 if unicodedata.east_asian_width(char) in {"W", "F"} else 1
    return width


def _pad(text: str, width: int) -> str:
    return text + " " * (width - display_width(text))


def render_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """The rows under a header line and a rule, columns separated by two spaces.

    ``None`` cells print as ``-``; newlines inside a cell become spaces so that one row stays
    one line. Trailing spaces are stripped.
    """
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [display_width(h) for h in headers]
    for row in cells:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], display_width(cell))
    lines = ["  ".join(_pad(h, w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for row in cells:
        lines.append("  ".join(_pad(c, w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    return " ".join(str(value).split())
