"""Human-readable table (tabulate) followed by the verdict and diagnostics."""

from __future__ import annotations

from ..results import AnalysisResult, AxisGeometry, LayerResult
from .common import axes, frac, percent, shape
from .grid import grid
from .words import layer_status, verdict_lines

HEADERS = [
    "layer",
    "op",
    "output",
    "kernel",
    "stride",
    "dil",
    "pad",
    "RF",
    "jump",
    "start",
    "seen (centre)",
    "global",
    "status",
]


def _pad(a: AxisGeometry) -> str:
    if a.pad_lo is None and a.pad_hi is None:
        return "-"
    lo = "?" if a.pad_lo is None else a.pad_lo
    hi = "?" if a.pad_hi is None else a.pad_hi
    return str(lo) if lo == hi else f"{lo}/{hi}"


def _opt(values: list[object]) -> str:
    """An op parameter per axis: ``-`` along the axes the op does not slide along."""
    return "-" if all(v is None for v in values) else axes(values, missing="-")


def row(layer: LayerResult) -> list[str]:
    ax = layer.axes
    no_window = all(a.rf is None for a in ax)
    if layer.is_global and no_window:
        full = all(a.full for a in ax)
        cov = [a.coverage_centre for a in ax]
        return [
            layer.name,
            layer.op,
            shape(layer.output_shape),
            "-",
            "-",
            "-",
            "-",
            "whole input" if full else axes([a.effective_rf for a in ax]) + " (global)",
            "-",
            "-",
            "100%" if full else ("-" if None in cov else axes([percent(c) for c in cov])),
            "all",
            layer_status(layer),
        ]
    rf = axes([a.rf for a in ax])
    if any(a.staircase for a in ax):
        rf += " (stair)"
    if any(a.misaligned for a in ax):
        rf += " (misaligned)"
    if any(a.running for a in ax):
        rf += " (running)"
    cov = [a.coverage_centre for a in ax]
    seen = "-" if any(c is None for c in cov) else axes([percent(c) for c in cov])
    glob = "all" if layer.is_global else ("some" if any(a.is_global for a in ax) else "")
    return [
        layer.name,
        layer.op,
        shape(layer.output_shape),
        _opt([a.kernel for a in ax]),
        _opt([None if a.stride is None else frac(a.stride) for a in ax]),
        _opt([a.dilation for a in ax]),
        "-" if all(_pad(a) == "-" for a in ax) else axes([_pad(a) for a in ax]),
        rf,
        axes([frac(a.jump) if a.jump is not None else None for a in ax]),
        axes([a.start for a in ax]),
        seen,
        glob,
        layer_status(layer),
    ]


def selected(result: AnalysisResult, show_all: bool) -> list[LayerResult]:
    """Every layer, or those that change geometry plus the last spatial layer."""
    if show_all:
        return list(result.layers)
    keep = {result.verdict.last_spatial_layer}
    return [lay for lay in result.layers if lay.changes_geometry or lay.name in keep]


def render(result: AnalysisResult, show_all: bool = False) -> str:
    layers = selected(result, show_all)
    table = grid(HEADERS, [row(lay) for lay in layers])
    m = result.model
    head = f"{m.path} ({m.format}"
    if m.meta.get("opset"):
        head += f", opset {m.meta['opset']}"
    head += f"): {len(result.layers)} layers"
    if not show_all:
        head += f", showing the {len(layers)} that change geometry (--all for every layer)"
    out = [head, "", table, "", "Verdict", "-------", *verdict_lines(result)]
    if result.diagnostics:
        out += ["", "Diagnostics", "-----------"]
        out += [
            f"{d.severity}: [{d.code}] {d.where + ': ' if d.where else ''}{d.message}"
            for d in result.diagnostics
        ]
    return "\n".join(out) + "\n"
