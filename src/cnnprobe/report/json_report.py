"""JSON report; its shape is described by ``cnnprobe/schema/summary.schema.json``."""

from __future__ import annotations

import json
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
        "coverage_centre": a.coverage_centre,
        "coverage_min": a.coverage_min,
        "full": a.full,
    }


def _layer_fields(layer: LayerResult) -> dict[str, Any]:
    """Every field of a layer but ``axes`` (which comes last)."""
    return {
        "name": layer.name,
        "op": layer.op,
        "kind": layer.kind,
        "output": layer.output,
        "output_shape": list(layer.output_shape),
        "rf": layer.rf,
        "effective_rf": [a.effective_rf for a in layer.axes],
        "jump": [number(j) for j in layer.jump],
        "start": layer.start,
        "global": layer.is_global,
        "spatial": layer.is_spatial,
        "changes_geometry": layer.changes_geometry,
        "status": layer.status,
    }


def layer_dict(layer: LayerResult) -> dict[str, Any]:
    return {**_layer_fields(layer), "axes": [_axis(a) for a in layer.axes]}


def to_dict(result: AnalysisResult) -> dict[str, Any]:
    """The JSON document as Python data (``render`` writes the same document)."""
    head = _head(result)
    doc = {key: head[key] for key in ("schema_version", "tool", "model")}
    doc["layers"] = [layer_dict(lay) for lay in result.layers]
    doc.update(head)  # verdict, diagnostics (keys already present keep their place)
    return doc


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
        },
        "diagnostics": [
            {"code": d.code, "severity": d.severity, "where": d.where, "message": d.message}
            for d in result.diagnostics
        ],
    }


def render(result: AnalysisResult, show_all: bool = False) -> str:
    """``to_dict(result)`` as indented JSON, with one line per layer: readable, diff-friendly, and
    fast: the compact encoder is written in C (Python's indenting one is not), and layers that
    pass their input through share its :class:`AxisGeometry` objects, each encoded once."""
    head = json.dumps(_head(result), indent=2)
    if not result.layers:
        return head[:-2] + ',\n  "layers": []\n}\n'
    encode = json.JSONEncoder(separators=(", ", ": ")).encode
    encoded: dict[int, str] = {}  # id(AxisGeometry) -> JSON; the result keeps them all alive
    lines = []
    for layer in result.layers:
        axes = []
        for a in layer.axes:
            text = encoded.get(id(a))
            if text is None:
                text = encoded[id(a)] = encode(_axis(a))
            axes.append(text)
        fields = encode(_layer_fields(layer))
        lines.append(f'    {fields[:-1]}, "axes": [{", ".join(axes)}]}}')
    return head[:-2] + ',\n  "layers": [\n' + ",\n".join(lines) + "\n  ]\n}\n"
