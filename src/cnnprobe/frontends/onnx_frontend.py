"""ONNX frontend: a ``.onnx`` file becomes an :class:`~cnnprobe.ir.Graph`.

Opset differences (attributes that became inputs, changed defaults) are resolved here, so that the
geometry rules stay opset-free. Small constant operands (pads, shapes, scales, axes) are folded
from initializers, ``Constant`` nodes and short chains of integer ops; when an operand is only known
through shape inference, ONNX shape inference runs once and the recorded shapes are used.

The file is read by :mod:`.onnx_wire` (pure Python, weights never copied) and folding works on small
Python lists: the normal path imports neither onnx nor numpy. The onnx package is only imported for
the shape-inference fallback, whose result is read back with the same reader.
"""

from __future__ import annotations

import math
import os
import struct
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import ModelError, UsageError
from ..ir import (
    Graph,
    ModelInput,
    Node,
    Padding,
    RecurrentOutput,
    Shape,
    format_shape,
    shape_hint,
)
from . import given_shape
from .onnx_wire import (
    FLOAT,
    INT32,
    INT64,
    Array,
    ModelInfo,
    NodeInfo,
    TensorInfo,
    ValueInfo,
    read_model_bytes,
    tensor_values,
)

#: Operands larger than this are never folded (weights are never read).
FOLD_LIMIT = 4096
BIG = 1 << 62


class NeedsInference(Exception):
    """An operand is not static; retry with ONNX shape inference."""


@dataclass
class Ctx:
    """What converters may consult."""

    opset: int
    values: dict[str, Array]
    shapes: dict[str, Shape]
    inferred: bool
    extra_notes: list[str] = field(default_factory=list)
    #: Initializers whose values are decoded on first use (most are never asked for): per name,
    #: in file order; the last one that decodes is the value.
    pending: dict[str, list[TensorInfo]] = field(default_factory=dict)

    def value(self, name: str | None) -> Array | None:
        if not name:
            return None
        v = self.values.get(name)
        if v is None and name in self.pending:
            for t in reversed(self.pending.pop(name)):
                v = _small_tensor(t)
                if v is not None:
                    self.values[name] = v
                    break
        return v

    def ints(self, name: str | None) -> tuple[int, ...] | None:
        v = self.value(name)
        return None if v is None else tuple(int(x) for x in v.data)

    def floats(self, name: str | None) -> tuple[float, ...] | None:
        v = self.value(name)
        return None if v is None else tuple(float(x) for x in v.data)

    def shape(self, name: str) -> Shape | None:
        return self.shapes.get(name)


#: A converter returns one IR node, or several for an op that fuses two (their inner tensors are
#: named after the node's output)
Converter = Callable[[NodeInfo, dict[str, Any], Ctx, str], "Node | list[Node]"]
CONVERTERS: dict[str, Converter] = {}


def converts(*op_types: str) -> Callable[[Converter], Converter]:
    def reg(fn: Converter) -> Converter:
        for op in op_types:
            CONVERTERS[op] = fn
        return fn

    return reg


def _node(
    p: NodeInfo,
    name: str,
    op: str,
    inputs: Sequence[str | None],
    params: Sequence[str | None] = (),
    **attrs: Any,
) -> Node:
    return Node(
        name=name,
        op=op,
        source_op=p.op_type if not p.domain or p.domain == "ai.onnx" else f"{p.domain}.{p.op_type}",
        inputs=tuple(inputs),
        outputs=tuple(p.output),
        attrs=attrs,
        params=tuple(x for x in params if x),
    )


def _at_run_time(p: NodeInfo, name: str, what: str) -> Node:
    """An op whose operand (input 1) is computed at run time: not followed until ONNX shape
    inference or the analysis's shapes settle it."""
    return _node(
        p,
        name,
        "unknown",
        [p.input[0]],
        [p.input[1]],
        reason=f"{what} is computed at run time",
        runtime_operand=True,
    )


def _arg(p: NodeInfo, k: int) -> str | None:
    return p.input[k] if len(p.input) > k and p.input[k] else None


# ---------------------------------------------------------------------------------------------
# window operators


def _padding(a: dict[str, Any], nsp: int) -> Padding:
    auto = a.get("auto_pad", "NOTSET").upper()
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        return Padding(auto.lower())
    if auto == "VALID":
        return Padding("valid")
    if auto not in ("NOTSET", ""):
        raise ModelError(f"unknown auto_pad {auto!r}")
    pads = tuple(a.get("pads", (0,) * (2 * nsp)))
    if len(pads) != 2 * nsp:
        raise ModelError(f"pads {list(pads)} do not match {nsp} spatial axes")
    return Padding("explicit", pads[:nsp], pads[nsp:])


def _window_attrs(a: dict[str, Any], kernel: Sequence[int]) -> dict[str, Any]:
    nsp = len(kernel)
    return dict(
        spatial_axes=tuple(range(2, 2 + nsp)),
        kernel=tuple(int(k) for k in kernel),
        strides=tuple(a.get("strides", (1,) * nsp)),
        dilations=tuple(a.get("dilations", (1,) * nsp)),
        padding=_padding(a, nsp),
        ceil_mode=bool(a.get("ceil_mode", 0)),
    )


def _weight_shape(ctx: Ctx, name: str | None) -> Shape | None:
    if name is None:
        return None
    shp = ctx.shape(name)
    if shp is None and not ctx.inferred:
        raise NeedsInference(name)
    return shp


def _channels_last(attrs: dict[str, Any], channel_axis: bool) -> dict[str, Any]:
    """Window attributes of an onnxruntime NHWC variant (``channels_last``): the spatial axes
    right after the batch, channels last."""
    nsp = len(attrs["spatial_axes"])
    attrs["spatial_axes"] = tuple(range(1, 1 + nsp))
    if channel_axis:
        attrs["channel_axis"] = 1 + nsp
    return attrs


@converts(
    "Conv",
    "ConvInteger",
    "QLinearConv",
    "ConvTranspose",
    "com.microsoft.FusedConv",
    "com.microsoft.QLinearConv",
)
def conv(p: NodeInfo, a: dict[str, Any], ctx: Ctx, name: str) -> Node:
    w_index = 3 if p.op_type == "QLinearConv" else 1
    w = _arg(p, w_index)
    wshape = None
    kernel = a.get("kernel_shape")
    if kernel is None or p.op_type.startswith("ConvT"):
        wshape = _weight_shape(ctx, w)
    if kernel is None:
        if wshape is None or len(wshape) < 3 or any(d is None for d in wshape[2:]):
            raise ModelError(f"node {name!r}: kernel shape is neither given nor inferable")
        kernel = wshape[2:]
    transposed = p.op_type == "ConvTranspose"
    group = int(a.get("group", 1))
    out_ch = None
    if transposed:
        if wshape is not None and wshape[1] is not None:
            out_ch = wshape[1] * group
    else:
        wshape = wshape or ctx.shape(w or "")
        out_ch = wshape[0] if wshape else None
        if out_ch is None and w is not None and not ctx.inferred:
            # a weight computed in the graph (timm's standardised convs: Reshape or statistics
            # of a constant): ONNX shape inference gives its shape, so the output channels
            raise NeedsInference(w)
    attrs = _window_attrs(a, [int(k or 0) for k in kernel])
    attrs.update(channel_axis=1, out_channels=out_ch, groups=group)
    if a.get("channels_last"):
        _channels_last(attrs, True)
    params = [x for k, x in enumerate(p.input) if k != 0]
    if transposed:
        nsp = len(kernel)
        out_shape = a.get("output_shape")
        attrs.update(
            output_padding=tuple(a.get("output_padding", (0,) * nsp)),
            output_size=tuple(out_shape[-nsp:]) if out_shape else None,
        )
        attrs.pop("ceil_mode")
        return _node(p, name, "window_transpose", [p.input[0]], params, **attrs)
    return _node(p, name, "window", [p.input[0]], params, **attrs)


# onnxruntime's NCHWc ops (files saved after its full graph optimisation on x86): 4-D tensors whose
# channels are padded to the CPU's block size; the geometry is that of the plain ops.


@converts("com.microsoft.nchwc.Conv")
def nchwc_conv(p: NodeInfo, a: dict[str, Any], ctx: Ctx, name: str) -> Node | list[Node]:
    """A Conv, then (fused) the addition of its optional 4th input ``Sum`` and an activation."""
    total = _arg(p, 3)
    node = conv(replace(p, input=p.input[:3]), a, ctx, name)
    assert isinstance(node, Node)
    if total is None:
        return node
    inner = f"{p.output[0]}#conv"
    return [
        replace(node, name=f"{name}/conv", outputs=(inner,)),
        _node(p, name, "elementwise", [inner, total]),
    ]


@converts("com.microsoft.nchwc.ReorderInput", "com.microsoft.nchwc.ReorderOutput")
def nchwc_reorder(p: NodeInfo, a: dict[str, Any], ctx: Ctx, name: str) -> Node | list[Node]:
    """Into the blocked layout from NCHW (the channels padded) or NHWC (``channels_last``), and
    back out (to ``channels`` channels)."""
    last = bool(a.get("channels_last", 0))
    if p.op_type == "ReorderInput":
        if last:
            return _node(p, name, "transpose", [p.input[0]], perm=(0, 3, 1, 2))
        return _node(p, name, "elementwise", [p.input[0]])
    channels = int(a["channels"])
    if not last:
        return _node(p, name, "slice", [p.input[0]], slices=((1, 0, channels, 1),))
    inner = f"{p.output[0]}#nhwc"
    move = _node(p, f"{name}/transpose", "transpose", [p.input[0]], perm=(0, 2, 3, 1))
    return [
        replace(move, outputs=(inner,)),
        _node(p, name, "slice", [inner], slices=((3, 0, channels, 1),)),
    ]


@converts("com.microsoft.nchwc.Upsample")
def nchwc_upsample(p: NodeInfo, a: dict[str, Any], ctx: Ctx, name: str) -> Node:
    return _node(
        p,
        name,
        "resize",
        [p.input[0]],
        scales=tuple(float(x) for x in a["scales"]),
        sizes=None,
        axes=None,
        mode=str(a.get("mode", "nearest")).lower(),
        coord_mode=str(a.get("coordinate_transformation_mode", "asymmetric")),
        nearest_mode="floor",
    )


@converts(
    "MaxPool",
    "AveragePool",
    "LpPool",
    "com.microsoft.QLinearAveragePool",
    "com.microsoft.NhwcMaxPool",
    "com.microsoft.nchwc.MaxPool",
    "com.microsoft.nchwc.AveragePool",
)
def pool(p: NodeInfo, a: dict[str, Any], ctx: Ctx, name: str) -> Node:
    kernel = a.get("kernel_shape")
    if kernel is None:
        raise ModelError(f"node {name!r}: {p.op_type} without kernel_shape")
    attrs = _window_attrs(a, kernel)
    attrs.update(channel_axis=None, kind=p.op_type)
    if a.get("channels_last") or p.op_type == "NhwcMaxPool":
        _channels_last(attrs, False)
    return _node(p, name, "pool", [p.input[0]], list(p.input[1:]), **attrs)


@converts(
    "GlobalAveragePool",
    "GlobalMaxPool",
    "GlobalLpPool",
    "com.microsoft.QLinearGlobalAveragePool",
    "com.microsoft.nchwc.GlobalAveragePool",
    "com.microsoft.nchwc.GlobalMaxPool",
)
def global_pool(p: NodeInfo, a: dict[str, Any], ctx: Ctx, name: str) -> Node:
    if a.get("channels_last"):  # N, spatial..., C
        span = {"axes_from": 1, "axes_to": -1}
    else:
        span = {"axes_from": 2}
    return _node(p, name, "reduce", [p.input[0]], list(p.input[1:]), keepdims=True, **span)


@converts("com.microsoft.QLinearReduceMean")
def qlinear_reduce_mean(p: NodeInfo, a: dict[str, Any], ctx: Ctx, name: str) -> Node:
    return _node(
        p,
        name,
        "reduce",
        [p.input[0]],
        list(p.input[1:]),
        axes=tuple(a["axes"]),
        keepdims=bool(a.get("keepdims", 1)),
    )


@converts("Pad")
def pad(p: NodeInfo, a: dict[str, Any], ctx: Ctx, name: str) -> Node:
    mode = a.get("mode", "constant")
    if ctx.opset < 11:
        raw: tuple[int, ...] | None = tuple(a.get("pads", a.get("paddings", ())))
        axes = None
    else:
        raw = ctx.ints(_arg(p, 1))
        axes = ctx.ints(_arg(p, 3))
    pads = None
    if raw is not None:
        half = len(raw) // 2
        pads = tuple(zip(raw[:half], raw[half:]))
    return _node(
        p, name, "pad", [p.input[0]], list(p.input[1:]), pads=pads, pad_axes=axes, mode=mode
    )


@converts("Slice")
def slice_(p: NodeInfo, a: dict[str, Any], ctx: Ctx, name: str) -> Node:
    if ctx.opset < 10:
        starts, ends = a.get("starts"), a.get("ends")
        axes = a.get("axes")
        steps = None
    else:
        starts, ends = ctx.ints(_arg(p, 1)), ctx.ints(_arg(p, 2))
        axes = ctx.ints(_arg(p, 3)) if _arg(p, 3) else None
        steps = ctx.ints(_arg(p, 4)) if _arg(p, 4) else None
        if (_arg(p, 3) and axes is None) or (_arg(p, 4) and steps is None):
            starts = None
    slices = None
    if starts is not None and ends is not None:
        axes = axes if axes is not None else tuple(range(len(starts)))
        steps = steps if steps is not None else (1,) * len(starts)
        slices = tuple(
            (int(ax), int(s), min(int(e), BIG), int(st))
            for ax, s, e, st in zip(axes, starts, ends, steps)
        )
    return _node(p, name, "slice", [p.input[0]], list(p.input[1:]), slices=slices)


@converts("Resize", "Upsample")
def resize(p: NodeInfo, a: dict[str, Any], ctx: Ctx, name: str) -> Node:
    mode = a.get("mode", "nearest").lower()
    mode = {"bilinear": "linear", "trilinear": "linear", "bicubic": "cubic"}.get(mode, mode)
    scales: tuple[float, ...] | None = None
    sizes: tuple[int, ...] | None = None
    if p.op_type == "Upsample" or ctx.opset < 11:
        coord, nearest = "asymmetric", "floor"
        scales = tuple(a["scales"]) if "scales" in a else ctx.floats(_arg(p, 1))
    else:
        coord = a.get("coordinate_transformation_mode", "half_pixel")
        nearest = a.get("nearest_mode", "round_prefer_floor")
        sc = ctx.floats(_arg(p, 2))
        scales = sc if sc else None
        sz = ctx.ints(_arg(p, 3))
        sizes = sz if sz else None
        if a.get("keep_aspect_ratio_policy", "stretch") != "stretch" and sizes is not None:
            sizes = None  # the recorded output shape is used instead
        if coord == "tf_crop_and_resize":
            return _node(p, name, "unknown", [p.input[0]], list(p.input[1:]), reason=coord)
    return _node(
        p,
        name,
        "resize",
        [p.input[0]],
        list(p.input[1:]),
        scales=scales,
        sizes=sizes,
        axes=a.get("axes"),
        mode=mode,
        coord_mode=coord,
        nearest_mode=nearest,
        antialias=bool(a.get("antialias", 0)) and p.op_type == "Resize" and ctx.opset >= 18,
    )


@converts("SpaceToDepth", "DepthToSpace")
def block(p: NodeInfo, a: dict[str, Any], ctx: Ctx, name: str) -> Node:
    op = "space_to_depth" if p.op_type == "SpaceToDepth" else "depth_to_space"
    return _node(
        p,
        name,
        op,
        [p.input[0]],
        block=int(a["blocksize"]),
        spatial_axes=None,
        channel_axis=1,
    )


# ---------------------------------------------------------------------------------------------
# reductions, dense layers, normalisation


REDUCE_OPS = (
    "ReduceMean",
    "ReduceMax",
    "ReduceMin",
    "ReduceSum",
    "ReduceProd",
    "ReduceL1",
    "ReduceL2",
    "ReduceLogSum",
    "ReduceLogSumExp",
    "ReduceSumSquare",
)


@converts(*REDUCE_OPS, "ArgMax", "ArgMin")
def reduce(p: NodeInfo, a: dict[str, Any], ctx: Ctx, name: str) -> Node:
    keep = bool(a.get("keepdims", 1))
    if p.op_type.startswith("Arg"):
        axes: tuple[int, ...] | None = (int(a.get("axis", 0)),)
    elif "axes" in a:
        axes = tuple(a["axes"])
    elif _arg(p, 1):
        axes = ctx.ints(_arg(p, 1))
    else:
        axes = ()
        if a.get("noop_with_empty_axes", 0):
            return _node(p, name, "elementwise", [p.input[0]])
    return _node(p, name, "reduce", [p.input[0]], list(p.input[1:]), axes=axes, keepdims=keep)


@converts("CumSum")
def cumsum(p: NodeInfo, a: dict[str, Any], ctx: Ctx, name: str) -> Node:
    axis = ctx.ints(_arg(p, 1))
    if axis is None or len(axis) != 1:
        return _at_run_time(p, name, "its axis")
    return _node(
        p,
        name,
        "scan",
        [p.input[0]],
        [p.input[1]],
        axis=axis[0],
        reverse=bool(a.get("reverse", 0)),
        exclusive=bool(a.get("exclusive", 0)),
    )


@converts("TopK")
def topk(p: NodeInfo, a: dict[str, Any], ctx: Ctx, name: str) -> Node:
    """The k largest (smallest) along ``axis`` and their indices: which elements they are
    depends on every element along it (a dense layer's dependence), elementwise elsewhere."""
    k: int | None = a.get("k")
    if _arg(p, 1):
        ks = ctx.ints(_arg(p, 1))
        k = ks[0] if ks is not None and len(ks) == 1 else None
    axis = int(a.get("axis", -1))
    return _node(p, name, "dense", [p.input[0]], list(p.input[1:]), axis=axis, units=k)


@converts("GatherElements")
def gather_elements(p: NodeInfo, a: dict[str, Any], ctx: Ctx, name: str) -> Node:
    return _node(p, name, "select", [p.input[0], p.input[1]], axis=int(a.get("axis", 0)))


#: gates per step of each recurrent op (rows of its weights per hidden unit)
RECURRENT_GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}


@converts("LSTM", "GRU", "RNN", "com.microsoft.DynamicQuantizeLSTM")
def recurrent(p: NodeInfo, a: dict[str, Any], ctx: Ctx, name: str) -> Node:
    """``X`` is ``[seq, batch, features]`` (``layout`` 1: ``[batch, seq, features]``); ``Y`` is
    ``[seq, num_directions, batch, hidden]`` (``[batch, seq, num_directions, hidden]``), the final
    states ``Y_h``/``Y_c`` ``[num_directions, batch, hidden]`` (``[batch, num_directions,
    hidden]``). Absent outputs are left out."""
    direction = str(a.get("direction", "forward")).lower()
    if direction not in ("forward", "reverse", "bidirectional"):
        raise ModelError(f"node {name!r}: unknown direction {direction!r}")
    layout = int(a.get("layout", 0))
    if layout not in (0, 1):
        raise ModelError(f"node {name!r}: unknown layout {layout}")
    units = a.get("hidden_size")
    if units is not None and (not isinstance(units, int) or not 0 < units < 1 << 31):
        raise ModelError(f"node {name!r}: hidden_size {units!r} is not a positive integer")
    if units is None and p.op_type in RECURRENT_GATES:  # R is [directions, gates*hidden, hidden]
        rshape = ctx.shape(_arg(p, 2) or "")
        units = rshape[2] if rshape is not None and len(rshape) == 3 else None
    seq = 1 if layout else 0
    lens = _arg(p, 4)
    if lens is not None:  # (sequences cut short: their later steps read nothing)
        steps = (ctx.shape(p.input[0]) or (None,) * 3)[seq]
        given = ctx.ints(lens)
        if given is None or steps is None or any(n != steps for n in given):
            return _node(
                p,
                name,
                "unknown",
                [p.input[0]],
                list(p.input[1:]),
                reason="its sequence_lens may end sequences early",
            )
    specs = []
    outputs = []
    for k, out in enumerate(p.output[: 3 if "LSTM" in p.op_type else 2]):
        if out:
            outputs.append(out)
            # Y keeps the sequence axis and gets the directions after it; Y_h/Y_c lose it and
            # get the directions in front of (layout 1: after) the batch
            specs.append(
                RecurrentOutput(k == 0, direction, (seq + 1) if k == 0 else layout, units)
            )
    node = _node(
        p,
        name,
        "recurrent",
        [p.input[0]],
        list(p.input[1:]),
        seq_axis=seq,
        feature_axis=2,
        outputs=tuple(specs),
    )
    return replace(node, outputs=tuple(outputs))


@converts("Softmax", "LogSoftmax", "Hardmax", "com.microsoft.QLinearSoftmax")
def softmax(p: NodeInfo, a: dict[str, Any], ctx: Ctx, name: str) -> Node:
    params = list(p.input[1:])  # QLinearSoftmax: scales and zero points
    # QLinearSoftmax says in its `opset` attribute which Softmax it follows
    if int(a.get("opset", ctx.opset)) < 13:  # coerced to 2-D: mixes every axis from `axis` on
        return _node(p, name, "mix", [p.input[0]], params, axes_from=int(a.get("axis", 1)))
    return _node(p, name, "mix", [p.input[0]], params, axes=(int(a.get("axis", -1)),))


@converts(
    "InstanceNormalization",
    "GroupNormalization",
    "MeanVarianceNormalization",
    "LayerNormalization",
    "RMSNormalization",
    "LpNormalization",
    "com.microsoft.SkipLayerNormalization",
    "com.microsoft.SimplifiedLayerNormalization",
    "com.microsoft.SkipSimplifiedLayerNormalization",
)
def norm(p: NodeInfo, a: dict[str, Any], ctx: Ctx, name: str) -> Node:
    skip = p.op_type in ("SkipLayerNormalization", "SkipSimplifiedLayerNormalization")
    data = [p.input[0]] + ([p.input[1]] if skip else [])
    params = list(p.input[len(data) :])
    if p.op_type == "MeanVarianceNormalization":
        return _node(p, name, "mix", data, params, axes=tuple(a.get("axes", (0, 2, 3))))
    if p.op_type == "LpNormalization":  # the norm along `axis` only
        return _node(p, name, "mix", data, params, axes=(int(a.get("axis", -1)),))
    if p.op_type in (
        "LayerNormalization",
        "RMSNormalization",
        "SkipLayerNormalization",
        "SimplifiedLayerNormalization",
        "SkipSimplifiedLayerNormalization",
    ):  # statistics over the axes from `axis` to the last
        return _node(p, name, "mix", data, params, axes_from=int(a.get("axis", -1)))
    first = 1 if p.op_type == "GroupNormalization" else 2
    return _node(p, name, "mix", data, params, axes_from=first)


@converts("Gemm", "com.microsoft.QGemm", "com.microsoft.FusedGemm")
def gemm(p: NodeInfo, a: dict[str, Any], ctx: Ctx, name: str) -> Node:
    tb = bool(a.get("transB", 0))
    ib = 3 if p.op_type == "QGemm" else 1  # QGemm: A, its scale and zero point, then B
    bshape = ctx.shape(p.input[ib])
    units = None if bshape is None or len(bshape) != 2 else bshape[0 if tb else 1]
    return _node(
        p,
        name,
        "gemm",
        [p.input[0], p.input[ib]],
        [x for k, x in enumerate(p.input) if k not in (0, ib)],
        trans_a=bool(a.get("transA", 0)),
        trans_b=tb,
        units=units,
    )


@converts(
    "MatMul",
    "MatMulInteger",
    "QLinearMatMul",
    "com.microsoft.MatMulIntegerToFloat",
    "com.microsoft.DynamicQuantizeMatMul",
    "com.microsoft.FusedMatMul",
)
def matmul(p: NodeInfo, a: dict[str, Any], ctx: Ctx, name: str) -> Node:
    ia, ib = (0, 3) if p.op_type == "QLinearMatMul" else (0, 1)
    others = [x for k, x in enumerate(p.input) if k not in (ia, ib)]
    if a.get("transBatchA") or a.get("transBatchB"):  # FusedMatMul moving batch axes
        return _node(
            p,
            name,
            "unknown",
            [p.input[ia], p.input[ib]],
            others,
            reason="transBatchA/transBatchB",
        )
    return _node(
        p,
        name,
        "matmul",
        [p.input[ia], p.input[ib]],
        others,
        trans_a=bool(a.get("transA", 0)),
        trans_b=bool(a.get("transB", 0)),
    )


@converts("Einsum")
def einsum(p: NodeInfo, a: dict[str, Any], ctx: Ctx, name: str) -> Node:
    return _node(p, name, "einsum", list(p.input), equation=str(a["equation"]))


# ---------------------------------------------------------------------------------------------
# layout changes


@converts("Flatten")
def flatten(p: NodeInfo, a: dict[str, Any], ctx: Ctx, name: str) -> Node:
    return _node(p, name, "flatten", [p.input[0]], axis=int(a.get("axis", 1)))


@converts("Reshape")
def reshape(p: NodeInfo, a: dict[str, Any], ctx: Ctx, name: str) -> Node:
    target = tuple(a["shape"]) if "shape" in a else ctx.ints(_arg(p, 1))
    return _node(
        p,
        name,
        "reshape",
        [p.input[0]],
        list(p.input[1:]),
        target=target,
        allowzero=bool(a.get("allowzero", 0)),
    )


@converts("Transpose")
def transpose(p: NodeInfo, a: dict[str, Any], ctx: Ctx, name: str) -> Node:
    perm = tuple(a["perm"]) if "perm" in a else None
    return _node(p, name, "transpose", [p.input[0]], perm=perm)


@converts("Squeeze", "Unsqueeze")
def squeeze(p: NodeInfo, a: dict[str, Any], ctx: Ctx, name: str) -> Node:
    if "axes" in a:
        axes: tuple[int, ...] | None = tuple(a["axes"])
    elif _arg(p, 1):
        axes = ctx.ints(_arg(p, 1))
        if axes is None:
            return _node(p, name, "reshape", [p.input[0]], list(p.input[1:]), target=None)
    else:
        axes = None
    op = "squeeze" if p.op_type == "Squeeze" else "unsqueeze"
    return _node(p, name, op, [p.input[0]], list(p.input[1:]), axes=axes)


@converts("Concat", "com.microsoft.QLinearConcat")
def concat(p: NodeInfo, a: dict[str, Any], ctx: Ctx, name: str) -> Node:
    data = list(p.input) if p.op_type == "Concat" else list(p.input[2::3])
    return _node(p, name, "concat", data, axis=int(a["axis"]))


@converts("Split")
def split(p: NodeInfo, a: dict[str, Any], ctx: Ctx, name: str) -> Node:
    sizes = tuple(a["split"]) if "split" in a else ctx.ints(_arg(p, 1))
    return _node(
        p,
        name,
        "split",
        [p.input[0]],
        list(p.input[1:]),
        axis=int(a.get("axis", 0)),
        sizes=sizes or None,
    )


#: constant Gather indices up to this many are passed on to the analysis
MAX_PICKS = 4096


@converts("Gather")
def gather(p: NodeInfo, a: dict[str, Any], ctx: Ctx, name: str) -> Node:
    idx = ctx.shape(p.input[1])
    v = ctx.value(p.input[1])
    if v is not None:
        idx = v.shape
    if idx is None:
        return _node(p, name, "unknown", [p.input[0]], [p.input[1]])
    # constant indices (a few): positions picked along a spatial axis are followed exactly
    picks = tuple(int(i) for i in v.data) if v is not None and v.size <= MAX_PICKS else None
    return _node(
        p,
        name,
        "gather",
        [p.input[0]],
        [p.input[1]],
        axis=int(a.get("axis", 0)),
        indices_shape=idx,
        indices=picks,
    )


@converts("Expand")
def expand(p: NodeInfo, a: dict[str, Any], ctx: Ctx, name: str) -> Node:
    target = ctx.ints(_arg(p, 1))
    if target is None:
        return _at_run_time(p, name, "its target shape")
    return _node(p, name, "elementwise", [p.input[0]], [p.input[1]], broadcast_to=target)


@converts("Shape", "Size")
def shape_op(p: NodeInfo, a: dict[str, Any], ctx: Ctx, name: str) -> Node:
    return _node(p, name, "shape", [])


@converts(
    "Constant",
    "ConstantOfShape",
    "EyeLike",
    "RandomNormalLike",
    "RandomUniformLike",
    "RandomNormal",
    "RandomUniform",
)
def constant(p: NodeInfo, a: dict[str, Any], ctx: Ctx, name: str) -> Node:
    return _node(p, name, "constant", [], [])


ELEMENTWISE = (
    # merges
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Pow",
    "Max",
    "Min",
    "Mean",
    "Sum",
    "Where",
    "Equal",
    "Greater",
    "GreaterOrEqual",
    "Less",
    "LessOrEqual",
    "And",
    "Or",
    "Xor",
    "Mod",
    "BitShift",
    "PRelu",
    "BitwiseAnd",
    "BitwiseOr",
    "BitwiseXor",
    "com.microsoft.QLinearAdd",
    "com.microsoft.QLinearMul",
    # pointwise
    "Relu",
    "LeakyRelu",
    "Sigmoid",
    "HardSigmoid",
    "Tanh",
    "Elu",
    "Selu",
    "Celu",
    "Softplus",
    "Softsign",
    "HardSwish",
    "Swish",
    "Mish",
    "Gelu",
    "com.microsoft.FastGelu",
    "Erf",
    "Exp",
    "Log",
    "Sqrt",
    "Abs",
    "Neg",
    "Reciprocal",
    "Floor",
    "Ceil",
    "Round",
    "Clip",
    "Cast",
    "CastLike",
    "Identity",
    "Sign",
    "Not",
    "IsNaN",
    "IsInf",
    "Sin",
    "Cos",
    "Tan",
    "Asin",
    "Acos",
    "Atan",
    "Sinh",
    "Cosh",
    "Asinh",
    "Acosh",
    "Atanh",
    "ThresholdedRelu",
    "Shrink",
    "Affine",
    "ScaledTanh",
    "ImageScaler",
    "QuantizeLinear",
    "DequantizeLinear",
    "DynamicQuantizeLinear",
    "BitwiseNot",
    "LRN",
    "com.microsoft.QuickGelu",
    "com.microsoft.BiasGelu",
    "com.microsoft.Gelu",
)


@converts(*ELEMENTWISE)
def elementwise(p: NodeInfo, a: dict[str, Any], ctx: Ctx, name: str) -> Node:
    if p.op_type in ("Clip",):
        return _node(p, name, "elementwise", [p.input[0]], list(p.input[1:]))
    if p.op_type in ("QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear"):
        return _node(p, name, "elementwise", [p.input[0]], list(p.input[1:]))
    if p.op_type in ("QLinearAdd", "QLinearMul"):
        return _node(
            p,
            name,
            "elementwise",
            [p.input[0], p.input[3]],
            [x for k, x in enumerate(p.input) if k not in (0, 3)],
        )
    return _node(p, name, "elementwise", list(p.input))


@converts(
    "BatchNormalization",
    "Dropout",
    "com.microsoft.BiasAdd",
    "com.microsoft.QLinearSigmoid",
    "com.microsoft.QLinearLeakyRelu",
)
def first_input_pointwise(p: NodeInfo, a: dict[str, Any], ctx: Ctx, name: str) -> Node:
    if p.op_type == "BatchNormalization" and a.get("training_mode", 0):
        return _node(p, name, "mix", [p.input[0]], list(p.input[1:]), axes=(0, 2, 3))
    return _node(p, name, "elementwise", [p.input[0]], list(p.input[1:]))


@converts("DFT")
def dft(p: NodeInfo, a: dict[str, Any], ctx: Ctx, name: str) -> Node:
    axis = ctx.ints(_arg(p, 2)) if _arg(p, 2) else (int(a.get("axis", 1)),)
    if axis is None:
        return _node(p, name, "unknown", [p.input[0]], list(p.input[1:]))
    return _node(p, name, "mix", [p.input[0]], list(p.input[1:]), axes=axis)


# ---------------------------------------------------------------------------------------------
# constant folding of small integer operands
#
# Values are small :class:`Array` s (flat Python lists with a shape and a numpy-style dtype). The
# operations below follow the numpy calls this folding was first written with (broadcasting, type
# promotion, integer wrap-around, float32/float16 rounding, floor division of integers, IEEE
# division by zero), so that the folded operands are the same, without importing numpy.

#: Exceptions that mean "not foldable" (invalid operands), never a failure of the analysis.
#: numpy's most dimensions of an array: the folding this mirrors could not go beyond it.
MAX_DIMS = 64
INT64_MAX = (1 << 63) - 1
_NOT_FOLDABLE = (ValueError, IndexError, KeyError, TypeError, OverflowError, ZeroDivisionError)
_TENSOR_ATTR_OPS = ("Constant", "ConstantOfShape")


def _fold(p: NodeInfo, a: dict[str, Any], ctx: Ctx) -> None:
    """Record the value (or just the shape) of a node's outputs when its operands are static."""
    op = p.op_type
    out = p.output[0] if p.output else None
    if out is None:
        return
    try:
        if op == "Constant":
            const = _constant_value(a)
            if const is not None:
                shape, v = const
                ctx.shapes[out] = shape
                if v is not None and v.size <= FOLD_LIMIT:
                    ctx.values[out] = v
            return
        if op == "ConstantOfShape":
            shp = ctx.ints(_arg(p, 0))
            if shp is not None:
                ctx.shapes[out] = shp
                n = math.prod(shp)
                if n <= FOLD_LIMIT:
                    fill = a.get("value")
                    v = _small_tensor(fill) if isinstance(fill, TensorInfo) else None
                    base = v if v is not None else Array((1,), [0.0], "f8")
                    first = base.data[0]  # IndexError for an empty value: not foldable
                    _check_shape(shp, base.dtype)
                    ctx.values[out] = Array(shp, [first] * n, base.dtype)
            return
        if op == "Shape":
            src = ctx.shape(p.input[0])
            if src is not None and all(d is not None for d in src):
                start, end = int(a.get("start", 0)), a.get("end")
                dims = [d for d in src if d is not None]
                if any(not -INT64_MAX - 1 <= d <= INT64_MAX for d in dims):
                    raise OverflowError("dimension out of the int64 range")
                dims = dims[start:end]
                ctx.values[out] = Array((len(dims),), dims, "i8")
                ctx.shapes[out] = (len(dims),)
            return
        if op == "Expand":  # its shape (a constant's expansion has no state to carry it)
            src, target = ctx.shape(p.input[0]), ctx.ints(_arg(p, 1))
            if src is not None and target is not None and None not in src:
                ctx.shapes[out] = _broadcast_shapes(tuple(d for d in src if d is not None), target)
            return
        if op not in FOLDERS:
            # (weights normalised in the graph; activations, whose shapes are not known here
            # as a rule, are not even looked at: thousands of nodes)
            if op in SAME_SHAPE and p.input and p.input[0] in ctx.shapes:
                _shape_only(p, a, ctx, out)
            return  # (not even a look at the operands: most nodes)
        vals: list[Array | None] = []
        for x in p.input:  # all operands static (absent optional ones: None), or no folding
            v = ctx.value(x) if x else None
            if v is None and x:
                if op == "Reshape" or op in SAME_SHAPE:
                    _shape_only(p, a, ctx, out)
                return
            vals.append(v)
        if not vals:
            return
        if None in vals and op != "Clip":
            return
        res = _fold_op(op, a, vals, ctx.opset)  # type: ignore[arg-type]
        if res is not None and res.size <= FOLD_LIMIT:
            _check_shape(res.shape, res.dtype)
            ctx.values[out] = res
            ctx.shapes[out] = res.shape
    except _NOT_FOLDABLE:
        return


#: ops whose (first) output has their first input's shape, recorded for weights computed in
#: the graph (timm's standardised convolutions: a constant normalised, then reshaped)
SAME_SHAPE = frozenset({"Identity", "BatchNormalization", "Cast", "Neg", "Abs", "Sqrt", "Relu"})


def _shape_only(p: NodeInfo, a: dict[str, Any], ctx: Ctx, out: str) -> None:
    """The output shape of a :data:`SAME_SHAPE` op or a Reshape with a static target, when the
    values are not folded (a large weight reshaped: timm's standardised convolutions)."""
    have = ctx.shape(out)
    if have is not None and None not in have:
        return  # (recorded by the file, or by ONNX shape inference)
    src = ctx.shape(p.input[0])
    if src is None or None in src:
        return
    dims = tuple(d for d in src if d is not None)
    if p.op_type in SAME_SHAPE:
        ctx.shapes[out] = dims
        return
    target = ctx.ints(_arg(p, 1))
    if target is None:
        return
    sizes = [dims[k] if t == 0 and k < len(dims) and not a.get("allowzero", 0) else t
             for k, t in enumerate(target)]
    unknown = [k for k, t in enumerate(sizes) if t < 0]
    known, total = math.prod(t for t in sizes if t >= 0), math.prod(dims)
    if len(unknown) > 1 or (unknown and (known == 0 or total % known)):
        return
    if unknown:
        sizes[unknown[0]] = total // known
    if math.prod(sizes) == total:
        ctx.shapes[out] = tuple(sizes)


def _padded(shapes: Sequence[tuple[int, ...]]) -> list[tuple[int, ...]]:
    """The shapes with leading 1s up to the same rank (numpy's broadcasting aligns the ends)."""
    nd = max(len(s) for s in shapes)
    return [(1,) * (nd - len(s)) + s for s in shapes]


def _broadcast_shapes(*shapes: tuple[int, ...]) -> tuple[int, ...]:
    """numpy's broadcast of shapes: per axis, the size other than 1 (0 included) that they all
    share, else 1 (ValueError when two differ)."""
    out = []
    for sizes in zip(*_padded(shapes)):
        other = {d for d in sizes if d != 1}
        if len(other) > 1:
            raise ValueError("operands could not be broadcast together")
        out.append(other.pop() if other else 1)
    return tuple(out)


def _fold_op(op: str, a: dict[str, Any], v: list[Array], opset: int) -> Array | None:
    """The value of ``op`` applied to static operands, or ``None`` if it is not folded (other
    ops, or a result over :data:`FOLD_LIMIT` elements). Raises one of :data:`_NOT_FOLDABLE` for
    operands the op rejects."""
    fold = FOLDERS.get(op)
    return None if fold is None else fold(op, a, v, opset)


def _fold_same(op: str, a: dict[str, Any], v: list[Array], opset: int) -> Array | None:
    return v[0]  # (Identity)


def _fold_round(op: str, a: dict[str, Any], v: list[Array], opset: int) -> Array | None:
    """Ceil and Floor of floats (as numpy: the float type kept); integers are left as they are
    (ONNX defines them for floats only)."""
    x = v[0]
    if x.dtype[0] != "f":
        raise TypeError(f"{op} of integers")
    fn = math.ceil if op == "Ceil" else math.floor
    out = [d if d != d or d in (math.inf, -math.inf) else float(fn(d)) for d in x.data]
    return Array(x.shape, _fit(out, x.dtype), x.dtype)


def _fold_clip(op: str, a: dict[str, Any], v: list[Array | None], opset: int) -> Array | None:
    """Clip to [min, max] (opset 11 on: optional scalar inputs; before: float attributes)."""
    x = v[0]
    assert x is not None
    if opset < 11:
        lo: float | int | None = a.get("min")
        hi: float | int | None = a.get("max")
    else:
        given = (v[1:] + [None, None])[:2]
        if any(b is not None and b.size != 1 for b in given):
            raise ValueError("Clip bounds must be scalars")
        lo, hi = (None if b is None else b.data[0] for b in given)
    if lo != lo or hi != hi:  # (a NaN bound: not folded)
        raise ValueError("NaN Clip bound")
    out = []
    for d in x.data:
        if lo is not None and d < lo:
            d = lo
        if hi is not None and d > hi:
            d = hi
        out.append(d)
    return Array(x.shape, _fit(out, x.dtype), x.dtype)


def _fold_extreme(op: str, a: dict[str, Any], v: list[Array], opset: int) -> Array | None:
    """Max or Min of operands, numpy-broadcast and promoted (NaN wins, as numpy's maximum)."""
    pick = max if op == "Max" else min
    out = v[0]
    for y in v[1:]:
        res = _arith(op, out, y, lambda p, q: p if p != p else (q if q != q else pick(p, q)))
        if res is None:
            return None
        out = res
    return out


#: ONNX TensorProto data types -> the folder's numpy-style dtype codes
_CAST_TO = {1: "f4", 2: "u1", 3: "i1", 4: "u2", 5: "i2", 6: "i4", 7: "i8", 9: "b1", 10: "f2"}
_CAST_TO.update({11: "f8", 12: "u4", 13: "u8"})


def _fold_cast(op: str, a: dict[str, Any], v: list[Array], opset: int) -> Array | None:
    """ONNX Cast, as numpy's ``astype``: floats rounded to the target precision, truncated
    toward zero into integers (an out-of-range or non-finite float is not folded: numpy's result
    is undefined there), integers wrapped, anything non-zero true."""
    to = _CAST_TO.get(int(a["to"]))
    if to is None:
        raise TypeError("cast to a type the folding does not handle")
    x = v[0]
    if to == "b1":
        return Array(x.shape, [bool(d) for d in x.data], to)
    if to[0] == "f":
        return Array(x.shape, _fit([float(d) for d in x.data], to), to)
    bits = _INT_BITS[to]
    lo, hi = (0, (1 << bits) - 1) if to[0] == "u" else (-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
    out = []
    for d in x.data:
        if isinstance(d, float):
            if d != d or d in (math.inf, -math.inf) or not lo - 1 < d < hi + 1:
                raise OverflowError("float out of the integer range")
            d = int(d)  # toward zero
        out.append(int(d))
    return Array(x.shape, _fit(out, to), to)


def _fold_unsqueeze(op: str, a: dict[str, Any], v: list[Array], opset: int) -> Array | None:
    axes: list[Any] = list(a["axes"]) if "axes" in a else [int(x) for x in v[1].data]
    x = v[0]
    rank = x.ndim + len(axes)
    shape = list(x.shape)
    for ax in sorted(k % rank for k in axes):
        if ax > len(shape):
            raise ValueError("axis out of range")
        shape.insert(ax, 1)
    return Array(tuple(shape), x.data, x.dtype)


def _fold_squeeze(op: str, a: dict[str, Any], v: list[Array], opset: int) -> Array | None:
    if "axes" in a:
        sq_axes = a.get("axes")
    else:
        sq_axes = [int(x) for x in v[1].data] if len(v) > 1 else None
    return _squeeze(v[0], None if sq_axes is None else tuple(sq_axes))


def _fold_concat(op: str, a: dict[str, Any], v: list[Array], opset: int) -> Array | None:
    return _concat(v, int(a["axis"]))


def _fold_gather(op: str, a: dict[str, Any], v: list[Array], opset: int) -> Array | None:
    return _gather(v[0], v[1], int(a.get("axis", 0)))


def _fold_arith(op: str, a: dict[str, Any], v: list[Array], opset: int) -> Array | None:
    return _arith(op, v[0], v[1])


def _fold_mod(op: str, a: dict[str, Any], v: list[Array], opset: int) -> Array | None:
    """ONNX Mod: the remainder takes the divisor's sign (``fmod=0``, integers only), or the
    dividend's, as C ``fmod`` (``fmod=1``). A zero divisor is not folded."""
    if v[0].dtype == "b1" or v[1].dtype == "b1":
        raise TypeError("Mod of booleans")
    if a.get("fmod", 0):
        return _arith("Mod", v[0], v[1], _c_fmod)
    if v[0].dtype[0] == "f" or v[1].dtype[0] == "f":
        raise TypeError("Mod of floats needs fmod=1")
    return _arith("Mod", v[0], v[1], _int_mod)


def _int_mod(x: int, y: int) -> int:
    if not y:
        raise ZeroDivisionError("Mod by zero")
    return x % y


def _c_fmod(x: Any, y: Any) -> Any:
    if isinstance(x, float) or isinstance(y, float):
        if not y:
            raise ZeroDivisionError("Mod by zero")
        try:
            return math.fmod(x, y)
        except ValueError:  # an infinite dividend: IEEE gives NaN
            return math.nan
    r = abs(x) % abs(y)  # (ZeroDivisionError for 0)
    return -r if x < 0 else r


def _fold_equal(op: str, a: dict[str, Any], v: list[Array], opset: int) -> Array | None:
    """ONNX Equal: elementwise ``==`` with broadcasting (after numpy's type promotion), bool."""
    r = _arith("Equal", v[0], v[1], lambda x, y: x == y)
    return None if r is None else Array(r.shape, [bool(x) for x in r.data], "b1")


def _fold_where(op: str, a: dict[str, Any], v: list[Array], opset: int) -> Array | None:
    """ONNX Where: ``x`` where the condition holds, else ``y``, the three broadcast together;
    the result has numpy's promoted type of ``x`` and ``y``."""
    cond, x, y = v
    dtype = _promote(x.dtype, y.dtype)
    padded = _padded([cond.shape, x.shape, y.shape])
    out = _broadcast_shapes(*padded)
    total = math.prod(out)
    if total > FOLD_LIMIT:
        return None
    if not total:
        return Array(out, [], dtype)
    data = [cond.data, _cast(x.data, x.dtype, dtype), _cast(y.data, y.dtype, dtype)]
    picks = [
        [d[i] for i in _broadcast_index(p, out)] if p != out else d for d, p in zip(data, padded)
    ]
    return Array(out, [xv if c else yv for c, xv, yv in zip(*picks)], dtype)


def _fold_transpose(op: str, a: dict[str, Any], v: list[Array], opset: int) -> Array | None:
    x = v[0]
    perm = [int(k) for k in a.get("perm", range(x.ndim - 1, -1, -1))]
    if sorted(perm) != list(range(x.ndim)):
        raise ValueError(f"perm {perm} is not a permutation of {x.ndim} axes")
    shape = tuple(x.shape[k] for k in perm)
    strides = _strides(x.shape)
    flat = [0]
    for k in perm:  # row-major over the output: each output axis steps its input axis
        flat = [i + j * strides[k] for i in flat for j in range(x.shape[k])]
    return Array(shape, [x.data[i] for i in flat], x.dtype)


def _fold_slice(op: str, a: dict[str, Any], v: list[Array], opset: int) -> Array | None:
    if opset < 10:
        return None
    data = v[0]
    starts, ends = v[1].data, v[2].data
    sl_axes = v[3].data if len(v) > 3 else list(range(len(starts)))
    steps = v[4].data if len(v) > 4 else [1] * len(starts)
    idx: list[slice | None] = [None] * data.ndim
    for ax, s, e, st in zip(sl_axes, starts, ends, steps):
        idx[int(ax)] = slice(int(s), int(min(e, BIG)), int(st))
    ranges = [range(n) if sl is None else range(*sl.indices(n)) for sl, n in zip(idx, data.shape)]
    out_shape = tuple(len(r) for r in ranges)
    if not math.prod(out_shape):  # settled by the shape: sizes may be huge next to a 0
        return Array(out_shape, [], data.dtype)
    flat = [0]
    for r, stride in zip(ranges, _strides(data.shape)):
        flat = [i + j * stride for i in flat for j in r]
    return Array(out_shape, [data.data[i] for i in flat], data.dtype)


def _fold_reshape(op: str, a: dict[str, Any], v: list[Array], opset: int) -> Array | None:
    target = [int(x) for x in v[1].data]
    data = v[0]
    target = [data.shape[k] if t == 0 else t for k, t in enumerate(target)]
    return _reshape(data, target)


#: Ops folded when all their operands are static (besides Constant, ConstantOfShape and Shape,
#: which :func:`_fold` handles itself), one small function each.
FOLDERS: dict[str, Callable[[str, dict[str, Any], list[Array], int], Array | None]] = {
    "Identity": _fold_same,
    "Cast": _fold_cast,
    "Unsqueeze": _fold_unsqueeze,
    "Squeeze": _fold_squeeze,
    "Concat": _fold_concat,
    "Gather": _fold_gather,
    "Add": _fold_arith,
    "Sub": _fold_arith,
    "Mul": _fold_arith,
    "Div": _fold_arith,
    "Mod": _fold_mod,
    "Transpose": _fold_transpose,
    "Slice": _fold_slice,
    "Reshape": _fold_reshape,
    "Equal": _fold_equal,
    "Where": _fold_where,
    "Ceil": _fold_round,
    "Floor": _fold_round,
    "Clip": _fold_clip,  # type: ignore[dict-item]
    "Max": _fold_extreme,
    "Min": _fold_extreme,
}


def _constant_value(a: dict[str, Any]) -> tuple[Shape, Array | None] | None:
    """The shape and (when small and numeric) the value of a ``Constant`` node."""
    for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
        if key in a:
            x = a[key]
            if isinstance(x, TensorInfo):
                if any(d < 0 for d in x.dims):
                    return None
                return x.dims, _small_tensor(x)
            return _as_array(x)
    return None


def _as_array(x: Any) -> tuple[Shape, Array | None]:
    """A non-tensor attribute value as numpy's ``asarray`` shapes it (strings get no value)."""
    if isinstance(x, tuple):
        shape: Shape = (len(x),)
        if all(type(e) is int for e in x) and x:
            return shape, Array((len(x),), list(x), "i8")
        if all(type(e) in (int, float) for e in x):
            return shape, Array((len(x),), [float(e) for e in x], "f8")
        return shape, None
    if type(x) is int:
        return (), Array((), [x], "i8")
    if type(x) is float:
        return (), Array((), [x], "f8")
    return (), None


def _check_shape(shape: Sequence[int], dtype: str) -> None:
    """Raise ValueError for a shape numpy cannot give an array: negative sizes, more than
    :data:`MAX_DIMS` axes, or more bytes (counting non-zero sizes only) than an int64 holds."""
    if len(shape) > MAX_DIMS or min(shape, default=0) < 0:
        raise ValueError("invalid array shape")
    if math.prod(d for d in shape if d) * _ITEM[dtype] > INT64_MAX:
        raise ValueError("array is too big")


def _strides(shape: Sequence[int]) -> list[int]:
    out = [1] * len(shape)
    for k in range(len(shape) - 2, -1, -1):
        out[k] = out[k + 1] * shape[k + 1]
    return out


def _reshape(x: Array, target: list[int]) -> Array:
    if any(not -INT64_MAX - 1 <= t <= INT64_MAX for t in target):
        raise OverflowError("reshape target out of the int64 range")
    unknown = [k for k, t in enumerate(target) if t < 0]  # numpy: any negative size is -1
    if len(unknown) > 1:
        raise ValueError("can only specify one unknown dimension")
    known = math.prod(t for t in target if t >= 0)
    if unknown:
        if known == 0 or x.size % known:
            raise ValueError("cannot reshape")
        target[unknown[0]] = x.size // known
    elif known != x.size:
        raise ValueError("cannot reshape")
    return Array(tuple(target), x.data, x.dtype)


def _norm_axis(ax: int, ndim: int) -> int:
    if not -ndim <= ax < ndim:
        raise ValueError(f"axis {ax} out of range")
    return ax % ndim


def _squeeze(x: Array, axes: tuple[Any, ...] | None) -> Array:
    if axes is None:
        return Array(tuple(d for d in x.shape if d != 1), x.data, x.dtype)
    drop: set[int] = set()
    for ax in axes:
        k = _norm_axis(_axis_int(ax), x.ndim)
        if k in drop or x.shape[k] != 1:
            raise ValueError("cannot squeeze")
        drop.add(k)
    return Array(tuple(d for k, d in enumerate(x.shape) if k not in drop), x.data, x.dtype)


def _axis_int(x: Any) -> int:
    """``x`` as an axis: ints only (numpy rejects float axes)."""
    if type(x) is not int:
        raise TypeError("axis must be an integer")
    return x


def _concat(arrays: list[Array], axis: int) -> Array:
    parts = [x if x.ndim else Array((1,), x.data, x.dtype) for x in arrays]
    nd = parts[0].ndim
    if any(x.ndim != nd for x in parts):
        raise ValueError("concatenated arrays differ in rank")
    axis = _norm_axis(axis, nd)
    base = parts[0].shape
    for x in parts:
        if x.shape[:axis] != base[:axis] or x.shape[axis + 1 :] != base[axis + 1 :]:
            raise ValueError("concatenated arrays differ in shape")
    dtype = parts[0].dtype
    for x in parts[1:]:
        dtype = _promote(dtype, x.dtype)
    datas = [_cast(x.data, x.dtype, dtype) for x in parts]
    shape = (*base[:axis], sum(x.shape[axis] for x in parts), *base[axis + 1 :])
    if not math.prod(shape):
        return Array(shape, [], dtype)
    outer, inner = math.prod(base[:axis]), math.prod(base[axis + 1 :])
    out: list[Any] = []
    for o in range(outer):
        for x, data in zip(parts, datas):
            chunk = x.shape[axis] * inner
            out.extend(data[o * chunk : (o + 1) * chunk])
    return Array(shape, out, dtype)


def _gather(data: Array, indices: Array, axis: int) -> Array | None:
    if indices.dtype not in ("i4", "i8"):
        raise TypeError("Gather indices must be int32 or int64")
    if not data.ndim:  # numpy takes from a 0-d array as from a 1-d one
        data = Array((1,), data.data, data.dtype)
    axis = _norm_axis(axis, data.ndim)
    shape = (*data.shape[:axis], *indices.shape, *data.shape[axis + 1 :])
    if math.prod(shape) > FOLD_LIMIT:
        return None
    n = data.shape[axis]
    outer, inner = math.prod(data.shape[:axis]), math.prod(data.shape[axis + 1 :])
    idx = []
    if outer:  # numpy checks the indices as it takes, once per outer index
        for i in indices.data:
            if not -n <= i < n:
                raise IndexError("index out of range")
            idx.append(i % n)
    if not math.prod(shape):
        return Array(shape, [], data.dtype)
    out: list[Any] = []
    for o in range(outer):
        for i in idx:
            s = (o * n + i) * inner
            out.extend(data.data[s : s + inner])
    return Array(shape, out, data.dtype)


def _broadcast_index(shape: tuple[int, ...], out: tuple[int, ...]) -> list[int]:
    """For each element of the broadcast shape ``out`` (row-major), the flat index of the element
    of an array of ``shape`` (already padded to the same rank) it reads."""
    strides = _strides(shape)
    flat = [0]
    for d, n, st in zip(shape, out, strides):
        step = 0 if d == 1 else st
        flat = [i + j * step for i in flat for j in range(n)]
    return flat


_INT_BITS = {"i1": 8, "i2": 16, "i4": 32, "i8": 64, "u1": 8, "u2": 16, "u4": 32, "u8": 64}
_ITEM = {"b1": 1, "f2": 2, "f4": 4, "f8": 8, **{k: v // 8 for k, v in _INT_BITS.items()}}


def _promote(a: str, b: str) -> str:
    """numpy's result type of two arrays of dtypes ``a`` and ``b``."""
    if a == b or b == "b1":
        return a
    if a == "b1":
        return b
    if a[0] == "f" or b[0] == "f":
        f, other = (a, b) if a[0] == "f" else (b, a)
        if other[0] != "f":  # the smallest float that holds the integer type
            other = "f2" if _ITEM[other] == 1 else "f4" if _ITEM[other] == 2 else "f8"
        return f if _ITEM[f] >= _ITEM[other] else other
    if a[0] == b[0]:
        return a if _ITEM[a] >= _ITEM[b] else b
    signed, unsigned = (a, b) if a[0] == "i" else (b, a)
    if _ITEM[signed] > _ITEM[unsigned]:
        return signed
    return {1: "i2", 2: "i4", 4: "i8"}.get(_ITEM[unsigned], "f8")


def _cast(data: list[Any], src: str, dst: str) -> list[Any]:
    """Values of dtype ``src`` as ``dst`` (a promotion: never narrower)."""
    if src == dst or dst[0] != "f":
        return data
    return _fit([float(x) for x in data], dst)


def _half(x: float) -> float:
    try:
        return float(struct.unpack("<e", struct.pack("<e", x))[0])
    except OverflowError:
        return math.copysign(math.inf, x)


def _fit(data: list[Any], dtype: str) -> list[Any]:
    """Round floats to the dtype's precision, wrap integers to its range (as numpy stores)."""
    if dtype == "f8":
        return data
    if dtype == "f4":
        return array("f", data).tolist()
    if dtype == "f2":
        return [_half(x) for x in data]
    if dtype == "b1":
        return data
    bits = _INT_BITS[dtype]
    if dtype[0] == "u":
        mask = (1 << bits) - 1
        return [x & mask for x in data]
    half = 1 << (bits - 1)
    return [x if -half <= x < half else ((x + half) & (2 * half - 1)) - half for x in data]


def _ieee_div(x: float, y: float) -> float:
    if y:
        return x / y
    if x != x or x == 0:
        return math.nan
    return math.copysign(math.inf, x) * math.copysign(1.0, y)


def _float_floordiv(x: float, y: float) -> float:
    return x // y if y else _ieee_div(x, y)


def _int_floordiv(x: int, y: int) -> int:
    return x // y if y else 0


_ARITH_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "Add": lambda x, y: x + y,
    "Sub": lambda x, y: x - y,
    "Mul": lambda x, y: x * y,
}
_BOOL_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "Add": lambda x, y: 1 if x or y else 0,
    "Mul": lambda x, y: 1 if x and y else 0,
}


def _arith_fn(op: str, x_dtype: str, dtype: str) -> tuple[Callable[[Any, Any], Any], str]:
    """The elementwise function of Add, Sub, Mul or Div as numpy computes it, and the result
    dtype (``dtype``: the operands' promoted one)."""
    if op == "Div" and x_dtype[0] in "iu":  # integer dividend: floor division
        return (_float_floordiv if dtype[0] == "f" else _int_floordiv), dtype
    if op == "Div":  # true division: float64 unless the operands are floats already
        return _ieee_div, (dtype if dtype[0] == "f" else "f8")
    if dtype == "b1":  # numpy: logical or / and; no boolean subtract
        if op == "Sub":
            raise TypeError("boolean subtract")
        return _BOOL_OPS[op], dtype
    return _ARITH_OPS[op], dtype


def _arith(
    op: str, x: Array, y: Array, fn: Callable[[Any, Any], Any] | None = None
) -> Array | None:
    """``op`` (Add, Sub, Mul, Div; or any elementwise ``fn``) with numpy's broadcasting and
    type promotion."""
    px, py = _padded([x.shape, y.shape])
    out = _broadcast_shapes(px, py)
    if math.prod(out) > FOLD_LIMIT:
        return None
    dtype = _promote(x.dtype, y.dtype)
    if fn is None:
        fn, dtype = _arith_fn(op, x.dtype, dtype)
    if not math.prod(out):  # settled by the shape: sizes may be huge next to a 0
        return Array(out, [], dtype)
    xs, ys = _cast(x.data, x.dtype, dtype), _cast(y.data, y.dtype, dtype)
    if px != out:
        xs = [xs[i] for i in _broadcast_index(px, out)]
    if py != out:
        ys = [ys[i] for i in _broadcast_index(py, out)]
    return Array(out, _fit([fn(a, b) for a, b in zip(xs, ys)], dtype), dtype)


# ---------------------------------------------------------------------------------------------
# loading


def _attrs(p: NodeInfo) -> dict[str, Any]:
    """The node's attributes; tensor-valued ones only for ``Constant``/``ConstantOfShape``."""
    a = p.attrs
    if p.op_type not in _TENSOR_ATTR_OPS and any(type(x) is TensorInfo for x in a.values()):
        return {k: x for k, x in a.items() if type(x) is not TensorInfo}
    return a


def _small_tensor(t: TensorInfo) -> Array | None:
    """The values of a tensor of at most :data:`FOLD_LIMIT` elements. External data is never
    read: such an operand is unknown (its shape still is known), never guessed."""
    n = t.size
    if n > FOLD_LIMIT or any(d < 0 for d in t.dims) or t.external:
        return None
    return tensor_values(t)


def _int_list(x: Any) -> list[int] | None:
    if isinstance(x, tuple) and x and all(type(v) is int for v in x):
        return list(x)
    return None


def _read_bytes(path: str) -> bytes:
    if not os.path.exists(path):
        raise ModelError("no such file", path)
    if os.path.isdir(path):
        raise ModelError("is a directory, not an ONNX file", path)
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise ModelError(f"cannot read file ({exc.strerror})", path) from exc
    if not data:
        raise ModelError("empty file, not an ONNX model", path)
    return data


def parse_model(data: bytes, path: str) -> ModelInfo:
    """Read the serialized model ``data`` (of file ``path``) and check that it is a model."""
    try:
        model = read_model_bytes(data)
    except ModelError as exc:
        raise ModelError(exc.message, path) from None
    if model.ir_version <= 0 or model.graph is None:
        raise ModelError("not an ONNX model (no IR version or no graph)", path)
    if not model.graph.node:
        raise ModelError("the ONNX graph has no nodes", path)
    return model


def read_model(path: str) -> ModelInfo:
    return parse_model(_read_bytes(path), path)


def infer_shapes(data: bytes, path: str, fixed: dict[str, Shape] | None = None) -> bytes:
    """``data`` after ONNX shape inference (with data propagation), serialized again: the only
    use of the onnx package. ``fixed`` gives concrete shapes to graph inputs first (the analysed
    input's size, its batch taken as 1), so that shape arithmetic folds to numbers. Weights too
    large to fold are emptied first (inference needs their dims, never their values): a model
    of hundreds of MB is otherwise copied several times over."""
    import onnx

    try:
        proto = onnx.load_model_from_string(data)
        for t in proto.graph.initializer:
            if math.prod(t.dims) > FOLD_LIMIT:
                for name in _TENSOR_DATA_FIELDS:
                    t.ClearField(name)
        for vi in proto.graph.input:
            dims = (fixed or {}).get(vi.name)
            if dims is None or not vi.type.HasField("tensor_type"):
                continue
            shape = vi.type.tensor_type.shape
            if len(shape.dim) != len(dims):
                continue
            for dim, d in zip(shape.dim, dims):
                if d is not None:
                    dim.Clear()
                    dim.dim_value = d
        model = onnx.shape_inference.infer_shapes(proto, data_prop=True)
        inferred: bytes = model.SerializeToString()
    except Exception as exc:  # shape inference raises several private error types
        raise ModelError(f"ONNX shape inference failed: {exc}".splitlines()[0], path) from exc
    return inferred


#: TensorProto fields that hold values (cleared from large weights before shape inference)
_TENSOR_DATA_FIELDS = (
    "raw_data",
    "float_data",
    "int32_data",
    "string_data",
    "int64_data",
    "double_data",
    "uint64_data",
)


def load_onnx(
    path: str,
    input_name: str | None = None,
    input_shape: Shape | None = None,
    layout: str = "auto",
) -> Graph:
    return load_onnx_bytes(_read_bytes(path), path, input_name, input_shape, layout)


#: IR kinds whose output depends on an operand that must be static, and the attribute holding it
STATIC_OPERANDS = {
    "reshape": ("target",),
    "slice": ("slices",),
    "pad": ("pads",),
    "resize": ("scales", "sizes"),
}


def _operand_unknown(node: Node, shapes: dict[str, Shape], strict: bool = False) -> bool:
    """An operand is computed at run time and the file records no output shape: ONNX shape
    inference (with data propagation) can usually resolve it. ``strict``: a recorded output
    shape with unknown dims (besides the batch) does not count either."""
    keys = STATIC_OPERANDS.get(node.op)
    if node.attrs.get("runtime_operand"):  # converted as unknown for want of the operand
        keys = ()
    elif keys is None or any(node.attrs.get(k) is not None for k in keys):
        return False
    if not node.outputs or node.outputs[0] not in shapes:
        return True
    return strict and None in shapes[node.outputs[0]][1:]


def load_onnx_bytes(
    data: bytes,
    path: str,
    input_name: str | None = None,
    input_shape: Shape | None = None,
    layout: str = "auto",
) -> Graph:
    """:func:`load_onnx` of a file's contents (``path`` names it in messages)."""
    model = parse_model(data, path)
    fixed: dict[str, Shape] = {}
    try:
        return _convert(model, path, input_name, input_shape, layout, False, fixed)
    except NeedsInference:
        pass
    model = parse_model(infer_shapes(data, path, fixed), path)

    def convert(known: dict[str, Shape] | None) -> Graph:
        try:
            graph = _convert(model, path, input_name, input_shape, layout, True, fixed, known)
        except NeedsInference as exc:  # pragma: no cover - inferred=True never raises it
            raise ModelError(f"shape of {exc} is unknown", path) from exc
        if graph.unresolved:
            # ONNX inference stops at ops it does not know (onnxruntime's contrib ops, custom
            # ops): shapes the analysis computes past them may settle the operands
            graph.refine = convert
        return graph

    return convert(None)


def _convert(
    model: ModelInfo,
    path: str,
    input_name: str | None,
    input_shape: Shape | None,
    layout: str,
    inferred: bool,
    fixed: dict[str, Shape] | None = None,
    known: dict[str, Shape] | None = None,
) -> Graph:
    """``known``: shapes of tensors worked out elsewhere (by the analysis of an earlier graph),
    used where the file records none."""
    g = model.graph
    assert g is not None  # parse_model checked it
    opset = next((v for d, v in model.opset_import if d in ("", "ai.onnx")), 1)
    graph_nodes, inlined = g.node, None
    if model.functions:
        from .onnx_functions import inline_functions  # (most models have none: not imported)

        try:
            graph_nodes, inlined = inline_functions(model)
        except ModelError as exc:
            raise ModelError(exc.message, path) from None
    init_names = frozenset([t.name for t in g.initializer] + [t.name for t in g.sparse_initializer])
    shapes: dict[str, Shape] = {t.name: t.dims for t in g.sparse_initializer}
    pending: dict[str, list[TensorInfo]] = {}
    for t in g.initializer:
        shapes[t.name] = t.dims
        dt = t.data_type
        if dt in (INT64, INT32) or (dt == FLOAT and t.size <= 16):
            pending.setdefault(t.name, []).append(t)
    for vi in (*g.value_info, *g.output, *g.input):
        shp = vi.shape
        if shp is not None and vi.name not in init_names:
            shapes[vi.name] = shp
    real_inputs = [vi for vi in g.input if vi.name not in init_names]
    image = _pick_input(real_inputs, input_name, path)
    shape = given_shape(image.name, image.shape, input_shape, path)
    if shape is None:
        raise ModelError(f"input {image.name!r} has no recorded shape: give --input-shape", path)
    notes: dict[str, str] = {}
    if inlined is not None:
        notes["functions"] = inlined
    if image.shape is not None and any(
        f is not None and u is not None and f != u for f, u in zip(image.shape, shape)
    ):
        notes["note"] = (
            f"--input-shape {format_shape(shape)} replaces the file's {format_shape(image.shape)}: "
            "shapes recorded for other tensors ignored"
        )
        if not inferred:  # (inference ran with the given shape: its shapes fit it)
            shapes = {n: d for n, d in shapes.items() if n in init_names}
    rank = len(shape)
    if rank < 3:
        raise ModelError(
            f"input {image.name!r} has shape {format_shape(shape)}: no spatial axes "
            "(expected N, C and 1 to 3 spatial dims)",
            path,
        )
    lay = _layout(layout, graph_nodes, image.name, rank)
    spatial = tuple(range(2, rank)) if lay.startswith("NC") else tuple(range(1, rank - 1))
    unknown = [t for t in spatial if shape[t] is None]
    if unknown:
        raise ModelError(
            f"spatial size of input {image.name!r} is unknown ({format_shape(shape)}): give "
            f"--input-shape, e.g. --input-shape {shape_hint(shape, spatial)}",
            path,
        )
    if shape[0] is None:
        # the batch never changes geometry; a number lets shape arithmetic fold
        shape = (1, *shape[1:])
        notes["batch"] = "symbolic batch analysed as 1"
    shapes[image.name] = shape
    if fixed is not None:
        fixed[image.name] = shape
    for name, dims in (known or {}).items():
        recorded = shapes.get(name)
        # (the file's symbolic dims, now known, are filled in)
        if recorded is None or (
            len(recorded) == len(dims) and all(r is None or r == d for r, d in zip(recorded, dims))
        ):
            shapes[name] = dims
    ctx = Ctx(opset, {}, shapes, inferred, pending=pending)
    nodes: list[Node] = []
    used: set[str] = set()
    for k, p in enumerate(graph_nodes):
        a = _attrs(p)
        _fold(p, a, ctx)
        name = p.name or (p.output[0] if p.output else f"node{k}")
        if name in used:
            name = f"{name}#{k}"
        used.add(name)
        key = p.op_type if p.domain in ("", "ai.onnx") else f"{p.domain}.{p.op_type}"
        conv_fn = CONVERTERS.get(key)
        if conv_fn is None:
            nodes.append(_node(p, name, "unknown", list(p.input)))
            continue
        try:
            made = conv_fn(p, a, ctx, name)
        except ModelError as exc:
            raise ModelError(exc.message, path) from exc
        except (KeyError, IndexError, ValueError, TypeError, OverflowError) as exc:
            raise ModelError(f"node {name!r} ({p.op_type}): malformed ({exc})", path) from exc
        for node in made if isinstance(made, list) else (made,):
            if not inferred and _operand_unknown(node, shapes):
                raise NeedsInference(node.outputs[0])
            nodes.append(node)
    others = tuple(vi.name for vi in real_inputs if vi.name != image.name)
    meta = {
        "ir_version": str(model.ir_version),
        "opset": str(opset),
        "producer": " ".join(x for x in (model.producer_name, model.producer_version) if x),
        **notes,
    }
    return Graph(
        path=path,
        format="onnx",
        input=ModelInput(image.name, shape, lay, spatial),
        nodes=nodes,
        outputs=tuple(o.name for o in g.output),
        constants=init_names,
        other_inputs=others,
        declared_shapes=shapes,
        meta=meta,
        unresolved=tuple(n.name for n in nodes if inferred and _operand_unknown(n, shapes, True)),
    )


def _pick_input(inputs: list[ValueInfo], name: str | None, path: str) -> ValueInfo:
    if name is not None:
        for vi in inputs:
            if vi.name == name:
                return vi
        names = ", ".join(repr(vi.name) for vi in inputs) or "none"
        raise UsageError(f"no input named {name!r} (inputs: {names})", path)
    if not inputs:
        raise ModelError("the graph has no inputs", path)
    if len(inputs) == 1:
        return inputs[0]
    spatial = [vi for vi in inputs if (s := vi.shape) is not None and len(s) >= 3]
    if len(spatial) == 1:
        return spatial[0]
    names = ", ".join(repr(vi.name) for vi in (spatial or inputs))
    raise UsageError(f"several candidate image inputs ({names}): choose one with --input", path)


def _layout(layout: str, nodes: list[NodeInfo], name: str, rank: int) -> str:
    nsp = rank - 2
    letters = {1: "W", 2: "HW", 3: "DHW"}.get(nsp, "S" * nsp)
    chosen = layout.lower()
    if chosen == "auto":
        chosen = "nhwc" if _transposed_first(nodes, name, rank) else "nchw"
    if chosen in ("nchw", "ncw", "ncdhw", "channels_first"):
        return "NC" + letters
    if chosen in ("nhwc", "nwc", "ndhwc", "channels_last"):
        return "N" + letters + "C"
    raise UsageError(f"unknown layout {layout!r} (use auto, nchw or nhwc)")


#: ops that keep every axis where it is, looked through when detecting an NHWC input
LAYOUT_NEUTRAL = frozenset(
    {
        "Pad",
        "Cast",
        "Identity",
        "Add",
        "Sub",
        "Mul",
        "Div",
        "Relu",
        "Clip",
        "Sigmoid",
        "Tanh",
        "QuantizeLinear",
        "DequantizeLinear",
        "Dropout",
    }
)


def _transposed_first(nodes: list[NodeInfo], name: str, rank: int) -> bool:
    """The input is channels-last when every path from it reaches a Transpose to NC... before
    any op that depends on the layout (tf2onnx and Keras exports: input -> [Pad, Cast, ...] ->
    Transpose(0, r-1, 1, ..., r-2)). Nodes are scanned in file order, level by level: most
    models answer at their first node (a Conv reading the input)."""
    nhwc_perm = [0, rank - 1, *range(1, rank - 1)]
    frontier, seen, found = {name}, {name}, False
    for _ in range(16):
        nxt: list[str] = []
        for p in nodes:
            for tensor in p.input:
                if tensor not in frontier:
                    continue
                if p.op_type == "Transpose":
                    if _int_list(p.attrs.get("perm")) != nhwc_perm:
                        return False
                    found = True
                elif p.op_type == "ReorderInput" and p.domain == "com.microsoft.nchwc":
                    if not p.attrs.get("channels_last"):  # (onnxruntime's fused Transpose)
                        return False
                    found = True
                elif p.op_type in LAYOUT_NEUTRAL and p.input and p.input[0] == tensor:
                    nxt.extend(o for o in p.output if o not in seen)
                    seen.update(p.output)
                elif p.op_type not in ("Shape", "Size"):
                    return False
        if not nxt:
            return found
        frontier = set(nxt)
    return False
