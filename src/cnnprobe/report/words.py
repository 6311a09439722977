"""The verdict in plain words, shared by the table and Markdown reporters."""

from __future__ import annotations

from collections.abc import Sequence

from ..results import AnalysisResult, LayerResult, Stage
from .common import axes, frac, percent, shape


def _pixels(cov: tuple[float | None, ...], sizes: tuple[int | None, ...]) -> str:
    return axes([None if c is None or n is None else round(c * n) for c, n in zip(cov, sizes)])


def verdict_lines(result: AnalysisResult) -> list[str]:
    v = result.verdict
    inp = result.model.input
    lines = [
        f"Input {inp.name!r} {shape(inp.shape)} ({inp.layout}): "
        f"{axes(v.input_size)} pixels per spatial axis."
    ]
    for key in ("note", "refine_stopped"):
        if result.model.meta.get(key):
            lines.append(f"  Note: {result.model.meta[key]}.")
    if v.last_spatial_layer is None:
        lines.append("No spatial layer feeds the outputs: nothing to report per position.")
        return lines + _uncertain(result)
    last = result.layer(v.last_spatial_layer)
    stride = axes([frac(j) for j in v.total_stride])
    if not v.stages:
        lines.append(f"Downsampling: none (total stride {stride}).")
    else:
        steps = "; ".join(_stage_groups(v.stages))
        lines.append(
            f"Downsampling: total stride {stride} at the last spatial layer; the resolution "
            f"changes at {len(v.stages)} layer(s): {steps}."
        )
    label = "Last spatial layer" if v.certain else "Last spatial layer with known geometry"
    lines.append(
        f"{label}: {last.name} ({last.op}), {axes([a.size for a in last.axes])} units, "
        f"local receptive field {axes(v.rf)} (start {axes(v.start)}, jump "
        f"{axes([frac(j) for j in v.jump])})."
    )
    if any(a.running for a in last.axes):
        lines.append(
            "  After a running op (a cumulative sum, a one-directional recurrent layer) the units "
            "see more and more of the input along that axis: the receptive field is that of the "
            "widest unit, and there is no single jump (?)."
        )
    if any(a.staircase for a in last.axes):
        lines.append(
            "  Neighbouring units share input pixels (a staircase: after upsampling, or after "
            "mixing the positions of each block): the jump is the exact mean and the receptive "
            "field is that of the widest unit."
        )
    if v.coverage_centre and all(c is not None for c in v.coverage_centre):
        centre = _pixels(v.coverage_centre, v.input_size)
        least = _pixels(v.coverage_min, v.input_size)
        size = axes(v.input_size)
        if v.coverage_centre == v.coverage_min:
            lines.append(
                f"  Each unit sees {centre} of the {size} input ({percent(v.area_centre)} of the "
                "area)."
            )
        else:
            lines.append(
                f"  Its centre unit sees {centre} of the {size} input "
                f"({percent(v.area_centre)} of the area); the least-covering unit sees {least} "
                f"({percent(v.area_min)})."
            )
    if v.sees_full_input:
        lines.append("  -> Every unit of the last spatial layer sees the full input.")
    elif v.sees_full_input is False:
        lines.append("  -> The last spatial layer does NOT see the full input.")
    elif v.certain:
        lines.append(
            "  -> Whether every unit of the last spatial layer sees the full input cannot be "
            "told: which pixels its units read is not tracked one by one (see the table's ?)."
        )
    else:
        lines.append(
            "  -> Whether the last spatial layer sees the full input is uncertain: layers after "
            "an op without a geometry rule may change it."
        )
    if v.first_full_coverage_layer:
        lay = result.layer(v.first_full_coverage_layer)
        lines.append(f"Full input: every unit sees the whole input from {lay.name} ({lay.op}) on.")
    elif v.certain:
        lines.append("Full input: no layer has every unit seeing the whole input.")
    else:
        lines.append("Full input: no layer with known geometry has every unit seeing it.")
    if v.first_global_layer:
        lines.append(f"Global: the network goes global at {v.first_global_layer}: {v.global_kind}.")
        short = _short_reach(result.layer(v.first_global_layer), v.input_size)
        if short:
            lines.append(
                f"  It depends on every position of its input map, but that map never reads "
                f"input {short}, which therefore no later layer sees."
            )
    if v.global_while_spatial:
        lay = result.layer(v.global_while_spatial)
        whole = "the whole input" if lay.sees_full_input else "all positions of a feature map"
        lines.append(
            f"  {lay.name} ({lay.op}) is still a spatial map, yet every unit depends on {whole} "
            f"through a global path; its local window is {axes(lay.rf)}."
        )
    if len(v.outputs) > 1:
        lines += _output_lines(result)
    return lines + _uncertain(result)


#: at most this many outputs are described one by one
MAX_OUTPUT_LINES = 12


def _output_lines(result: AnalysisResult) -> list[str]:
    """One line per graph output (multi-scale detectors: one per level)."""
    outs = result.verdict.outputs
    lines = [f"Outputs ({len(outs)}):"]
    for o in outs[:MAX_OUTPUT_LINES]:
        if o.layer is None:
            what = "the model input itself" if o.output == result.model.input.name else (
                "not computed from the input"
            )
            lines.append(f"  {o.output}: {what}.")
            continue
        if o.spatial:
            lay = result.layer(o.layer)
            what = (
                f"{axes([a.size for a in lay.axes])} units, RF {axes(o.rf)}, jump "
                f"{axes([frac(j) for j in o.jump])}"
            )
        else:
            what = f"{shape(o.shape)}, not a feature map"
        if o.status != "ok":
            seen = f"figures withheld ({o.status})"
        elif o.sees_full_input:
            seen = "every unit sees the full input"
        elif o.sees_full_input is False:
            seen = "not every unit sees the full input"
        else:
            seen = "coverage unknown"
        lines.append(f"  {o.output}: {what}; {seen}.")
    if len(outs) > MAX_OUTPUT_LINES:
        lines.append(f"  ... and {len(outs) - MAX_OUTPUT_LINES} more (see --format json).")
    return lines


def _stage_groups(stages: Sequence[Stage]) -> list[str]:
    """Consecutive stages with the same change of jump (parallel branches: a strided conv and
    its strided projection shortcut, a cell's strided branches) told once."""
    groups: list[tuple[tuple[str, str], list[Stage]]] = []
    for st in stages:
        key = (axes([frac(j) for j in st.jump_before]), axes([frac(j) for j in st.jump_after]))
        if groups and groups[-1][0] == key:  # (one after another: a down, up, down, up net)
            groups[-1][1].append(st)
        else:
            groups.append((key, [st]))
    out = []
    for (before, after), members in groups:
        first = f"{members[0].layer} ({members[0].op})"
        if len(members) == 2:
            first += f" and {members[1].layer} ({members[1].op})"
        elif len(members) > 2:
            first += f" and {len(members) - 1} more layers"
        out.append(f"{first} jump {before} -> {after}")
    return out


def _short_reach(lay: LayerResult, sizes: tuple[int | None, ...]) -> str:
    """The input pixels a global layer's path never reads, per axis, in words ("" when it reads
    them all or the reach is unknown)."""
    parts = []
    for a, n in zip(lay.axes, sizes):
        if not a.is_global or a.reach is None or n is None or a.full is not False:
            parts.append("")
            continue
        lo, hi = a.reach
        runs = [(0, lo - 1)] * (lo > 0) + [(hi + 1, n - 1)] * (hi < n - 1)
        count = sum(b - a + 1 for a, b in runs)
        spans = " and ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)
        parts.append(f"{'pixel' if count == 1 else 'pixels'} {spans}")
    if not any(parts):
        return ""
    if len(parts) > 1 and len(set(parts)) == 1:
        return f"{parts[0]} along each axis"
    names = ("y", "x") if len(parts) == 2 else tuple(f"axis {k}" for k in range(len(parts)))
    if len(parts) == 1:
        return parts[0]
    return "; ".join(f"{p} along {name}" for p, name in zip(parts, names) if p)


def _uncertain(result: AnalysisResult) -> list[str]:
    if result.verdict.certain:
        return []
    bad = [lay for lay in result.layers if lay.status in ("unknown", "error")]
    names = ", ".join(f"{lay.name} ({lay.op})" for lay in bad[:3])
    more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
    return [
        "UNCERTAIN: figures after "
        + (names + more if names else "some layers")
        + " are withheld (no geometry rule or non-static parameters); see diagnostics."
    ]


def layer_status(layer: LayerResult) -> str:
    return "" if layer.status == "ok" else layer.status
