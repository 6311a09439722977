"""JSON report of a shift test (``schema_version`` 1.x; minor versions only add fields)."""

from __future__ import annotations

import json
import math
from fractions import Fraction
from typing import Any

from ... import __version__
from ..measures import Estimate
from ..results import SCHEMA_VERSION, LayerEquivariance, Measure, ShiftTestResult
from .common import frac


def _num(x: float | Fraction | int | None) -> float | int | None:
    if x is None:
        return None
    if isinstance(x, Fraction):
        return x.numerator if x.denominator == 1 else float(x)
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _est(e: Estimate) -> dict[str, Any]:
    return {
        "value": _num(e.value),
        "ci_low": _num(e.low),
        "ci_high": _num(e.high),
        "n": e.n,
        "method": e.method,
    }


def _measure(m: Measure) -> dict[str, Any]:
    return {
        "key": m.key,
        "label": m.label,
        "better": m.better,
        "all": _est(m.all),
        "on_grid": _est(m.on_grid),
        "off_grid": _est(m.off_grid),
    }


def _layer(la: LayerEquivariance) -> dict[str, Any]:
    return {
        "name": la.name,
        "tensor": la.tensor,
        "op": la.op,
        "size": list(la.size),
        "jump": [_num(j) for j in la.jump],
        "jump_exact": [frac(j) for j in la.jump],
        "period_multiple": _est(la.period),
        "jump_multiple": _est(la.jump_multiple),
        "sub_unit": _est(la.sub_unit),
    }


def document(r: ShiftTestResult) -> dict[str, Any]:
    p = r.protocol
    o = r.output
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "shift-test",
        "tool": {"name": "cnnprobe", "version": __version__},
        "model": {
            "path": r.path,
            "format": r.format,
            "runner": r.runner,
            "input": {"name": r.input_name, "shape": list(r.input_shape), "layout": r.layout},
        },
        "geometry": {
            "total_stride": [_num(s) for s in r.total_stride],
            "period": list(r.period),
            "period_source": r.period_source,
            "global_kind": r.global_kind,
            "axes": list(p.axes),
        },
        "protocol": {
            "mode": p.mode,
            "fill": p.fill,
            "shift_set": p.shift_set,
            "max_shift": [_num(m) for m in p.max_shift],
            "step": p.step,
            "directions": list(p.directions),
            "pairs": p.pairs if p.shift_set == "random" else None,
            "inputs": p.inputs,
            "input_kind": p.input_kind,
            "count": p.count,
            "canvas": list(p.canvas),
            "mean": None if p.mean is None else list(p.mean),
            "std": None if p.std is None else list(p.std),
            "comparisons": p.comparisons,
            "inferences": p.inferences,
            "batch_size": p.batch_size,
            "seed": p.seed,
            "intervals": "95%; wilson for rates, normal approximation for means",
        },
        "output": {
            "name": o.name,
            "shape": list(o.shape),
            "kind": o.kind,
            "scores": o.scores,
            "jump": [_num(j) for j in o.jump],
            "spread": _num(o.spread),
            "degenerate_class": o.degenerate_class,
            "top_class_share": _num(o.top_class_share),
            "measures": [_measure(m) for m in o.measures],
        },
        "per_shift": [
            {
                "shift": [_num(s) for s in pt.shift],
                "direction": pt.direction,
                "on_grid": pt.on_grid,
                "n": pt.n,
                "sensitivity": _num(pt.sensitivity),
                "flip_rate": _num(pt.flip_rate),
                "mac": _num(pt.mac),
                "tv": _num(pt.tv),
                "js": _num(pt.js),
            }
            for pt in r.points
        ],
        "layers": [_layer(la) for la in r.layers],
        "notes": list(r.notes),
        "elapsed_s": round(r.elapsed_s, 3),
    }


def render(r: ShiftTestResult) -> str:
    return json.dumps(document(r), indent=1, ensure_ascii=False) + "\n"
