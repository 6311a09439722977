"""What the shift-test reporters share: wording of the protocol, numbers, and the reading."""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction

from ...ir import format_shape
from ..measures import Estimate
from ..results import (
    CLASSIFIER,
    DENSE,
    VALUES,
    LayerEquivariance,
    ShiftPoint,
    ShiftTestResult,
)

#: Relative equivariance error under which a feature map counts as equivariant.
EQUIVARIANT_BELOW = 1e-3
#: Relative equivariance error above which the report says equivariance is lost.
LOST_ABOVE = 1e-2

INTERVALS = (
    "95% intervals: Wilson score for rates, normal approximation for means; over comparisons, "
    "which are correlated within an input"
)


def frac(x: Fraction | int | float | None) -> str:
    if x is None:
        return "?"
    if isinstance(x, float):
        return f"{x:g}"
    x = Fraction(x)
    return str(x.numerator) if x.denominator == 1 else f"{x.numerator}/{x.denominator}"


def axes(values: Sequence[object]) -> str:
    return "×".join(frac(v) if not isinstance(v, str) else v for v in values)  # type: ignore[arg-type]


def shape(s: Sequence[int | None]) -> str:
    return format_shape(s)


def num(x: float | None) -> str:
    """3 significant digits; exact zero as 0; tiny values in scientific notation."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if x == 0:
        return "0"
    if abs(x) < 1e-3 or abs(x) >= 1e5:
        return f"{x:.2e}"
    return f"{x:.3g}"


def pct(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{100 * x:.1f}%"


def estimate(e: Estimate, rate: bool = False) -> str:
    if e.value is None:
        return "-"
    f = pct if rate else num
    if e.low is None or e.high is None:
        return f(e.value)
    return f"{f(e.value)} [{f(e.low)}, {f(e.high)}]"


def shift_text(shift: Sequence[float], names: Sequence[str] = ()) -> str:
    """``(y 2, x 0)`` with axis names, ``(2, 0)`` without."""
    if len(names) == len(shift):
        return "(" + ", ".join(f"{n} {s:g}" for n, s in zip(names, shift)) + ")"
    return "(" + ", ".join(f"{s:g}" for s in shift) + ")"


def protocol_lines(r: ShiftTestResult) -> list[str]:
    p = r.protocol
    mode = {
        "roll": "roll (circular)",
        "crop": f"crop (linear; views cut from a {axes(p.canvas)} canvas)",
        "pad": f"pad (linear; {p.fill} fill)",
        "fourier": "fourier (circular, band-limited sub-pixel)",
    }[p.mode]
    m = axes([float(v) for v in p.max_shift])
    if p.shift_set == "sweep":
        shifts = f"sweep along {', '.join(p.directions)}, 0 to {m} px, step {p.step:g}"
    elif p.shift_set == "grid":
        shifts = f"grid of every offset in [0, {m}) px, step {p.step:g}"
    else:
        shifts = f"random pairs of offsets in [0, {m}) px, {p.pairs} pair(s) per input"
    norm = ""
    if p.mean is not None or p.std is not None:
        norm = f"; normalized with mean {_vals(p.mean)} std {_vals(p.std)}"
    return [
        f"mode {mode}; shifts: {shifts}",
        f"inputs: {p.inputs}{norm}",
        f"{p.comparisons} comparisons, {p.inferences} inferences in batches of {p.batch_size}; "
        f"seed {p.seed}",
    ]


def _vals(v: Sequence[float] | None) -> str:
    return "-" if v is None else ",".join(f"{x:g}" for x in v)


def geometry_line(r: ShiftTestResult) -> str:
    period = axes(list(r.period))
    total = axes(list(r.total_stride))
    src = {"analysis": "from the analysis", "--stride": "from --stride"}.get(
        r.period_source, f"from the {r.period_source}"
    )
    if total == period or r.period_source == "--stride":
        return f"total stride S = {total}; equivariance period P = {period} ({src})"
    return f"total stride S = {total}; equivariance period P = {period} ({src}; see notes)"


def output_line(r: ShiftTestResult) -> str:
    o = r.output
    if o.kind == CLASSIFIER:
        what = f"classifier-like, {o.scores} over {math.prod(o.shape) if o.shape else '?'} classes"
    elif o.kind == DENSE:
        what = f"dense, jump {axes(list(o.jump))}"
    elif o.kind == VALUES:
        what = (
            f"{math.prod(o.shape) if o.shape else '?'} values, not a vector of class scores "
            "nor a feature map the analysis locates (no top-1 measures)"
        )
    else:
        what = "one number per input"
    return f"output {o.name!r} {shape(o.shape)} per input: {what}"


def grid_label(r: ShiftTestResult) -> str:
    return f"on-grid (×{axes(list(r.period))})"


def sweep_rows(r: ShiftTestResult) -> tuple[list[str], list[list[str]]]:
    """Sensitivity against shift, one row per shift distance, one column per direction."""
    p = r.protocol
    points = [pt for pt in r.points if pt.direction in p.directions]
    by: dict[tuple[str, float], ShiftPoint] = {}
    for pt in points:
        by[(pt.direction, max(pt.shift))] = pt
    steps = sorted({max(pt.shift) for pt in points})
    classifier = r.output.kind == CLASSIFIER
    head = ["shift", *p.directions] + (["flip rate"] if classifier else [])
    rows = [["0", *["0"] * len(p.directions)] + (["0.0%"] if classifier else [])]
    for s in steps:
        row = [f"{s:g}" + (" *" if _on_grid(r, s) else "")]
        flips: list[float] = []
        for d in p.directions:
            point = by.get((d, s))
            row.append("" if point is None else num(point.sensitivity))
            if point is not None and point.flip_rate is not None:
                flips.extend([point.flip_rate] * point.n)
        if classifier:
            row.append(pct(sum(flips) / len(flips)) if flips else "-")
        rows.append(row)
    return head, rows


def _on_grid(r: ShiftTestResult, s: float) -> bool:
    return all(abs(s / p - round(s / p)) < 1e-9 for p in r.period)


def sensitivity_name(r: ShiftTestResult) -> str:
    return "equivariance error" if r.output.kind == DENSE else "normalized sensitivity"


def layer_rows(r: ShiftTestResult) -> tuple[list[str], list[list[str]]]:
    head = ["layer", "op", "size", "jump", "×P", "×jump, not ×P", "sub-unit (Fourier)", "n"]
    rows = []
    for layer in r.layers:
        n = layer.period.n + layer.jump_multiple.n + layer.sub_unit.n
        rows.append(
            [
                layer.name,
                layer.op,
                axes(list(layer.size)),
                axes(list(layer.jump)),
                estimate(layer.period),
                estimate(layer.jump_multiple),
                estimate(layer.sub_unit),
                str(n),
            ]
        )
    return head, rows


def _worst(layer: LayerEquivariance, which: str) -> float | None:
    vals = {
        "grid": [layer.period.value],
        "off": [layer.jump_multiple.value, layer.sub_unit.value],
    }[which]
    known = [v for v in vals if v is not None]
    return max(known) if known else None


def reading(r: ShiftTestResult) -> list[str]:
    """Plain-words conclusions drawn from the numbers."""
    out: list[str] = []
    o = r.output
    key = "equivariance_error" if o.kind == DENSE else "ns"
    m = o.measure(key)
    period = axes(list(r.period))
    if m is not None and m.all.value is not None:
        on, off = m.on_grid.value, m.off_grid.value
        what = "equivariance error" if o.kind == DENSE else "normalized sensitivity"
        if on is not None and off is not None:
            out.append(
                f"{what.capitalize()}: {num(on)} for shifts that are multiples of P = {period}, "
                f"{num(off)} for the others."
            )
            if on <= EQUIVARIANT_BELOW and off > LOST_ABOVE:
                out.append(
                    f"The output is periodic in P: it tolerates shifts by multiples of {period} "
                    "and changes in between (sampling on a coarse grid, Zhang 2019)."
                )
            elif on <= EQUIVARIANT_BELOW:
                out.append("The output barely changes under any of these shifts.")
            elif off > 0 and on < 0.5 * off:
                out.append(
                    "Shifts on the grid change the output less than shifts off it, but not to "
                    "zero: new content at the borders and zero padding leak in "
                    + (
                        "(only roll with circular padding can be exact)."
                        if r.protocol.mode != "roll"
                        else "(the model's own padding is not circular)."
                    )
                )
            elif _position_specific(r):
                out.append(
                    f"Shifts on the grid change the output as much as shifts off it: the network "
                    f"goes global through a {r.global_kind}, whose weights are specific to each "
                    "position, so it cannot be shift-invariant at any shift."
                )
            else:
                out.append(
                    "Shifts on the grid change the output as much as shifts off it: borders "
                    "and padding, not the sampling grid, dominate."
                )
        elif off is None and on is not None:
            out.append(
                f"{what.capitalize()}: {num(on)} (every shift here is a multiple of P = {period})."
            )
        elif off is not None:
            out.append(
                f"{what.capitalize()}: {num(off)} (no shift here is a multiple of P = {period})."
            )
        if o.kind != DENSE:
            out.append(
                "NS reads as a fraction of the difference between two unrelated inputs: "
                "0 = invariant, 1 = the shifted view looks like another input."
            )
    flips = o.measure("flip_rate")
    if flips is not None and flips.all.value is not None and o.degenerate_class is None:
        out.append(
            f"{pct(flips.all.value)} of shifted views change the top-1 class "
            f"(consistency {pct(1 - flips.all.value)})."
        )
    peak = _peak(r)
    if peak is not None:
        out.append(peak)
    out.extend(_layer_reading(r))
    return out


def _position_specific(r: ShiftTestResult) -> bool:
    kind = r.global_kind or ""
    return "flattened positions" in kind or "folded into channels" in kind


def _peak(r: ShiftTestResult) -> str | None:
    pts = [p for p in r.points if p.sensitivity is not None and p.direction != "pair"]
    if len(pts) < 3:
        return None
    best = max(pts, key=lambda p: p.sensitivity or 0.0)
    if (best.sensitivity or 0.0) <= EQUIVARIANT_BELOW * 1e-3:
        return None
    return (
        f"The largest change is at shift {shift_text(best.shift, r.protocol.axes)} px: "
        f"{sensitivity_name(r)} {num(best.sensitivity)}."
    )


def _lost_off_grid(layer: LayerEquivariance) -> bool:
    """Off-grid error well above both the noise floor and the layer's own on-grid error (which
    measures borders and padding)."""
    off = _worst(layer, "off")
    if off is None:
        return False
    grid = layer.period.value
    if grid is None:  # (no shift on the period grid was measured: nothing to compare with)
        return False
    return off > LOST_ABOVE and off > 3 * grid


def _layer_reading(r: ShiftTestResult) -> list[str]:
    out: list[str] = []
    if not r.layers:
        return out
    if all(la.period.value is None for la in r.layers):
        out.append(
            f"Feature maps: no measured shift is a multiple of P = {axes(list(r.period))}, so "
            "their errors off the grid have nothing to be compared with (shift by P or more: "
            f"--max-shift {max(r.period)})."
        )
        return out
    off = next((la for la in r.layers if _lost_off_grid(la)), None)
    grid = next((la for la in r.layers if (_worst(la, "grid") or 0.0) > LOST_ABOVE), None)
    if off is not None:
        out.append(
            f"Feature maps: equivariance to shifts off the period grid is first lost at "
            f"{off.name} ({off.op}, jump {axes(list(off.jump))}), where the error off the grid "
            "exceeds 3x the error on it."
        )
    if grid is not None:
        out.append(
            f"Feature maps: shifts by multiples of P already change {grid.name} ({grid.op}) by "
            f"{num(grid.period.value)} (borders, padding, new content)."
        )
    if off is None and grid is None:
        out.append(f"Feature maps: every measured map stays equivariant (error <= {LOST_ABOVE:g}).")
    return out
