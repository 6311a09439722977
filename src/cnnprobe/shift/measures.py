"""The measures, as plain functions of arrays (z = raw scores, p = probabilities, ' = shifted).

Classifier-like outputs, per comparison:

- agreement ``argmax z == argmax z'`` (flip = not agreement);
- MAC, mean absolute change of the top probability: ``|p[y] - p'[y]|`` with ``y = argmax p``;
- total variation ``TV = 1/2 * sum |p - p'|`` (0 to 1);
- Jensen-Shannon divergence ``JS = 1/2 KL(p||m) + 1/2 KL(p'||m)``, ``m = (p + p')/2``, in nats
  (0 to ln 2);
- ``||z' - z||``, which the normalized sensitivity divides by ``E_{i != j} ||z(x_i) - z(x_j)||``
  (two *different* inputs): 0 = invariant, 1 = as different as another input.

Feature maps and dense outputs: relative equivariance error
``||M * (f(T_d x) - T_k f(x))||^2 / ||M * T_k f(x)||^2`` with ``k = d / jump`` units and M the
overlap of the two maps (everything for circular shifts).

Intervals (95%): Wilson score interval for proportions, normal approximation
``mean +- 1.96 s / sqrt(n)`` for means, over comparisons.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .protocol import fourier_shift

Z95 = 1.959963984540054


@dataclass(frozen=True)
class Estimate:
    """A mean over ``n`` comparisons with its 95% interval (``None``: not available)."""

    value: float | None
    low: float | None
    high: float | None
    n: int
    method: str  #: "wilson", "normal" or "none"

    @staticmethod
    def empty() -> Estimate:
        return Estimate(None, None, None, 0, "none")


def wilson(successes: int, n: int, z: float = Z95) -> Estimate:
    """Proportion with the Wilson score interval."""
    if n == 0:
        return Estimate.empty()
    phat = successes / n
    denom = 1 + z * z / n
    centre = (phat + z * z / (2 * n)) / denom
    half = z * math.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n)) / denom
    return Estimate(phat, max(0.0, centre - half), min(1.0, centre + half), n, "wilson")


def mean_interval(values: Sequence[float] | np.ndarray, scale: float = 1.0) -> Estimate:
    """Mean with a normal-approximation interval; NaN entries are ignored. ``scale`` divides."""
    arr = np.asarray(values, dtype=np.float64)
    arr = arr[np.isfinite(arr)] / scale
    n = int(arr.size)
    if n == 0:
        return Estimate.empty()
    mean = float(arr.mean())
    if n == 1:
        return Estimate(mean, None, None, 1, "normal")
    half = Z95 * float(arr.std(ddof=1)) / math.sqrt(n)
    return Estimate(mean, mean - half, mean + half, n, "normal")


def softmax(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    out: np.ndarray = e / e.sum(axis=-1, keepdims=True)
    return out


def looks_like_probabilities(scores: np.ndarray, tol: float = 1e-3) -> bool:
    """Every row is in [0, 1] and sums to 1 (a softmax is already applied)."""
    s = np.asarray(scores, dtype=np.float64)
    if s.size == 0 or s.shape[-1] < 2:
        return False
    inside = bool(np.all(s >= -tol) and np.all(s <= 1 + tol))
    return inside and bool(np.all(np.abs(s.sum(axis=-1) - 1) <= tol))


@dataclass(frozen=True)
class ClassifierDelta:
    """Per-comparison measures of one batch of comparisons (arrays of length n)."""

    agree: np.ndarray
    mac: np.ndarray
    tv: np.ndarray
    js: np.ndarray
    distance: np.ndarray


def classifier_delta(ref: np.ndarray, other: np.ndarray, probabilities: bool) -> ClassifierDelta:
    """Measures between reference scores ``ref`` and shifted scores ``other`` (``[n, K]``)."""
    z0 = np.asarray(ref, dtype=np.float64).reshape(len(ref), -1)
    z1 = np.asarray(other, dtype=np.float64).reshape(len(other), -1)
    if probabilities:
        p0 = np.clip(z0, 0, None)
        p1 = np.clip(z1, 0, None)
        p0 = p0 / np.maximum(p0.sum(axis=1, keepdims=True), 1e-300)
        p1 = p1 / np.maximum(p1.sum(axis=1, keepdims=True), 1e-300)
    else:
        p0, p1 = softmax(z0), softmax(z1)
    top = np.argmax(p0, axis=1)
    rows = np.arange(len(top))
    agree = np.argmax(z1, axis=1) == np.argmax(z0, axis=1)
    mac = np.abs(p0[rows, top] - p1[rows, top])
    tv = 0.5 * np.abs(p0 - p1).sum(axis=1)
    m = 0.5 * (p0 + p1)
    js = 0.5 * (_kl(p0, m) + _kl(p1, m))
    distance = np.sqrt(((z1 - z0) ** 2).sum(axis=1))
    return ClassifierDelta(agree, mac, tv, np.clip(js, 0.0, math.log(2)), distance)


def _kl(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * (np.log(p) - np.log(np.where(q > 0, q, 1.0))), 0.0)
    out: np.ndarray = terms.sum(axis=1)
    return out


def mean_pairwise_distance(groups: Sequence[np.ndarray]) -> float | None:
    """``E ||a - b||`` over pairs of score vectors from different inputs; ``groups[i]`` holds
    vectors (``[m_i, K]``) of input ``i``. ``None`` with fewer than two inputs."""
    total, count = 0.0, 0
    for i in range(len(groups)):
        for j in range(i + 1, len(groups)):
            a = np.asarray(groups[i], dtype=np.float64)
            b = np.asarray(groups[j], dtype=np.float64)
            d = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=2))
            total += float(d.sum())
            count += d.size
    return total / count if count else None


def shift_class(units: Sequence[float], tol: float = 1e-6) -> bool:
    """Whether a shift in units of a tensor's grid is a whole number of units on every axis."""
    return all(abs(u - round(u)) <= tol for u in units)


def equivariance_error(
    ref: np.ndarray,
    other: np.ndarray,
    units: Sequence[float],
    axes: Sequence[int],
    circular: bool,
) -> float | None:
    """``||M (other - T_k ref)||^2 / ||M T_k ref||^2`` for one sample (``ref``, ``other``: one
    tensor without its batch axis; ``axes`` its spatial axes). Whole ``units`` shift on the grid
    (a roll when circular, otherwise the overlap of the two maps); fractional units need a
    circular shift and use the Fourier shift. ``None``: nothing to compare."""
    ref = np.asarray(ref)
    other = np.asarray(other)
    if not np.issubdtype(ref.dtype, np.floating) or ref.dtype.itemsize < 4:
        ref = ref.astype(np.float32)
    other = other.astype(ref.dtype, copy=False)
    if ref.shape != other.shape:
        return None
    if shift_class(units):
        k = [round(u) for u in units]
        if circular:
            expected = np.roll(ref, k, axis=tuple(axes))
            actual = other
        else:
            a_idx: list[slice] = [slice(None)] * ref.ndim
            r_idx: list[slice] = [slice(None)] * ref.ndim
            for ax, s in zip(axes, k):
                n = ref.shape[ax]
                if abs(s) >= n:
                    return None
                a_idx[ax] = slice(s, n) if s >= 0 else slice(0, n + s)
                r_idx[ax] = slice(0, n - s) if s >= 0 else slice(-s, n)
            expected = ref[tuple(r_idx)]
            actual = other[tuple(a_idx)]
    elif circular:
        expected = fourier_shift(ref, units, axes)
        actual = other
    else:
        return None
    diff = np.ravel(actual - expected)
    flat = np.ravel(expected)
    num = float(np.dot(diff, diff))
    den = float(np.dot(flat, flat))
    if den == 0.0:
        return 0.0 if num == 0.0 else None
    return num / den
