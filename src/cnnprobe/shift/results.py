"""Frozen result objects of a shift test: what ``run_shift_test`` returns and reporters format."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

from .measures import Estimate

#: Version of the JSON document of ``shift-test --format json`` (minor versions only add fields).
SCHEMA_VERSION = "1.1"

CLASSIFIER = "classifier"  #: a vector of class scores per input
DENSE = "dense"  #: a spatial map (segmentation, detection heads, any feature map)
SCALAR = "scalar"  #: one number per input (regression, a single logit)
#: several axes of values per input that the analysis does not locate as a feature map
#: (a detector's predictions over anchors of every scale): no class scores, no top-1 (since 1.1)
VALUES = "values"


@dataclass(frozen=True)
class Protocol:
    """Everything needed to repeat the measurement."""

    mode: str  #: crop, roll, pad or fourier
    fill: str | None  #: pad mode's fill (zero, reflect, edge)
    shift_set: str  #: sweep, random or grid
    max_shift: tuple[float, ...]  #: M per spatial axis
    step: float
    directions: tuple[str, ...]  #: sweep directions
    pairs: int  #: random pairs per input
    inputs: str  #: description of the inputs
    input_kind: str  #: pink, white, images or npy
    count: int  #: number of inputs
    comparisons: int
    inferences: int
    batch_size: int
    seed: int
    canvas: tuple[int, ...]  #: spatial size of each input before shifting (crop: larger)
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    axes: tuple[str, ...] = ("y", "x")


@dataclass(frozen=True)
class Measure:
    """One measure over all comparisons, the on-grid ones (shift a multiple of P on every axis)
    and the off-grid ones."""

    key: str
    label: str
    all: Estimate
    on_grid: Estimate
    off_grid: Estimate
    #: direction of the better value: "low" (0 = invariant) or "high" (agreement)
    better: str = "low"


@dataclass(frozen=True)
class ShiftPoint:
    """All comparisons at one shift (sweep and grid shift sets), averaged over inputs."""

    shift: tuple[float, ...]
    direction: str
    on_grid: bool
    n: int
    #: normalized sensitivity (classifier and scalar outputs) or equivariance error (dense)
    sensitivity: float | None
    flip_rate: float | None = None
    mac: float | None = None
    tv: float | None = None
    js: float | None = None


@dataclass(frozen=True)
class LayerEquivariance:
    """Relative equivariance error of one feature map, by kind of shift.

    ``period``: shifts that are multiples of the period P; ``jump``: multiples of the map's own
    jump but not of P; ``sub_unit``: shifts by a fraction of the map's jump, compared with the
    Fourier-shifted map (circular modes only).
    """

    name: str
    tensor: str
    op: str
    size: tuple[int, ...]
    jump: tuple[Fraction, ...]
    period: Estimate
    jump_multiple: Estimate
    sub_unit: Estimate


@dataclass(frozen=True)
class OutputSummary:
    name: str
    shape: tuple[int, ...]  #: one sample's shape (no batch axis)
    kind: str  #: classifier, dense or scalar
    scores: str | None  #: "logits" or "probabilities" (classifier)
    jump: tuple[Fraction, ...] = ()  #: dense outputs
    measures: tuple[Measure, ...] = ()
    #: E ||z(x_i) - z(x_j)|| over different inputs, the normalizer of NS
    spread: float | None = None
    #: set when every input gets the same top-1 class
    degenerate_class: int | None = None
    top_class_share: float | None = None

    def measure(self, key: str) -> Measure | None:
        return next((m for m in self.measures if m.key == key), None)


@dataclass(frozen=True)
class ShiftTestResult:
    path: str
    format: str  #: onnx or keras
    runner: str
    input_name: str
    input_shape: tuple[int | None, ...]
    layout: str
    total_stride: tuple[Fraction | None, ...]
    period: tuple[int, ...]
    period_source: str
    global_kind: str | None
    protocol: Protocol
    output: OutputSummary
    points: tuple[ShiftPoint, ...]
    layers: tuple[LayerEquivariance, ...] = ()
    notes: tuple[str, ...] = ()
    elapsed_s: float = field(default=0.0, compare=False)
