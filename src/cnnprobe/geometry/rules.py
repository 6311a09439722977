"""The geometry registry: one small rule per IR operator kind.

A rule receives the node, the states of its data inputs and a :class:`RuleContext`, and returns one
:class:`TensorState` per output. Rules compute output shapes themselves (a declared shape from the
file is used only when an op's parameters are not static). Rules never see ONNX or Keras.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache, partial
from itertools import pairwise
from math import prod
from typing import Any

from ..ir import Dim, Node, Padding, Shape
from . import real as taps
from .arithmetic import (
    GeometryError,
    k_eff,
    resize_index_maps,
    resolve_pads,
    transpose_index_maps,
    transpose_out_size,
    transpose_pads,
    window_index_maps,
    window_out_size,
)
from .qamap import PeriodTooLarge, QAMap, fraction
from .real import Real, Span
from .state import (
    AxisState,
    Factor,
    Layout,
    TensorState,
    Window,
    block_wide,
    factor,
    hull,
    locations,
    per_block,
)


@dataclass(frozen=True, slots=True)
class AxisOp:
    """What an op did along one input spatial axis, for reports."""

    kernel: int | None = None
    stride: Fraction | None = None
    dilation: int | None = None
    pad_lo: int | None = None
    pad_hi: int | None = None


@dataclass
class Note:
    code: str
    severity: str
    message: str


class RuleContext:
    """What a rule may consult and report besides its inputs (one per node: a plain class with
    slots, as it is created for every node)."""

    __slots__ = ("axis_ops", "declared", "node", "notes", "uncertain")

    def __init__(self, node: Node, declared: list[Shape | None]) -> None:
        self.node = node
        self.declared = declared
        #: What the op did per input spatial axis (kernel, stride, ...), for reports.
        self.axis_ops: dict[int, AxisOp] = {}
        self.notes: list[Note] = []
        #: Set by a rule when its result must not be trusted (reason in ``notes``).
        self.uncertain = False

    def note(self, code: str, severity: str, message: str) -> None:
        n = Note(code, severity, message)
        if n not in self.notes:  # (a rule may meet the same problem on several axes)
            self.notes.append(n)

    def give_up(self, code: str, message: str) -> None:
        self.note(code, "warning", message)
        self.uncertain = True


Rule = Callable[[Node, Sequence[TensorState], RuleContext], list[TensorState]]
REGISTRY: dict[str, Rule] = {}


def rule(*ops: str) -> Callable[[Rule], Rule]:
    def register(fn: Rule) -> Rule:
        for op in ops:
            if op in REGISTRY:
                raise RuntimeError(f"two geometry rules for {op!r}")
            REGISTRY[op] = fn
        return fn

    return register


# ---------------------------------------------------------------------------------------------
# shared helpers


def _live(ins: Sequence[TensorState]) -> list[TensorState]:
    return [s for s in ins if s.live]


def _norm_axis(axis: int, rank: int) -> int:
    a = axis + rank if axis < 0 else axis
    if not 0 <= a < rank:
        raise GeometryError(f"axis {axis} out of range for rank {rank}")
    return a


def _set_size(layout: Layout, t: int, size: Dim) -> Layout:
    """New size of tensor axis ``t``; a plain axis keeps its identity, a folded one loses sizes."""
    factors = layout[t]
    if len(factors) == 1:  # the common case: one input axis or one other axis
        f = factors[0]
        kept = factor(size, f.spatial, f.carries, f.blend, f.part)
        return layout[:t] + ((kept,),) + layout[t + 1 :]
    big = [f for f in factors if f.size != 1]
    if len(big) <= 1:
        keep = big[0] if big else (factors[0] if factors else Factor(size))
        # input axes reduced to one unit ride along (a squeezed axis): they stay with the input
        # axis a window slides along (elsewhere, as on a channel axis, they are let go)
        riders = (
            tuple(f for f in factors if f is not keep and f.spatial is not None)
            if keep.spatial is not None
            else ()
        )
        new: tuple[Factor, ...] = (keep.resized(size), *riders)
    else:
        new = tuple(f.resized(None) for f in factors)
    return layout[:t] + (new,) + layout[t + 1 :]


#: ``(real, n_in, n_out) ->`` the first/last real pixel of each of ``n_out`` output units.
RealMap = Callable[[Real, int, int], Real]


def _spans(fn: Callable[..., list[Span]], **kw: Any) -> RealMap:
    """The real pixels read through a span function: ``fn(n_in, n_out, **kw)`` lists the input
    units each output unit reads."""

    def apply(real: Real, n_in: int, n_out: int) -> Real:
        return real.through(fn(n_in, n_out, **kw))

    return apply


_IDENTITY = QAMap.affine(0, 1)


def _blended(state: TensorState, t: int, ctx: RuleContext) -> None:
    """Taking part of, or sliding along, a tensor axis whose positions depend on different
    parts of the input is not followed (the state only knows their union)."""
    if any(f.blend for f in state.layout[t]):
        ctx.give_up(
            "blended-positions",
            f"taking part of tensor axis {t}, whose positions depend on different parts of the "
            "input (a bidirectional layer's two directions side by side)",
        )


def _move_window(
    state: TensorState,
    t: int,
    lo_idx: QAMap,
    hi_idx: QAMap,
    ctx: RuleContext,
    reads: RealMap | None = None,
    n_out: Dim = None,
) -> tuple[TensorState, int | None]:
    """Apply per-unit index maps along tensor axis ``t``; returns the spatial axis affected.

    ``reads(real, n_in, n_out)`` gives the real pixels each output unit depends on, from those
    of the input units (for the exact border figures); without it, or with unknown sizes, they
    are dropped.
    """
    if lo_idx == hi_idx == _IDENTITY and n_out == state.shape[t]:
        # unit i reads unit i (a 1x1 window, stride 1, no padding): nothing moves, whatever the
        # axis holds (positions without a grid, several input axes)
        moving = _moving(state.layout[t])
        return state, (moving[0] if len(moving) == 1 else None)
    _blended(state, t, ctx)
    carried = [a for f in state.layout[t] for a in f.carries if not state.axes[a].is_global]
    if carried:
        ctx.give_up(
            "untracked-positions",
            f"sliding along tensor axis {t}, whose positions are not tracked unit by unit "
            "(after a concatenation along it)",
        )
        for a in carried:
            state = state.set_axis(a, AxisState(None))
    spatial = _moving(state.layout[t])
    if not spatial:
        return state, None
    a = spatial[0]
    _, plain = state.location(a)
    if len(spatial) > 1 or not plain:
        ctx.give_up(
            "window-on-folded-axis",
            f"sliding along tensor axis {t}, which holds several input axes or part of one "
            "after a reshape",
        )
        return state.set_axis(a, state.axes[a].local(None)), a
    ax = state.axes[a]
    if ax.window is None:
        return state.set_axis(a, ax.local(None)), a
    try:
        window: Window | None = ax.window.through(lo_idx, hi_idx)
    except PeriodTooLarge:
        ctx.give_up("period-too-large", "upsampling pattern too irregular to track exactly")
        window = None
    n_in = state.shape[t]
    real = None
    if (
        ax.real is not None
        and reads is not None
        and n_in is not None
        and n_out is not None
        and len(ax.real.lo) == n_in  # (a stale table: the axis was resized by a mixing op)
    ):
        real = reads(ax.real, n_in, n_out)
    return state.set_axis(a, ax.local(window, real)), a


@lru_cache(maxsize=1 << 10)
def _window_op(k: int, s: int, d: int, lo: int, hi: int) -> AxisOp:
    """The report of a conv/pool along one axis (shared: networks repeat a few of them)."""
    return AxisOp(k, fraction(s), d, lo, hi)


def _spatial_of(state: TensorState, t: int) -> int | None:
    """The input spatial axis that tensor axis ``t`` holds alone (besides input axes reduced to
    one unit riding along), if any."""
    spatial = _moving(state.layout[t])
    if len(spatial) != 1 or not state.location(spatial[0])[1]:
        return None
    return spatial[0]


def _moving(factors: tuple[Factor, ...]) -> list[int]:
    """The input spatial axes a window sliding along a tensor axis with these factors moves
    over: input axes reduced to one unit that ride along (after a squeeze) stay where they are
    when another input axis is there."""
    spatial = [f.spatial for f in factors if f.spatial is not None]
    if len(spatial) > 1:
        moving = [f.spatial for f in factors if f.spatial is not None and f.size != 1]
        if len(moving) == 1:
            return moving
    return spatial


def _shape_with(shape: Shape, t: int, size: Dim) -> Shape:
    return shape[:t] + (size,) + shape[t + 1 :]


def _need(x: Dim, what: str) -> int:
    if x is None:
        raise GeometryError(f"{what} is unknown (give --input-shape)")
    return x


def _axes_attr(node: Node, rank: int) -> list[int]:
    """``axes`` of a reduce/mix node, or every axis from ``axes_from`` on (up to, not
    including, ``axes_to`` if given)."""
    if "axes_from" in node.attrs:
        to = node.attrs.get("axes_to")
        stop = rank if to is None else _norm_axis(to, rank)
        return list(range(_norm_axis(node.attrs["axes_from"], rank), stop))
    axes = node.attrs.get("axes")
    if axes is None:
        raise GeometryError("the axes are computed at run time")
    return [_norm_axis(t, rank) for t in axes]


def _per_axis(
    values: Sequence[Any] | None,
    axes: Sequence[int] | None,
    rank: int,
    fill: Any,
) -> list[Any] | None:
    """Values given for ``axes`` only (ONNX ``axes`` input/attribute) spread over all axes."""
    if values is None or axes is None:
        return None if values is None else list(values)
    full = [fill] * rank
    for ax, v in zip(axes, values):
        full[_norm_axis(ax, rank)] = v
    return full


def _declared(ctx: RuleContext, k: int = 0) -> Shape | None:
    return ctx.declared[k] if k < len(ctx.declared) else None


# ---------------------------------------------------------------------------------------------
# window operators


@rule("window", "pool")
def window_rule(node: Node, ins: Sequence[TensorState], ctx: RuleContext) -> list[TensorState]:
    x = ins[0]
    a = node.attrs
    axes: tuple[int, ...] = tuple(_norm_axis(t, x.rank) for t in a["spatial_axes"])
    kernel, strides, dils = a["kernel"], a["strides"], a["dilations"]
    padding: Padding = a["padding"]
    ceil_mode = bool(a.get("ceil_mode", False))
    out = x
    shape = x.shape
    for e, t in enumerate(axes):
        k, s, d = kernel[e], strides[e], dils[e]
        n = x.shape[t]
        lo0 = padding.lo[e] if padding.lo else 0
        hi0 = padding.hi[e] if padding.hi else 0
        pads = resolve_pads(padding.mode, lo0, hi0, n, k, s, d)
        if pads is None:
            raise GeometryError(f"'same' padding needs the size of axis {t} (give --input-shape)")
        lo, hi = pads
        size = None if n is None else window_out_size(n, k, s, d, lo, hi, ceil_mode)
        sp = _spatial_of(out, t) if k == 1 and s == 1 and lo == 0 and hi == 0 else None
        if sp is not None and out.axes[sp].window is not None and n is not None:
            # a 1x1 window (pointwise conv): every unit reads the unit below it, so the axis
            # keeps its window and real pixels (the same objects: their figures are reused)
            ctx.axis_ops[sp] = _window_op(1, 1, d, 0, 0)
            out = out.evolve(layout=_set_size(out.layout, t, size))
            continue
        first, last = window_index_maps(k, s, d, lo)
        out, sp = _move_window(
            out,
            t,
            first,
            last,
            ctx,
            partial(taps.through_strided, first=-lo, s=s, d=d, k=k),
            size,
        )
        if sp is not None:
            ctx.axis_ops[sp] = _window_op(k, s, d, lo, hi)
        shape = _shape_with(shape, t, size)
        out = out.evolve(layout=_set_size(out.layout, t, size))
    ch = a.get("channel_axis")
    if ch is not None:
        c = _norm_axis(ch, x.rank)
        out = out.make_global([c], keep_window=True)
        channels = a.get("out_channels")
        mult = a.get("channel_multiplier")  # (a depthwise conv: input channels times this)
        if channels is None and mult is not None and x.shape[c] is not None:
            channels = x.shape[c] * mult
        shape = _shape_with(shape, c, channels)
        out = out.evolve(layout=_set_size(out.layout, c, shape[c]))
    return [out.evolve(shape=shape)]


@rule("window_transpose")
def transpose_conv_rule(
    node: Node, ins: Sequence[TensorState], ctx: RuleContext
) -> list[TensorState]:
    x = ins[0]
    a = node.attrs
    axes = tuple(_norm_axis(t, x.rank) for t in a["spatial_axes"])
    padding: Padding = a["padding"]
    out_sizes = a.get("output_size")
    out_pads = a.get("output_padding") or (0,) * len(axes)
    out, shape = x, x.shape
    for e, t in enumerate(axes):
        k, s, d = a["kernel"][e], a["strides"][e], a["dilations"][e]
        n = x.shape[t]
        target = out_sizes[e] if out_sizes else None
        if padding.mode == "explicit" and target is None:
            lo, hi = padding.lo[e], padding.hi[e]
        elif padding.mode == "valid" and target is None:
            lo, hi = 0, 0
        else:
            nn = _need(n, f"size of axis {t}")
            lo, hi = transpose_pads(padding.mode, nn, k, s, d, out_pads[e], target)
        size = None if n is None else transpose_out_size(n, k, s, d, lo, hi, out_pads[e])
        if size is not None and size <= 0:
            raise GeometryError(f"transposed convolution gives size {size} on axis {t}")
        first, last, empty = transpose_index_maps(k, s, d, lo)
        if empty:
            ctx.note(
                "transpose-gaps",
                "warning",
                f"stride {s} exceeds the kernel span {k_eff(k, d)} on axis {t}: some output "
                "units read no input pixel (only the bias)",
            )
        out, sp = _move_window(
            out,
            t,
            first,
            last,
            ctx,
            _spans(taps.transposed, s=s, d=d, k=k, lo=lo),
            size,
        )
        if sp is not None:
            ctx.axis_ops[sp] = AxisOp(k, Fraction(1, s), d, lo, hi)
        shape = _shape_with(shape, t, size)
        out = out.evolve(layout=_set_size(out.layout, t, size))
    c = _norm_axis(a["channel_axis"], x.rank)
    out = out.make_global([c], keep_window=True)
    shape = _shape_with(shape, c, a.get("out_channels"))
    out = out.evolve(layout=_set_size(out.layout, c, shape[c]))
    return [out.evolve(shape=shape)]


@rule("pad")
def pad_rule(node: Node, ins: Sequence[TensorState], ctx: RuleContext) -> list[TensorState]:
    x = ins[0]
    pads = _per_axis(node.attrs.get("pads"), node.attrs.get("pad_axes"), x.rank, (0, 0))
    if pads is None:
        return [_resized_by_declaration(x, ctx, "pads-not-static", "pad amounts")]
    if len(pads) != x.rank:
        raise GeometryError(f"{len(pads)} pad pairs for a tensor of rank {x.rank}")
    mode = str(node.attrs.get("mode", "constant")).lower()
    out, shape = x, x.shape
    for t, (lo, hi) in enumerate(pads):
        if lo == 0 and hi == 0:
            continue
        n = x.shape[t]
        size = None if n is None else n + lo + hi
        if size is not None and size <= 0:
            raise GeometryError(f"padding {lo},{hi} leaves nothing of axis {t} (size {n})")
        m = QAMap.affine(-lo, 1)
        out, sp = _move_window(out, t, m, m, ctx, _spans(taps.padded, lo=lo, mode=mode), size)
        if sp is not None:
            ctx.axis_ops[sp] = AxisOp(pad_lo=lo, pad_hi=hi)
        shape = _shape_with(shape, t, size)
        out = out.evolve(layout=_set_size(out.layout, t, size))
    return [out.evolve(shape=shape)]


def _slice_bounds(n: int, start: int, end: int, step: int) -> tuple[int, int]:
    """First index and length of ``range(start, end, step)`` clamped as numpy/ONNX do."""
    if step == 0:
        raise GeometryError("slice step 0")
    lo_clamp, hi_clamp = (0, n) if step > 0 else (-1, n - 1)
    start = start + n if start < 0 else start
    end = end + n if end < 0 else end
    start = min(max(start, lo_clamp), hi_clamp)
    end = min(max(end, lo_clamp), hi_clamp)
    length = max(0, -(-(end - start) // step)) if step > 0 else max(0, -(-(start - end) // -step))
    return start, length


@rule("slice")
def slice_rule(node: Node, ins: Sequence[TensorState], ctx: RuleContext) -> list[TensorState]:
    x = ins[0]
    slices = node.attrs.get("slices")
    if slices is None:
        return [_resized_by_declaration(x, ctx, "slice-not-static", "slice bounds")]
    out, shape = x, x.shape
    for axis, start, end, step in slices:
        t = _norm_axis(axis, x.rank)
        n = x.shape[t]
        first: int
        length: int | None
        if n is None:
            if start >= 0 and step > 0 and end >= (1 << 62):
                first, length = start, None
            else:
                raise GeometryError(f"slicing axis {t} of unknown size (give --input-shape)")
        else:
            first, known = _slice_bounds(n, start, end, step)
            length = known
        if step < 0:
            ctx.give_up("reversed-axis", f"negative slice step reverses tensor axis {t}")
            spatial = [f.spatial for f in out.layout[t] if f.spatial is not None]
            for gone in spatial:
                out = out.set_axis(gone, out.axes[gone].local(None))
        else:
            m = QAMap.affine(first, step)
            out, sp = _move_window(
                out,
                t,
                m,
                m,
                ctx,
                _spans(taps.affine, first=first, step=step),
                length,
            )
            if sp is not None:
                ctx.axis_ops[sp] = AxisOp(stride=Fraction(step), pad_lo=-first)
        shape = _shape_with(shape, t, length)
        out = out.evolve(layout=_set_size(out.layout, t, length))
    return [out.evolve(shape=shape)]


def _float32(x: float) -> float:
    """``x`` rounded to the nearest float32 (a float32 scale times a size: runtimes multiply in
    float32, so 30 * 0.7f is 21, not the 20.99... of double precision)."""
    try:
        return float(struct.unpack("f", struct.pack("f", x))[0])
    except OverflowError:  # beyond float32: nothing to round
        return x


@rule("resize")
def resize_rule(node: Node, ins: Sequence[TensorState], ctx: RuleContext) -> list[TensorState]:
    x = ins[0]
    a = node.attrs
    scales = _per_axis(a.get("scales"), a.get("axes"), x.rank, 1.0)
    sizes = _per_axis(a.get("sizes"), a.get("axes"), x.rank, None)
    if sizes is not None and a.get("axes") is not None:
        sizes = [x.shape[t] if d is None else d for t, d in enumerate(sizes)]
    decl = _declared(ctx)
    if scales is None and sizes is None:
        if decl is None:
            raise GeometryError("resize target is computed at run time and no shape is recorded")
        sizes = list(decl)
    out, shape = x, x.shape
    for t in range(x.rank):
        n = x.shape[t]
        if sizes is not None:
            size = sizes[t]
            if size is None:  # this axis is not resized
                continue
            if n is None:
                if not _has_spatial(x.layout[t]):  # e.g. a symbolic batch
                    shape = _shape_with(shape, t, size)
                    continue
                raise GeometryError(f"resize of axis {t} with unknown size (give --input-shape)")
            scale = Fraction(size, n)
        else:
            assert scales is not None
            factor = float(scales[t])
            scale = Fraction(factor).limit_denominator(1 << 12)
            if n is None:
                if scale == 1:
                    continue
                raise GeometryError(f"resize of axis {t} with unknown size (give --input-shape)")
            # as runtimes compute it: the float32 product, truncated
            size = int(_float32(_float32(factor) * n))
        if size == n and scale == 1 and a.get("coord_mode") != "align_corners":
            continue
        if size <= 0:
            raise GeometryError(f"resize gives size {size} on axis {t}")
        first, last = resize_index_maps(
            scale,
            n,
            size,
            a.get("mode", "nearest"),
            a.get("coord_mode", "half_pixel"),
            a.get("nearest_mode", "round_prefer_floor"),
            bool(a.get("antialias", False)),
        )
        out, sp = _move_window(
            out,
            t,
            first,
            last,
            ctx,
            _spans(taps.clamped, lo_idx=first, hi_idx=last),
            size,
        )
        if sp is not None:
            ctx.axis_ops[sp] = AxisOp(stride=1 / scale)
        shape = _shape_with(shape, t, size)
        out = out.evolve(layout=_set_size(out.layout, t, size))
    return [out.evolve(shape=shape)]


@rule("space_to_depth", "depth_to_space")
def block_rule(node: Node, ins: Sequence[TensorState], ctx: RuleContext) -> list[TensorState]:
    x = ins[0]
    b = int(node.attrs["block"])
    given = node.attrs.get("spatial_axes")
    axes = [_norm_axis(t, x.rank) for t in given] if given else list(range(2, x.rank))
    c = _norm_axis(node.attrs["channel_axis"], x.rank)
    to_depth = node.op == "space_to_depth"
    out, shape = x, x.shape
    for t in axes:
        n = x.shape[t]
        if to_depth:
            if n is not None and n % b:
                raise GeometryError(f"size {n} of axis {t} is not a multiple of block {b}")
            first, last = window_index_maps(b, b, 1, 0)
            size = None if n is None else n // b
        else:
            first = last = QAMap(b, 1, (0,) * b)
            size = None if n is None else n * b
        out, sp = _move_window(
            out,
            t,
            first,
            last,
            ctx,
            _spans(taps.blocks, b=b, to_depth=to_depth),
            size,
        )
        if sp is not None:
            ctx.axis_ops[sp] = AxisOp(
                b if to_depth else None, Fraction(b) if to_depth else Fraction(1, b)
            )
        shape = _shape_with(shape, t, size)
        out = out.evolve(layout=_set_size(out.layout, t, size))
    ch = x.shape[c]
    factor = b ** len(axes)
    new_c = None if ch is None else (ch * factor if to_depth else ch // factor)
    shape = _shape_with(shape, c, new_c)
    out = out.evolve(layout=_set_size(out.layout, c, new_c))
    return [out.evolve(shape=shape)]


# ---------------------------------------------------------------------------------------------
# mixing operators


@rule("reduce")
def reduce_rule(node: Node, ins: Sequence[TensorState], ctx: RuleContext) -> list[TensorState]:
    x = ins[0]
    axes = sorted(set(_axes_attr(node, x.rank)) or range(x.rank))
    return [_reduced(x, axes, bool(node.attrs.get("keepdims", True)))]


def _reduced(x: TensorState, axes: Sequence[int], keepdims: bool) -> TensorState:
    """Every unit depends on all positions along tensor ``axes`` (sorted), which are then kept
    with size 1 or removed (input axes they held ride along with the others)."""
    out = x.make_global(axes, keep_window=False)
    if keepdims:
        layout = out.layout
        shape = out.shape
        for t in axes:
            layout = _set_size(layout, t, 1)
            shape = _shape_with(shape, t, 1)
        return out.evolve(layout=layout, shape=shape)
    keep = [t for t in range(x.rank) if t not in axes]
    riders = tuple(
        Factor(1, a) for t in axes for f in out.layout[t] for a in _spatial_ids((f,))
    )
    layout = _attach(tuple(out.layout[t] for t in keep), riders)
    return out.evolve(layout=layout, shape=tuple(out.shape[t] for t in keep))


@rule("mix")
def mix_rule(node: Node, ins: Sequence[TensorState], ctx: RuleContext) -> list[TensorState]:
    """Statistics over some axes (normalisations, softmax). Several data inputs (a residual
    added first, as in ``SkipLayerNormalization``) are merged elementwise before."""
    live = _live(ins)
    x = live[0] if len(live) == 1 else ins[0]
    if len(live) > 1:
        x = _merge(live, _elementwise_shape(node, ins), ctx)
    return [x.make_global(_axes_attr(node, x.rank), keep_window=True)]


@rule("dense")
def dense_rule(node: Node, ins: Sequence[TensorState], ctx: RuleContext) -> list[TensorState]:
    x = ins[0]
    return [_contracted(x, _norm_axis(node.attrs.get("axis", -1), x.rank), node.attrs.get("units"))]


def _contracted(x: TensorState, t: int, units: Dim) -> TensorState:
    """Tensor axis ``t`` replaced by ``units`` outputs that each read all of it."""
    out = x.make_global([t], keep_window=False)
    layout = out.layout[:t] + ((Factor(units),),) + out.layout[t + 1 :]
    return out.evolve(layout=layout, shape=_shape_with(x.shape, t, units))


# ---------------------------------------------------------------------------------------------
# running and recurrent operators


def _running(n_in: int, n_out: int, reverse: bool) -> list[Span]:
    """Spans of a running op: unit ``i`` reads ``0..i`` (``i..n-1`` in reverse)."""
    return [(i, n_in - 1, 1) if reverse else (0, i, 1) for i in range(n_out)]


def _scanned(x: TensorState, t: int, reverse: bool, ctx: RuleContext) -> TensorState:
    """Unit ``i`` along tensor axis ``t`` depends on units ``0..i`` (``i..n-1`` in reverse) of
    ``x``: windows whose one end stays while the other moves with the unit."""
    if not any(f.spatial is not None or f.carries for f in x.layout[t]):
        return x  # (no input axis along it: every unit keeps its windows)
    if reverse:
        n = x.shape[t]
        if n is None:
            ctx.give_up("unknown-size", f"running backwards along tensor axis {t} of unknown size")
            return _forget(x, t)
        lo_idx, hi_idx = QAMap.affine(0, 1), QAMap.constant(n - 1)
    else:
        lo_idx, hi_idx = QAMap.constant(0), QAMap.affine(0, 1)
    out, a = _move_window(
        x, t, lo_idx, hi_idx, ctx, _spans(_running, reverse=reverse), x.shape[t]
    )
    w = out.axes[a].window if a is not None else None
    if w is not None and x.shape[t] != 1 and all(m.step == 0 for m in w.lo + w.hi):
        # running both ways (a forward then a backward pass): every unit has read every unit
        return x.make_global([t], keep_window=True)
    return out


def _forget(x: TensorState, t: int) -> TensorState:
    """``x`` without the windows of the input axes that tensor axis ``t`` holds."""
    hit = {f.spatial for f in x.layout[t]} | {a for f in x.layout[t] for a in f.carries}
    return x.with_axes(ax.local(None) if a in hit else ax for a, ax in enumerate(x.axes))


@rule("scan")
def scan_rule(node: Node, ins: Sequence[TensorState], ctx: RuleContext) -> list[TensorState]:
    x = ins[0]
    t = _norm_axis(node.attrs["axis"], x.rank)
    if node.attrs.get("exclusive") and any(f.spatial is not None for f in x.layout[t]):
        # unit 0 (the last one in reverse) reads nothing at all: no window describes that
        ctx.give_up(
            "exclusive-scan",
            f"exclusive running op along tensor axis {t}: its first unit reads no input",
        )
        return [_forget(x, t)]
    return [_scanned(x, t, bool(node.attrs.get("reverse")), ctx)]


def _covers(idx: TensorState, data: TensorState, a: int) -> bool:
    """The indices depend on every position along input axis ``a`` that the data reads (so
    whatever position an index picks adds nothing they do not already read)."""
    if a >= len(idx.axes) or not idx.axes[a].is_global:
        return False
    reach, span = idx.axes[a].reach, data.axes[a].span()
    return reach is not None and span is not None and reach[0] <= span[0] and reach[1] >= span[1]


@rule("select")
def select_rule(node: Node, ins: Sequence[TensorState], ctx: RuleContext) -> list[TensorState]:
    """Each output element reads the data at a position along the axis that its index gives:
    with indices computed from the input, which position is read depends on them, so every
    element may read any position. Exact when the indices themselves already depend on every
    pixel the data reads along that axis (a TopK over all of it: detectors' end-to-end heads);
    otherwise the positions read are not tracked."""
    data, idx = ins[0], ins[1]
    t = _norm_axis(node.attrs.get("axis", 0), data.rank)
    if idx.rank != data.rank:
        raise GeometryError("indices and data of different ranks")
    held = _spatial_ids(data.layout[t])
    if held and (not idx.live or not all(_covers(idx, data, a) for a in held)):
        ctx.give_up(
            "picked-positions",
            f"picking positions along tensor axis {t} at indices that do not depend on all of "
            "them",
        )
        return [_forget(data, t).evolve(shape=idx.shape)]
    parts = [p for p in (_contracted(data, t, idx.shape[t]), idx) if p.live]
    if not parts:
        return [TensorState.const(idx.shape)]
    return [_merge(parts, idx.shape, ctx) if len(parts) > 1 else parts[0]]


@rule("recurrent")
def recurrent_rule(node: Node, ins: Sequence[TensorState], ctx: RuleContext) -> list[TensorState]:
    """Every step's input features are contracted by the input weights (a dense layer along the
    feature axis); along the sequence axis step ``t`` has read steps ``0..t`` (forward),
    ``t..n-1`` (reverse), all of them (bidirectional, or the final state)."""
    x = ins[0]
    a = node.attrs
    if x.rank != 3:
        raise GeometryError(f"a recurrent layer reads a rank-3 sequence, not rank {x.rank}")
    seq = _norm_axis(a["seq_axis"], x.rank)
    feat = _norm_axis(a["feature_axis"], x.rank)
    if seq == feat:
        raise GeometryError("the sequence and feature axes are the same axis")
    outs = []
    for spec in a["outputs"]:
        st = _contracted(x, feat, spec.units)
        if not spec.sequence:
            st = _reduced(st, [seq], keepdims=False)
        elif spec.direction != "bidirectional":
            st = _scanned(st, seq, spec.direction == "reverse", ctx)
        else:
            # every step has read every step, together: through one direction (merged: each
            # element) or the other (side by side: the directions' axis, or the features, is
            # blended, so that taking one direction is not mistaken for both)
            st = st.make_global([seq], keep_window=True)
            if not spec.merged and spec.dir_axis is None:
                st = _carrying(st, feat, _moving(x.layout[seq]))
        if spec.dir_axis is not None:
            d = 2 if spec.direction == "bidirectional" else 1
            st = _inserted(st, [spec.dir_axis], d)
            if spec.direction == "bidirectional" and spec.sequence and not spec.merged:
                st = _carrying(st, spec.dir_axis, _moving(x.layout[seq]))
        outs.append(st)
    return outs


def _carrying(st: TensorState, t: int, held: Sequence[int]) -> TensorState:
    """Tensor axis ``t`` also carries the positions of input axes ``held``, its own positions
    telling apart parts of the input (blended)."""
    if not held:
        return st
    carried = tuple(
        factor(f.size, f.spatial, tuple(sorted({*f.carries, *held})), True, f.part)
        for f in st.layout[t]
    )
    return st.evolve(layout=st.layout[:t] + (carried,) + st.layout[t + 1 :])


@rule("gemm")
def gemm_rule(node: Node, ins: Sequence[TensorState], ctx: RuleContext) -> list[TensorState]:
    a_in = ins[0]
    if a_in.rank != 2:
        raise GeometryError(f"Gemm input of rank {a_in.rank}, expected 2")
    ta = bool(node.attrs.get("trans_a", False))
    k_axis, m_axis = (0, 1) if ta else (1, 0)
    if len(ins) > 1 and ins[1].rank == 2:
        _contracts(a_in.shape[k_axis], ins[1].shape[1 if node.attrs.get("trans_b") else 0])
    a = a_in.make_global([k_axis], keep_window=False)
    units = node.attrs.get("units")
    rows = (a.layout[m_axis], (Factor(units),))
    parts = [a.evolve(layout=rows, shape=(a.shape[m_axis], units))]
    if len(ins) > 1 and ins[1].live:
        b = ins[1]
        tb = bool(node.attrs.get("trans_b", False))
        kb, nb = (1, 0) if tb else (0, 1)
        b = b.make_global([kb], keep_window=False)
        parts.append(b.evolve(layout=((Factor(1),), b.layout[nb]), shape=(1, b.shape[nb])))
    return [_merge(parts, (a.shape[m_axis], units), ctx)]


def _contracts(k_a: Dim, k_b: Dim) -> None:
    """A matrix product's operands must agree on the contracted size (a classifier made for one
    input size, analysed at another with ``--input-shape``, cannot run)."""
    if k_a is not None and k_b is not None and k_a != k_b:
        raise GeometryError(
            f"contracts {k_a} values with an operand made for {k_b}: the model cannot run at "
            "this input size"
        )


@rule("matmul")
def matmul_rule(node: Node, ins: Sequence[TensorState], ctx: RuleContext) -> list[TensorState]:
    a, b = ins[0], ins[1]
    if a.rank < 2 or b.rank < 2:
        raise GeometryError("MatMul with a 1-D operand is not supported")
    # (onnxruntime's FusedMatMul transposes the last two axes of an operand first)
    if node.attrs.get("trans_a"):
        a = _permute(a, (*range(a.rank - 2), a.rank - 1, a.rank - 2))
    if node.attrs.get("trans_b"):
        b = _permute(b, (*range(b.rank - 2), b.rank - 1, b.rank - 2))
    _contracts(a.shape[-1], b.shape[-2])
    a = a.make_global([a.rank - 1], keep_window=False)
    b = b.make_global([b.rank - 2], keep_window=False)
    batch = _broadcast_shape([a.shape[:-2], b.shape[:-2]])
    out_shape = batch + (a.shape[-2], b.shape[-1])
    # A contributes rows (its axis -2), B contributes columns (its axis -1)
    a_part = a.evolve(layout=a.layout[:-1] + ((Factor(1),),), shape=a.shape[:-1] + (1,))
    b_part = b.evolve(
        layout=b.layout[:-2] + ((Factor(1),),) + b.layout[-1:],
        shape=b.shape[:-2] + (1,) + b.shape[-1:],
    )
    live = [p for p in (a_part, b_part) if p.live]
    return [_merge(_one_axis_each(live, len(out_shape)), out_shape, ctx)]


@rule("einsum")
def einsum_rule(node: Node, ins: Sequence[TensorState], ctx: RuleContext) -> list[TensorState]:
    """Each operand's axes are labelled by the equation: a label the output keeps maps the axis
    there (as a transpose would), a label summed away makes every output depend on all of that
    axis (global, as a matrix product over it). The operands' parts are then merged."""
    terms, out_labels = _einsum_labels(str(node.attrs["equation"]), [s.rank for s in ins])
    sizes: dict[str, list[Dim]] = {}
    for s, labels in zip(ins, terms):
        for lab, d in zip(labels, s.shape):
            sizes.setdefault(lab, []).append(d)
    out_shape = tuple(_broadcast_shape([(d,) for d in sizes[lab]])[0] for lab in out_labels)
    parts = []
    for s, labels in zip(ins, terms):
        if not s.live:
            continue
        summed = [t for t, lab in enumerate(labels) if lab not in out_labels]
        s = s.make_global(summed, keep_window=False)
        where = {lab: t for t, lab in enumerate(labels)}
        layout = tuple(
            s.layout[where[lab]] if lab in where else (Factor(1),) for lab in out_labels
        )
        shape = tuple(s.shape[where[lab]] if lab in where else 1 for lab in out_labels)
        parts.append(s.evolve(layout=layout, shape=shape))
    return [_merge(_one_axis_each(parts, len(out_shape)), out_shape, ctx)]


def _one_axis_each(parts: list[TensorState], rank: int) -> list[TensorState]:
    """Operands of a product whose positions of one input axis land on different output axes
    (scores between the positions of two maps: [.., t, s]): along the first such axis, a unit
    reads its own window in the first operand and every position of the others. Those others
    are made global over their axis, which then holds no input axis."""
    first: dict[tuple[int, int], int] = {}
    out = []
    for p in parts:
        off = rank - p.rank
        moved = []
        for t, fs in enumerate(p.layout):
            for f in fs:
                if f.spatial is None or f.size == 1:
                    continue
                # (the blocks and the offsets of an axis split into blocks are apart anyway)
                at = first.setdefault((f.spatial, (f.part > 0) - (f.part < 0)), t + off)
                if at != t + off:
                    moved.append(t)
        if moved:
            p = p.make_global(moved, keep_window=False)
            layout = tuple(
                tuple(factor(f.size) if f.spatial is not None else f for f in fs)
                if t in moved
                else fs
                for t, fs in enumerate(p.layout)
            )
            p = p.evolve(layout=layout)
        out.append(p)
    return out


def _einsum_labels(equation: str, ranks: Sequence[int]) -> tuple[list[list[str]], list[str]]:
    """Per operand, one label per axis, and the output's labels. An ellipsis stands for the
    same broadcast axes everywhere (labelled ``.0``, ``.1``, ... right-aligned)."""
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(ranks):
        raise GeometryError(f"einsum {equation!r} names {len(terms)} operands, not {len(ranks)}")
    widest = 0
    parsed: list[tuple[str, str, bool]] = []
    for term, rank in zip(terms, ranks):
        head, dots, tail = term.partition("...")
        letters = head + tail
        if not letters.isalpha() and letters:
            raise GeometryError(f"einsum {equation!r}: unsupported term {term!r}")
        n_ell = rank - len(letters)
        if n_ell < 0 or (n_ell and not dots):
            raise GeometryError(f"einsum {equation!r}: term {term!r} does not fit rank {rank}")
        widest = max(widest, n_ell)
        parsed.append((head, tail, bool(dots)))
    labelled: list[list[str]] = []
    for (first, last, has_dots), rank in zip(parsed, ranks):
        n_ell = rank - len(first) - len(last)
        ell = [f".{k}" for k in range(widest - n_ell, widest)] if has_dots else []
        labels = [*first, *ell, *last]
        if len(set(labels)) != len(labels):
            raise GeometryError(f"einsum {equation!r}: diagonals (repeated labels) are not tracked")
        labelled.append(labels)
    if arrow:
        head, dots, tail = rhs.partition("...")
        out = [*head, *([f".{k}" for k in range(widest)] if dots else []), *tail]
    else:  # implicit output: the broadcast axes, then the labels used once, alphabetically
        counts: dict[str, int] = {}
        for labels in labelled:
            for lab in labels:
                if not lab.startswith("."):
                    counts[lab] = counts.get(lab, 0) + 1
        out = [f".{k}" for k in range(widest)] + sorted(k for k, c in counts.items() if c == 1)
    known = {lab for labels in labelled for lab in labels}
    if any(lab not in known for lab in out) or len(set(out)) != len(out):
        raise GeometryError(f"einsum {equation!r}: bad output labels")
    return labelled, out


# ---------------------------------------------------------------------------------------------
# merges and layout changes


def _broadcast_shape(shapes: Sequence[Shape]) -> Shape:
    first = shapes[0] if shapes else ()
    if all(s == first for s in shapes):
        return first
    rank = max((len(s) for s in shapes), default=0)
    out: list[Dim] = []
    for t in range(rank):
        dims = [s[t - rank + len(s)] for s in shapes if t - rank + len(s) >= 0]
        known = {d for d in dims if d is not None and d != 1}
        if len(known) > 1:
            raise GeometryError(f"shapes {', '.join(map(str, shapes))} do not broadcast")
        if known:
            out.append(known.pop())
        elif any(d is None for d in dims):
            out.append(None)
        else:
            out.append(1)
    return tuple(out)


def _merge(parts: Sequence[TensorState], out_shape: Shape, ctx: RuleContext) -> TensorState:
    """Union of the dependences of live ``parts``, broadcast (numpy rules) to ``out_shape``."""
    rank = len(out_shape)
    nspatial = max(len(p.axes) for p in parts)
    layout: list[tuple[Factor, ...] | None] = [None] * rank
    windows: list[list[Window | None]] = [[] for _ in range(nspatial)]
    reals: list[list[tuple[Real | None, bool]]] = [[] for _ in range(nspatial)]
    glob = [False] * nspatial
    reach: list[tuple[int, int] | None] = [None] * nspatial  # of the global parts, hulled
    # the local parts per axis (what they read together matters when some are untracked)
    local: list[list[AxisState]] = [[] for _ in range(nspatial)]
    # output axis -> input axes a part broadcasts along it (a row repeated down a map)
    broadcast_at: dict[int, set[int]] = {}
    for p in parts:
        off = rank - p.rank
        broadcast_spatial: set[int] = set()
        for t in range(p.rank):
            n_out = out_shape[t + off]
            if p.shape[t] == 1 and n_out != 1:
                ids = {f.spatial for f in p.layout[t] if f.spatial is not None}
                broadcast_spatial |= ids
                broadcast_at.setdefault(t + off, set()).update(ids)
                continue
            mine = p.layout[t]
            if layout[t + off] is None or not _has_spatial(layout[t + off]):
                layout[t + off] = mine
            elif _has_spatial(mine) and _spatial_ids(mine) != _spatial_ids(layout[t + off]):
                ctx.give_up(
                    "crossed-axes",
                    f"merging tensors whose axis {t + off} holds different input axes",
                )
        for sp, ax in enumerate(p.axes):
            if ax.is_global:
                reach[sp] = hull(reach[sp], ax.reach) if glob[sp] else ax.reach
                glob[sp] = True
            w = ax.window
            if ax.is_global and w is None:
                continue
            if not ax.is_global:
                local[sp].append(ax)
            if w is not None and sp in broadcast_spatial:
                zero = QAMap.constant(0)
                w = w.through(zero, zero)
            windows[sp].append(w)
            reals[sp].append((ax.real, sp in broadcast_spatial))
    axes = []
    for sp in range(nspatial):
        ws = windows[sp]
        if not ws or any(w is None for w in ws):
            win = None
        else:
            win = ws[0]
            for w in ws[1:]:
                if win is None or w is None:
                    break
                try:
                    win = win.union(w)
                except PeriodTooLarge:
                    ctx.give_up("period-too-large", "merge too irregular to track exactly")
                    win = None
                    break
        if win is None and not glob[sp]:  # untracked units (or unknown: no span)
            axes.append(AxisState.untracked(hull(*(ax.span() for ax in local[sp]))))
        else:
            axes.append(AxisState(win, glob[sp], None, reach[sp]))
    for t, ids in broadcast_at.items():
        # no part holds this axis at full size (an Expand of one row): the broadcast axis still
        # runs along the input axis, every unit reading the same row
        if layout[t] is None and len(ids) == 1 and out_shape[t] is not None:
            layout[t] = (factor(out_shape[t], next(iter(ids))),)
    full_layout = tuple(
        _fit(lay, d) if lay is not None else (Factor(d),) for lay, d in zip(layout, out_shape)
    )
    riders = [f.spatial for fs in full_layout if len(fs) > 1 for f in fs if f.size == 1]
    grid = (
        {f.spatial for fs in full_layout for f in fs if f.spatial is not None and f.size != 1}
        if any(a is not None for a in riders)
        else ()
    )
    if grid and any(a in grid for a in riders):
        # an input axis one part holds on a grid and another carries reduced to one unit
        # riding along another axis (a gate broadcast back onto a map): the grid it is
        full_layout = tuple(
            tuple(f for f in fs if not (f.size == 1 and f.spatial in grid)) or (Factor(d),)
            for fs, d in zip(full_layout, out_shape)
        )
    where = locations(full_layout)
    for sp in range(nspatial):
        at = where.get(sp, (None, False))[0]
        # units along this input axis: its factor's size (an axis folded with others by a
        # reshape, as attention does with positions, keeps its units)
        n = _units(full_layout, sp) if at is not None else None
        rs = reals[sp]
        merged: Real | None = None
        if axes[sp].window is not None and n is not None and rs and all(r for r, _ in rs):
            for r, spread in rs:
                assert r is not None
                if spread:
                    r = r.broadcast(n)
                if len(r.lo) != n:
                    merged = None
                    break
                merged = r if merged is None else merged.union(r)
        if merged is not None:
            axes[sp] = axes[sp].local(axes[sp].window, merged)
    return TensorState(
        out_shape, full_layout, tuple(axes), live=True, uncertain=any(p.uncertain for p in parts)
    )


def _units(layout: Layout, a: int) -> int | None:
    """Positions of input axis ``a`` in a layout: its factor's size, or for an axis split into
    blocks, the blocks times their size (``None`` if unknown)."""
    n = 1
    seen = False
    for fs in layout:
        for f in fs:
            if f.spatial != a:
                continue
            if f.size is None:
                return None
            if not f.part:
                return f.size
            n *= f.size
            seen = True
            if f.part > 0 and not any(g.spatial == a and g.part < 0 for gs in layout for g in gs):
                n *= f.part  # (the offsets are gone: every position of a block reads alike)
    return n if seen else None


def _fit(factors: tuple[Factor, ...], size: Dim) -> tuple[Factor, ...]:
    big = [f for f in factors if f.size != 1]
    if len(big) == 1 and big[0].size != size:
        return (big[0].resized(size),)
    return factors


def _has_spatial(factors: tuple[Factor, ...] | None) -> bool:
    """The axis holds input positions (on a grid, or carried without one)."""
    return factors is not None and any(f.spatial is not None or f.carries for f in factors)


def _spatial_ids(factors: tuple[Factor, ...] | None) -> tuple[int, ...]:
    """The input spatial axes whose positions the axis holds (on a grid or carried)."""
    out: list[int] = []
    for f in factors or ():
        if f.spatial is not None:
            out.append(f.spatial)
        out.extend(f.carries)
    return tuple(out)


@rule("elementwise")
def elementwise_rule(node: Node, ins: Sequence[TensorState], ctx: RuleContext) -> list[TensorState]:
    shape = _elementwise_shape(node, ins)
    live = _live(ins)
    if len(live) == 1 and _passes_through(live[0], shape):
        return [live[0] for _ in node.outputs]
    return [_merge(live, shape, ctx) for _ in node.outputs]


def _elementwise_shape(node: Node, ins: Sequence[TensorState]) -> Shape:
    shapes = [s.shape for s in ins]
    target = node.attrs.get("broadcast_to")
    if target is not None:
        shapes.append(tuple(int(d) for d in target))
    return _broadcast_shape(shapes)


def passes_through(node: Node, ins: Sequence[TensorState]) -> TensorState | None:
    """The live input of an elementwise node that hands it on unchanged (activations,
    normalisation, a constant bias), else ``None``: what :func:`elementwise_rule` would return,
    known without a :class:`RuleContext`."""
    if node.op != "elementwise":
        return None
    live = _live(ins)
    if len(live) != 1:
        return None
    try:
        shape = _elementwise_shape(node, ins)
    except GeometryError:
        return None
    return live[0] if _passes_through(live[0], shape) else None


def _passes_through(x: TensorState, shape: Shape) -> bool:
    """Whether merging ``x`` alone into ``shape`` gives ``x`` back unchanged (the common
    pointwise case: activations, normalisation, a bias added), so :func:`_merge` can be skipped."""
    if x.shape != shape:
        return False
    for factors, d in zip(x.layout, shape):
        if len(factors) == 1:
            f = factors[0]
            if f.size != 1 and f.size != d:
                return False
        else:
            big = [f for f in factors if f.size != 1]
            if len(big) == 1 and big[0].size != d:
                return False
    for sp, ax in enumerate(x.axes):
        r = ax.real
        if r is None:
            continue
        if ax.window is None:
            return False
        t, _ = x.location(sp)
        if t is None or shape[t] is None or len(r.lo) != shape[t]:
            return False
    return True


@rule("concat")
def concat_rule(node: Node, ins: Sequence[TensorState], ctx: RuleContext) -> list[TensorState]:
    rank = ins[0].rank
    t = _norm_axis(node.attrs["axis"], rank)
    dims = [s.shape[t] for s in ins]
    total = None if any(d is None for d in dims) else sum(d for d in dims if d is not None)
    others = [s.shape[:t] + s.shape[t + 1 :] for s in ins]
    base = _broadcast_shape(others)
    shape = base[:t] + (total,) + base[t:]
    live = _live(ins)
    if any(_has_spatial(s.layout[t]) for s in live):
        # the axis is no longer a grid of input positions (a class token before the patches,
        # two maps side by side): the units' windows are dropped, what they read together is
        # kept, and the axis carries the positions, so that an op over all of it (attention,
        # pooling) is exactly global
        carried = tuple(sorted({a for s in live for a in _spatial_ids(s.layout[t])}))
        blend = any(f.blend for s in live for f in s.layout[t])
        axis = (Factor(total, None, carried, blend),)
        parts = [
            s.with_axes(
                (ax.local(None) if ax.is_global else AxisState.untracked(ax.span()))
                if a in carried
                else ax
                for a, ax in enumerate(s.axes)
            ).evolve(
                layout=s.layout[:t] + (axis,) + s.layout[t + 1 :],
                shape=_shape_with(s.shape, t, total),
            )
            for s in live
        ]
        return [_merge(parts, shape, ctx)]
    parts = [
        s.evolve(layout=_set_size(s.layout, t, total), shape=_shape_with(s.shape, t, total))
        for s in live
    ]
    return [_merge(parts, shape, ctx)]


@rule("split")
def split_rule(node: Node, ins: Sequence[TensorState], ctx: RuleContext) -> list[TensorState]:
    x = ins[0]
    t = _norm_axis(node.attrs["axis"], x.rank)
    n = x.shape[t]
    count = len(node.outputs)
    sizes = node.attrs.get("sizes")
    if sizes is None:
        n = _need(n, f"size of split axis {t}")
        part = -(-n // count)
        sizes = [min(part, n - k * part) for k in range(count)]
    outs = []
    offset = 0
    for size in sizes:
        m = QAMap.affine(offset, 1)
        st, sp = _move_window(x, t, m, m, ctx, _spans(taps.affine, first=offset, step=1), size)
        if sp is not None:
            ctx.axis_ops[sp] = AxisOp(pad_lo=-offset)
        outs.append(
            st.evolve(layout=_set_size(st.layout, t, size), shape=_shape_with(x.shape, t, size))
        )
        offset += size
    return outs


@rule("transpose")
def transpose_rule(node: Node, ins: Sequence[TensorState], ctx: RuleContext) -> list[TensorState]:
    x = ins[0]
    perm = node.attrs.get("perm") or tuple(reversed(range(x.rank)))
    if sorted(perm) != list(range(x.rank)):
        raise GeometryError(f"perm {perm} is not a permutation of {x.rank} axes")
    return [_permute(x, perm)]


def _permute(x: TensorState, perm: Sequence[int]) -> TensorState:
    """``x`` with its axes in the order ``perm`` (output axis ``k`` is input axis ``perm[k]``)."""
    return x.evolve(layout=tuple(x.layout[p] for p in perm), shape=tuple(x.shape[p] for p in perm))


@rule("gather")
def gather_rule(node: Node, ins: Sequence[TensorState], ctx: RuleContext) -> list[TensorState]:
    x = ins[0]
    t = _norm_axis(node.attrs.get("axis", 0), x.rank)
    idx_shape: Shape = tuple(node.attrs.get("indices_shape") or ())
    picked = _picked(x, t, node.attrs.get("indices"), idx_shape, ctx)
    if picked is not None:
        return [picked]
    _blended(x, t, ctx)
    out = x
    for sp in _spatial_ids(x.layout[t]):
        ax = x.axes[sp]
        if not ax.is_global:
            ctx.give_up("gather-on-spatial-axis", f"gathering positions along tensor axis {t}")
            out = out.set_axis(sp, AxisState(None, False))
    new = tuple((Factor(d),) for d in idx_shape)
    return [
        out.evolve(
            layout=out.layout[:t] + new + out.layout[t + 1 :],
            shape=x.shape[:t] + idx_shape + x.shape[t + 1 :],
        )
    ]


def _picked(
    x: TensorState, t: int, indices: Sequence[int] | None, idx_shape: Shape, ctx: RuleContext
) -> TensorState | None:
    """Constant positions picked along tensor axis ``t``, when it holds one input axis with a
    window: one position (the axis goes, the input axis rides along with size 1), or evenly
    spaced ascending ones (a strided slice). ``None``: not such a case."""
    n = x.shape[t]
    moving = _moving(x.layout[t])
    if indices is None or n is None or len(moving) != 1 or len(idx_shape) > 1 or not indices:
        return None
    sp = moving[0]
    if not x.location(sp)[1] or x.axes[sp].window is None or x.axes[sp].is_global:
        return None
    ks = [k + n if k < 0 else k for k in indices]
    if not all(0 <= k < n for k in ks):
        raise GeometryError(f"index out of range for an axis of {n}")
    step = ks[1] - ks[0] if len(ks) > 1 else 1
    if step < 1 or any(b - a != step for a, b in pairwise(ks)):
        return None
    m = QAMap.affine(ks[0], step)
    reads = _spans(taps.affine, first=ks[0], step=step)
    out, _ = _move_window(x, t, m, m, ctx, reads, len(ks))
    if idx_shape:  # a list of positions: the axis keeps its place
        return out.evolve(
            layout=_set_size(out.layout, t, len(ks)), shape=_shape_with(x.shape, t, len(ks))
        )
    rider = tuple(factor(1, f.spatial) for f in out.layout[t] if f.spatial is not None)
    keep = [u for u in range(x.rank) if u != t]
    return out.evolve(
        layout=_attach(tuple(out.layout[u] for u in keep), rider),
        shape=tuple(x.shape[u] for u in keep),
    )


def _regroup(x: TensorState, groups: Sequence[Sequence[int]], shape: Shape) -> TensorState:
    """Output axis ``k`` is the row-major fold of input axes ``groups[k]``."""
    layout = tuple(tuple(f for t in g for f in x.layout[t]) or (Factor(1),) for g in groups)
    return x.evolve(layout=tuple(_fit(lay, d) for lay, d in zip(layout, shape)), shape=shape)


@rule("flatten")
def flatten_rule(node: Node, ins: Sequence[TensorState], ctx: RuleContext) -> list[TensorState]:
    x = ins[0]
    axis = node.attrs.get("axis", 1)
    axis = axis + x.rank if axis < 0 else axis
    left, right = x.shape[:axis], x.shape[axis:]
    shape = (_prod(left), _prod(right))
    return [_regroup(x, [range(axis), range(axis, x.rank)], shape)]


def _prod(dims: Sequence[Dim]) -> Dim:
    return None if any(d is None for d in dims) else prod(d for d in dims if d is not None)


@rule("squeeze")
def squeeze_rule(node: Node, ins: Sequence[TensorState], ctx: RuleContext) -> list[TensorState]:
    x = ins[0]
    axes = node.attrs.get("axes")
    if axes is None:
        drop = {t for t, d in enumerate(x.shape) if d == 1}
    else:
        drop = {_norm_axis(t, x.rank) for t in axes}
    keep = [t for t in range(x.rank) if t not in drop]
    riders = tuple(f for t in sorted(drop) for f in x.layout[t] if f.spatial is not None)
    layout = _attach(tuple(x.layout[t] for t in keep), riders)
    return [x.evolve(layout=layout, shape=tuple(x.shape[t] for t in keep))]


@rule("unsqueeze")
def unsqueeze_rule(node: Node, ins: Sequence[TensorState], ctx: RuleContext) -> list[TensorState]:
    return [_inserted(ins[0], node.attrs["axes"], 1)]


def _inserted(x: TensorState, axes: Sequence[int], size: int) -> TensorState:
    """New axes of ``size`` (of no input axis) at output positions ``axes``."""
    rank = x.rank + len(axes)
    new = {_norm_axis(t, rank) for t in axes}
    layout: list[tuple[Factor, ...]] = []
    shape: list[Dim] = []
    it = iter(range(x.rank))
    for t in range(rank):
        if t in new:
            layout.append((factor(size),))
            shape.append(size)
        else:
            s = next(it)
            layout.append(x.layout[s])
            shape.append(x.shape[s])
    return x.evolve(layout=tuple(layout), shape=tuple(shape))


@rule("reshape")
def reshape_rule(node: Node, ins: Sequence[TensorState], ctx: RuleContext) -> list[TensorState]:
    x = ins[0]
    target = node.attrs.get("target")
    shape = _reshape_target(x.shape, target, bool(node.attrs.get("allowzero", False)))
    if shape is None:
        decl = _declared(ctx)
        if decl is None:
            raise GeometryError("reshape target is computed at run time and no shape is recorded")
        shape = _complete(x.shape, decl)
    layout = _match_factors(x, shape, target)
    out = None if layout is None else _settle_parts(x, layout)
    if out is None:
        if any(f.spatial is not None for fs in x.layout for f in fs):
            ctx.give_up(
                "reshape-untracked",
                f"cannot follow the input's spatial axes through a reshape {x.shape} -> {shape}",
            )
        return [_unknown_windows(x, shape)]
    return [out.evolve(shape=shape)]


def _settle_parts(x: TensorState, layout: Layout) -> TensorState | None:
    """``x`` in a new layout, where input axes split into blocks (:attr:`Factor.part`) are
    settled: blocks followed by their offsets on one axis are the whole axis again; offsets
    folded with other data (channels: a space-to-depth written as a reshape) are let go, every
    position of a block then reading the whole block; blocks without their offsets become
    the axis, one unit per block. ``None``: the offsets land before their blocks on one axis
    (a reordering of positions, not followed)."""
    if not any(f.part for fs in layout for f in fs):
        return x.evolve(layout=layout)
    axes = list(x.axes)
    groups: list[tuple[Factor, ...]] = []
    for fs in layout:
        merged: list[Factor] = []
        for f in fs:
            last = merged[-1] if merged else None
            if (
                f.part < 0
                and last is not None
                and last.part == f.size
                and last.spatial == f.spatial
                and last.carries == f.carries
                and last.size is not None
            ):
                merged[-1] = factor(last.size * f.size, f.spatial, f.carries, f.blend)
            else:
                merged.append(f)
        for k, f in enumerate(merged):
            if f.part > 0 and any(
                g.part < 0 and g.spatial == f.spatial and g.carries == f.carries
                for g in merged[:k]
            ):
                return None
        if any(f.part < 0 for f in merged) and any(f.part >= 0 and f.size != 1 for f in merged):
            # offsets folded with other data: each position reads its whole block
            for k, f in enumerate(merged):
                if f.part < 0 and f.spatial is not None and f.size is not None:
                    axes[f.spatial] = block_wide(axes[f.spatial], f.size)
                    merged[k] = factor(f.size)
        groups.append(tuple(merged))
    inner = {(f.spatial, f.carries) for fs in groups for f in fs if f.part < 0}
    out: list[tuple[Factor, ...]] = []
    for fs in groups:
        new: list[Factor] = []
        for f in fs:
            if f.part > 0 and (f.spatial, f.carries) not in inner:
                # blocks without their offsets: one unit per block, reading the whole block
                if f.spatial is not None and f.size is not None:
                    axes[f.spatial] = per_block(axes[f.spatial], f.part, f.size)
                f = factor(f.size, f.spatial, f.carries, f.blend)
            new.append(f)
        out.append(tuple(new))
    return TensorState(x.shape, tuple(out), tuple(axes), x.live, x.uncertain)


def _complete(src: Shape, dst: Shape) -> Shape:
    """Fill one unknown dim of a recorded reshape output from the element count; a leading
    unknown dim on both sides (the batch) is taken to be the same."""
    lead = 1 if src and dst and src[0] is None and dst[0] is None else 0
    rest_in, rest_out = src[lead:], dst[lead:]
    holes = [k for k, d in enumerate(rest_out) if d is None]
    if len(holes) != 1 or any(d is None for d in rest_in):
        return dst
    known = prod(d for d in rest_out if d is not None)
    total = prod(d for d in rest_in if d is not None)
    if known == 0 or total % known:
        return dst
    k = holes[0] + lead
    return dst[:k] + (total // known,) + dst[k + 1 :]


def _reshape_target(shape: Shape, target: Sequence[int] | None, allowzero: bool) -> Shape | None:
    if target is None:
        return None
    out: list[Dim] = []
    for k, d in enumerate(target):
        if d == 0 and not allowzero:
            if k >= len(shape):
                raise GeometryError(f"reshape copies axis {k} of a rank-{len(shape)} tensor")
            out.append(shape[k])
        else:
            out.append(int(d))
    if out.count(-1) > 1:
        raise GeometryError("reshape with more than one -1")
    if -1 in out:
        total = _prod(shape)
        rest = _prod([d for d in out if d != -1])
        if total is None or rest is None:
            # an unknown (batch) dim copied through 0 cancels out with the same dim of the input
            known_in = [d for d in shape if d is not None]
            known_out = [d for d in out if d is not None and d != -1]
            if shape.count(None) == out.count(None) == 1:
                infer = prod(known_in) // max(prod(known_out), 1)
                return tuple(infer if d == -1 else d for d in out)
            return tuple(None if d == -1 else d for d in out)
        if rest == 0 or total % rest:
            raise GeometryError(f"cannot reshape {shape} into {tuple(target)}")
        out = [total // rest if d == -1 else d for d in out]
    return tuple(out)


def _match_factors(x: TensorState, shape: Shape, target: Sequence[int] | None) -> Layout | None:
    """Distribute the input's factors (row-major) over the output axes; ``None`` if a spatial
    factor would have to be split or sizes are unknown."""
    factors = _flat_factors(x)
    # spatial axes of size 1 carry no positions but must stay findable (a later dense layer
    # makes them global): they ride along with the first output axis that has several elements
    riders = tuple(
        f for fs in x.layout for f in fs if f.size == 1 and (f.spatial is not None or f.carries)
    )
    out: list[tuple[Factor, ...]] = []
    i = 0
    for d in shape:
        if d == 1:
            out.append((Factor(1),))
            continue
        if d is None:
            if i < len(factors) and factors[i].size is None:
                out.append((factors[i],))
                i += 1
                continue
            return None
        group: list[Factor] = []
        need = d
        while need > 1:
            if i >= len(factors):
                return None
            f = factors[i]
            if f.size is None:
                return None
            if need % f.size == 0:
                group.append(f)
                need //= f.size
                i += 1
            elif f.size % need == 0 and (f.spatial is not None or f.carries):
                if f.part:  # (a part split again: not followed)
                    return None
                # an input axis split into blocks (row-major: the blocks, then the offsets)
                block = f.size // need
                group.append(factor(need, f.spatial, f.carries, f.blend, block))
                factors[i] = factor(block, f.spatial, f.carries, f.blend, -1)
                need = 1
            elif f.size % need == 0:
                group.append(factor(need))
                factors[i] = factor(f.size // need)
                need = 1
            else:
                return None
        out.append(tuple(group))
    if i != len(factors):
        return None
    return _attach(tuple(_fit(g, d) for g, d in zip(out, shape)), riders)


def _flat_factors(x: TensorState) -> list[Factor]:
    """The input's factors in row-major order, size-1 ones left out. Data that indexes no input
    position has no structure worth keeping: a tensor axis without spatial factors counts as one
    factor of its size (a slice or concat of regrouped channels may leave sizes unknown), and
    neighbouring non-spatial factors are merged, so that any regrouping of them matches."""
    out: list[Factor] = []
    for t, fs in enumerate(x.layout):
        n = x.shape[t] if t < len(x.shape) else None
        if n is not None and not _has_spatial(fs):
            fs = (factor(n),)
        for f in fs:
            if f.size == 1:
                continue
            last = out[-1] if out else None
            if (
                last is not None
                and last.spatial is None
                and f.spatial is None
                and not last.carries
                and not f.carries
                and last.size is not None
                and f.size is not None
            ):
                out[-1] = factor(last.size * f.size)
            else:
                out.append(f)
    return out


def _attach(layout: Layout, riders: tuple[Factor, ...]) -> Layout:
    """Add size-1 spatial factors to the last axis that holds another input axis (a squeezed
    height rides along the width, whatever the layout), else to the last axis with more than one
    element (else the last)."""
    if not riders or not layout:
        return layout
    spatial = [t for t, fs in enumerate(layout) if any(f.spatial is not None for f in fs)]
    big = [t for t, fs in enumerate(layout) if any(f.size != 1 for f in fs)]
    t = spatial[-1] if spatial else (big[-1] if big else len(layout) - 1)
    return layout[:t] + (layout[t] + riders,) + layout[t + 1 :]


def _resized_by_declaration(x: TensorState, ctx: RuleContext, code: str, what: str) -> TensorState:
    """A crop or pad whose amounts are only known at run time: exact when only non-spatial axes
    change size (e.g. splitting channels into query/key/value), given up otherwise."""
    decl = _declared(ctx)
    if decl is None or len(decl) != x.rank:
        ctx.give_up(code, f"{what} are computed at run time and no output shape is recorded")
        return _unknown_windows(x, decl or tuple(None for _ in x.shape))
    out = x
    for t, (old, new) in enumerate(zip(x.shape, decl)):
        if old == new:
            continue
        if _has_spatial(x.layout[t]):
            if new is None:
                ctx.give_up(
                    code,
                    f"{what} are computed at run time, and the recorded output shape leaves "
                    f"tensor axis {t} unknown",
                )
            else:
                ctx.give_up(code, f"{what} along tensor axis {t} are computed at run time")
            return _unknown_windows(x, decl)
        out = out.evolve(layout=_set_size(out.layout, t, new))
    return out.evolve(shape=tuple(decl))


def _unknown_windows(x: TensorState, shape: Shape) -> TensorState:
    axes = tuple(ax.local(None) for ax in x.axes)
    return TensorState(shape, tuple((Factor(d),) for d in shape), axes, live=True, uncertain=True)


@rule("unknown")
def unknown_rule(node: Node, ins: Sequence[TensorState], ctx: RuleContext) -> list[TensorState]:
    nspatial = max((len(s.axes) for s in ins), default=0)
    outs = []
    for k in range(len(node.outputs)):
        decl = _declared(ctx, k)
        shape: Shape = decl if decl is not None else ()
        axes = tuple(AxisState(None) for _ in range(nspatial))
        outs.append(
            TensorState(shape, tuple((Factor(d),) for d in shape), axes, live=True, uncertain=True)
        )
    return outs


#: IR ops whose rules read every live input as data: a constant in first place (CoordConv's
#: coordinate channels, a ViT's class token) is just another operand. The other ops read their
#: data from the first input and parameters from the rest.
ANY_INPUT_DATA = frozenset({"elementwise", "concat", "matmul", "einsum", "mix", "select"})


def run_rule(node: Node, ins: Sequence[TensorState], ctx: RuleContext) -> list[TensorState]:
    """Apply the registered rule; raises :class:`GeometryError` for malformed ops."""
    fn = REGISTRY.get(node.op)
    if fn is None:
        raise GeometryError(f"no geometry rule for IR op {node.op!r}")
    try:
        return fn(node, ins, ctx)
    except (KeyError, IndexError, TypeError) as exc:
        raise GeometryError(f"malformed attributes ({type(exc).__name__}: {exc})") from exc


@rule("constant", "shape")
def constant_rule(node: Node, ins: Sequence[TensorState], ctx: RuleContext) -> list[TensorState]:
    """Values that do not depend on the input's values (``Shape`` reads only its shape)."""
    return [TensorState.const(_declared(ctx, k)) for k in range(len(node.outputs))]
