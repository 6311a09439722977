"""Empirical receptive fields: perturb the input, run onnxruntime, see which units change.

This is the ground truth the analytic engine is tested against. For every spatial axis of the
model input and every coordinate ``x`` along it, the whole hyperplane ``input[..., x, ...]`` (all
channels, all other positions) is shifted by ``+magnitude``, by ``-magnitude`` and by a random
pattern of that size. A unit of a requested tensor depends on ``x`` when any of these perturbations
changes any element of the tensor at that unit's index along the corresponding axis. The result
per unit is the smallest and largest such ``x`` (``None`` when no coordinate changes it).

The magnitude is large on purpose: an edge pixel of a deep receptive field has a tiny weight, and
a max pool only passes a change that beats the window's other values. Units that do not depend on
the perturbed pixels are computed from identical values, so they stay bit-identical whatever the
magnitude; overflow to inf or nan in a dependent unit still counts as a change.

Only real input pixels can be perturbed, so the measured interval is the analytic one clipped to
the image and shrunk to the pixels actually reached (padding is not an input pixel).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper

Interval = tuple[int, int]
UnitIntervals = list[Interval | None]

_BATCH_PARAM = "oracle_batch"
# Elements (input sample size x batch) per session.run call; keeps memory modest.
_ELEMENTS_PER_RUN = 4_000_000


def _session(model: onnx.ModelProto) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    return ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


def _known_elem_types(model: onnx.ModelProto) -> dict[str, int]:
    """Element type of every tensor whose type is declared or can be inferred."""
    types: dict[str, int] = {}
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # inference is only a hint here
        inferred = model
    graph = inferred.graph
    for info in [*graph.input, *graph.value_info, *graph.output]:
        elem = info.type.tensor_type.elem_type
        if elem:
            types[info.name] = elem
    return types


def _with_outputs(model: onnx.ModelProto, names: Sequence[str]) -> onnx.ModelProto:
    """A copy of ``model`` whose graph outputs are exactly ``names`` (types kept, no shapes; an
    output whose type ONNX cannot infer, such as a contrib op's, is left untyped for onnxruntime
    to infer)."""
    out = copy.deepcopy(model)
    types = _known_elem_types(model)
    del out.graph.output[:]
    for name in names:
        elem = types.get(name)
        if elem is None:
            out.graph.output.append(onnx.ValueInfoProto(name=name))
        else:
            out.graph.output.append(helper.make_tensor_value_info(name, elem, None))
    return out


def _with_symbolic_batch(model: onnx.ModelProto, input_name: str) -> onnx.ModelProto:
    """A copy whose input batch dimension is symbolic and whose value_info is dropped."""
    out = copy.deepcopy(model)
    for inp in out.graph.input:
        if inp.name == input_name:
            dim0 = inp.type.tensor_type.shape.dim[0]
            dim0.Clear()
            dim0.dim_param = _BATCH_PARAM
    del out.graph.value_info[:]
    return out


def _input_info(
    model: onnx.ModelProto, input_name: str, input_shape: Sequence[int] | None
) -> tuple[tuple[int, ...], np.dtype, bool]:
    """Static input shape, numpy dtype, and whether the batch dimension is fixed to 1."""
    initializers = {t.name for t in model.graph.initializer}
    real_inputs = [i for i in model.graph.input if i.name not in initializers]
    matches = [i for i in real_inputs if i.name == input_name]
    if not matches:
        names = [i.name for i in real_inputs]
        raise ValueError(f"model has no input {input_name!r}; inputs are {names}")
    others = [i.name for i in real_inputs if i.name != input_name]
    if others:
        raise ValueError(f"the oracle supports one graph input; also found {others}")
    tensor_type = matches[0].type.tensor_type
    dtype = np.dtype(helper.tensor_dtype_to_np_dtype(tensor_type.elem_type))
    dims = list(tensor_type.shape.dim)
    batch_fixed_one = bool(dims) and dims[0].HasField("dim_value") and dims[0].dim_value == 1
    if input_shape is not None:
        if len(input_shape) != len(dims):
            raise ValueError(f"input_shape {tuple(input_shape)} has rank != model rank {len(dims)}")
        return tuple(int(n) for n in input_shape), dtype, batch_fixed_one
    shape: list[int] = []
    for axis, dim in enumerate(dims):
        if dim.HasField("dim_value") and dim.dim_value > 0:
            shape.append(dim.dim_value)
        elif axis == 0:
            shape.append(1)
        else:
            raise ValueError(
                f"input {input_name!r} has a dynamic dimension at axis {axis}: pass input_shape"
            )
    return tuple(shape), dtype, batch_fixed_one


def _perturbed_inputs(
    base: np.ndarray, spatial_axes_in: Sequence[int], magnitude: float, rng: np.random.Generator
) -> tuple[np.ndarray, list[tuple[int, int, int]]]:
    """Stack of [base, perturbations...] (batch axis 0) and (axis index, x, kind) per row."""
    rows = [base[0]]
    labels: list[tuple[int, int, int]] = []
    for a, axis in enumerate(spatial_axes_in):
        for x in range(base.shape[axis]):
            index: list[int | slice] = [slice(None)] * base.ndim
            index[axis] = x
            plane_shape = base[tuple(index)].shape
            deltas = (
                np.full(plane_shape, magnitude),
                np.full(plane_shape, -magnitude),
                rng.standard_normal(plane_shape) * magnitude,
            )
            for kind, delta in enumerate(deltas):
                sample = base.copy()
                sample[tuple(index)] += delta.astype(base.dtype)
                rows.append(sample[0])
                labels.append((a, x, kind))
    return np.stack(rows), labels


def _run_all(
    model: onnx.ModelProto,
    input_name: str,
    names: Sequence[str],
    batch: np.ndarray,
    batch_fixed_one: bool,
    batch_axes: Sequence[int] | None = None,
) -> list[np.ndarray]:
    """Outputs for every row of ``batch``, stacked along each output's batch axis
    (``batch_axes``, default the first)."""
    axes = list(batch_axes) if batch_axes is not None else [0] * len(names)
    single = _session(model)

    def run_one(row: np.ndarray) -> list[np.ndarray]:
        return [np.asarray(o) for o in single.run(list(names), {input_name: row[None]})]

    reference = run_one(batch[0])
    batched: ort.InferenceSession | None = single
    if batch_fixed_one:
        try:
            batched = _session(_with_symbolic_batch(model, input_name))
        except Exception:  # fall back to one run per sample
            batched = None

    chunk = max(1, _ELEMENTS_PER_RUN // max(1, batch[0].size))
    parts: list[list[np.ndarray]] = []
    if batched is not None:
        try:
            for begin in range(0, len(batch), chunk):
                rows = batch[begin : begin + chunk]
                outs = [np.asarray(o) for o in batched.run(list(names), {input_name: rows})]
                if any(o.shape[b] != len(rows) for o, b in zip(outs, axes)):
                    raise ValueError("batch dimension not preserved")
                parts.append(outs)
            # The batched copy must reproduce the plain model on the baseline sample.
            firsts = (np.take(o, 0, axis=b) for o, b in zip(parts[0], axes))
            for ref, got, b in zip(reference, firsts, axes, strict=False):
                ref0 = np.take(ref, 0, axis=b)
                if ref0.shape != got.shape or not np.allclose(
                    ref0, got, rtol=1e-4, atol=1e-5, equal_nan=True
                ):
                    raise ValueError("batched model disagrees with the original")
        except Exception:  # fall back to one run per sample
            parts = []
    if not parts:
        parts = [run_one(row) for row in batch]
    return [np.concatenate([p[i] for p in parts], axis=axes[i]) for i in range(len(names))]


def _changed(baseline: np.ndarray, perturbed: np.ndarray) -> np.ndarray:
    """Elementwise: |diff| > 1e-4 * (scale + |baseline|), ``scale`` the largest finite magnitude
    in the baseline tensor (at least 1e-30): batched runs may differ from the baseline by rounding,
    relative to the tensor's own magnitude, and a tensor of tiny activations still shows its
    changes. Non-finite values change when they differ."""
    base = baseline.astype(np.float64)
    rows = perturbed.astype(np.float64)
    finite = np.abs(base[np.isfinite(base)])
    scale = max(float(finite.max()) if finite.size else 1.0, 1e-30)
    with np.errstate(invalid="ignore", over="ignore"):
        changed = np.abs(rows - base) > 1e-4 * (scale + np.abs(base))
        special = ~np.isfinite(base) | ~np.isfinite(rows)
        both_nan = np.isnan(base) & np.isnan(rows)
        changed |= special & (rows != base) & ~both_nan
    return np.asarray(changed)


def measure_intervals(
    model: onnx.ModelProto,
    input_name: str,
    tensor_names: list[str],
    *,
    spatial_axes_in: tuple[int, ...],
    layout: str = "NC",
    seed: int = 0,
    magnitude: float = 1e6,
    input_shape: Sequence[int] | None = None,
    tensor_axes: dict[str, tuple[int, tuple[int | None, ...]]] | None = None,
) -> dict[str, list[list[Interval | None]]]:
    """Measure which input coordinates each unit of each tensor depends on.

    Returns, for every name in ``tensor_names``, one list per axis in ``spatial_axes_in`` (same
    order) with one entry per unit along the tensor's matching axis: ``(lo, hi)``, the smallest and
    largest input coordinate whose perturbation changes that unit, or ``None``.

    ``layout`` says where the spatial axes of the requested tensors are: ``"NC"`` (channels
    first: the a-th spatial axis of the input maps to tensor axis ``2 + a``) or ``"NXC"``
    (channels last: tensor axis ``1 + a``). Every requested tensor must have the input's rank,
    unless ``tensor_axes`` says, for that tensor, which axis is its batch and which axis holds
    each input spatial axis (``None``: an axis reduced to one unit, or gone; the tensor then
    counts as a single unit along it), as the test's author works it out from the model.
    """
    if layout not in ("NC", "NXC"):
        raise ValueError(f"layout must be 'NC' or 'NXC', not {layout!r}")
    first_spatial = 2 if layout == "NC" else 1
    shape, dtype, batch_fixed_one = _input_info(model, input_name, input_shape)
    for axis in spatial_axes_in:
        if not 0 < axis < len(shape):
            raise ValueError(f"spatial axis {axis} out of range for input shape {shape}")

    rng = np.random.default_rng(seed)
    base = rng.standard_normal(shape).astype(dtype)[:1]
    batch, labels = _perturbed_inputs(base, spatial_axes_in, magnitude, rng)

    run_names = [n for n in dict.fromkeys(tensor_names) if n != input_name]
    outputs: dict[str, np.ndarray] = {input_name: batch}
    given = tensor_axes or {}
    if run_names:
        runnable = _with_outputs(model, run_names)
        batch_axes = [given[n][0] if n in given else 0 for n in run_names]
        measured = _run_all(runnable, input_name, run_names, batch, batch_fixed_one, batch_axes)
        outputs.update(zip(run_names, measured, strict=True))

    result: dict[str, list[list[Interval | None]]] = {}
    for name in tensor_names:
        values = outputs[name]
        if name in given:
            b, where = given[name]
            values = np.moveaxis(values, b, 0)  # (axes before the batch move up by one)
            changed = _changed(values[0], values[1:])
            per_axis = []
            for a, t in enumerate(where):
                t_axis = None if t is None else (t + 1 if t < b else t)
                per_axis.append(_units(changed, labels, a, t_axis))
            result[name] = per_axis
            continue
        if values.ndim != len(shape):
            raise ValueError(
                f"tensor {name!r} has shape {values.shape[1:]} (rank {values.ndim}); the oracle "
                f"needs the input's rank {len(shape)} with spatial axes kept"
            )
        changed = _changed(values[0], values[1:])
        # axis in the full tensor shape; axis 0 holds the rows
        result[name] = [
            _units(changed, labels, a, first_spatial + a) for a in range(len(spatial_axes_in))
        ]
    return result


def _units(
    changed: np.ndarray, labels: list[tuple[int, int, int]], a: int, t_axis: int | None
) -> list[Interval | None]:
    """Per unit along tensor axis ``t_axis`` of ``changed`` (rows first; ``None``: the whole
    tensor is one unit), the first and last coordinate along input axis ``a`` whose
    perturbation changed it."""
    reduce_axes = tuple(i for i in range(1, changed.ndim) if i != t_axis)
    # affected[row, unit]: that perturbation changed some element of that unit
    affected = np.asarray(changed.any(axis=reduce_axes))
    if t_axis is None:
        affected = affected[:, None]
    rows = [row for row, label in enumerate(labels) if label[0] == a]
    coords = np.array([labels[row][1] for row in rows])
    units: list[Interval | None] = []
    for k in range(affected.shape[1]):
        hits = coords[affected[rows, k]]
        units.append((int(hits.min()), int(hits.max())) if hits.size else None)
    return units
