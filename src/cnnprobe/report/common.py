"""Small formatting helpers shared by the reporters."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

from ..ir import Shape, format_shape


def frac(x: Fraction | int | None) -> str:
    if x is None:
        return "?"
    if type(x) is int:
        return str(x)
    return str(x.numerator) if x.denominator == 1 else f"{x.numerator}/{x.denominator}"


def number(x: Fraction | int | None) -> int | float | None:
    """A JSON number: exact integers stay integers."""
    if x is None or type(x) is int:
        return x
    return x.numerator if x.denominator == 1 else float(x)


def shape(s: Shape) -> str:
    return format_shape(s)


def axes(values: Sequence[object], sep: str = "×", missing: str = "?") -> str:
    """Per-axis values joined as ``3×3``; equal values are not collapsed (axes matter)."""
    return sep.join(missing if v is None else str(v) for v in values)


def percent(x: float | None) -> str:
    if x is None:
        return "?"
    if x >= 0.9995:
        return "100%"
    if 0 < x < 0.0005:  # a tiny share is not "0.0%": two significant digits
        return f"{100 * x:.2g}%"
    return f"{100 * x:.1f}%"
