"""Exact per-unit dependence on real input pixels.

The windows of :mod:`cnnprobe.geometry.qamap` follow the textbook definition: a unit's interval
extends into padding as if the input went on (that is what receptive-field tables publish). Which
*real* pixels a unit reads can differ at the borders: a dilated tap that lands in padding skips
the pixels between it and the next real tap, a strided layer may never read the last pixels, a
crop removes pixels, an edge/reflect pad re-reads border pixels. For coverage figures cnnprobe
therefore also carries, per axis and per unit, the first and last real input pixel the unit
depends on (``EMPTY`` when it depends on none), computed exactly through every op from the taps
each output unit reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from operator import le

from .qamap import QAMap

EMPTY_LO = 1 << 60
EMPTY_HI = -(1 << 60)

#: The input units one output unit reads along an axis: first, last, step (or ``None``: none).
Span = tuple[int, int, int] | None


#: Reals made recently, by value: deep in a network most layers' units see the same pixels
#: (every unit the whole input), and layers keep their reals in their results
_SHARED: dict[tuple[tuple[int, ...], tuple[int, ...]], Real] = {}
_SHARED_MAX = 4096


@dataclass(frozen=True, slots=True)
class Real:
    """``lo[i]``/``hi[i]``: first/last input pixel unit ``i`` depends on. ``simple``: ``lo`` and
    ``hi`` are non-decreasing and no unit is empty, so a span's extremes are its end taps."""

    lo: tuple[int, ...]
    hi: tuple[int, ...]
    simple: bool

    @staticmethod
    def make(lo: Sequence[int], hi: Sequence[int]) -> Real:
        lo_t, hi_t = tuple(lo), tuple(hi)
        key = (lo_t, hi_t)
        hit = _SHARED.get(key)
        if hit is not None:
            return hit
        simple = (
            EMPTY_LO not in lo_t
            and all(map(le, lo_t, lo_t[1:]))
            and all(map(le, hi_t, hi_t[1:]))
        )
        r = Real(lo_t, hi_t, simple)
        if len(_SHARED) >= _SHARED_MAX:
            _SHARED.clear()
        _SHARED[key] = r
        return r

    @staticmethod
    def identity(n: int) -> Real:
        r = tuple(range(n))
        return Real(r, r, True)

    def at(self, i: int) -> tuple[int, int] | None:
        lo, hi = self.lo[i], self.hi[i]
        return None if lo > hi else (lo, hi)

    def through(self, spans: Sequence[Span]) -> Real:
        lo_in, hi_in = self.lo, self.hi
        if self.simple:
            lo = [EMPTY_LO if s is None else lo_in[s[0]] for s in spans]
            hi = [EMPTY_HI if s is None else hi_in[s[1]] for s in spans]
        else:
            lo, hi = [], []
            for s in spans:
                if s is None:
                    lo.append(EMPTY_LO)
                    hi.append(EMPTY_HI)
                    continue
                taps = range(s[0], s[1] + 1, s[2])
                lo.append(min(lo_in[t] for t in taps))
                hi.append(max(hi_in[t] for t in taps))
        return Real.make(lo, hi)

    def union(self, other: Real) -> Real:
        return Real.make(tuple(map(min, self.lo, other.lo)), tuple(map(max, self.hi, other.hi)))

    def broadcast(self, n: int) -> Real:
        """A size-1 axis broadcast to ``n`` units: every unit reads unit 0."""
        return Real((self.lo[0],) * n, (self.hi[0],) * n, self.lo[0] <= self.hi[0])


def strided(n_in: int, n_out: int, first: int, s: int, d: int, k: int) -> list[Span]:
    """Taps ``first + i*s + d*u`` (``u < k``) that fall inside the input (zero padding)."""
    out: list[Span] = []
    last_tap = d * (k - 1)
    for i in range(n_out):
        a = first + i * s
        b = a + last_tap
        if a < 0:
            a += (-a + d - 1) // d * d
        if b > n_in - 1:
            b -= (b - (n_in - 1) + d - 1) // d * d
        out.append((a, b, d) if a <= b else None)
    return out


def through_strided(real: Real, n_in: int, n_out: int, first: int, s: int, d: int, k: int) -> Real:
    """``real.through(strided(n_in, n_out, first, s, d, k))``, without building every span: the
    units whose taps all fall inside the input (all but a few at the borders) read their first
    and last tap, which for a simple ``real`` is a slice."""
    last_tap = d * (k - 1)
    top = n_in - 1
    i0 = max(0, -(first // s))  # first unit whose first tap is inside
    i1 = min(n_out - 1, (top - last_tap - first) // s)  # last unit whose last tap is inside
    if not real.simple or i1 < i0:
        return real.through(strided(n_in, n_out, first, s, d, k))
    lo_in, hi_in = real.lo, real.hi
    head = real.through(strided(n_in, i0, first, s, d, k)) if i0 else None
    a, b = first + i0 * s, first + i1 * s
    lo = list(lo_in[a : b + 1 : s])
    hi = list(hi_in[a + last_tap : b + last_tap + 1 : s])
    if head is not None:
        lo[:0] = head.lo
        hi[:0] = head.hi
    if i1 < n_out - 1:
        tail = real.through(strided(n_in, n_out - i1 - 1, first + (i1 + 1) * s, s, d, k))
        lo += tail.lo
        hi += tail.hi
    return Real.make(lo, hi)


def clamped(n_in: int, n_out: int, lo_idx: QAMap, hi_idx: QAMap) -> list[Span]:
    """Taps ``lo_idx(i)..hi_idx(i)`` with out-of-range indices clamped to the border (resize)."""
    top = n_in - 1
    return [(min(max(lo_idx(i), 0), top), min(max(hi_idx(i), 0), top), 1) for i in range(n_out)]


def padded(n_in: int, n_out: int, lo: int, mode: str) -> list[Span]:
    """Output unit ``i`` of a pad reads input unit ``i - lo``; outside the input that is nothing
    (constant), the border (edge), its mirror (reflect) or the other side (wrap)."""
    out: list[Span] = []
    for i in range(n_out):
        t = i - lo
        if not 0 <= t < n_in:
            if mode == "edge":
                t = min(max(t, 0), n_in - 1)
            elif mode == "reflect" and n_in > 1:
                period = 2 * (n_in - 1)
                t %= period
                t = period - t if t >= n_in else t
            elif mode == "wrap":
                t %= n_in
            else:
                out.append(None)
                continue
        out.append((t, t, 1))
    return out


def transposed(n_in: int, n_out: int, s: int, d: int, k: int, lo: int) -> list[Span]:
    """Output unit ``o`` gets input unit ``i`` through tap ``u`` when ``o = i*s + u*d - lo``."""
    out: list[Span] = []
    for o in range(n_out):
        taps = [
            (o + lo - u * d) // s
            for u in range(k)
            if (o + lo - u * d) % s == 0 and 0 <= (o + lo - u * d) // s < n_in
        ]
        if not taps:
            out.append(None)
            continue
        taps.sort()
        step = taps[1] - taps[0] if len(taps) > 1 else 1
        out.append((taps[0], taps[-1], step))
    return out


def affine(n_in: int, n_out: int, first: int, step: int) -> list[Span]:
    """Output unit ``i`` reads input unit ``first + i*step`` (slices, splits)."""
    out: list[Span] = []
    for i in range(n_out):
        t = first + i * step
        out.append((t, t, 1) if 0 <= t < n_in else None)
    return out


def blocks(n_in: int, n_out: int, b: int, to_depth: bool) -> list[Span]:
    if to_depth:
        return [(i * b, min(i * b + b - 1, n_in - 1), 1) for i in range(n_out)]
    return [(i // b, i // b, 1) for i in range(n_out)]
