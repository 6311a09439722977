"""Markdown for pull requests: a pipe table of the geometry-changing layers and the verdict."""

from __future__ import annotations

from ..results import AnalysisResult
from .grid import grid
from .table import HEADERS, row, selected
from .words import verdict_lines


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("`", "\\`")


def render(result: AnalysisResult, show_all: bool = False) -> str:
    layers = selected(result, show_all)
    rows = [[_escape(c) for c in row(lay)] for lay in layers]
    m = result.model
    out = [
        f"### cnnprobe summary: `{_escape(m.path)}`",
        "",
        grid(HEADERS, rows, "github"),
        "",
        "**Verdict**",
        "",
        *[f"- {_escape(line.strip())}" for line in verdict_lines(result)],
    ]
    if result.diagnostics:
        out += ["", "**Diagnostics**", ""]
        out += [
            f"- {d.severity}: `{d.code}` {_escape(d.where)}: {_escape(d.message)}"
            for d in result.diagnostics
        ]
    return "\n".join(out) + "\n"
