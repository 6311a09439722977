"""What the analysis knows about one tensor: its shape, where the input's spatial axes live in it,
and, per input spatial axis, which input pixels each unit depends on."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache
from typing import Any

from ..ir import Shape
from .qamap import PeriodTooLarge, QAMap, envelope
from .real import Real
from .real import blocks as block_spans


@dataclass(frozen=True, slots=True)
class Window:
    """Unit ``i`` reads input pixels ``[min(m(i) for m in lo), max(m(i) for m in hi)]``.

    More than one map on a side only happens after merging paths with different jumps.
    """

    lo: tuple[QAMap, ...]
    hi: tuple[QAMap, ...]

    @staticmethod
    def identity() -> Window:
        m = QAMap.affine(0, 1)
        return Window((m,), (m,))

    def at(self, i: int) -> tuple[int, int]:
        if len(self.lo) == 1 and len(self.hi) == 1:
            return self.lo[0](i), self.hi[0](i)
        return min(m(i) for m in self.lo), max(m(i) for m in self.hi)

    def through(self, lo_idx: QAMap, hi_idx: QAMap) -> Window:
        """The window of an op's output whose unit ``i`` reads this tensor's units
        ``lo_idx(i)..hi_idx(i)`` (both non-decreasing)."""
        if len(self.lo) == 1 and len(self.hi) == 1:  # one map a side: nothing to combine
            return Window((self.lo[0].compose(lo_idx),), (self.hi[0].compose(hi_idx),))
        return Window(
            envelope(tuple(m.compose(lo_idx) for m in self.lo), min),
            envelope(tuple(m.compose(hi_idx) for m in self.hi), max),
        )

    def union(self, other: Window) -> Window:
        if len(self.lo) == len(self.hi) == len(other.lo) == len(other.hi) == 1:
            a, b, c, d = self.lo[0], other.lo[0], self.hi[0], other.hi[0]
            if a.period == b.period == c.period == d.period == 1 and (
                a.step == b.step and c.step == d.step
            ):  # two affine windows on one grid (the common merge): keep the wider ends
                return Window(
                    (a if a.table[0] <= b.table[0] else b,),
                    (c if c.table[0] >= d.table[0] else d,),
                )
        return Window(envelope(self.lo + other.lo, min), envelope(self.hi + other.hi, max))

    @property
    def aligned(self) -> bool:
        if len(self.lo) != 1 or len(self.hi) != 1:
            return False
        a, b = self.lo[0], self.hi[0]
        return a.step * b.period == b.step * a.period

    @property
    def jump(self) -> Fraction | None:
        return self.lo[0].slope if self.aligned else None

    @property
    def period(self) -> int:
        p = 1
        for m in self.lo + self.hi:
            p = p * m.period // _gcd(p, m.period)
        return p


def _gcd(a: int, b: int) -> int:
    while b:
        a, b = b, a % b
    return a


@dataclass(frozen=True, slots=True)
class AxisState:
    """One spatial axis of the model input, as seen from a tensor.

    ``window`` is the local window (``None``: unknown, or no local path reaches this tensor, or
    the units are untracked: then ``reach`` is what they read together, if known);
    ``is_global`` says every unit depends on every position of some feature map along this axis,
    through a global op (pooling, a dense layer, attention, a gate); ``reach`` is then the first
    and last real input pixel those positions depend on (the whole input unless, say, a strided
    valid conv before the global op never reads the last pixels), ``None`` when unknown. Without
    a global part and a window, ``reach`` is what the untracked units read together.
    """

    window: Window | None
    is_global: bool = False
    #: first/last real input pixel per unit (exact at borders); ``None`` when sizes are unknown
    real: Real | None = None
    reach: tuple[int, int] | None = None
    #: what the analysis derived from this axis state (it is immutable), kept with it
    memo: Any = field(default=None, init=False, repr=False, compare=False, hash=False)

    def local(self, window: Window | None, real: Real | None = None) -> AxisState:
        """This axis with another local part (window, real pixels) and the same global part."""
        return AxisState(window, self.is_global, real, self.reach if self.is_global else None)

    @staticmethod
    def untracked(span: tuple[int, int] | None) -> AxisState:
        """Units whose windows are not tracked, reading (together) the pixels ``span``."""
        return AxisState(None, False, None, span)

    def span(self) -> tuple[int, int] | None:
        """First and last real input pixel that some unit depends on (local and global paths);
        ``None`` when unknown (or when no unit reads a real pixel)."""
        lo: int | None = None
        hi: int | None = None
        if self.is_global:
            if self.reach is None:
                return None
            lo, hi = self.reach
        if self.window is not None:
            r = self.real
            if r is None:
                return None
            read = (
                [(r.lo[0], r.hi[-1])]
                if r.simple and r.lo
                else [(a, b) for a, b in zip(r.lo, r.hi) if a <= b]
            )
            if read:  # (no unit reads a real pixel: nothing to add)
                first, last = min(a for a, _ in read), max(b for _, b in read)
                lo = first if lo is None else min(lo, first)
                hi = last if hi is None else max(hi, last)
        elif not self.is_global:
            return self.reach  # untracked units: what they read together, if known
        if lo is None or hi is None:
            return None
        return lo, hi


def hull(*spans: tuple[int, int] | None) -> tuple[int, int] | None:
    """The smallest interval holding them all (``None`` if there are none or one is unknown)."""
    if not spans or any(s is None for s in spans):
        return None
    known = [s for s in spans if s is not None]
    return min(s[0] for s in known), max(s[1] for s in known)


@dataclass(frozen=True, slots=True)
class Factor:
    """A factor of a tensor axis: tensor axes can hold several input axes after a reshape
    (row-major). ``spatial`` is the input spatial axis it indexes, ``None`` for other data.

    ``carries``: input spatial axes whose positions this factor holds without a grid (a
    concatenation along a folded axis, as a vision transformer's class token before its patch
    tokens): units along it have no tracked window, but an op over all of it (attention) is
    exactly global. ``blend``: the carried positions tell apart elements of one unit that depend
    on different parts of the input (the two directions of a bidirectional recurrent layer side
    by side): a unit's figures are their union, so an op over all of this axis is exact, but
    taking part of it is not followed."""

    size: int | None
    spatial: int | None = None
    carries: tuple[int, ...] = ()
    #: the carried positions tell apart elements that depend on different parts of the input
    blend: bool = False
    #: a part of an input axis a reshape split into blocks (position = block * B + offset):
    #: 0 the whole axis; B > 0 the blocks (each unit a block of B positions); -1 the offsets
    #: within a block (size B). Windows stay indexed by the position (``block * B + offset``).
    part: int = 0

    def resized(self, size: int | None) -> Factor:
        """This factor with another size (what it holds, carries or blends is kept)."""
        return factor(size, self.spatial, self.carries, self.blend, self.part)


Layout = tuple[tuple[Factor, ...], ...]


@lru_cache(maxsize=1 << 12)
def factor(
    size: int | None,
    spatial: int | None = None,
    carries: tuple[int, ...] = (),
    blend: bool = False,
    part: int = 0,
) -> Factor:
    """A shared :class:`Factor` (they are immutable, and rules make one per axis per node)."""
    return Factor(size, spatial, carries, blend, part)


@dataclass(frozen=True, slots=True)
class TensorState:
    """Everything known about one tensor.

    ``live``: its values depend on the analysed input (constants and shape computations do not).
    ``uncertain``: something upstream has no geometry rule; windows are then not trusted.
    """

    shape: Shape
    layout: Layout
    axes: tuple[AxisState, ...]
    live: bool = True
    uncertain: bool = False
    #: ``locations(layout)``, filled on first use (states are immutable; reads are frequent)
    _where: dict[int, tuple[int, bool]] | None = field(
        default=None, init=False, repr=False, compare=False, hash=False
    )
    #: what the analysis derived from this state (it is immutable), kept with it
    memo: Any = field(default=None, init=False, repr=False, compare=False, hash=False)

    @staticmethod
    def const(shape: Shape | None) -> TensorState:
        shp: Shape = shape if shape is not None else ()
        return TensorState(shp, tuple((Factor(d),) for d in shp), (), live=False)

    @property
    def rank(self) -> int:
        return len(self.shape)

    def location(self, spatial: int) -> tuple[int | None, bool]:
        """Tensor axis holding input axis ``spatial`` and whether it holds it alone (``plain``).

        Factors of size 1 do not count as company.
        """
        where = self._where
        if where is None:
            where = locations(self.layout)
            object.__setattr__(self, "_where", where)
        return where.get(spatial, (None, False))

    def rides(self, spatial: int) -> bool:
        """Input axis ``spatial`` is reduced to one unit riding along another tensor axis."""
        t, _ = self.location(spatial)
        return t is not None and any(f.spatial == spatial and f.size == 1 for f in self.layout[t])

    def spatial_map(self) -> dict[int, int]:
        """Input spatial axis -> tensor axis, for the axes that live plainly in a tensor axis."""
        out: dict[int, int] = {}
        for a in range(len(self.axes)):
            t, plain = self.location(a)
            if t is not None and plain:
                out[a] = t
        return out

    @property
    def is_spatial(self) -> bool:
        """A feature map: every input spatial axis lives alone in a tensor axis (or, reduced to
        one unit, rides along another: a squeezed axis), and the tensor is not merely the 1x1
        result of a global reduction."""
        return self.is_spatial_with(self.spatial_map())

    def is_spatial_with(self, smap: dict[int, int]) -> bool:
        """:attr:`is_spatial`, given :meth:`spatial_map`."""
        if not self.live or not self.axes:
            return False
        if len(smap) != len(self.axes) and not all(
            a in smap or self.rides(a) for a in range(len(self.axes))
        ):
            return False
        sizes = [self.shape[t] for t in smap.values()]
        return any(s != 1 for s in sizes) or not all(ax.is_global for ax in self.axes)

    def evolve(
        self,
        *,
        shape: Shape | None = None,
        layout: Layout | None = None,
        axes: tuple[AxisState, ...] | None = None,
        uncertain: bool | None = None,
    ) -> TensorState:
        """A copy with the given fields replaced (``dataclasses.replace``, without its generic
        overhead: rules call this for every node)."""
        return TensorState(
            self.shape if shape is None else shape,
            self.layout if layout is None else layout,
            self.axes if axes is None else axes,
            self.live,
            self.uncertain if uncertain is None else uncertain,
        )

    def with_axes(self, axes: Iterable[AxisState]) -> TensorState:
        return self.evolve(axes=tuple(axes))

    def set_axis(self, spatial: int, axis: AxisState) -> TensorState:
        axes = list(self.axes)
        axes[spatial] = axis
        return self.evolve(axes=tuple(axes))

    def make_global(self, tensor_axes: Iterable[int], keep_window: bool) -> TensorState:
        """Every output unit depends on all positions along ``tensor_axes``.

        ``keep_window``: each unit still has a local path of its own (normalisation, a conv's
        channel mixing) besides the global one; otherwise (reductions, dense layers over positions)
        no local window is left.
        """
        tensor_axes = tuple(tensor_axes)
        state = self
        split = split_axes(self.layout)
        if split:
            # input axes split into blocks: an op over all the offsets of the blocks makes each
            # position read its whole block; over the blocks alone (the same offset in every
            # block), the units are not followed; over all of its parts, it is global
            state, whole = self._over_parts(tensor_axes, split)
        else:
            whole = set()
        # (the parts are settled above; other input axes folded with them are read in full)
        hit = {
            f.spatial
            for t in tensor_axes
            for f in state.layout[t]
            if f.spatial is not None and not f.part
        } | whole
        carried = {
            a for t in tensor_axes for f in state.layout[t] if not f.part for a in f.carries
        } - hit
        elsewhere: set[int | None] = set()
        if carried:
            # (an input axis carried along these axes but held on a grid by another one keeps
            # its units' local windows there: a layer over a bidirectional layer's features)
            elsewhere = {
                f.spatial
                for t, fs in enumerate(state.layout)
                if t not in tensor_axes
                for f in fs
                if f.spatial in carried
            }
            hit |= carried
        if not hit:
            return state
        return state.with_axes(
            (
                AxisState(ax.window, True, ax.real, ax.span())
                if keep_window or a in elsewhere
                else AxisState(None, True, None, ax.span())
            )
            if a in hit
            else ax
            for a, ax in enumerate(state.axes)
        )

    def _over_parts(
        self, tensor_axes: tuple[int, ...], split: frozenset[int]
    ) -> tuple[TensorState, set[int]]:
        """:meth:`make_global` for the input axes split into blocks: the state with the axes
        whose offsets alone are covered made block-wide (or whose blocks alone are covered,
        untracked), and the axes all of whose parts are covered (global)."""
        whole: set[int] = set()
        axes = list(self.axes)
        for a in split:
            parts = [
                (t in tensor_axes, f)
                for t, fs in enumerate(self.layout)
                for f in fs
                if f.part and a in _ids(f)
            ]
            inside = [f for covered, f in parts if covered]
            if not inside:
                continue
            if len(inside) == len(parts):
                whole.add(a)
            elif all(f.part < 0 for f in inside) and inside[0].size:
                axes[a] = block_wide(axes[a], inside[0].size)
            else:
                # (untracked even where the axis is global: its units' own reads are not known,
                # and a merge must not take another operand's window for theirs)
                axes[a] = AxisState.untracked(axes[a].span())
        return self.with_axes(axes), whole


def _ids(f: Factor) -> tuple[int, ...]:
    """The input axes whose positions a factor holds (on a grid or carried)."""
    return (f.spatial, *f.carries) if f.spatial is not None else f.carries


def _unfollowed(ax: AxisState) -> AxisState:
    """``ax`` with its units no longer followed one by one (a pattern too irregular to track):
    its global part, or what its units read together, is kept."""
    return AxisState(None, True, None, ax.reach) if ax.is_global else AxisState.untracked(ax.span())


def per_block(ax: AxisState, block: int, blocks: int | None) -> AxisState:
    """An axis indexed by position made one unit per block of ``block`` positions, each reading
    the whole block (``blocks``: how many, for the real pixels; ``None``: unknown)."""
    w = ax.window
    if w is None:
        return ax
    try:
        window = w.through(QAMap.affine(0, block), QAMap.affine(block - 1, block))
    except PeriodTooLarge:
        return _unfollowed(ax)
    r = ax.real
    real = None
    if r is not None and blocks is not None and len(r.lo) == block * blocks:
        real = r.through(block_spans(len(r.lo), blocks, block, True))
    return ax.local(window, real)


def block_wide(ax: AxisState, block: int) -> AxisState:
    """Every position reads its whole block of ``block`` positions (windows stay indexed by the
    position): the block's figures (:func:`per_block`) handed to each of its positions."""
    n = len(ax.real.lo) if ax.real is not None else None
    blocks = n // block if n is not None and n % block == 0 else None
    coarse = per_block(ax, block, blocks)
    w = coarse.window
    if w is None:
        return coarse
    spread = QAMap(block, 1, (0,) * block)  # position h is in block h // block
    try:
        window = w.through(spread, spread)
    except PeriodTooLarge:
        return _unfollowed(ax)
    r = coarse.real
    real = None
    if r is not None and n is not None and blocks is not None:
        real = r.through(block_spans(blocks, n, block, False))
    return coarse.local(window, real)


@lru_cache(maxsize=4096)
def split_axes(layout: Layout) -> frozenset[int]:
    """Input axes that a layout holds split into blocks (layouts are shared: cached)."""
    return frozenset(a for fs in layout for f in fs if f.part for a in _ids(f))


@lru_cache(maxsize=4096)
def locations(layout: Layout) -> dict[int, tuple[int, bool]]:
    """Where each spatial axis lives in a layout (layouts are small, hashable and shared by many
    tensors, so the answer is cached)."""
    out: dict[int, tuple[int, bool]] = {}
    for t, factors in enumerate(layout):
        for f in factors:
            if f.spatial is not None and f.spatial not in out:
                company = [g for g in factors if g.spatial != f.spatial and g.size != 1]
                # (a part of an axis split into blocks is never the plain axis)
                out[f.spatial] = (t, not company and not f.part)
    return out


def plain_layout(shape: Shape, spatial_axes: Sequence[int]) -> Layout:
    """Layout of the model input: spatial axis ``k`` lives in tensor axis ``spatial_axes[k]``."""
    where = {t: k for k, t in enumerate(spatial_axes)}
    return tuple((Factor(d, where.get(t)),) for t, d in enumerate(shape))
