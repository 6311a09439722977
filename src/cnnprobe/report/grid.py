"""Aligned text columns for the summary reports, laid out like tabulate's ``simple`` and
``github`` formats for text cells (tests compare the two).

The summary of a large model lists hundreds of layers; tabulate spends most of its time
detecting cell types the summary does not need (every cell is already text), and importing it
loads ``importlib.metadata``. This writer does the one thing needed, in a few milliseconds.
tabulate stays in use where numbers must be aligned (shift-test reports).
"""

from __future__ import annotations

from collections.abc import Sequence
from unicodedata import combining, east_asian_width

#: Extra width tabulate gives every column beyond its header.
HEADER_PADDING = 2


def width(text: str) -> int:
    """Terminal columns of ``text``: wide East Asian characters take two, combining marks none."""
    n = len(text)
    if text.isascii():
        return n
    for ch in text:
        # below U+0300 (Latin-1, Latin Extended: "×", "é") every character is one column
        if ch >= "\u0300":
            if combining(ch):
                n -= 1
            elif east_asian_width(ch) in ("W", "F"):
                n += 1
    return n


def grid(headers: Sequence[str], rows: Sequence[Sequence[str]], style: str = "simple") -> str:
    """``simple``: columns two spaces apart, dashes under the header; ``github``: a Markdown
    pipe table. Cells are left-aligned; trailing spaces are dropped."""
    known: dict[str, int] = {}  # cells repeat a lot ("3×3", "-")

    def cell_width(text: str) -> int:
        w = known.get(text)
        if w is None:
            w = known[text] = width(text)
        return w

    widths = [cell_width(h) + HEADER_PADDING for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            w = cell_width(cell)
            if w > widths[i]:
                widths[i] = w

    def line(cells: Sequence[str], sep: str, begin: str = "", end: str = "") -> str:
        padded = (c + " " * (w - cell_width(c)) for c, w in zip(cells, widths))
        return (begin + sep.join(padded) + end).rstrip()

    if style == "simple":
        out = [line(headers, "  "), "  ".join("-" * w for w in widths)]
        out += [line(row, "  ") for row in rows]
    elif style == "github":
        out = [
            line(headers, " | ", "| ", " |"),
            "|" + "|".join("-" * (w + 2) for w in widths) + "|",
        ]
        out += [line(row, " | ", "| ", " |") for row in rows]
    else:
        raise ValueError(f"unknown grid style {style!r}")
    return "\n".join(out)
