"""Quasi-affine integer maps: the exact arithmetic under every receptive-field figure.

A tensor unit ``i`` along one spatial axis reads the input pixels ``[lo(i), hi(i)]``. For a plain
chain of convolutions and poolings ``lo(i) = start + i * jump``; after upsampling neighbouring units
can share input pixels and ``lo`` becomes a staircase. Both cases (and every composition of them)
are *quasi-affine*: there is a period ``P`` (in units) and a step ``Q`` (in input pixels) with
``f(i + P) = f(i) + Q``. A map is stored as ``P``, ``Q`` and its values on one period, which makes
composition exact and cheap, and keeps the mean jump ``Q / P`` an exact fraction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from math import gcd

#: Periods beyond this are not tracked exactly (no real network gets near it).
MAX_PERIOD = 1 << 14


class PeriodTooLarge(ValueError):
    """Composition would need a period above :data:`MAX_PERIOD`."""


@dataclass(frozen=True, slots=True)
class QAMap:
    """``f(i) = table[i mod period] + (i div period) * step`` (floor division, any ``i``)."""

    period: int
    step: int
    table: tuple[int, ...]

    @staticmethod
    def affine(offset: int, slope: int) -> QAMap:
        """``f(i) = offset + slope * i``."""
        return QAMap(1, slope, (offset,))

    @staticmethod
    def constant(value: int) -> QAMap:
        return QAMap(1, 0, (value,))

    def __call__(self, i: int) -> int:
        q, r = divmod(i, self.period)
        return self.table[r] + q * self.step

    @property
    def slope(self) -> Fraction:
        """Mean advance per unit (the jump, in input pixels)."""
        return fraction(self.step, self.period)

    def compose(self, inner: QAMap) -> QAMap:
        """``self(inner(i))``: ``inner`` maps this op's output units to its input units."""
        if self.period == 1 and inner.period == 1:  # affine of affine: the common case
            return QAMap(1, self.step * inner.step, (self.table[0] + self.step * inner.table[0],))
        t = self.period // gcd(inner.step, self.period) if inner.step else 1
        period = inner.period * t
        if period > MAX_PERIOD:
            raise PeriodTooLarge(period)
        # inner(i + period) = inner(i) + t * inner.step, a multiple of self.period
        step = self.step * (t * inner.step // self.period)
        table = tuple(self(inner(i)) for i in range(period))
        return QAMap(period, step, table).simplified()

    def simplified(self) -> QAMap:
        """The same map with the smallest period."""
        p = self.period
        for d in _divisors(p):
            if d == p:
                break
            k = p // d
            if self.step % k:
                continue
            s = self.step // k
            if all(self.table[i] == self.table[i % d] + (i // d) * s for i in range(p)):
                return QAMap(d, s, self.table[:d])
        return self

    def combine(self, other: QAMap, pick: Callable[[int, int], int]) -> QAMap:
        """Pointwise min or max of two maps of equal slope."""
        if self.period == 1 and other.period == 1:
            return QAMap(1, self.step, (pick(self.table[0], other.table[0]),))
        period = self.period * other.period // gcd(self.period, other.period)
        if period > MAX_PERIOD:
            raise PeriodTooLarge(period)
        step = self.step * (period // self.period)
        table = tuple(pick(self(i), other(i)) for i in range(period))
        return QAMap(period, step, table).simplified()


@lru_cache(maxsize=1 << 12)
def fraction(numerator: int, denominator: int = 1) -> Fraction:
    """``Fraction(numerator, denominator)``, shared: models reuse a few jumps and centres
    thousands of times, and building a Fraction is slow."""
    return Fraction(numerator, denominator)


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def envelope(maps: tuple[QAMap, ...], pick: Callable[[int, int], int]) -> tuple[QAMap, ...]:
    """Combine maps that share a slope; maps of different slopes are kept side by side.

    The value of the result at ``i`` is ``pick(m(i) for m in result)``, as for the argument.
    """
    if len(maps) == 1:
        return maps
    by_slope: dict[tuple[int, int], QAMap] = {}
    for m in maps:
        g = gcd(m.step, m.period)
        s = (m.step // g, m.period // g)
        by_slope[s] = by_slope[s].combine(m, pick) if s in by_slope else m
    return tuple(by_slope[s] for s in sorted(by_slope, key=lambda k: k[0] / k[1]))
