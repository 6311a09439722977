"""Pure per-axis arithmetic of window operators (no graph, no tensors).

Notation: ``n`` input size, ``k`` kernel, ``s`` stride, ``d`` dilation, ``k_eff = d*(k-1)+1``.
"""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache
from math import ceil, floor

from .qamap import QAMap


class GeometryError(ValueError):
    """The attributes of an op make no sense for its input (e.g. kernel larger than input)."""


def k_eff(k: int, d: int) -> int:
    return d * (k - 1) + 1


def same_pads(n: int, k: int, s: int, d: int, upper: bool) -> tuple[int, int]:
    """Padding of ``SAME_UPPER`` (extra pixel at the end; Keras ``same``) or ``SAME_LOWER``."""
    out = -(-n // s)
    total = max((out - 1) * s + k_eff(k, d) - n, 0)
    small = total // 2
    return (small, total - small) if upper else (total - small, small)


def resolve_pads(
    mode: str, lo: int, hi: int, n: int | None, k: int, s: int, d: int
) -> tuple[int, int] | None:
    """``(pad_lo, pad_hi)`` for a padding mode; ``None`` when it needs an unknown size."""
    if mode == "explicit":
        return lo, hi
    if mode == "valid":
        return 0, 0
    if n is None:
        return None
    return same_pads(n, k, s, d, upper=(mode == "same_upper"))


def window_out_size(n: int, k: int, s: int, d: int, lo: int, hi: int, ceil_mode: bool) -> int:
    """``floor((n + lo + hi - k_eff) / s) + 1``; with ``ceil_mode`` the last window must still
    start inside the input or the left padding (ONNX and PyTorch rule)."""
    if s <= 0 or k <= 0 or d <= 0:
        raise GeometryError(f"kernel {k}, stride {s}, dilation {d} must be positive")
    span = n + lo + hi - k_eff(k, d)
    if span < 0:
        raise GeometryError(
            f"window of {k_eff(k, d)} (kernel {k}, dilation {d}) is larger than the padded "
            f"input ({n} + {lo} + {hi})"
        )
    if not ceil_mode:
        return span // s + 1
    out = -(-span // s) + 1
    if (out - 1) * s >= n + lo:
        out -= 1
    return out


@lru_cache(maxsize=1 << 10)
def window_index_maps(k: int, s: int, d: int, lo: int) -> tuple[QAMap, QAMap]:
    """Output unit ``i`` of a conv/pool reads input units ``i*s - lo .. i*s - lo + k_eff - 1``."""
    first = QAMap.affine(-lo, s)
    last = QAMap.affine(-lo + k_eff(k, d) - 1, s)
    return first, last


def transpose_out_size(n: int, k: int, s: int, d: int, lo: int, hi: int, out_pad: int) -> int:
    return s * (n - 1) + out_pad + k_eff(k, d) - lo - hi


def transpose_pads(
    mode: str, n: int, k: int, s: int, d: int, out_pad: int, out_size: int | None
) -> tuple[int, int]:
    """Pads of a transposed convolution under ``same_*`` or with an explicit output size
    (ONNX ConvTranspose rule: ``SAME_UPPER`` puts the smaller half first)."""
    target = out_size if out_size is not None else n * s
    total = s * (n - 1) + out_pad + k_eff(k, d) - target
    if mode == "same_lower":
        return total - total // 2, total // 2
    return total // 2, total - total // 2


def transpose_index_maps(k: int, s: int, d: int, lo: int) -> tuple[QAMap, QAMap, bool]:
    """Output unit ``o`` of a transposed conv gets input unit ``i`` through tap ``u`` when
    ``o = i*s + u*d - lo``. Returns the first/last input unit per output unit (period ``s``)
    and whether some output units read no input at all (stride larger than the kernel span)."""
    firsts: list[int] = []
    lasts: list[int] = []
    empty = False
    for o in range(s):
        hits = [(o + lo - u * d) // s for u in range(k) if (o + lo - u * d) % s == 0]
        if not hits:
            empty = True
            nearest = (o + lo) // s
            hits = [nearest]
        firsts.append(min(hits))
        lasts.append(max(hits))
    return QAMap(s, 1, tuple(firsts)).simplified(), QAMap(s, 1, tuple(lasts)).simplified(), empty


def resize_source(i: int, scale: Fraction, n_in: int, n_out: int, coord_mode: str) -> Fraction:
    """Input coordinate of output unit ``i`` (ONNX ``coordinate_transformation_mode``)."""
    if coord_mode == "align_corners":
        return Fraction(0) if n_out == 1 else Fraction(i * (n_in - 1), n_out - 1)
    if coord_mode == "asymmetric":
        return i / scale
    if coord_mode == "pytorch_half_pixel":
        return (i + Fraction(1, 2)) / scale - Fraction(1, 2) if n_out > 1 else Fraction(0)
    if coord_mode == "half_pixel_symmetric":
        adjustment = Fraction(n_out) / (n_in * scale)
        offset = Fraction(n_in, 2) * (1 - adjustment)
        return offset + (i + Fraction(1, 2)) / scale - Fraction(1, 2)
    if coord_mode in ("half_pixel", "tf_half_pixel_for_nn"):
        x = (i + Fraction(1, 2)) / scale
        return x if coord_mode == "tf_half_pixel_for_nn" else x - Fraction(1, 2)
    raise GeometryError(f"unsupported coordinate transformation mode {coord_mode!r}")


def _round_nearest(x: Fraction, nearest_mode: str) -> int:
    if nearest_mode == "floor":
        return floor(x)
    if nearest_mode == "ceil":
        return ceil(x)
    if x.denominator == 2:  # exactly half way
        return floor(x) if nearest_mode == "round_prefer_floor" else ceil(x)
    return round(x)


#: Half-width of the linear and cubic interpolation kernels, in input units
KERNEL_SUPPORT = {"linear": 1, "cubic": 2}


def resize_taps(
    x: Fraction, mode: str, nearest_mode: str, stretch: Fraction | None = None
) -> tuple[int, int]:
    """First and last input unit with a non-zero weight for source coordinate ``x``.

    ``stretch``: an antialiased downscale stretches the linear or cubic kernel by ``1/scale``
    (ONNX ``antialias``): every unit strictly within ``support * stretch`` of ``x`` is read (the
    kernel is zero only at its ends, and, for cubic, at one support unit, inside the window)."""
    if stretch is not None and stretch > 1 and mode in KERNEL_SUPPORT:
        reach = KERNEL_SUPPORT[mode] * stretch
        return floor(x - reach) + 1, ceil(x + reach) - 1
    if mode == "nearest":
        j = _round_nearest(x, nearest_mode)
        return j, j
    if x.denominator == 1:  # on a sample: linear and cubic kernels are exactly 1 there
        return int(x), int(x)
    if mode == "linear":
        return floor(x), floor(x) + 1
    if mode == "cubic":
        return floor(x) - 1, floor(x) + 2
    raise GeometryError(f"unsupported resize mode {mode!r}")


def resize_index_maps(
    scale: Fraction,
    n_in: int,
    n_out: int,
    mode: str,
    coord_mode: str,
    nearest_mode: str,
    antialias: bool = False,
) -> tuple[QAMap, QAMap]:
    """Per-unit first/last input unit of a resize along one axis.

    The source coordinate advances by ``1/scale`` per unit, so with ``scale = p/q`` the maps are
    periodic with period ``p`` units and step ``q``. ``align_corners`` uses its own ratio.
    Borders are extrapolated (like padding); coverage figures clip them to the input.
    ``antialias`` widens linear and cubic kernels by ``1/scale`` when downscaling.
    """
    stretch = 1 / scale if antialias and scale < 1 else None
    ratio = (
        Fraction(n_out - 1, n_in - 1)
        if coord_mode == "align_corners" and n_out > 1 and n_in > 1
        else scale
    )
    if coord_mode == "align_corners" and n_out == 1:
        return QAMap.constant(0), QAMap.constant(0)
    p, q = ratio.numerator, ratio.denominator
    if p > 4096:
        raise GeometryError(f"resize ratio {ratio} has too long a period to track exactly")
    firsts, lasts = [], []
    for i in range(p):
        x = resize_source(i, scale, n_in, n_out, coord_mode)
        lo, hi = resize_taps(x, mode, nearest_mode, stretch)
        firsts.append(lo)
        lasts.append(hi)
    return QAMap(p, q, tuple(firsts)).simplified(), QAMap(p, q, tuple(lasts)).simplified()
