"""Markdown report of a shift test, for pull requests."""

from __future__ import annotations

from tabulate import tabulate

from ..results import ShiftTestResult
from . import common as C
from .table import measure_rows


def _escape(text: str) -> str:
    return text.replace("|", "\\|")


def _table(head: list[str], rows: list[list[str]]) -> str:
    return tabulate(
        [[_escape(c) for c in row] for row in rows],
        [_escape(h) for h in head],
        tablefmt="github",
        disable_numparse=True,
    )


def render(r: ShiftTestResult) -> str:
    out = [
        f"### cnnprobe shift-test: `{r.path}`",
        "",
        f"- Model: {r.format}, {r.runner}; input `{r.input_name}` {C.shape(r.input_shape)} "
        f"({r.layout}); {C.geometry_line(r)}",
        *[f"- Protocol: {line}" for line in C.protocol_lines(r)],
        f"- Output: {C.output_line(r)[7:]}",
        "",
    ]
    head, rows = measure_rows(r)
    out += [_table(head, rows), "", f"*{C.INTERVALS}.*", ""]
    if r.protocol.shift_set == "sweep" and r.points:
        head, rows = C.sweep_rows(r)
        out += [
            f"**{C.sensitivity_name(r).capitalize()} against shift** (px; * = multiple of P)",
            "",
            _table(head, rows),
            "",
        ]
    if r.layers:
        head, rows = C.layer_rows(r)
        out += ["**Feature maps: relative equivariance error**", "", _table(head, rows), ""]
    reading = C.reading(r)
    if reading:
        out += ["**Reading**", "", *[f"- {line}" for line in reading], ""]
    if r.notes:
        out += ["**Notes**", "", *[f"- {_escape(n)}" for n in r.notes], ""]
    return "\n".join(out)
