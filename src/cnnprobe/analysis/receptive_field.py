"""Receptive-field analysis over the IR: propagate tensor states in topological order, then turn
them into :class:`~cnnprobe.results.LayerResult` objects."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from fractions import Fraction
from operator import sub
from typing import Any

from ..geometry.arithmetic import GeometryError
from ..geometry.qamap import QAMap, fraction
from ..geometry.real import EMPTY_HI, EMPTY_LO, Real
from ..geometry.rules import ANY_INPUT_DATA, AxisOp, RuleContext, passes_through, run_rule
from ..geometry.state import AxisState, Factor, TensorState, Window, hull, plain_layout
from ..ir import Graph, Node, Shape, format_shape
from ..results import (
    ERROR,
    OK,
    UNCERTAIN,
    UNKNOWN,
    AxisGeometry,
    Diagnostic,
    LayerResult,
)
from .graph_order import ABSENT, IMAGE, Plan, plan

#: IR kinds whose output grid differs from their input grid by construction.
GEOMETRY_KINDS = frozenset(
    {
        "window",
        "window_transpose",
        "pool",
        "pad",
        "slice",
        "resize",
        "space_to_depth",
        "depth_to_space",
        "reduce",
        "dense",
        "gemm",
        "matmul",
        "einsum",
        "unknown",
    }
)


NONE_STATE = TensorState.const(())


@dataclass
class Propagation:
    plan: Plan
    layers: list[LayerResult]
    diagnostics: list[Diagnostic]
    #: tensor number (see :class:`~.graph_order.Plan`) -> the layer reporting that tensor
    layer_of: list[LayerResult | None]

    @property
    def order(self) -> list[Node]:
        return self.plan.order


def propagate(graph: Graph, assume_pointwise: Iterable[str] = ()) -> Propagation:
    pointwise = {p.lower() for p in assume_pointwise}
    p = plan(graph)
    order = p.order
    n_in = graph.input.shape
    spatial = graph.input.spatial_axes
    declared_shapes = graph.declared_shapes
    consts: dict[Shape | None, TensorState] = {}

    def const(shape: Shape | None) -> TensorState:
        """The state of a constant (states are immutable: one per shape is enough)."""
        st = consts.get(shape)
        if st is None:
            st = consts[shape] = TensorState.const(shape)
        return st

    # per tensor number; a state is dropped after its last reader, so that memory stays
    # proportional to the graph's width
    states: list[TensorState] = [NONE_STATE] * p.size
    states[IMAGE] = TensorState(
        n_in,
        plain_layout(n_in, spatial),
        tuple(AxisState(Window.identity(), False, Real.identity(_need(n_in[t]))) for t in spatial),
    )
    for n in p.constant_data:
        states[n] = const(declared_shapes.get(p.names[n]))
    last_reader = [-1] * p.size
    for index, (ins_n, params_n) in enumerate(zip(p.inputs, p.params)):
        for n in ins_n:
            last_reader[n] = index
        for n in params_n:
            last_reader[n] = index
    release: list[list[int]] = [[] for _ in order]
    for n, index in enumerate(last_reader):
        if index >= 0 and n != ABSENT:
            release[index].append(n)

    diags: list[Diagnostic] = []
    layers: list[LayerResult] = []
    layer_of: list[LayerResult | None] = [None] * p.size
    input_sizes = tuple(n_in[t] for t in spatial)
    unknown_ops: dict[tuple[str, str], list[str]] = {}
    for index, node in enumerate(order):
        ins = [states[n] for n in p.inputs[index]]
        # a parameter no node produced is a constant (weights): it has no state
        params = [states[n] for n in p.params[index]]
        for n in release[index]:
            states[n] = NONE_STATE
        out_ids = p.outputs[index]
        declared = [declared_shapes.get(o) for o in node.outputs]
        live_ins = [s for s in ins if s.live]
        live_params = [s for s in params if s.live]
        if not live_ins and not live_params:
            for k, n in enumerate(out_ids):
                states[n] = const(declared[k])
            continue
        if len(out_ids) == 1 and not live_params and _hand_on(node, ins, declared[0]):
            # most nodes of a CNN (activations, normalisation): the state and its figures are
            # those of the input; nothing to check, nothing to report
            x = live_ins[0]
            n = out_ids[0]
            states[n] = x
            layer = _layer(node.name, node, node.outputs[0], x, {}, OK, input_sizes, ins)
            layers.append(layer)
            layer_of[n] = layer
            continue
        ctx = RuleContext(node, declared)
        status = OK
        op_node = node
        if node.op == "unknown" and _declared_pointwise(node.source_op, pointwise):
            # every data input is read element by element (weights, constants, are not data)
            keep = [k for k, s in enumerate(ins) if s.live] or [0]
            op_node = replace(node, op="elementwise", inputs=tuple(node.inputs[k] for k in keep))
            ins = [ins[k] for k in keep]
            live_ins = [s for s in ins if s.live]
        if op_node.op == "unknown":
            status = UNKNOWN
            key = (node.source_op, str(node.attrs.get("reason") or ""))
            unknown_ops.setdefault(key, []).append(node.name)
        elif ins and not ins[0].live and op_node.op not in ANY_INPUT_DATA:
            ctx.give_up(
                "data-through-parameter",
                "the image reaches this op only through a parameter input",
            )
        upstream_uncertain = any(s.uncertain for s in live_ins)
        try:
            outs = run_rule(op_node, ins, ctx)
        except GeometryError as exc:
            # after an unknown op, shapes may simply be unknown: that is uncertainty, not an error
            if not upstream_uncertain:
                status = ERROR
                diags.append(Diagnostic("bad-op", "error", node.name, str(exc)))
            nsp = len(spatial)
            outs = [
                TensorState(
                    d or (),
                    tuple((Factor(x),) for x in d or ()),
                    tuple(AxisState(None) for _ in range(nsp)),
                    uncertain=True,
                )
                for d in declared
            ]
        if live_params:
            ctx.note(
                "input-dependent-parameter",
                "info",
                "a weight or shape operand is computed from the input: every output depends "
                "on all of it",
            )
            # every unit depends on every element of the parameters: on the pixels they reach
            outs = [
                o.with_axes(
                    AxisState(
                        a.window,
                        True,
                        a.real,
                        hull(
                            *([a.reach] if a.is_global else []),
                            *(pa.span() for pa in _axes(params, i)),
                        ),
                    )
                    for i, a in enumerate(o.axes)
                )
                for o in outs
            ]
        outs = [_dead_if_empty(o) for o in outs]
        if ctx.uncertain or upstream_uncertain:
            outs = [o.evolve(uncertain=True) for o in outs]
        for note in ctx.notes:
            if upstream_uncertain and note.severity == "warning":
                continue  # its input is uncertain already: the diagnostic upstream says why
            diags.append(Diagnostic(note.code, note.severity, node.name, note.message))
        if len(live_ins) > 1:
            _check_merge(node, live_ins, diags)
        for k, out_name in enumerate(node.outputs):
            st = outs[min(k, len(outs) - 1)]
            decl = declared[k]
            if decl is not None and decl != st.shape:
                if st.live and not _shapes_agree(st.shape, decl):
                    diags.append(
                        Diagnostic(
                            "shape-mismatch",
                            "warning",
                            node.name,
                            f"computed shape {format_shape(st.shape)} of {out_name!r} differs "
                            f"from the shape the file records, {format_shape(decl)}",
                        )
                    )
                    if status == OK and not st.uncertain:
                        st = st.evolve(uncertain=True)
                filled = _fill(st.shape, decl)
                if filled != st.shape:
                    st = st.evolve(shape=filled)
            states[out_ids[k]] = st
            if not st.live:
                continue
            lstatus = status if status != OK else (UNCERTAIN if st.uncertain else OK)
            name = node.name if k == 0 else f"{node.name}:{k}"
            layer = _layer(name, node, out_name, st, ctx.axis_ops, lstatus, input_sizes, ins)
            layers.append(layer)
            layer_of[out_ids[k]] = layer
    for (op, reason), names in unknown_ops.items():
        which = f"{len(names)} node(s): {', '.join(names[:3])}{'...' if len(names) > 3 else ''}"
        what = (
            f"operator {op!r} is not followed: {reason} ({which})"
            if reason
            else f"operator {op!r} has no geometry rule ({which})"
        )
        diags.append(
            Diagnostic(
                "unknown-op",
                "error",
                names[0],
                f"{what}; results that depend on it are marked uncertain (declare it with "
                "--assume-pointwise if it is pointwise)",
            )
        )
    return Propagation(p, layers, diags, layer_of)


def _hand_on(node: Node, ins: list[TensorState], declared: Shape | None) -> bool:
    """The node passes its one live input on as it is, certain, with the shape the file records
    (the general path would give the same state, no diagnostic and status ok)."""
    x = passes_through(node, ins)
    return x is not None and not x.uncertain and (declared is None or declared == x.shape)


def _declared_pointwise(source_op: str, pointwise: set[str]) -> bool:
    """``--assume-pointwise`` names an op with or without its domain (``com.acme.Foo``)."""
    bare = source_op.rsplit(".", 1)[-1].lower()
    return source_op.lower() in pointwise or bare in pointwise


def _dead_if_empty(st: TensorState) -> TensorState:
    """An element's dependence is the product of its per-axis dependences: if every unit along
    one axis reads no pixel (e.g. a crop that keeps only padding), no element reads any pixel."""
    reals = [ax.real for ax in st.axes]
    if not any(
        r is not None and (not r.simple or not r.lo) and all(lo > hi for lo, hi in zip(r.lo, r.hi))
        for r in reals
    ):
        return st
    return st.with_axes(
        ax.local(
            ax.window,
            None
            if ax.real is None
            else Real.make((EMPTY_LO,) * len(ax.real.lo), (EMPTY_HI,) * len(ax.real.lo)),
        )
        for ax in st.axes
    )


def _need(n: int | None) -> int:
    if n is None:  # pragma: no cover - frontends reject unknown spatial input sizes
        raise ValueError("unknown spatial input size")
    return n


def _axes(params: list[TensorState], i: int) -> list[AxisState]:
    return [p.axes[i] for p in params if p.live and i < len(p.axes)]


def _shapes_agree(a: tuple[int | None, ...], b: tuple[int | None, ...]) -> bool:
    if len(a) != len(b):
        return False
    return all(x is None or y is None or x == y for x, y in zip(a, b))


def _fill(a: tuple[int | None, ...], b: tuple[int | None, ...]) -> tuple[int | None, ...]:
    if len(a) != len(b):
        return a
    return tuple(x if x is not None else y for x, y in zip(a, b))


def _check_merge(node: Node, ins: list[TensorState], diags: list[Diagnostic]) -> None:
    """Report merges of paths whose grids differ (misaligned) or whose centres differ."""
    if len(ins) < 2:
        return
    nsp = min(len(s.axes) for s in ins)
    for a in range(nsp):
        jumps: list[Fraction] = []
        doubled_centres: list[int] = []  # lo + hi of unit 0: twice its centre, an integer
        for s in ins:
            t, plain = s.location(a)
            w = s.axes[a].window
            if t is None or not plain or s.shape[t] == 1 or w is None or s.axes[a].is_global:
                continue
            j = w.jump
            if j is None:
                return
            lo, hi = w.at(0)
            jumps.append(j)
            doubled_centres.append(lo + hi)
        if len(set(jumps)) > 1:
            diags.append(
                Diagnostic(
                    "misaligned-merge",
                    "warning",
                    node.name,
                    f"axis {a}: merged paths have different jumps "
                    f"({', '.join(_frac(j) for j in jumps)}): their units do not line up",
                )
            )
        elif len(set(doubled_centres)) > 1:
            centres = (Fraction(c, 2) for c in doubled_centres)
            diags.append(
                Diagnostic(
                    "off-centre-merge",
                    "warning",
                    node.name,
                    f"axis {a}: merged paths are centred at different input positions "
                    f"({', '.join(_frac(c) for c in centres)} for unit 0)",
                )
            )


def _frac(x: Fraction) -> str:
    return str(x.numerator) if x.denominator == 1 else f"{x.numerator}/{x.denominator}"


def axis_geometry(
    st: TensorState, a: int, n_in: int | None
) -> tuple[AxisGeometry, Window | None, Real | None]:
    """Figures of input axis ``a`` seen from ``st`` (the producing op's kernel, stride, ... are
    added by the caller)."""
    t, plain = st.location(a)
    size = st.shape[t] if t is not None and plain else _rider_size(st, t, a)
    ax = st.axes[a]
    glob = ax.is_global
    w = ax.window if not st.uncertain else None
    rf = rf_min = start = None
    jump = centre = None
    phase_starts: tuple[int, ...] = ()
    misaligned = running = False
    cov_centre = cov_min = None
    full = None
    if w is not None:
        if (
            len(w.lo) == 1
            and len(w.hi) == 1
            and (first := w.lo[0]).period == 1
            and (last := w.hi[0]).period == 1
            and first.step == last.step
        ):
            # lo(i) = start + j*i and hi(i) = lo(i) + r - 1: every figure has a closed form
            start, hi0 = first.table[0], last.table[0]
            rf = rf_min = hi0 - start + 1
            jump = fraction(first.step, 1)  # the object QAMap.slope returns
            centre = fraction(start + hi0, 2)
        else:
            rf, rf_min, jump, start, centre, phase_starts, misaligned = _general(w, size)
            running = not misaligned and jump is None and size != 1  # (one unit: no growth)
    real = ax.real if w is not None and ax.real is not None else None
    if real is not None and (size is None or len(real.lo) != size):
        real = None
    if glob:
        if not st.uncertain and n_in is not None:
            cov_centre, cov_min, full = _global_coverage(ax.reach, real, size, n_in)
    elif w is not None and n_in is not None and size and real is not None:
        if real.simple:  # no empty unit: widths straight from the ends (in C)
            seen = list(map(sub, real.hi, real.lo))
            middle, least = seen[(size - 1) // 2] + 1, min(seen) + 1
        else:
            seen = [h - lo + 1 if lo <= h else 0 for lo, h in zip(real.lo, real.hi)]
            middle, least = seen[(size - 1) // 2], min(seen)
        cov_centre = middle / n_in
        cov_min = least / n_in
        full = max(real.lo) <= 0 and min(real.hi) >= n_in - 1
    geo = AxisGeometry(
        size,
        n_in,
        None,
        None,
        None,
        None,
        None,
        rf,
        rf_min,
        jump,
        start,
        centre,
        phase_starts,
        glob,
        misaligned,
        cov_centre,
        cov_min,
        full,
        # (what units read through a global path or, untracked one by one, together)
        ax.reach if (glob or w is None) and not st.uncertain else None,
        running,
    )
    return geo, w, real


def _rider_size(st: TensorState, t: int | None, a: int) -> int | None:
    """1 when input axis ``a`` is reduced to one unit riding along another axis (squeezed)."""
    return 1 if st.rides(a) else None


def _global_coverage(
    reach: tuple[int, int] | None, real: Real | None, size: int | None, n_in: int
) -> tuple[float | None, float | None, bool | None]:
    """Coverage of the centre unit and of the least-covering unit, and whether every unit sees
    the whole axis, when every unit depends on the real pixels ``reach`` (through a global op)
    besides its own local ones (``real``, if any)."""
    if reach is None:
        return None, None, None
    rlo, rhi = reach
    if real is None or not size or len(real.lo) != size:
        cov = (rhi - rlo + 1) / n_in
        return cov, cov, rlo <= 0 and rhi >= n_in - 1
    los = [min(lo, rlo) if lo <= hi else rlo for lo, hi in zip(real.lo, real.hi)]
    his = [max(hi, rhi) if lo <= hi else rhi for lo, hi in zip(real.lo, real.hi)]
    seen = [hi - lo + 1 for lo, hi in zip(los, his)]
    return (
        seen[(size - 1) // 2] / n_in,
        min(seen) / n_in,
        max(los) <= 0 and min(his) >= n_in - 1,
    )


def _with_op(g: AxisGeometry, op: AxisOp) -> AxisGeometry:
    """``g`` with the kernel, stride, dilation and padding of the op that produced the tensor."""
    return AxisGeometry(
        g.size,
        g.input_size,
        op.kernel,
        op.stride,
        op.dilation,
        op.pad_lo,
        op.pad_hi,
        g.rf,
        g.rf_min,
        g.jump,
        g.start,
        g.centre,
        g.phase_starts,
        g.is_global,
        g.misaligned,
        g.coverage_centre,
        g.coverage_min,
        g.full,
        g.reach,
        g.running,
    )


def _general(
    w: Window, size: int | None
) -> tuple[int, int, Fraction | None, int, Fraction, tuple[int, ...], bool]:
    """Staircases, misaligned and running windows: evaluate every unit (vectorised). Returns rf,
    rf_min, jump, start, centre, phase starts and whether the window is misaligned (merged
    paths on different grids, several maps a side); ``jump`` is ``None`` when the window's ends
    move at different rates (misaligned, or running)."""
    import numpy as np

    units = max(size if size is not None else w.period, 1)
    idx = np.arange(units, dtype=np.int64)

    def ev(m: QAMap) -> Any:
        return np.asarray(m.table, dtype=np.int64)[idx % m.period] + (idx // m.period) * m.step

    lo = np.min([ev(m) for m in w.lo], axis=0)
    hi = np.max([ev(m) for m in w.hi], axis=0)
    widths = hi - lo + 1
    lo0, hi0 = int(lo[0]), int(hi[0])
    period = w.period
    return (
        int(widths.max()),
        int(widths.min()),
        w.jump,
        lo0,
        Fraction(lo0 + hi0, 2),
        tuple(w.at(i)[0] for i in range(period)) if period > 1 else (),
        len(w.lo) > 1 or len(w.hi) > 1,
    )


@dataclass(frozen=True, slots=True)
class _Figures:
    """What a layer reports about one tensor state, before the producing op's parameters (kept
    in the state's ``memo``: layers that pass their input through report the same)."""

    input_sizes: tuple[int | None, ...]
    axes: tuple[AxisGeometry, ...]
    windows: tuple[Window | None, ...]
    reals: tuple[Real | None, ...]
    is_spatial: bool
    spatial_dims: tuple[int | None, ...]


def _figures(st: TensorState, input_sizes: tuple[int | None, ...]) -> _Figures:
    fig = st.memo
    if isinstance(fig, _Figures) and fig.input_sizes == input_sizes:
        return fig
    geos = []
    windows = []
    reals = []
    for a, ax in enumerate(st.axes):
        t, plain = st.location(a)
        # axis states are shared by tensors of different shapes: figures per size
        size = st.shape[t] if t is not None and plain else _rider_size(st, t, a)
        key = (size, st.uncertain, input_sizes[a])
        memo = ax.memo
        if memo is None:
            memo = {}
            object.__setattr__(ax, "memo", memo)
        hit = memo.get(key)
        if hit is None:
            hit = memo[key] = axis_geometry(st, a, input_sizes[a])
        g, w, r = hit
        geos.append(g)
        windows.append(w)
        reals.append(r)
    smap = st.spatial_map()
    fig = _Figures(
        input_sizes,
        tuple(geos),
        tuple(windows),
        tuple(reals),
        st.is_spatial_with(smap),
        tuple(smap.get(a) for a in range(len(st.axes))),
    )
    object.__setattr__(st, "memo", fig)
    return fig


def _layer(
    name: str,
    node: Node,
    out: str,
    st: TensorState,
    axis_ops: dict[int, AxisOp],
    status: str,
    input_sizes: tuple[int | None, ...],
    ins: list[TensorState],
) -> LayerResult:
    fig = _figures(st, input_sizes)
    geos = fig.axes
    if axis_ops:
        geos = tuple(
            g if axis_ops.get(a) is None else _with_op(g, axis_ops[a]) for a, g in enumerate(geos)
        )
    changes = node.op in GEOMETRY_KINDS or bool(axis_ops)
    if not changes:
        first = next((s for s in ins if s.live), None)
        if first is not None and first is not st:
            changes = first.uncertain != st.uncertain or any(
                first.axes[a].window != st.axes[a].window
                or first.axes[a].is_global != st.axes[a].is_global
                for a in range(min(len(first.axes), len(st.axes)))
            )
    return LayerResult(  # positional: one per node, keywords cost
        name,
        node.source_op,
        node.op,
        out,
        st.shape,
        geos,
        status,
        fig.is_spatial,
        changes,
        fig.spatial_dims,
        fig.windows,
        fig.reals,
    )
