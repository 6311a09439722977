"""Typed, frozen result objects of an analysis: what the Python API returns and reporters format."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

from .geometry.real import Real
from .geometry.state import Window
from .ir import Shape

#: Version of the JSON document written by ``--format json`` (see README, "JSON schema").
SCHEMA_VERSION = "1.1"

#: Layer status values.
OK = "ok"  #: every figure is exact
UNKNOWN = "unknown"  #: the op has no geometry rule
UNCERTAIN = "uncertain"  #: depends on an unknown op or on something not static; figures withheld
ERROR = "error"  #: the op's attributes do not fit its input


@dataclass(frozen=True, slots=True)
class Diagnostic:
    code: str
    severity: str  #: "error", "warning" or "info"
    where: str  #: layer name, or "" for the whole model
    message: str


@dataclass(frozen=True, slots=True)
class AxisGeometry:
    """One spatial axis of the model input, seen from one tensor.

    ``rf``/``jump``/``start`` follow the usual definitions: unit ``i`` depends on input pixels
    ``[start + i*jump, start + i*jump + rf - 1]`` (``start`` < 0 reaches into padding). After
    upsampling the map is a staircase: ``jump`` is then the exact mean (a fraction), ``rf`` the
    widest unit, ``rf_min`` the narrowest, and ``phase_starts`` the first pixel of each unit of one
    period. ``is_global``: every unit depends, through a global op (pooling, a dense layer,
    attention, a gate), on every position of a feature map along this axis, which reads input
    pixels ``reach`` (first, last): the whole input unless, say, a strided valid conv before the
    global op never reads the last pixels; ``full`` says whether every unit sees the whole input.
    ``rf`` is still the local window.
    """

    size: int | None
    input_size: int | None
    kernel: int | None = None
    stride: Fraction | None = None
    dilation: int | None = None
    pad_lo: int | None = None
    pad_hi: int | None = None
    rf: int | None = None
    rf_min: int | None = None
    jump: Fraction | None = None
    start: int | None = None
    centre: Fraction | None = None
    phase_starts: tuple[int, ...] = ()
    is_global: bool = False
    misaligned: bool = False
    #: fraction of the input axis the centre unit sees / the least-covering unit sees
    coverage_centre: float | None = None
    coverage_min: float | None = None
    #: every unit sees the whole input axis
    full: bool | None = None
    #: first and last real input pixel reached through the global path (``is_global``), or,
    #: when the units have no tracked window, by all of them together
    reach: tuple[int, int] | None = None
    #: the two ends of the windows move at different rates (after a running op)
    running: bool = False

    @property
    def staircase(self) -> bool:
        return len(self.phase_starts) > 1

    @property
    def effective_rf(self) -> int | None:
        """The receptive field counting global ops: when ``is_global``, the input pixels from the
        first to the last one reached through the global path (the whole input as a rule),
        ``None`` if unknown."""
        if not self.is_global:
            return self.rf
        return None if self.reach is None else self.reach[1] - self.reach[0] + 1


@dataclass(frozen=True, slots=True)
class LayerResult:
    """One output tensor of one node."""

    name: str
    op: str  #: operator as the file names it (``Conv``, ``Conv2D``)
    kind: str  #: neutral IR kind (``window``, ``pool``, ``elementwise`` ...)
    output: str
    output_shape: Shape
    axes: tuple[AxisGeometry, ...]
    status: str
    is_spatial: bool
    changes_geometry: bool
    #: tensor axis holding each input spatial axis (``None``: folded away or reduced)
    spatial_dims: tuple[int | None, ...] = ()
    windows: tuple[Window | None, ...] = field(default=(), repr=False, compare=False)
    reals: tuple[Real | None, ...] = field(default=(), repr=False, compare=False)

    @property
    def rf(self) -> list[int | None]:
        return [a.rf for a in self.axes]

    @property
    def jump(self) -> list[Fraction | None]:
        return [a.jump for a in self.axes]

    @property
    def start(self) -> list[int | None]:
        return [a.start for a in self.axes]

    @property
    def is_global(self) -> bool:
        """Every unit depends on the whole input (all axes), through a global op."""
        return bool(self.axes) and all(a.is_global for a in self.axes)

    @property
    def sees_full_input(self) -> bool | None:
        if self.status != OK:
            return None
        if any(a.full is None for a in self.axes):
            return None
        return all(a.full for a in self.axes)

    def unit_interval(self, axis: int, index: int) -> tuple[int, int] | None:
        """Input pixels ``[lo, hi]`` along ``axis`` that unit ``index`` depends on through local
        paths (unclipped: may reach into padding); ``None`` when unknown."""
        if axis >= len(self.windows):
            return None
        w = self.windows[axis]
        return None if w is None else w.at(index)

    def real_interval(self, axis: int, index: int) -> tuple[int, int] | None:
        """First and last *real* input pixel along ``axis`` that unit ``index`` depends on, exact
        at the borders (padding taps, dilation gaps, strides that skip pixels, crops); ``None``
        when the unit reads no input pixel or the sizes are unknown."""
        if axis >= len(self.reals):
            return None
        r = self.reals[axis]
        return None if r is None else r.at(index)


@dataclass(frozen=True, slots=True)
class InputInfo:
    name: str
    shape: Shape
    layout: str
    spatial_axes: tuple[int, ...]

    @property
    def spatial_size(self) -> tuple[int | None, ...]:
        return tuple(self.shape[t] for t in self.spatial_axes)


@dataclass(frozen=True)
class ModelInfo:
    path: str
    format: str
    input: InputInfo
    meta: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Stage:
    """A layer where the resolution (jump) changes along at least one axis."""

    layer: str
    op: str
    jump_before: tuple[Fraction | None, ...]
    jump_after: tuple[Fraction | None, ...]


@dataclass(frozen=True)
class OutputGeometry:
    """One graph output (a multi-head detector has one per scale): the figures of the layer
    that produces it, per spatial axis. ``spatial``: it is a feature map (every figure exact);
    ``layer`` is ``None`` when no layer computes it from the input (a constant)."""

    output: str
    layer: str | None
    shape: Shape
    spatial: bool
    rf: tuple[int | None, ...]
    jump: tuple[Fraction | None, ...]
    start: tuple[int | None, ...]
    sees_full_input: bool | None
    status: str


@dataclass(frozen=True)
class Verdict:
    """Plain answers about the whole model. Figures are per spatial axis."""

    input_size: tuple[int | None, ...]
    last_spatial_layer: str | None
    rf: tuple[int | None, ...]
    jump: tuple[Fraction | None, ...]
    start: tuple[int | None, ...]
    total_stride: tuple[Fraction | None, ...]
    sees_full_input: bool | None
    #: fraction of the input seen by the centre unit / least-covering unit, per axis and by area
    coverage_centre: tuple[float | None, ...]
    coverage_min: tuple[float | None, ...]
    area_centre: float | None
    area_min: float | None
    first_full_coverage_layer: str | None
    first_global_layer: str | None
    global_kind: str | None
    #: first feature map (still spatial) whose units depend on the whole input
    global_while_spatial: str | None
    stages: tuple[Stage, ...]
    certain: bool
    #: every graph output, in the file's order (since JSON schema 1.1)
    outputs: tuple[OutputGeometry, ...] = ()


@dataclass(frozen=True)
class AnalysisResult:
    model: ModelInfo
    layers: tuple[LayerResult, ...]
    verdict: Verdict
    diagnostics: tuple[Diagnostic, ...]

    def tensor(self, name: str) -> LayerResult:
        """The layer producing tensor ``name``."""
        for layer in self.layers:
            if layer.output == name:
                return layer
        raise KeyError(name)

    def layer(self, name: str) -> LayerResult:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)
