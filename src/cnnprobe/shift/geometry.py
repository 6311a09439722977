"""What the shift test needs to know of the model's geometry, from the summary engine.

- the total stride ``S`` (jump of the last spatial layer) per input spatial axis;
- the equivariance period ``P``: the least common multiple of every feature map's integer jump
  (numerator of its exact jump). A network can be shift-equivariant only for shifts that are
  multiples of ``P``. For plain downsampling chains ``P = S``; an encoder-decoder that
  downsamples by 4 and upsamples back has ``S = 1`` but ``P = 4``;
- for every feature map: where its spatial axes live in the tensor and its jump per axis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

from ..errors import UsageError

if TYPE_CHECKING:
    from ..results import AnalysisResult, LayerResult


@dataclass(frozen=True)
class TensorGeometry:
    """One tensor the test compares: the measured output or an inner feature map.

    ``dims`` are the tensor axes (batch included, so ``>= 1``) holding the input spatial axes, in
    the order of ``ModelGeometry.spatial_axes``; empty for a non-spatial tensor (class scores).
    ``jump`` is the distance in input pixels between neighbouring units, per input axis.
    """

    name: str
    tensor: str
    op: str
    shape: tuple[int | None, ...]
    dims: tuple[int, ...] = ()
    jump: tuple[Fraction, ...] = ()

    @property
    def spatial(self) -> bool:
        return bool(self.dims)


@dataclass(frozen=True)
class ModelGeometry:
    path: str
    format: str
    input_name: str
    input_shape: tuple[int | None, ...]
    layout: str
    spatial_axes: tuple[int, ...]
    total_stride: tuple[Fraction | None, ...]
    period: tuple[int, ...]
    #: where the period comes from: "analysis", "--stride" or "keras layers"
    period_source: str
    #: spatial feature maps, in graph order
    feature_maps: tuple[TensorGeometry, ...]
    #: every tensor the analysis knows, by tensor name (for ``--target``)
    tensors: dict[str, TensorGeometry]
    #: names of the graph outputs, in order
    outputs: tuple[str, ...]
    notes: tuple[str, ...] = ()
    #: how the network goes global (``Verdict.global_kind``), e.g. global pooling or flatten+dense
    global_kind: str | None = None

    @property
    def spatial_size(self) -> tuple[int, ...]:
        return tuple(int(self.input_shape[t] or 0) for t in self.spatial_axes)

    @property
    def channels_first(self) -> bool:
        return self.layout.startswith("NC")

    @property
    def channel_axis(self) -> int:
        return 1 if self.channels_first else len(self.input_shape) - 1


def lcm_all(values: list[int]) -> int:
    out = 1
    for v in values:
        out = out * v // math.gcd(out, v)
    return out


def locate_dims(
    shape: tuple[int | None, ...], sizes: tuple[int | None, ...], channels_first: bool
) -> tuple[int, ...] | None:
    """Tensor axes holding spatial axes of ``sizes``: trailing axes for channels-first layouts,
    axes 1.. for channels-last, whichever matches (the layout of the input first)."""
    rank, nsp = len(shape), len(sizes)
    if rank < nsp + 1 or any(s is None for s in sizes):
        return None
    trailing = tuple(range(rank - nsp, rank))
    leading = tuple(range(1, 1 + nsp))
    for cand in (trailing, leading) if channels_first else (leading, trailing):
        if all(shape[t] == sizes[k] for k, t in enumerate(cand)):
            return cand
    return None


def _tensor_geometry(layer: LayerResult, channels_first: bool) -> TensorGeometry:
    base = TensorGeometry(layer.name, layer.output, layer.op, tuple(layer.output_shape))
    if not layer.is_spatial or layer.status != "ok":
        return base
    jumps = [a.jump for a in layer.axes]
    if any(j is None for j in jumps):
        return base
    dims = getattr(layer, "spatial_dims", None)  # a future LayerResult field; guessed otherwise
    if dims is None or any(d is None for d in dims):
        dims = locate_dims(base.shape, tuple(a.size for a in layer.axes), channels_first)
    if dims is None:
        return base
    return TensorGeometry(
        layer.name,
        layer.output,
        layer.op,
        base.shape,
        tuple(int(d) for d in dims),
        tuple(Fraction(j) for j in jumps if j is not None),
    )


def from_analysis(
    result: AnalysisResult, outputs: tuple[str, ...], stride: tuple[int, ...] | None
) -> ModelGeometry:
    """Geometry from a summary analysis; ``stride`` (``--stride``) overrides the period."""
    inp = result.model.input
    nsp = len(inp.spatial_axes)
    channels_first = inp.layout.startswith("NC")
    tensors: dict[str, TensorGeometry] = {}
    maps: list[TensorGeometry] = []
    for layer in result.layers:
        tg = _tensor_geometry(layer, channels_first)
        tensors.setdefault(layer.output, tg)
        if tg.spatial:
            maps.append(tg)
    notes: list[str] = []
    # (past an uncertain layer the real last spatial layer, and its jump, are unknown)
    total = (
        tuple(result.verdict.total_stride)
        if result.verdict.certain
        else tuple(None for _ in range(nsp))
    )
    if stride is not None:
        period = _expand(stride, nsp)
        source = "--stride"
    else:
        if not result.verdict.certain or any(t is None for t in total):
            uncertain = [layer.name for layer in result.layers if layer.status != "ok"]
            where = f" (layer {uncertain[0]!r} has no exact geometry)" if uncertain else ""
            raise UsageError(
                f"the analysis cannot tell the total stride{where}: give --stride, e.g. "
                "--stride 32",
                result.model.path,
            )
        period = tuple(
            lcm_all([_numerator(m.jump[k]) for m in maps] + [_numerator(total[k])])
            for k in range(nsp)
        )
        source = "analysis"
        if total and any(
            t is not None and Fraction(t).denominator == 1 and int(t) != p
            for t, p in zip(total, period)
        ):
            notes.append(
                "the equivariance period P differs from the total stride S: feature maps are "
                "downsampled further inside the network than at its end (encoder-decoder)"
            )
    return ModelGeometry(
        path=result.model.path,
        format=result.model.format,
        input_name=inp.name,
        input_shape=tuple(inp.shape),
        layout=inp.layout,
        spatial_axes=tuple(inp.spatial_axes),
        total_stride=total,
        period=period,
        period_source=source,
        feature_maps=tuple(maps),
        tensors=tensors,
        outputs=outputs,
        notes=tuple(notes),
        global_kind=result.verdict.global_kind,
    )


def _numerator(x: Fraction | None) -> int:
    return 1 if x is None else max(Fraction(x).numerator, 1)


def _expand(stride: tuple[int, ...], nsp: int) -> tuple[int, ...]:
    if len(stride) == 1:
        return stride * nsp
    if len(stride) != nsp:
        raise UsageError(f"--stride has {len(stride)} values but the input has {nsp} spatial axes")
    return stride


def expand_stride(stride: tuple[int, ...], nsp: int) -> tuple[int, ...]:
    return _expand(stride, nsp)
