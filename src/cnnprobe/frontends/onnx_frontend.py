"""ONNX frontend: a ``.onnx`` file becomes an :class:`~cnnprobe.ir.Graph`.

Opset differences (attributes that became inputs, changed defaults) are resolved here, so that the
geometry rules stay opset-free. Small constant operands (pads, shapes, scales, axes) are folded
from initializers, ``Constant`` nodes and short chains of integer ops; when an operand is only known
through shape inference, ONNX shape inference runs once and the recorded shapes are used.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ModelError, UsageError
from ..ir import Graph, ModelInput, Node, Padding, Shape

if TYPE_CHECKING:
    import onnx

#: Operands larger than this are never folded (weights are never read).
FOLD_LIMIT = 4096
BIG = 1 << 62


class NeedsInference(Exception):
    """An operand is not static; retry with ONNX shape inference."""


@dataclass
class Ctx:
    """What converters may consult."""

    opset: int
    values: dict[str, np.ndarray]
    shapes: dict[str, Shape]
    inferred: bool
    extra_notes: list[str] = field(default_factory=list)

    def value(self, name: str | None) -> np.ndarray | None:
        if not name:
            return None
        return self.values.get(name)

    def ints(self, name: str | None) -> tuple[int, ...] | None:
        v = self.value(name)
        return None if v is None else tuple(int(x) for x in np.asarray(v).reshape(-1))

    def floats(self, name: str | None) -> tuple[float, ...] | None:
        v = self.value(name)
        return None if v is None else tuple(float(x) for x in np.asarray(v).reshape(-1))

    def shape(self, name: str) -> Shape | None:
        return self.shapes.get(name)


Converter = Callable[["onnx.NodeProto", dict[str, Any], Ctx, str], Node]
CONVERTERS: dict[str, Converter] = {}


def converts(*op_types: str) -> Callable[[Converter], Converter]:
    def reg(fn: Converter) -> Converter:
        for op in op_types:
            CONVERTERS[op] = fn
        return fn

    return reg


def _node(
    p: onnx.NodeProto,
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


def _arg(p: onnx.NodeProto, k: int) -> str | None:
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


@converts("Conv", "ConvInteger", "QLinearConv", "ConvTranspose", "com.microsoft.FusedConv")
def conv(p: onnx.NodeProto, a: dict[str, Any], ctx: Ctx, name: str) -> Node:
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
    attrs = _window_attrs(a, [int(k or 0) for k in kernel])
    attrs.update(channel_axis=1, out_channels=out_ch, groups=group)
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


@converts("MaxPool", "AveragePool", "LpPool", "QLinearAveragePool")
def pool(p: onnx.NodeProto, a: dict[str, Any], ctx: Ctx, name: str) -> Node:
    kernel = a.get("kernel_shape")
    if kernel is None:
        raise ModelError(f"node {name!r}: {p.op_type} without kernel_shape")
    attrs = _window_attrs(a, kernel)
    attrs.update(channel_axis=None, kind=p.op_type)
    return _node(p, name, "pool", [p.input[0]], list(p.input[1:]), **attrs)


@converts("GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool", "QLinearGlobalAveragePool")
def global_pool(p: onnx.NodeProto, a: dict[str, Any], ctx: Ctx, name: str) -> Node:
    return _node(p, name, "reduce", [p.input[0]], list(p.input[1:]), axes_from=2, keepdims=True)


@converts("Pad")
def pad(p: onnx.NodeProto, a: dict[str, Any], ctx: Ctx, name: str) -> Node:
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
def slice_(p: onnx.NodeProto, a: dict[str, Any], ctx: Ctx, name: str) -> Node:
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
def resize(p: onnx.NodeProto, a: dict[str, Any], ctx: Ctx, name: str) -> Node:
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
        if a.get("antialias", 0):
            return _node(p, name, "unknown", [p.input[0]], list(p.input[1:]), reason="antialias")
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
    )


@converts("SpaceToDepth", "DepthToSpace")
def block(p: onnx.NodeProto, a: dict[str, Any], ctx: Ctx, name: str) -> Node:
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
def reduce(p: onnx.NodeProto, a: dict[str, Any], ctx: Ctx, name: str) -> Node:
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


@converts("Softmax", "LogSoftmax", "Hardmax")
def softmax(p: onnx.NodeProto, a: dict[str, Any], ctx: Ctx, name: str) -> Node:
    if ctx.opset < 13:  # coerced to 2-D: mixes every axis from `axis` on
        return _node(p, name, "mix", [p.input[0]], axes_from=int(a.get("axis", 1)))
    return _node(p, name, "mix", [p.input[0]], axes=(int(a.get("axis", -1)),))


@converts(
    "InstanceNormalization",
    "GroupNormalization",
    "MeanVarianceNormalization",
    "LayerNormalization",
    "com.microsoft.SkipLayerNormalization",
)
def norm(p: onnx.NodeProto, a: dict[str, Any], ctx: Ctx, name: str) -> Node:
    data = [p.input[0]] + ([p.input[1]] if p.op_type == "SkipLayerNormalization" else [])
    params = list(p.input[len(data) :])
    if p.op_type == "MeanVarianceNormalization":
        return _node(p, name, "mix", data, params, axes=tuple(a.get("axes", (0, 2, 3))))
    if p.op_type in ("LayerNormalization", "SkipLayerNormalization"):
        return _node(p, name, "mix", data, params, axes_from=int(a.get("axis", -1)))
    first = 1 if p.op_type == "GroupNormalization" else 2
    return _node(p, name, "mix", data, params, axes_from=first)


@converts("Gemm")
def gemm(p: onnx.NodeProto, a: dict[str, Any], ctx: Ctx, name: str) -> Node:
    tb = bool(a.get("transB", 0))
    bshape = ctx.shape(p.input[1])
    units = None if bshape is None or len(bshape) != 2 else bshape[0 if tb else 1]
    return _node(
        p,
        name,
        "gemm",
        [p.input[0], p.input[1]],
        list(p.input[2:]),
        trans_a=bool(a.get("transA", 0)),
        trans_b=tb,
        units=units,
    )


@converts("MatMul", "MatMulInteger", "QLinearMatMul")
def matmul(p: onnx.NodeProto, a: dict[str, Any], ctx: Ctx, name: str) -> Node:
    ia, ib = (0, 3) if p.op_type == "QLinearMatMul" else (0, 1)
    others = [x for k, x in enumerate(p.input) if k not in (ia, ib)]
    return _node(p, name, "matmul", [p.input[ia], p.input[ib]], others)


# ---------------------------------------------------------------------------------------------
# layout changes


@converts("Flatten")
def flatten(p: onnx.NodeProto, a: dict[str, Any], ctx: Ctx, name: str) -> Node:
    return _node(p, name, "flatten", [p.input[0]], axis=int(a.get("axis", 1)))


@converts("Reshape")
def reshape(p: onnx.NodeProto, a: dict[str, Any], ctx: Ctx, name: str) -> Node:
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
def transpose(p: onnx.NodeProto, a: dict[str, Any], ctx: Ctx, name: str) -> Node:
    perm = tuple(a["perm"]) if "perm" in a else None
    return _node(p, name, "transpose", [p.input[0]], perm=perm)


@converts("Squeeze", "Unsqueeze")
def squeeze(p: onnx.NodeProto, a: dict[str, Any], ctx: Ctx, name: str) -> Node:
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


@converts("Concat", "QLinearConcat")
def concat(p: onnx.NodeProto, a: dict[str, Any], ctx: Ctx, name: str) -> Node:
    data = list(p.input) if p.op_type == "Concat" else list(p.input[2::3])
    return _node(p, name, "concat", data, axis=int(a["axis"]))


@converts("Split")
def split(p: onnx.NodeProto, a: dict[str, Any], ctx: Ctx, name: str) -> Node:
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


@converts("Gather")
def gather(p: onnx.NodeProto, a: dict[str, Any], ctx: Ctx, name: str) -> Node:
    idx = ctx.shape(p.input[1])
    v = ctx.value(p.input[1])
    if v is not None:
        idx = tuple(np.asarray(v).shape)
    if idx is None:
        return _node(p, name, "unknown", [p.input[0]], [p.input[1]])
    return _node(
        p, name, "gather", [p.input[0]], [p.input[1]], axis=int(a.get("axis", 0)), indices_shape=idx
    )


@converts("Expand")
def expand(p: onnx.NodeProto, a: dict[str, Any], ctx: Ctx, name: str) -> Node:
    target = ctx.ints(_arg(p, 1))
    if target is None:
        return _node(p, name, "unknown", [p.input[0]], [p.input[1]])
    return _node(p, name, "elementwise", [p.input[0]], [p.input[1]], broadcast_to=target)


@converts("Shape", "Size")
def shape_op(p: onnx.NodeProto, a: dict[str, Any], ctx: Ctx, name: str) -> Node:
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
def constant(p: onnx.NodeProto, a: dict[str, Any], ctx: Ctx, name: str) -> Node:
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
    "QLinearAdd",
    "QLinearMul",
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
    "Mish",
    "Gelu",
    "FastGelu",
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
def elementwise(p: onnx.NodeProto, a: dict[str, Any], ctx: Ctx, name: str) -> Node:
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


@converts("BatchNormalization", "Dropout", "com.microsoft.BiasAdd")
def first_input_pointwise(p: onnx.NodeProto, a: dict[str, Any], ctx: Ctx, name: str) -> Node:
    if p.op_type == "BatchNormalization" and a.get("training_mode", 0):
        return _node(p, name, "mix", [p.input[0]], list(p.input[1:]), axes=(0, 2, 3))
    return _node(p, name, "elementwise", [p.input[0]], list(p.input[1:]))


@converts("DFT")
def dft(p: onnx.NodeProto, a: dict[str, Any], ctx: Ctx, name: str) -> Node:
    axis = ctx.ints(_arg(p, 2)) if _arg(p, 2) else (int(a.get("axis", 1)),)
    if axis is None:
        return _node(p, name, "unknown", [p.input[0]], list(p.input[1:]))
    return _node(p, name, "mix", [p.input[0]], list(p.input[1:]), axes=axis)


# ---------------------------------------------------------------------------------------------
# constant folding of small integer operands


def _fold(p: onnx.NodeProto, a: dict[str, Any], ctx: Ctx) -> None:
    """Record the value (or just the shape) of a node's outputs when its operands are static."""
    op = p.op_type
    vals = [ctx.value(x) if x else None for x in p.input]
    out = p.output[0] if p.output else None
    if out is None:
        return
    try:
        if op == "Constant":
            v = _constant_value(a)
            if v is not None:
                ctx.shapes[out] = tuple(v.shape)
                if v.size <= FOLD_LIMIT:
                    ctx.values[out] = v
            return
        if op == "ConstantOfShape":
            shp = ctx.ints(_arg(p, 0))
            if shp is not None:
                ctx.shapes[out] = shp
                if int(np.prod(shp)) <= FOLD_LIMIT:
                    fill = a.get("value")
                    base = fill.reshape(-1)[:1] if isinstance(fill, np.ndarray) else np.zeros(1)
                    ctx.values[out] = np.full(shp, base[0], dtype=base.dtype)
            return
        if op == "Shape":
            src = ctx.shape(p.input[0])
            if src is not None and all(d is not None for d in src):
                v = np.array(src, dtype=np.int64)
                start, end = int(a.get("start", 0)), a.get("end")
                ctx.values[out] = v[start:end]
                ctx.shapes[out] = tuple(ctx.values[out].shape)
            return
        if any(v is None for v in vals) or not vals:
            return
        res = _fold_op(op, a, vals, ctx.opset)
        if res is not None and res.size <= FOLD_LIMIT:
            ctx.values[out] = res
            ctx.shapes[out] = tuple(res.shape)
    except (ValueError, IndexError, TypeError, OverflowError, ZeroDivisionError):
        return


def _fold_op(op: str, a: dict[str, Any], v: list[Any], opset: int) -> np.ndarray | None:
    if op in ("Identity", "Cast"):
        return np.asarray(v[0])
    if op == "Unsqueeze":
        axes: list[int] = (
            list(a["axes"]) if "axes" in a else [int(x) for x in np.asarray(v[1]).reshape(-1)]
        )
        out = np.asarray(v[0])
        rank = out.ndim + len(axes)
        for ax in sorted(x % rank for x in axes):
            out = np.expand_dims(out, ax)
        return out
    if op == "Squeeze":
        sq_axes = (
            a.get("axes")
            if "axes" in a
            else ([int(x) for x in np.asarray(v[1]).reshape(-1)] if len(v) > 1 else None)
        )
        return np.squeeze(np.asarray(v[0]), axis=tuple(sq_axes) if sq_axes is not None else None)
    if op == "Concat":
        return np.concatenate([np.atleast_1d(x) for x in v], axis=int(a["axis"]))
    if op == "Gather":
        return np.take(np.asarray(v[0]), np.asarray(v[1]), axis=int(a.get("axis", 0)))
    if op in ("Add", "Sub", "Mul", "Div"):
        x, y = np.asarray(v[0]), np.asarray(v[1])
        if op == "Div" and x.dtype.kind in "iu":
            return np.asarray(x // y)
        return np.asarray(
            {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}[op](x, y)
        )
    if op == "Slice" and opset >= 10:
        data = np.asarray(v[0])
        starts, ends = np.asarray(v[1]).reshape(-1), np.asarray(v[2]).reshape(-1)
        sl_axes = np.asarray(v[3]).reshape(-1) if len(v) > 3 else np.arange(len(starts))
        steps = np.asarray(v[4]).reshape(-1) if len(v) > 4 else np.ones(len(starts), np.int64)
        idx: list[Any] = [slice(None)] * data.ndim
        for ax, s, e, st in zip(sl_axes, starts, ends, steps):
            idx[int(ax)] = slice(int(s), int(min(e, BIG)), int(st))
        return np.asarray(data[tuple(idx)])
    if op == "Reshape":
        target = [int(x) for x in np.asarray(v[1]).reshape(-1)]
        data = np.asarray(v[0])
        target = [data.shape[k] if t == 0 else t for k, t in enumerate(target)]
        return data.reshape(target)
    return None


def _constant_value(a: dict[str, Any]) -> np.ndarray | None:
    for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
        if key in a:
            return np.asarray(a[key])
    return None


# ---------------------------------------------------------------------------------------------
# loading


def _attrs(p: onnx.NodeProto) -> dict[str, Any]:
    import onnx

    out: dict[str, Any] = {}
    for at in p.attribute:
        t = at.type
        if t == onnx.AttributeProto.INT:
            out[at.name] = int(at.i)
        elif t == onnx.AttributeProto.INTS:
            out[at.name] = tuple(int(x) for x in at.ints)
        elif t == onnx.AttributeProto.FLOAT:
            out[at.name] = float(at.f)
        elif t == onnx.AttributeProto.FLOATS:
            out[at.name] = tuple(float(x) for x in at.floats)
        elif t == onnx.AttributeProto.STRING:
            out[at.name] = at.s.decode("utf-8", "replace")
        elif t == onnx.AttributeProto.STRINGS:
            out[at.name] = tuple(s.decode("utf-8", "replace") for s in at.strings)
        elif t == onnx.AttributeProto.TENSOR and p.op_type in ("Constant", "ConstantOfShape"):
            out[at.name] = _small_tensor(at.t)
    return out


def _small_tensor(t: onnx.TensorProto) -> np.ndarray | None:
    from onnx import numpy_helper

    n = int(np.prod(t.dims)) if t.dims else 1
    if n > FOLD_LIMIT or t.data_location == 1:  # external data is never read
        return np.zeros(tuple(t.dims), dtype=np.float32) if n <= FOLD_LIMIT else None
    arr: np.ndarray = numpy_helper.to_array(t)
    return arr


def _type_shape(vi: onnx.ValueInfoProto) -> Shape | None:
    tt = vi.type.tensor_type
    if not vi.type.HasField("tensor_type") or not tt.HasField("shape"):
        return None
    return tuple(d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim)


def read_model(path: str) -> onnx.ModelProto:
    import onnx
    from google.protobuf.message import DecodeError

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
    try:
        model = onnx.load_model_from_string(data)
    except (DecodeError, ValueError, RuntimeError, UnicodeDecodeError) as exc:
        raise ModelError(f"not a valid ONNX model (cannot parse protobuf: {exc})", path) from exc
    except RecursionError as exc:
        raise ModelError("not a valid ONNX model (nesting too deep)", path) from exc
    if model.ir_version <= 0 or not model.HasField("graph"):
        raise ModelError("not an ONNX model (no IR version or no graph)", path)
    if not model.graph.node:
        raise ModelError("the ONNX graph has no nodes", path)
    return model


def load_onnx(
    path: str,
    input_name: str | None = None,
    input_shape: Shape | None = None,
    layout: str = "auto",
) -> Graph:
    model = read_model(path)
    try:
        return _convert(model, path, input_name, input_shape, layout, inferred=False)
    except NeedsInference:
        pass
    import onnx

    try:
        model = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception as exc:  # shape inference raises several private error types
        raise ModelError(f"ONNX shape inference failed: {exc}".splitlines()[0], path) from exc
    try:
        return _convert(model, path, input_name, input_shape, layout, inferred=True)
    except NeedsInference as exc:  # pragma: no cover - inferred=True never raises it
        raise ModelError(f"shape of {exc} is unknown", path) from exc


def _convert(
    model: onnx.ModelProto,
    path: str,
    input_name: str | None,
    input_shape: Shape | None,
    layout: str,
    inferred: bool,
) -> Graph:
    import onnx

    g = model.graph
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
    init_names = {t.name for t in g.initializer}
    shapes: dict[str, Shape] = {}
    values: dict[str, np.ndarray] = {}
    for t in g.initializer:
        shapes[t.name] = tuple(int(d) for d in t.dims)
        small_float = t.data_type == onnx.TensorProto.FLOAT and int(np.prod(t.dims or [1])) <= 16
        if t.data_type in (onnx.TensorProto.INT64, onnx.TensorProto.INT32) or small_float:
            v = _small_tensor(t)
            if v is not None:
                values[t.name] = v
    for vi in (*g.value_info, *g.output, *g.input):
        shp = _type_shape(vi)
        if shp is not None and vi.name not in init_names:
            shapes[vi.name] = shp
    real_inputs = [vi for vi in g.input if vi.name not in init_names]
    image = _pick_input(real_inputs, input_name, path)
    shape = _type_shape(image)
    if input_shape is not None:
        if shape is not None and len(shape) != len(input_shape):
            raise UsageError(
                f"--input-shape has {len(input_shape)} dims but input {image.name!r} has "
                f"{len(shape)}",
                path,
            )
        shape = tuple(input_shape)
    if shape is None:
        raise ModelError(f"input {image.name!r} has no recorded shape: give --input-shape", path)
    rank = len(shape)
    if rank < 3:
        raise ModelError(
            f"input {image.name!r} has shape {_fmt(shape)}: no spatial axes "
            "(expected N, C and 1 to 3 spatial dims)",
            path,
        )
    lay = _layout(layout, g, image.name, rank)
    spatial = tuple(range(2, rank)) if lay.startswith("NC") else tuple(range(1, rank - 1))
    unknown = [t for t in spatial if shape[t] is None]
    if unknown:
        raise ModelError(
            f"spatial size of input {image.name!r} is unknown ({_fmt(shape)}): give "
            f"--input-shape, e.g. --input-shape {_example(shape, spatial)}",
            path,
        )
    shapes[image.name] = shape
    ctx = Ctx(opset, values, shapes, inferred)
    nodes: list[Node] = []
    used: set[str] = set()
    constants = set(init_names)
    for k, p in enumerate(g.node):
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
            nodes.append(conv_fn(p, a, ctx, name))
        except (KeyError, IndexError, ValueError) as exc:
            if isinstance(exc, ModelError):
                raise ModelError(exc.message, path) from exc
            raise ModelError(f"node {name!r} ({p.op_type}): malformed ({exc})", path) from exc
    others = tuple(vi.name for vi in real_inputs if vi.name != image.name)
    meta = {
        "ir_version": str(model.ir_version),
        "opset": str(opset),
        "producer": " ".join(x for x in (model.producer_name, model.producer_version) if x),
    }
    return Graph(
        path=path,
        format="onnx",
        input=ModelInput(image.name, shape, lay, spatial),
        nodes=nodes,
        outputs=tuple(o.name for o in g.output),
        constants=frozenset(constants),
        other_inputs=others,
        declared_shapes=shapes,
        meta=meta,
    )


def _pick_input(
    inputs: list[onnx.ValueInfoProto], name: str | None, path: str
) -> onnx.ValueInfoProto:
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
    spatial = [vi for vi in inputs if (s := _type_shape(vi)) is not None and len(s) >= 3]
    if len(spatial) == 1:
        return spatial[0]
    names = ", ".join(repr(vi.name) for vi in (spatial or inputs))
    raise UsageError(f"several candidate image inputs ({names}): choose one with --input", path)


def _layout(layout: str, g: onnx.GraphProto, name: str, rank: int) -> str:
    nsp = rank - 2
    letters = {1: "W", 2: "HW", 3: "DHW"}.get(nsp, "S" * nsp)
    chosen = layout.lower()
    if chosen == "auto":
        nhwc_perm = [0, rank - 1, *range(1, rank - 1)]
        first = [p for p in g.node if name in p.input]
        chosen = "nchw"
        if first and all(
            p.op_type == "Transpose"
            and [at.ints for at in p.attribute if at.name == "perm"]
            and list(next(at.ints for at in p.attribute if at.name == "perm")) == nhwc_perm
            for p in first
        ):
            chosen = "nhwc"
    if chosen in ("nchw", "ncw", "ncdhw", "channels_first"):
        return "NC" + letters
    if chosen in ("nhwc", "nwc", "ndhwc", "channels_last"):
        return "N" + letters + "C"
    raise UsageError(f"unknown layout {layout!r} (use auto, nchw or nhwc)")


def _fmt(shape: Shape) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def _example(shape: Shape, spatial: tuple[int, ...]) -> str:
    dims = []
    for t, d in enumerate(shape):
        if d is not None:
            dims.append(str(d))
        elif t in spatial:
            dims.append("224")
        else:
            dims.append("1")
    return "x".join(dims)
