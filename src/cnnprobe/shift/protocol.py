"""Shift sets and shift modes.

A *view* of an input is the input displaced by ``d`` pixels per spatial axis: the content moves
towards higher indices, ``view[i] = x[i - d]``. Every mode implements this displacement:

- ``roll``    circular: ``np.roll``; nothing leaves the image, nothing new enters;
- ``crop``    linear, as in Zhang (2019): views are crops of a larger canvas,
              ``canvas[M-d : M-d+n]``
              (the undisplaced view is ``canvas[M : M+n]``); new content enters at the border;
- ``pad``     linear: the image moves and the uncovered border is filled (``zero`` = black,
              ``reflect`` or ``edge``, as ``numpy.pad``); content leaves at the far side;
- ``fourier`` circular and sub-pixel: the phase of the image's DFT is ramped (band-limited
              interpolation, no blur); equal to ``roll`` for whole-pixel shifts.

A *comparison* pairs a reference view with another view of the same input; its *shift* is the
displacement of the second relative to the first. Shift sets:

- ``sweep``   reference ``d = 0``; ``d = step, 2*step, ..., M`` along each axis and the diagonal;
- ``grid``    reference ``d = 0``; every ``d`` in ``[0, M)^k`` on the step lattice;
- ``random``  per input, ``pairs`` pairs of independent random ``d1, d2`` in ``[0, M)^k``
              (Zhang's consistency protocol: offsets in [0, 31]^2 for ``M = 32``).

``M`` is ``--max-shift``, by default the equivariance period ``P`` of the model.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

Shift = tuple[float, ...]


@dataclass(frozen=True)
class View:
    source: int  #: input index
    offset: Shift  #: displacement of the content, in pixels per spatial axis


@dataclass(frozen=True)
class Member:
    view: View
    shift: Shift  #: displacement relative to the group's reference view
    direction: str  #: ``x``, ``y``, ``z``, ``diagonal``, ``grid`` or ``pair``


@dataclass(frozen=True)
class Group:
    key: int
    reference: View
    members: tuple[Member, ...]


def axis_names(nsp: int) -> tuple[str, ...]:
    """Names of the spatial axes, outermost first: ``("y", "x")`` for images."""
    return ("z", "y", "x")[3 - nsp :] if nsp <= 3 else tuple(f"s{k}" for k in range(nsp))


def _lattice(limit: float, step: float, inclusive: bool) -> list[float]:
    """``0, step, 2*step, ...`` up to ``limit`` (inclusive or not), as exact multiples."""
    count = math.floor(limit / step + 1e-9)
    values = [k * step for k in range(count + 1)]
    if not inclusive and values and values[-1] >= limit - 1e-9 * max(1.0, limit):
        values.pop()
    return values or [0.0]


@dataclass(frozen=True)
class ShiftPlan:
    kind: str
    max_shift: Shift  #: ``M`` per axis
    step: float
    pairs: int
    seed: int
    nsp: int

    @property
    def directions(self) -> tuple[tuple[str, Shift], ...]:
        names = axis_names(self.nsp)
        out = [
            (names[k], tuple(1.0 if j == k else 0.0 for j in range(self.nsp)))
            for k in reversed(range(self.nsp))
        ]
        if self.nsp > 1:
            out.append(("diagonal", tuple(1.0 for _ in range(self.nsp))))
        return tuple(out)

    def sweep_shifts(self) -> list[tuple[str, Shift]]:
        out: list[tuple[str, Shift]] = []
        for name, unit in self.directions:
            limit = min(m for m, u in zip(self.max_shift, unit) if u)
            for v in _lattice(limit, self.step, inclusive=True)[1:]:
                out.append((name, tuple(v * u for u in unit)))
        return out

    def offsets(self) -> list[list[float]]:
        """Per axis, the displacements ``[0, M)`` of the grid and random sets."""
        return [_lattice(m, self.step, inclusive=False) for m in self.max_shift]

    @property
    def per_input(self) -> int:
        """Inferences per input."""
        if self.kind == "sweep":
            return 1 + len(self.sweep_shifts())
        if self.kind == "grid":
            return math.prod(len(o) for o in self.offsets())
        return 2 * self.pairs

    @property
    def comparisons_per_input(self) -> int:
        return self.pairs if self.kind == "random" else self.per_input - 1

    @property
    def margin(self) -> tuple[int, ...]:
        """The largest displacement per axis, in whole pixels (the crop canvas grows by it)."""
        if self.kind == "sweep":
            return tuple(math.ceil(m - 1e-9) for m in self.max_shift)
        return tuple(math.ceil(o[-1] - 1e-9) for o in self.offsets())

    def groups(self, n_inputs: int) -> Iterator[Group]:
        zero: Shift = tuple(0.0 for _ in range(self.nsp))
        if self.kind == "sweep":
            shifts = self.sweep_shifts()
            for i in range(n_inputs):
                members = tuple(Member(View(i, d), d, name) for name, d in shifts)
                yield Group(i, View(i, zero), members)
        elif self.kind == "grid":
            grid = [tuple(d) for d in itertools.product(*self.offsets())][1:]
            for i in range(n_inputs):
                members = tuple(Member(View(i, d), d, "grid") for d in grid)
                yield Group(i, View(i, zero), members)
        else:
            lattice = self.offsets()
            key = 0
            for i in range(n_inputs):
                rng = np.random.default_rng([self.seed, 0x5EED, i])
                for _ in range(self.pairs):
                    d1 = tuple(float(o[rng.integers(len(o))]) for o in lattice)
                    d2 = tuple(float(o[rng.integers(len(o))]) for o in lattice)
                    rel = tuple(b - a for a, b in zip(d1, d2))
                    yield Group(key, View(i, d1), (Member(View(i, d2), rel, "pair"),))
                    key += 1


# ---------------------------------------------------------------------------------------------
# shift modes


def fourier_shift(x: np.ndarray, shift: Sequence[float], axes: Sequence[int]) -> np.ndarray:
    """``x`` displaced by ``shift`` (any real numbers) along ``axes``, circularly, by a phase ramp
    of its DFT. The Nyquist bin of even sizes gets ``cos(pi * s)``, which keeps the result real
    (the symmetric band-limited interpolant). Whole-pixel shifts equal ``np.roll`` up to rounding.
    """
    active = [(a, float(s)) for a, s in zip(axes, shift) if s != 0]
    if not active:
        return np.array(x, dtype=np.float64)
    spectrum = np.fft.fftn(np.asarray(x, dtype=np.float64), axes=[a for a, _ in active])
    for a, s in active:
        n = x.shape[a]
        freq = np.fft.fftfreq(n)
        phase = np.exp(-2j * np.pi * freq * s)
        if n % 2 == 0:
            phase[n // 2] = np.cos(np.pi * s)
        bshape = [1] * x.ndim
        bshape[a] = n
        spectrum = spectrum * phase.reshape(bshape)
    return np.fft.ifftn(spectrum, axes=[a for a, _ in active]).real


def _pad_shift(x: np.ndarray, d: Sequence[int], axes: Sequence[int], fill: str) -> np.ndarray:
    mode = {"zero": "constant", "reflect": "reflect", "edge": "edge"}[fill]
    out = x
    for a, s in zip(axes, d):
        if s == 0:
            continue
        n = out.shape[a]
        width = [(0, 0)] * out.ndim
        width[a] = (s, 0) if s > 0 else (0, -s)
        padded = np.pad(out, width, mode=mode)  # type: ignore[call-overload]
        index = [slice(None)] * out.ndim
        index[a] = slice(0, n) if s > 0 else slice(-s, -s + n)
        out = padded[tuple(index)]
    return out


def make_view(
    canvas: np.ndarray,
    offset: Shift,
    mode: str,
    fill: str | None,
    axes: Sequence[int],
    size: Sequence[int],
    margin: Sequence[int],
) -> np.ndarray:
    """One view of ``canvas`` (a single sample, model layout, pixel space).

    ``axes`` are the sample's spatial axes; ``size`` the model's spatial size; ``margin`` how much
    larger the canvas is than ``size`` (crop mode only; 0 otherwise).
    """
    if mode == "fourier":
        return fourier_shift(canvas, offset, axes)
    whole = [round(s) for s in offset]
    if mode == "roll":
        return np.roll(canvas, whole, axis=tuple(axes))
    if mode == "pad":
        return _pad_shift(canvas, whole, axes, fill or "zero")
    index: list[slice] = [slice(None)] * canvas.ndim
    for a, s, n, m in zip(axes, whole, size, margin):
        index[a] = slice(m - s, m - s + n)
    return canvas[tuple(index)]
