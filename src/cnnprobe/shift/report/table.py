"""Plain-text report of a shift test (the default format)."""

from __future__ import annotations

from tabulate import tabulate

from ..results import ShiftTestResult
from . import common as C


def measure_rows(r: ShiftTestResult) -> tuple[list[str], list[list[str]]]:
    head = ["measure", "all shifts", C.grid_label(r), "off-grid"]
    rows = []
    for m in r.output.measures:
        rate = m.key in ("agreement", "flip_rate")
        rows.append(
            [
                m.label,
                C.estimate(m.all, rate),
                C.estimate(m.on_grid, rate),
                C.estimate(m.off_grid, rate),
            ]
        )
    if r.output.measures:
        first = r.output.measures[0]
        rows.append(
            ["n comparisons", str(first.all.n), str(first.on_grid.n), str(first.off_grid.n)]
        )
    return head, rows


def render(r: ShiftTestResult) -> str:
    lines = [
        f"cnnprobe shift-test: {r.path} ({r.format}, {r.runner})",
        f"Input {r.input_name!r} {C.shape(r.input_shape)} ({r.layout}); {C.geometry_line(r)}",
        *[
            f"Protocol: {line}" if k == 0 else f"          {line}"
            for k, line in enumerate(C.protocol_lines(r))
        ],
        f"Output: {C.output_line(r)[7:]}",
        "",
    ]
    head, rows = measure_rows(r)
    lines += [f"Shift sensitivity ({C.INTERVALS})", tabulate(rows, head), ""]
    if r.protocol.shift_set == "sweep" and r.points:
        head, rows = C.sweep_rows(r)
        lines += [
            f"{C.sensitivity_name(r).capitalize()} against shift in px (mean over inputs; "
            f"* = multiple of P, where a periodic-P model returns to 0)",
            tabulate(rows, head, disable_numparse=True),
            "",
        ]
    if r.layers:
        head, rows = C.layer_rows(r)
        lines += [
            "Feature maps: relative equivariance error ||f(T x) - T f(x)||² / ||T f(x)||² "
            "(overlap only for linear shifts), by kind of shift",
            tabulate(rows, head, disable_numparse=True),
            "",
        ]
    reading = C.reading(r)
    if reading:
        lines += ["Reading", "-------", *reading, ""]
    if r.notes:
        lines += ["Notes", "-----", *[f"note: {n}" for n in r.notes], ""]
    return "\n".join(lines)
