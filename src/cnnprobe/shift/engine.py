"""One shift test: geometry, inputs and shift plan, batched inference, measures.

Views are generated while they are needed and reduced as soon as they are run: memory holds one
batch of inputs and outputs, plus the reference outputs of the groups in flight (one input's, in
the sweep and grid shift sets), never all the shifts.
"""

from __future__ import annotations

import os
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from ..errors import ModelError, UsageError
from ..results import AnalysisResult
from . import measures as M
from .geometry import ModelGeometry, TensorGeometry, from_analysis
from .inputs import InputSource, Layout, normalize, open_inputs
from .options import DEFAULT_BUDGET, MAX_AUTO_COUNT, MIN_AUTO_COUNT, ShiftOptions
from .protocol import Group, Member, ShiftPlan, View, axis_names, make_view
from .results import (
    CLASSIFIER,
    DENSE,
    SCALAR,
    VALUES,
    LayerEquivariance,
    Measure,
    OutputSummary,
    Protocol,
    ShiftPoint,
    ShiftTestResult,
)
from .runners import (
    KerasRunner,
    OnnxRunner,
    Runner,
    keras_geometry,
    load_keras,
    model_output_name,
)

Progress = Callable[[int, int], None]

#: Outputs kept per input for the normalizer of the normalized sensitivity.
SPREAD_SAMPLES = 8


def run_shift_test(opts: ShiftOptions, progress: Progress | None = None) -> ShiftTestResult:
    """Run the test described by ``opts``; ``progress(done, total)`` after every batch."""
    opts = opts.validate()
    start = time.perf_counter()
    geometry, runner = _open_model(opts)
    target = runner.outputs[0]
    target_geo = geometry.tensors.get(target, TensorGeometry(target, target, "?", ()))
    layer_geos = [geometry.tensors[name] for name in runner.outputs[1:]]
    size = geometry.spatial_size
    nsp = len(size)
    max_shift = (
        tuple(float(opts.max_shift) for _ in range(nsp))
        if opts.max_shift is not None
        else tuple(float(p) for p in geometry.period)
    )
    plan = ShiftPlan(opts.shifts, max_shift, float(opts.step), opts.pairs, opts.seed, nsp)
    margin = plan.margin if opts.mode == "crop" else tuple(0 for _ in range(nsp))
    channels = geometry.input_shape[geometry.channel_axis]
    if channels is None:
        raise UsageError(
            f"the number of channels of input {geometry.input_name!r} is unknown: give "
            "--input-shape",
            geometry.path,
        )
    canvas = Layout(
        int(channels), tuple(n + m for n, m in zip(size, margin)), geometry.channels_first
    )
    auto = max(MIN_AUTO_COUNT, min(MAX_AUTO_COUNT, DEFAULT_BUDGET // max(plan.per_input, 1)))
    source = open_inputs(opts.inputs, canvas, size, opts.mode, opts.count, auto, opts.seed)
    acc = Accumulator(opts, geometry, target_geo, layer_geos, source.count)
    _stream(opts, plan, source, canvas, size, margin, runner, acc, progress)
    protocol = Protocol(
        mode=opts.mode,
        fill=opts.fill_mode,
        shift_set=opts.shifts,
        max_shift=max_shift,
        step=float(opts.step),
        directions=tuple(d for d, _ in plan.directions) if opts.shifts == "sweep" else (),
        pairs=opts.pairs,
        inputs=source.description,
        input_kind=source.kind,
        count=source.count,
        comparisons=source.count * plan.comparisons_per_input,
        inferences=source.count * plan.per_input,
        batch_size=opts.batch_size,
        seed=opts.seed,
        canvas=canvas.spatial,
        mean=opts.mean,
        std=opts.std,
        axes=axis_names(nsp),
    )
    output, points, layers, notes = acc.finish()
    return ShiftTestResult(
        path=geometry.path,
        format=geometry.format,
        runner=runner.description,
        input_name=geometry.input_name,
        input_shape=geometry.input_shape,
        layout=geometry.layout,
        total_stride=geometry.total_stride,
        period=geometry.period,
        period_source=geometry.period_source,
        global_kind=geometry.global_kind,
        protocol=protocol,
        output=output,
        points=points,
        layers=layers,
        notes=tuple([*geometry.notes, *runner.notes, *notes]),
        elapsed_s=time.perf_counter() - start,
    )


# ---------------------------------------------------------------------------------------------
# model


def _open_model(opts: ShiftOptions) -> tuple[ModelGeometry, Runner]:
    from ..frontends import detect_format

    path = opts.model
    if not os.path.exists(path):
        raise ModelError("no such file", path)
    fmt = "keras" if os.path.isdir(path) else detect_format(path)
    if fmt == "onnx":
        from ..api import analyze

        result = analyze(
            path, input_name=opts.input_name, input_shape=opts.input_shape, layout=opts.layout
        )
        geometry = from_analysis(result, (), opts.stride)
        extra = _layer_tensors(geometry, opts.layers, result)
        runner: Runner = OnnxRunner(
            path,
            geometry.input_name,
            opts.target,
            extra,
            opts.provider,
            shapes={t.tensor: t.shape for t in geometry.tensors.values()},
            optional=opts.layers == ("all",),
        )
        return geometry, runner
    if opts.provider is not None:
        raise UsageError("--provider applies to ONNX models (onnxruntime) only")
    from ..errors import CnnprobeError

    keras, model = load_keras(path)
    target = opts.target or model_output_name(model)
    analysis: AnalysisResult | None = None
    try:
        from ..api import analyze

        analysis = analyze(
            path, input_name=opts.input_name, input_shape=opts.input_shape, layout=opts.layout
        )
        geometry = from_analysis(analysis, (target,), opts.stride)
    except CnnprobeError as exc:
        if isinstance(exc, UsageError):
            raise
        geometry = keras_geometry(path, model, opts.input_shape, opts.layout, opts.stride)
    except Exception:  # the Keras frontend of the analysis is optional here
        geometry = keras_geometry(path, model, opts.input_shape, opts.layout, opts.stride)
    _check_target(geometry, target, path)
    extra = _layer_tensors(geometry, opts.layers, analysis)
    return geometry, KerasRunner(path, keras, model, target, extra)


def _check_target(geometry: ModelGeometry, target: str, path: str) -> None:
    if target not in geometry.tensors and target not in geometry.outputs:
        outs = ", ".join(repr(o) for o in geometry.outputs) or "none listed"
        raise UsageError(
            f"--target {target!r} is not a tensor of the model (outputs: {outs})", path
        )


def _layer_tensors(
    geometry: ModelGeometry, layers: tuple[str, ...], result: AnalysisResult | None
) -> list[str]:
    """Tensor names for ``--layers``: ``all`` = the feature maps that change geometry (what
    ``summary`` lists) and the last one; otherwise layer or tensor names."""
    if not layers:
        return []
    maps = list(geometry.feature_maps)
    if not maps:
        raise UsageError("--layers: the model has no spatial feature maps", geometry.path)
    if layers == ("all",):
        changing: set[str] = set()
        if result is not None:
            changing = {layer.output for layer in result.layers if layer.changes_geometry}
        else:
            previous: tuple[Fraction, ...] = ()
            for m in maps:
                if m.jump != previous:
                    changing.add(m.tensor)
                previous = m.jump
        chosen = [m.tensor for m in maps if m.tensor in changing or m is maps[-1]]
        return list(dict.fromkeys(chosen))
    by_name = {m.name: m.tensor for m in maps}
    by_tensor = {m.tensor: m.tensor for m in maps}
    out: list[str] = []
    for name in layers:
        if name in by_name or name in by_tensor:
            out.append(by_name.get(name) or by_tensor[name])
            continue
        known = geometry.tensors.get(name) or next(
            (t for t in geometry.tensors.values() if t.name == name), None
        )
        if known is not None:
            raise UsageError(
                f"--layers: {name!r} is not a spatial feature map with an exact jump "
                "(equivariance is measured on feature maps)",
                geometry.path,
            )
        sample = ", ".join(m.name for m in maps[:8])
        raise UsageError(
            f"--layers: no layer or tensor named {name!r} (feature maps: {sample}"
            f"{', ...' if len(maps) > 8 else ''}; or 'all')",
            geometry.path,
        )
    return list(dict.fromkeys(out))


# ---------------------------------------------------------------------------------------------
# streaming


@dataclass
class _Job:
    group: Group
    member: Member | None


def _stream(
    opts: ShiftOptions,
    plan: ShiftPlan,
    source: InputSource,
    canvas: Layout,
    size: tuple[int, ...],
    margin: tuple[int, ...],
    runner: Runner,
    acc: Accumulator,
    progress: Progress | None,
) -> None:
    sample = Layout(canvas.channels, size, canvas.channels_first)
    batch = np.empty((opts.batch_size, *sample.shape), dtype=np.float32)
    jobs: list[_Job] = []
    total = source.count * plan.per_input
    done = 0
    cache: tuple[int, np.ndarray] | None = None
    mean = None if source.model_space and opts.mean is None else opts.mean
    std = opts.std

    def view_of(v: View) -> np.ndarray:
        nonlocal cache
        if cache is None or cache[0] != v.source:
            cache = (v.source, source.canvas(v.source))
        img = make_view(
            cache[1], v.offset, opts.mode, opts.fill_mode, canvas.spatial_axes, size, margin
        )
        return normalize(img, mean, std, canvas.channel_axis)

    def flush() -> None:
        nonlocal done
        if not jobs:
            return
        outs = runner.run(batch[: len(jobs)])
        for k, job in enumerate(jobs):
            acc.add(job.group, job.member, [o[k] for o in outs])
        done += len(jobs)
        jobs.clear()
        if progress is not None:
            progress(done, total)

    if progress is not None:
        progress(0, total)
    for group in plan.groups(source.count):
        for view, member in [(group.reference, None), *((m.view, m) for m in group.members)]:
            batch[len(jobs)] = view_of(view)
            jobs.append(_Job(group, member))
            if len(jobs) == opts.batch_size:
                flush()
    flush()


# ---------------------------------------------------------------------------------------------
# accumulating the measures


@dataclass
class _Comparison:
    source: int
    shift: tuple[float, ...]
    direction: str
    on_grid: bool


@dataclass
class _LayerRecords:
    geo: TensorGeometry
    dims: tuple[int, ...] = ()
    size: tuple[int, ...] = ()
    #: compare by circular shifts: the mode is circular and the map covers exactly one period
    #: of the input (size x jump = input size), as a circularly padded network's maps do
    circular: bool = False
    values: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))


class Accumulator:
    def __init__(
        self,
        opts: ShiftOptions,
        geometry: ModelGeometry,
        target: TensorGeometry,
        layers: list[TensorGeometry],
        n_inputs: int,
    ) -> None:
        self.opts = opts
        self.geometry = geometry
        self.target = target
        self.period = geometry.period
        self.n_inputs = n_inputs
        self.refs: dict[int, list[np.ndarray]] = {}
        self.pending: dict[int, int] = {}
        self.kind: str | None = None
        self.probabilities = False
        self.sample_shape: tuple[int, ...] = ()
        self.comparisons: list[_Comparison] = []
        self.metrics: dict[str, list[float]] = defaultdict(list)
        self.spread: dict[int, list[np.ndarray]] = defaultdict(list)
        self.classes: Counter[int] = Counter()
        self.layers = [_LayerRecords(g) for g in layers]
        self.dense = _LayerRecords(target)
        self.notes: list[str] = []

    # -- per output -----------------------------------------------------------------------

    def add(self, group: Group, member: Member | None, outs: list[np.ndarray]) -> None:
        if self.kind is None:
            self._detect(outs)
        if member is None:
            self.refs[group.key] = [np.array(o) for o in outs]
            self.pending[group.key] = len(group.members)
            self._observe(group.reference.source, outs[0])
            if not group.members:
                self._drop(group.key)
            return
        ref = self.refs[group.key]
        self._observe(member.view.source, outs[0])
        on_grid = _multiple(member.shift, self.period)
        self.comparisons.append(
            _Comparison(member.view.source, member.shift, member.direction, on_grid)
        )
        if self.kind == DENSE:
            self._equivariance(self.dense, ref[0], outs[0], member.shift)
        else:
            z0 = ref[0].reshape(1, -1)
            z1 = outs[0].reshape(1, -1)
            if self.kind == CLASSIFIER:
                d = M.classifier_delta(z0, z1, self.probabilities)
                self.metrics["agree"].append(float(d.agree[0]))
                self.metrics["mac"].append(float(d.mac[0]))
                self.metrics["tv"].append(float(d.tv[0]))
                self.metrics["js"].append(float(d.js[0]))
            diff = z1.astype(np.float64) - z0.astype(np.float64)
            self.metrics["distance"].append(float(np.sqrt((diff**2).sum())))
            self.metrics["abs_change"].append(float(np.abs(diff).mean()))
        for rec, r, o in zip(self.layers, ref[1:], outs[1:]):
            self._equivariance(rec, r, o, member.shift)
        self.pending[group.key] -= 1
        if self.pending[group.key] == 0:
            self._drop(group.key)

    def _drop(self, key: int) -> None:
        del self.refs[key]
        del self.pending[key]

    def _observe(self, source: int, out: np.ndarray) -> None:
        if self.kind == DENSE:
            return
        flat = np.asarray(out, dtype=np.float64).reshape(-1)
        if len(self.spread[source]) < SPREAD_SAMPLES:
            self.spread[source].append(flat)
        if self.kind == CLASSIFIER:
            self.classes[int(np.argmax(flat))] += 1

    def _detect(self, outs: list[np.ndarray]) -> None:
        first = np.asarray(outs[0])
        self.sample_shape = tuple(first.shape)
        if self.target.spatial and _dims_fit(self.target, first.shape):
            self.kind = DENSE
            self._locate(self.dense, first.shape)
        elif first.size <= 1:
            self.kind = SCALAR
        elif sum(d > 1 for d in first.shape) > 1:
            # (a vector of class scores has one axis, besides 1-sized ones)
            self.kind = VALUES
        else:
            self.kind = CLASSIFIER
            self.probabilities = M.looks_like_probabilities(first.reshape(1, -1))
        for rec, o in zip(self.layers, outs[1:]):
            if _dims_fit(rec.geo, np.asarray(o).shape):
                self._locate(rec, np.asarray(o).shape)
            else:
                self.notes.append(
                    f"layer {rec.geo.name!r}: its runtime shape {list(np.asarray(o).shape)} does "
                    "not match the analysis; skipped"
                )

    def _locate(self, rec: _LayerRecords, sample_shape: tuple[int, ...]) -> None:
        rec.dims = tuple(d - 1 for d in rec.geo.dims)
        rec.size = tuple(sample_shape[d] for d in rec.dims)
        rec.circular = self.opts.circular and all(
            n * j == size for n, j, size in zip(rec.size, rec.geo.jump, self.geometry.spatial_size)
        )

    def _equivariance(
        self, rec: _LayerRecords, ref: np.ndarray, out: np.ndarray, shift: tuple[float, ...]
    ) -> None:
        if not rec.dims:
            return
        units = [
            float(Fraction(s).limit_denominator(1 << 20) / j) for s, j in zip(shift, rec.geo.jump)
        ]
        if _multiple(shift, self.period):
            kind = "period"
        elif M.shift_class(units):
            kind = "jump"
        else:
            kind = "sub_unit"
        err = M.equivariance_error(ref, out, units, rec.dims, rec.circular)
        if err is not None:
            rec.values[kind].append(err)
            rec.values["point"].append(err)
        else:
            rec.values["point"].append(float("nan"))

    # -- results ----------------------------------------------------------------------------

    def finish(
        self,
    ) -> tuple[OutputSummary, tuple[ShiftPoint, ...], tuple[LayerEquivariance, ...], list[str]]:
        notes = list(self.notes)
        spread = M.mean_pairwise_distance([np.stack(v) for _, v in sorted(self.spread.items())])
        kind = self.kind or CLASSIFIER
        on = np.array([c.on_grid for c in self.comparisons], dtype=bool)
        measures: list[Measure] = []
        degenerate: int | None = None
        share: float | None = None
        if kind == DENSE:
            vals = self.dense.values
            per = np.asarray(vals["point"], dtype=np.float64)
            whole = np.array(
                [M.shift_class(self._units(c.shift, self.dense.geo)) for c in self.comparisons],
                dtype=bool,
            )
            measures.append(
                Measure(
                    "equivariance_error",
                    "equivariance error (whole output units)",
                    M.mean_interval(per[whole]),
                    M.mean_interval(per[whole & on]),
                    M.mean_interval(per[whole & ~on]),
                )
            )
            if (~whole).any():
                measures.append(
                    Measure(
                        "equivariance_error_subunit",
                        "equivariance error (sub-unit shifts, Fourier)",
                        M.mean_interval(per[~whole]),
                        M.Estimate.empty(),
                        M.mean_interval(per[~whole]),
                    )
                )
        else:
            dist = np.asarray(self.metrics["distance"], dtype=np.float64)
            if spread:
                measures.append(_split("ns", "normalized sensitivity (NS)", dist / spread, on))
            else:
                notes.append(
                    "normalized sensitivity needs two different inputs whose outputs differ: "
                    "use --count 2 or more"
                )
            if kind == CLASSIFIER:
                agree = np.asarray(self.metrics["agree"], dtype=np.float64)
                measures.append(_split_rate("agreement", "top-1 agreement", agree, on, "high"))
                measures.append(_split_rate("flip_rate", "flip rate", 1 - agree, on, "low"))
                measures.append(
                    _split(
                        "mac", "mean abs. change of top probability (MAC)", self.metrics["mac"], on
                    )
                )
                measures.append(_split("tv", "total variation", self.metrics["tv"], on))
                measures.append(
                    _split("js", "Jensen-Shannon divergence (nats)", self.metrics["js"], on)
                )
                total = sum(self.classes.values())
                if total:
                    top, count = self.classes.most_common(1)[0]
                    share = count / total
                    if len(self.classes) == 1 and self.n_inputs > 1:
                        degenerate = top
                        notes.append(
                            f"degenerate argmax: every input and every shifted view gets class "
                            f"{top}, so top-1 agreement is 100% by construction and says nothing; "
                            "read the normalized sensitivity and the divergences instead"
                        )
                    elif share >= 0.95 and self.n_inputs > 1:
                        notes.append(
                            f"near-degenerate argmax: {share:.0%} of all outputs are class {top}; "
                            "top-1 agreement is inflated, read the normalized sensitivity"
                        )
            measures.append(
                _split("abs_change", "mean abs. change of outputs", self.metrics["abs_change"], on)
            )
        output = OutputSummary(
            name=self.target.tensor,
            shape=self.sample_shape,
            kind=kind,
            scores=("probabilities" if self.probabilities else "logits")
            if kind == CLASSIFIER
            else None,
            jump=self.dense.geo.jump if kind == DENSE else (),
            measures=tuple(measures),
            spread=spread,
            degenerate_class=degenerate,
            top_class_share=share,
        )
        return output, self._points(kind, spread), self._layers(), notes

    def _units(self, shift: tuple[float, ...], geo: TensorGeometry) -> list[float]:
        return [float(Fraction(s).limit_denominator(1 << 20) / j) for s, j in zip(shift, geo.jump)]

    def _points(self, kind: str, spread: float | None) -> tuple[ShiftPoint, ...]:
        buckets: dict[tuple[str, tuple[float, ...]], list[int]] = defaultdict(list)
        for k, c in enumerate(self.comparisons):
            buckets[(c.direction, c.shift)].append(k)
        dense = np.asarray(self.dense.values["point"], dtype=np.float64)
        metric = {key: np.asarray(v, dtype=np.float64) for key, v in self.metrics.items()}
        points = []
        for (direction, shift), idx in buckets.items():
            ix = np.asarray(idx)

            def avg(key: str, ix: np.ndarray = ix) -> float | None:
                arr = metric.get(key)
                if arr is None or arr.size == 0:
                    return None
                vals = arr[ix]
                vals = vals[np.isfinite(vals)]
                return float(vals.mean()) if vals.size else None

            if kind == DENSE:
                vals = dense[ix]
                vals = vals[np.isfinite(vals)]
                sens = float(vals.mean()) if vals.size else None
            else:
                d = avg("distance")
                sens = d / spread if d is not None and spread else None
            agree = avg("agree")
            points.append(
                ShiftPoint(
                    shift=shift,
                    direction=direction,
                    on_grid=self.comparisons[idx[0]].on_grid,
                    n=len(idx),
                    sensitivity=sens,
                    flip_rate=None if agree is None else 1 - agree,
                    mac=avg("mac"),
                    tv=avg("tv"),
                    js=avg("js"),
                )
            )
        return tuple(points)

    def _layers(self) -> tuple[LayerEquivariance, ...]:
        out = []
        for rec in self.layers:
            if not rec.dims:
                continue
            out.append(
                LayerEquivariance(
                    name=rec.geo.name,
                    tensor=rec.geo.tensor,
                    op=rec.geo.op,
                    size=rec.size,
                    jump=rec.geo.jump,
                    period=M.mean_interval(rec.values["period"]),
                    jump_multiple=M.mean_interval(rec.values["jump"]),
                    sub_unit=M.mean_interval(rec.values["sub_unit"]),
                )
            )
        return tuple(out)


def _multiple(shift: tuple[float, ...], period: tuple[int, ...]) -> bool:
    return all(abs(s / p - round(s / p)) <= 1e-6 for s, p in zip(shift, period))


def _dims_fit(geo: TensorGeometry, sample_shape: tuple[int, ...]) -> bool:
    """The geometry's spatial dims exist in one runtime sample (no batch axis) of that shape,
    with the sizes the analysis expects."""
    if not geo.dims or len(sample_shape) + 1 != len(geo.shape):
        return False
    return all(
        0 < d <= len(sample_shape) and geo.shape[d] in (None, sample_shape[d - 1]) for d in geo.dims
    )


def _split(key: str, label: str, values: object, on: np.ndarray) -> Measure:
    arr = np.asarray(values, dtype=np.float64)
    return Measure(
        key, label, M.mean_interval(arr), M.mean_interval(arr[on]), M.mean_interval(arr[~on])
    )


def _split_rate(key: str, label: str, values: np.ndarray, on: np.ndarray, better: str) -> Measure:
    def rate(v: np.ndarray) -> M.Estimate:
        return M.wilson(round(float(v.sum())), int(v.size))

    return Measure(key, label, rate(values), rate(values[on]), rate(values[~on]), better)
