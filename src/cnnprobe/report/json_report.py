"""JSON report; its shape is described by ``cnnprobe/schema/summary.schema.json``."""

from __future__ import annotations

import json
from json.encoder import encode_basestring_ascii as _quote
from typing import Any

from .. import __version__
from ..results import SCHEMA_VERSION, AnalysisResult, AxisGeometry, LayerResult
from .common import frac, number


def _axis(a: AxisGeometry) -> dict[str, Any]:
    return {
        "size": a.size,
        "kernel": a.kernel,
        "stride": number(a.stride),
        "dilation": a.dilation,
        "pad": [a.pad_lo, a.pad_hi],
        "rf": a.rf,
        "rf_min": a.rf_min,
        "jump": number(a.jump),
        "jump_exact": None if a.jump is None else frac(a.jump),
        "start": a.start,
        "centre": number(a.centre),
        "phase_starts": list(a.phase_starts),
        "global": a.is_global,
        "misaligned": a.misaligned,
        "running": a.running,
        "coverage_centre": a.coverage_centre,
        "coverage_min": a.coverage_min,
        "full": a.full,
    }


def _axis_json(a: AxisGeometry) -> str:
    """``_axis(a)`` as the compact encoder writes it (tests compare the two)."""
    return (
        f'{{"size": {_scalar(a.size)}, "kernel": {_scalar(a.kernel)}, '
        f'"stride": {_scalar(number(a.stride))}, "dilation": {_scalar(a.dilation)}, '
        f'"pad": [{_scalar(a.pad_lo)}, {_scalar(a.pad_hi)}], "rf": {_scalar(a.rf)}, '
        f'"rf_min": {_scalar(a.rf_min)}, "jump": {_scalar(number(a.jump))}, '
        f'"jump_exact": {"null" if a.jump is None else _quote(frac(a.jump))}, '
        f'"start": {_scalar(a.start)}, "centre": {_scalar(number(a.centre))}, '
        f'"phase_starts": [{", ".join(map(str, a.phase_starts))}], '
        f'"global": {_scalar(a.is_global)}, "misaligned": {_scalar(a.misaligned)}, '
        f'"running": {_scalar(a.running)}, '
        f'"coverage_centre": {_scalar(a.coverage_centre)}, '
        f'"coverage_min": {_scalar(a.coverage_min)}, "full": {_scalar(a.full)}}}'
    )


def _scalar(x: int | float | bool | None) -> str:
    """A JSON number, boolean or null, as ``json.dumps`` writes it."""
    if x is None:
        return "null"
    if x is True:
        return "true"
    if x is False:
        return "false"
    if type(x) is float:
        return json.dumps(x) if x != x or x in (_INF, -_INF) else float.__repr__(x)
    return int.__repr__(x)


_INF = float("inf")


def _layer_fields(layer: LayerResult) -> dict[str, Any]:
    """Every field of a layer but ``axes`` (which comes last)."""
    return {
        "name": layer.name,
        "op": layer.op,
        "kind": layer.kind,
        "output": layer.output,
        "output_shape": list(layer.output_shape),
        **_axes_summary(layer.axes),
        "spatial": layer.is_spatial,
        "changes_geometry": layer.changes_geometry,
        "status": layer.status,
    }


def _axes_summary(axes: tuple[AxisGeometry, ...]) -> dict[str, Any]:
    """The fields of a layer that depend on its axes only."""
    return {
        "rf": [a.rf for a in axes],
        "effective_rf": [a.effective_rf for a in axes],
        "jump": [number(a.jump) for a in axes],
        "start": [a.start for a in axes],
        "global": bool(axes) and all(a.is_global for a in axes),
    }


def layer_dict(layer: LayerResult) -> dict[str, Any]:
    return {**_layer_fields(layer), "axes": [_axis(a) for a in layer.axes]}


def to_dict(result: AnalysisResult) -> dict[str, Any]:
    """The JSON document as Python data, in the order ``render`` writes it: the verdict and the
    diagnostics come before the (long) list of layers."""
    return {**_head(result), "layers": [layer_dict(lay) for lay in result.layers]}


def _head(result: AnalysisResult) -> dict[str, Any]:
    """The document without its layers."""
    v = result.verdict
    m = result.model
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "cnnprobe", "version": __version__},
        "model": {
            "path": m.path,
            "format": m.format,
            "meta": m.meta,
            "input": {
                "name": m.input.name,
                "shape": list(m.input.shape),
                "layout": m.input.layout,
                "spatial_axes": list(m.input.spatial_axes),
            },
        },
        "verdict": {
            "input_size": list(v.input_size),
            "last_spatial_layer": v.last_spatial_layer,
            "rf": list(v.rf),
            "jump": [number(j) for j in v.jump],
            "start": list(v.start),
            "total_stride": [number(j) for j in v.total_stride],
            "total_stride_exact": [None if j is None else frac(j) for j in v.total_stride],
            "sees_full_input": v.sees_full_input,
            "coverage_centre": list(v.coverage_centre),
            "coverage_min": list(v.coverage_min),
            "area_centre": v.area_centre,
            "area_min": v.area_min,
            "first_full_coverage_layer": v.first_full_coverage_layer,
            "first_global_layer": v.first_global_layer,
            "global_kind": v.global_kind,
            "global_while_spatial": v.global_while_spatial,
            "downsampling_stages": [
                {
                    "layer": s.layer,
                    "op": s.op,
                    "jump_before": [number(j) for j in s.jump_before],
                    "jump_after": [number(j) for j in s.jump_after],
                }
                for s in v.stages
            ],
            "certain": v.certain,
            "outputs": [
                {
                    "output": o.output,
                    "layer": o.layer,
                    "shape": list(o.shape),
                    "spatial": o.spatial,
                    "rf": list(o.rf),
                    "jump": [number(j) for j in o.jump],
                    "start": list(o.start),
                    "sees_full_input": o.sees_full_input,
                    "status": o.status,
                }
                for o in v.outputs
            ],
        },
        "diagnostics": [
            {"code": d.code, "severity": d.severity, "where": d.where, "message": d.message}
            for d in result.diagnostics
        ],
    }


def render(result: AnalysisResult, show_all: bool = False) -> str:
    """``to_dict(result)`` as indented JSON with one line per layer: readable and diff-friendly.

    Models have thousands of layers, so each line is written directly, and what depends only on
    a layer's axes is encoded once per set of axes (the compact encoder is written in C; Python's
    indenting one is not): layers that pass their input through share its axes. Tests check that
    the text parses to ``to_dict(result)``.
    """
    head = json.dumps(_head(result), indent=2)
    if not result.layers:
        return head[:-2] + ',\n  "layers": []\n}\n'
    encode = json.JSONEncoder(separators=(", ", ": ")).encode
    # by object id: the result keeps every axis and tuple of axes alive meanwhile
    axis_text: dict[int, str] = {}
    by_axes: dict[int, tuple[str, str]] = {}
    lines = []
    for layer in result.layers:
        axes = layer.axes
        texts = by_axes.get(id(axes))
        if texts is None:
            parts = []
            for a in axes:
                text = axis_text.get(id(a))
                if text is None:
                    text = axis_text[id(a)] = _axis_json(a)
                parts.append(text)
            texts = by_axes[id(axes)] = (encode(_axes_summary(axes))[1:-1], ", ".join(parts))
        shape = layer.output_shape
        dims = ", ".join(map(str, shape)) if None not in shape else encode(shape)[1:-1]
        lines.append(
            f'    {{"name": {_quote(layer.name)}, "op": {_quote(layer.op)}, '
            f'"kind": {_quote(layer.kind)}, "output": {_quote(layer.output)}, '
            f'"output_shape": [{dims}], {texts[0]}, '
            f'"spatial": {"true" if layer.is_spatial else "false"}, '
            f'"changes_geometry": {"true" if layer.changes_geometry else "false"}, '
            f'"status": {_quote(layer.status)}, "axes": [{texts[1]}]}}'
        )
    return head[:-2] + ',\n  "layers": [\n' + ",\n".join(lines) + "\n  ]\n}\n"
