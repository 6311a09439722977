"""The framework-neutral graph that every frontend produces and every analysis reads.

Nothing here knows about ONNX or Keras. A frontend turns a file into a :class:`Graph` whose nodes
carry a neutral operator kind (:attr:`Node.op`, one of :data:`OPS`) and normalised attributes;
the original operator name is kept in :attr:`Node.source_op` for display only.

Attribute conventions (all per *tensor axis* unless said otherwise; tuples, never lists):

``window`` / ``window_transpose`` / ``pool``
    ``spatial_axes``: tensor axes the kernel slides over; ``kernel``, ``strides``, ``dilations``:
    one entry per spatial axis; ``padding``: a :class:`Padding`; ``channel_axis``: the axis a
    convolution mixes (``None`` for pooling, which keeps channels apart); ``out_channels`` (or,
    when unknown, ``channel_multiplier``: a depthwise conv's input channels times this);
    ``ceil_mode``; for transposed convolutions also ``output_padding`` and ``output_size``
    (explicit spatial output sizes, or ``None``).
``reduce``
    ``axes`` (mixed, may be empty = all), ``keepdims``.
``mix``
    ``axes``: every output element depends on every position along these axes; shape unchanged.
``dense``
    ``axis``: the contracted axis, replaced by ``units`` outputs (``None`` if unknown).
``matmul``
    numpy ``matmul`` of two data tensors; ``gemm``: ``trans_a``, ``trans_b``, ``units``.
``pad``
    ``pads``: ``((lo, hi), ...)`` per tensor axis (negative crops), or ``None`` if not static.
``slice``
    ``slices``: ``((axis, start, end, step), ...)`` with framework index semantics (negative
    indices count from the end, ends are clamped).
``resize``
    ``scales`` or ``sizes`` per tensor axis; ``mode`` (``nearest``/``linear``/``cubic``);
    ``coord_mode`` (ONNX ``coordinate_transformation_mode`` names); ``nearest_mode``.
``space_to_depth`` / ``depth_to_space``
    ``block``, ``spatial_axes``, ``channel_axis``.
``reshape``
    ``target``: shape with ONNX semantics (``0`` copies, ``-1`` infers) or ``None`` (then the
    declared output shape is used); ``allowzero``. ``flatten``: ``axis``.
``transpose``
    ``perm``. ``squeeze``/``unsqueeze``: ``axes`` (``None`` = all size-1 axes for squeeze).
``concat``
    ``axis``. ``split``: ``axis``, ``sizes`` (or ``None`` = equal parts).
``elementwise``
    any number of data inputs, numpy broadcasting (also single-input pointwise ops).
``gather``
    ``axis``, ``indices_rank`` (0 for a scalar index).
``select``
    ONNX ``GatherElements``: along ``axis``, each output element picks one element of the data
    (input 0) at a position the indices (input 1) give, which may be computed at run time.
``scan``
    a running op along ``axis`` (cumulative sum): output unit ``t`` reads input units ``0..t``
    (``t..n-1`` when ``reverse``; ``exclusive`` leaves out unit ``t`` itself).
``recurrent``
    a recurrent layer (LSTM, GRU, simple RNN) over the sequence axis ``seq_axis`` of its first
    input, whose ``feature_axis`` its input weights contract; ``outputs``: per output a
    :class:`RecurrentOutput` (all steps or the final state; direction; where a directions axis
    is inserted; units along the feature axis). Further inputs (initial states, sequence
    lengths) are ``params``: every step reads all of them.
``constant`` / ``shape``
    outputs that do not depend on input values.
``unknown``
    an operator without a geometry rule.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

Dim = int | None
Shape = tuple[Dim, ...]

OPS = frozenset(
    {
        "window",
        "window_transpose",
        "pool",
        "reduce",
        "mix",
        "dense",
        "matmul",
        "einsum",
        "gemm",
        "pad",
        "slice",
        "resize",
        "space_to_depth",
        "depth_to_space",
        "reshape",
        "flatten",
        "transpose",
        "squeeze",
        "unsqueeze",
        "concat",
        "split",
        "elementwise",
        "gather",
        "select",
        "scan",
        "recurrent",
        "constant",
        "shape",
        "unknown",
    }
)

PAD_MODES = ("explicit", "same_upper", "same_lower", "valid")


def format_shape(shape: Sequence[Dim]) -> str:
    """``[1, 3, ?, ?]``: unknown dims as ``?``."""
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def shape_hint(shape: Shape, spatial: Sequence[int]) -> str:
    """An ``--input-shape`` to suggest: known dims kept, unknown spatial ones 224, others 1."""
    return "x".join(
        str(d) if d is not None else ("224" if t in spatial else "1") for t, d in enumerate(shape)
    )


@dataclass(frozen=True)
class Padding:
    """Padding of a window op, per spatial axis of the op.

    ``mode`` is ``explicit`` (use ``lo``/``hi``), ``same_upper`` (the extra pixel at the end,
    as ONNX ``SAME_UPPER`` and Keras ``same``), ``same_lower`` or ``valid``.
    """

    mode: str
    lo: tuple[int, ...] = ()
    hi: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.mode not in PAD_MODES:
            raise ValueError(f"unknown padding mode {self.mode!r}")


@dataclass(frozen=True)
class RecurrentOutput:
    """One output of a ``recurrent`` node. ``sequence``: the output at every step (the
    sequence axis stays), else the final state (the sequence axis is removed). ``direction``:
    ``forward`` (step ``t`` has read steps ``0..t``), ``reverse`` (``t..n-1``, in input order)
    or ``bidirectional`` (both). ``dir_axis``: output axis inserted for the directions (ONNX
    ``num_directions``), or ``None``; ``units``: the size of the feature axis in the output.
    ``merged``: a bidirectional output whose elements each combine both directions (Keras
    ``sum``/``ave``/``mul``: every step has read every step); otherwise the directions lie side
    by side (along ``dir_axis``, else along the features), each reading part of the sequence."""

    sequence: bool
    direction: str
    dir_axis: int | None = None
    units: int | None = None
    merged: bool = False


@dataclass(slots=True)
class Node:
    """One operation. ``inputs`` are data tensors (``None`` for an absent optional input);
    ``params`` are further tensors the op reads (weights, shape operands): if one of them turns out
    to depend on the image, every output element may depend on all of it."""

    name: str
    op: str
    source_op: str
    inputs: tuple[str | None, ...]
    outputs: tuple[str, ...]
    attrs: dict[str, Any] = field(default_factory=dict)
    params: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"node {self.name!r}: unknown IR op {self.op!r}")


@dataclass(frozen=True)
class ModelInput:
    """The image input whose receptive fields are analysed."""

    name: str
    shape: Shape
    layout: str
    spatial_axes: tuple[int, ...]


@dataclass
class Graph:
    """A model as a list of nodes plus what is known about its tensors."""

    path: str
    format: str
    input: ModelInput
    nodes: list[Node]
    outputs: tuple[str, ...]
    #: Tensors whose values do not depend on any model input (weights, constants).
    constants: frozenset[str] = frozenset()
    #: Other graph inputs (their values are not analysed; treated as constants).
    other_inputs: tuple[str, ...] = ()
    #: Shapes the file itself records for tensors (checked against computed ones).
    declared_shapes: dict[str, Shape] = field(default_factory=dict)
    #: Free-form facts about the file shown in reports (producer, opset, ...).
    meta: dict[str, str] = field(default_factory=dict)
    #: Nodes whose static operand (a reshape target, slice bounds, ...) the frontend could not
    #: work out from the file, and, with them, how to rebuild the graph once more tensor shapes
    #: are known (the analysis computes them): ``refine(shapes)`` returns the new graph.
    unresolved: tuple[str, ...] = ()
    refine: Callable[[dict[str, Shape]], Graph] | None = field(
        default=None, repr=False, compare=False
    )
