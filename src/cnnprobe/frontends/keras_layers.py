"""Keras layers and ops become IR nodes: one converter per layer class.

A converter sees one *call* of a layer (:class:`LayerCall`: its config, the tensors it was called
on, the names of its outputs) and returns IR nodes. It reads only JSON values; nothing named in a
config is imported or run. Unknown classes become ``unknown`` nodes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import ModelError
from ..ir import Node, Padding, RecurrentOutput, Shape

BIG = 1 << 62
#: Largest kernel, stride, dilation, pad or size accepted from a config.
MAX_DIM = 1 << 31


@dataclass(frozen=True)
class Tensor:
    """A resolved tensor reference inside a call's arguments."""

    name: str
    shape: Shape | None = None


@dataclass
class LayerCall:
    name: str  #: IR node name (the Keras layer name, with scope and call index)
    cls: str  #: class name
    module: str | None
    config: dict[str, Any]
    args: list[Any]
    kwargs: dict[str, Any]
    inputs: list[Tensor]  #: every tensor in args, then kwargs, in order
    outputs: list[str]
    is_op: bool  #: a Keras 3 op layer (keras.src.ops.*) rather than keras.layers
    default_format: str  #: "channels_last" or "channels_first"
    rank_of: Callable[[str], int | None]
    path: str
    meta: dict[str, str] = field(default_factory=dict)

    def rank(self, t: Tensor) -> int | None:
        if t.shape is not None:
            return len(t.shape)
        return self.rank_of(t.name)

    def fail(self, message: str) -> ModelError:
        return ModelError(f"layer {self.name!r} ({self.cls}): {message}", self.path)

    def node(self, op: str, inputs: Sequence[Tensor], **attrs: Any) -> Node:
        return Node(
            name=self.name,
            op=op,
            source_op=self.cls,
            inputs=tuple(t.name for t in inputs),
            outputs=tuple(self.outputs),
            attrs=attrs,
        )

    def aux(self, suffix: str, op: str, inputs: Sequence[Tensor], **attrs: Any) -> Node:
        """A helper node feeding the layer's main node (its output is ``name/suffix``)."""
        name = f"{self.name}/{suffix}"
        return Node(
            name=name,
            op=op,
            source_op=self.cls,
            inputs=tuple(t.name for t in inputs),
            outputs=(name,),
            attrs=attrs,
        )

    def x(self) -> Tensor:
        if not self.inputs:
            raise self.fail("called on no tensor")
        return self.inputs[0]

    # --- typed config access -------------------------------------------------------------

    def get(self, key: str, default: Any = None) -> Any:
        return self.config.get(key, default)

    def ints(
        self, key: str, n: int, default: int | None = None, lo: int = 1, allow_none: bool = False
    ) -> tuple[int, ...]:
        v = self.config.get(key)
        if v is None:
            if default is not None:
                return (default,) * n
            if allow_none:
                return ()
            raise self.fail(f"missing {key!r}")
        return self.int_tuple(v, key, n, lo)

    def int_tuple(self, v: Any, key: str, n: int, lo: int = 1) -> tuple[int, ...]:
        vals = [v] * n if _is_int(v) else v
        if not isinstance(vals, list) or not all(_is_int(x) for x in vals):
            raise self.fail(f"{key!r} must be an integer or a list of integers, not {_show(v)}")
        if len(vals) == 1 and n > 1:
            vals = vals * n
        if len(vals) != n:
            raise self.fail(f"{key!r} has {len(vals)} entries, expected {n}")
        for x in vals:
            if not lo <= x <= MAX_DIM:
                what = "positive" if lo == 1 else f"at least {lo}"
                raise self.fail(f"{key!r} value {x} is not {what} (or absurdly large)")
        return tuple(int(x) for x in vals)

    def int_(self, key: str, default: int | None = None, lo: int = 1) -> int:
        v = self.config.get(key, default)
        if not isinstance(v, int) or isinstance(v, bool):
            raise self.fail(f"{key!r} must be an integer, not {_show(v)}")
        if not lo <= v <= MAX_DIM:
            raise self.fail(f"{key!r} value {v} is out of range")
        return int(v)

    def str_(self, key: str, default: str, choices: Sequence[str] | None = None) -> str:
        v = self.config.get(key)
        if v is None:
            v = default
        if not isinstance(v, str):
            raise self.fail(f"{key!r} must be a string, not {_show(v)}")
        v = v.lower()
        if choices is not None and v not in choices:
            raise self.fail(f"{key!r} is {v!r}, expected one of {', '.join(choices)}")
        return v

    def bool_(self, key: str, default: bool) -> bool:
        v = self.config.get(key, default)
        if v is None:
            return default
        if not isinstance(v, bool):
            raise self.fail(f"{key!r} must be true or false, not {_show(v)}")
        return v

    def data_format(self) -> str:
        v = self.config.get("data_format")
        if v is None:
            return self.default_format
        if not isinstance(v, str) or v.lower() not in ("channels_last", "channels_first"):
            raise self.fail(
                f"'data_format' is {_show(v)}, expected channels_last or channels_first"
            )
        return v.lower()

    def axis_list(self, v: Any, key: str) -> tuple[int, ...]:
        if _is_int(v):
            return (int(v),)
        if isinstance(v, list) and all(_is_int(a) for a in v) and len(v) <= 64:
            return tuple(int(a) for a in v)
        raise self.fail(f"{key!r} must be an axis or a list of axes, not {_show(v)}")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _show(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def spatial_layout(fmt: str, nsp: int) -> tuple[tuple[int, ...], int]:
    """Spatial tensor axes and channel axis of a batched rank ``nsp + 2`` tensor."""
    if fmt == "channels_first":
        return tuple(range(2, 2 + nsp)), 1
    return tuple(range(1, 1 + nsp)), -1


Converter = Callable[[LayerCall], list[Node]]
LAYERS: dict[str, Converter] = {}
OPS: dict[str, Converter] = {}
TF_OPS: dict[str, Converter] = {}


def layer(*names: str) -> Callable[[Converter], Converter]:
    def reg(fn: Converter) -> Converter:
        for n in names:
            LAYERS[n] = fn
        return fn

    return reg


def op(*names: str) -> Callable[[Converter], Converter]:
    def reg(fn: Converter) -> Converter:
        for n in names:
            OPS[n] = fn
        return fn

    return reg


def tf_op(*names: str) -> Callable[[Converter], Converter]:
    def reg(fn: Converter) -> Converter:
        for n in names:
            TF_OPS[n] = fn
        return fn

    return reg


def unknown(c: LayerCall, reason: str | None = None) -> list[Node]:
    attrs: dict[str, Any] = {"reason": reason} if reason else {}
    return [c.node("unknown", c.inputs, **attrs)]


def _nsp(cls: str, default: int = 2) -> int:
    for n in (1, 2, 3):
        if f"{n}D" in cls:
            return n
    return default


# ---------------------------------------------------------------------------------------------
# convolutions and pooling


def _padding(c: LayerCall, k: Sequence[int], d: Sequence[int], allow_causal: bool) -> Padding:
    choices = ("valid", "same", "causal") if allow_causal else ("valid", "same")
    p = c.str_("padding", "valid", choices)
    if p == "same":
        return Padding("same_upper")
    if p == "causal":
        return Padding("explicit", tuple((kk - 1) * dd for kk, dd in zip(k, d)), (0,) * len(k))
    return Padding("valid")


@layer(
    "Conv1D",
    "Conv2D",
    "Conv3D",
    "Convolution1D",
    "Convolution2D",
    "Convolution3D",
    "SeparableConv1D",
    "SeparableConv2D",
    "SeparableConvolution1D",
    "SeparableConvolution2D",
    "DepthwiseConv1D",
    "DepthwiseConv2D",
    "LocallyConnected1D",
    "LocallyConnected2D",
)
def conv(c: LayerCall) -> list[Node]:
    nsp = _nsp(c.cls)
    k = c.ints("kernel_size", nsp)
    s = c.ints("strides", nsp, default=1)
    d = c.ints("dilation_rate", nsp, default=1)
    pad = _padding(c, k, d, allow_causal=nsp == 1)
    axes, ch = spatial_layout(c.data_format(), nsp)
    extra: dict[str, Any] = {}
    if c.cls.startswith("Depthwise"):
        mult = c.int_("depth_multiplier", 1)
        x = c.x()
        in_ch = x.shape[ch] if x.shape is not None and len(x.shape) == nsp + 2 else None
        out_ch = None if in_ch is None else in_ch * mult
        # (when the file records no input shape, the analysis multiplies the channels it knows)
        extra["channel_multiplier"] = mult
    else:
        out_ch = c.int_("filters")
    return [
        c.node(
            "window",
            [c.x()],
            spatial_axes=axes,
            kernel=k,
            strides=s,
            dilations=d,
            padding=pad,
            channel_axis=ch,
            out_channels=out_ch,
            groups=c.int_("groups", 1),
            ceil_mode=False,
            **extra,
        )
    ]


def transpose_pads(
    k: int, s: int, d: int, padding: str, out_pad: int | None
) -> tuple[int, int, int]:
    """``(pad_lo, pad_hi, output_padding)`` in ONNX ConvTranspose terms (output unit ``o`` gets
    input unit ``i`` through tap ``u`` when ``o = i*s + u*d - pad_lo``; output size
    ``s*(n-1) + output_padding + k_eff - pad_lo - pad_hi``) for a Keras ``ConvNDTranspose``.

    Keras (TensorFlow, JAX and, since it crops asymmetrically, torch) computes the transposed conv
    as the gradient of a forward conv: 'valid' output ``n*s + max(k_eff - s, 0)``, 'same' output
    ``n*s``; with ``output_padding`` the size is ``(n-1)*s + k_eff - 2*(k_eff//2) + op``. The
    forward conv's 'same' padding puts the extra pixel at the end, so ``pad_lo = total // 2``.
    Checked against real Keras outputs with unit impulses (TensorFlow and torch backends)."""
    ke = d * (k - 1) + 1
    if padding == "valid":
        return 0, 0, (max(s - ke, 0) if out_pad is None else out_pad)
    total = ke - s if out_pad is None else 2 * (ke // 2) - out_pad
    if total >= 0:
        return total // 2, total - total // 2, 0
    return 0, 0, -total


@layer(
    "Conv1DTranspose",
    "Conv2DTranspose",
    "Conv3DTranspose",
    "Convolution1DTranspose",
    "Convolution2DTranspose",
    "Convolution3DTranspose",
)
def conv_transpose(c: LayerCall) -> list[Node]:
    nsp = _nsp(c.cls)
    k = c.ints("kernel_size", nsp)
    s = c.ints("strides", nsp, default=1)
    d = c.ints("dilation_rate", nsp, default=1)
    padding = c.str_("padding", "valid", ("valid", "same"))
    raw_op = c.get("output_padding")
    ops: tuple[int | None, ...] = (
        (None,) * nsp if raw_op is None else c.int_tuple(raw_op, "output_padding", nsp, lo=0)
    )
    lo, hi, opad = [], [], []
    for e in range(nsp):
        a, b, o = transpose_pads(k[e], s[e], d[e], padding, ops[e])
        lo.append(a)
        hi.append(b)
        opad.append(o)
    axes, ch = spatial_layout(c.data_format(), nsp)
    return [
        c.node(
            "window_transpose",
            [c.x()],
            spatial_axes=axes,
            kernel=k,
            strides=s,
            dilations=d,
            padding=Padding("explicit", tuple(lo), tuple(hi)),
            channel_axis=ch,
            out_channels=c.int_("filters"),
            groups=c.int_("groups", 1),
            output_padding=tuple(opad),
            output_size=None,
        )
    ]


@layer(
    "MaxPooling1D",
    "MaxPooling2D",
    "MaxPooling3D",
    "AveragePooling1D",
    "AveragePooling2D",
    "AveragePooling3D",
    "MaxPool1D",
    "MaxPool2D",
    "MaxPool3D",
    "AvgPool1D",
    "AvgPool2D",
    "AvgPool3D",
)
def pooling(c: LayerCall) -> list[Node]:
    nsp = _nsp(c.cls)
    k = c.ints("pool_size", nsp)
    s = c.ints("strides", nsp) if c.get("strides") is not None else k
    axes, _ = spatial_layout(c.data_format(), nsp)
    return [
        c.node(
            "pool",
            [c.x()],
            spatial_axes=axes,
            kernel=k,
            strides=s,
            dilations=(1,) * nsp,
            padding=_padding(c, k, (1,) * nsp, allow_causal=False),
            channel_axis=None,
            ceil_mode=False,
            kind=c.cls,
        )
    ]


@layer(
    "GlobalAveragePooling1D",
    "GlobalAveragePooling2D",
    "GlobalAveragePooling3D",
    "GlobalMaxPooling1D",
    "GlobalMaxPooling2D",
    "GlobalMaxPooling3D",
    "GlobalAvgPool1D",
    "GlobalAvgPool2D",
    "GlobalAvgPool3D",
    "GlobalMaxPool1D",
    "GlobalMaxPool2D",
    "GlobalMaxPool3D",
)
def global_pooling(c: LayerCall) -> list[Node]:
    axes, _ = spatial_layout(c.data_format(), _nsp(c.cls))
    return [c.node("reduce", [c.x()], axes=axes, keepdims=c.bool_("keepdims", False))]


# ---------------------------------------------------------------------------------------------
# pointwise, normalisation, dense


POINTWISE_LAYERS = (
    "Activation",
    "ReLU",
    "LeakyReLU",
    "PReLU",
    "ELU",
    "ThresholdedReLU",
    "BatchNormalization",
    "SyncBatchNormalization",
    "Dropout",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "SpatialDropout3D",
    "GaussianNoise",
    "GaussianDropout",
    "AlphaDropout",
    "ActivityRegularization",
    "Masking",
    "Rescaling",
    "Normalization",
    "Identity",
    "RandomFlip",
    "RandomRotation",
    "RandomZoom",
    "RandomTranslation",
    "RandomContrast",
    "RandomBrightness",
    "RandomSaturation",
    "RandomHue",
    "RandomSharpness",
    "RandomGrayscale",
    "RandomColorJitter",
    "RandomColorDegeneration",
    "RandomInvert",
    "RandomPosterization",
    "Solarization",
    "AutoContrast",
    "Equalization",
)


@layer(*POINTWISE_LAYERS)
def pointwise(c: LayerCall) -> list[Node]:
    return [c.node("elementwise", [c.x()])]


#: Layers that ``keras.applications`` models define for themselves (ConvNeXt: ``x * gamma`` per
#: channel, and stochastic depth, the identity at inference; InceptionResNetV2's scaled residual,
#: below). Recognised only when the file names their Keras module: a class of the user's may
#: share the name.
APPLICATION_LAYERS: dict[str, Converter] = {
    "LayerScale": pointwise,
    "StochasticDepth": pointwise,
}
APPLICATION_MODULES = ("keras.src.applications.", "keras.applications.")


@layer("Softmax", "LayerNormalization", "UnitNormalization")
def axis_mix(c: LayerCall) -> list[Node]:
    axes = c.axis_list(c.get("axis", -1), "axis")
    return [c.node("mix", [c.x()], axes=axes)]


@layer("GroupNormalization")
def group_norm(c: LayerCall) -> list[Node]:
    rank = c.rank(c.x())
    if rank is None:
        return unknown(c, "rank of the normalised tensor is unknown")
    return [c.node("mix", [c.x()], axes=tuple(range(1, rank)))]


@layer("Dense")
def dense(c: LayerCall) -> list[Node]:
    return [c.node("dense", [c.x()], axis=-1, units=c.int_("units"))]


#: final states a recurrent layer returns after its output when ``return_state`` is set
RECURRENT_STATES = {"LSTM": 2, "CuDNNLSTM": 2}
RECURRENT_LAYERS = ("LSTM", "GRU", "SimpleRNN", "CuDNNLSTM", "CuDNNGRU")


@layer(*RECURRENT_LAYERS)
def recurrent(c: LayerCall) -> list[Node]:
    """``(batch, time, features)``: the output at every step or the last one, then with
    ``return_state`` the final states (two for an LSTM). Initial states passed in are read by
    every step."""
    specs = _recurrent_outputs(c, c.config)
    if isinstance(specs, str):
        return unknown(c, specs)
    return [_recurrent_node(c, specs)]


def _recurrent_outputs(c: LayerCall, cfg: dict[str, Any]) -> list[RecurrentOutput] | str:
    """What a recurrent layer of config ``cfg`` returns, or why it is not followed."""
    inner = replace(c, config=cfg)
    units = inner.int_("units")
    if inner.bool_("time_major", False):  # (Keras 2: inputs shaped (time, batch, features))
        return "time-major inputs are not followed"
    backwards = inner.bool_("go_backwards", False)
    sequences = inner.bool_("return_sequences", False)
    if backwards and sequences:  # (its steps come out last first: a reversed axis)
        return "go_backwards returns the steps in reverse order"
    direction = "reverse" if backwards else "forward"
    specs = [RecurrentOutput(sequences, direction, None, units)]
    if inner.bool_("return_state", False):
        states = RECURRENT_STATES.get(c.cls, 1)
        specs += [RecurrentOutput(False, direction, None, units)] * states
    return specs


def _recurrent_node(c: LayerCall, specs: list[RecurrentOutput]) -> Node:
    if len(c.outputs) > len(specs):
        raise c.fail(f"called with {len(c.outputs)} outputs, expected at most {len(specs)}")
    node = c.node(
        "recurrent",
        [c.x()],
        seq_axis=1,
        feature_axis=-1,
        outputs=tuple(specs[: len(c.outputs)]),
    )
    return replace(node, params=tuple(t.name for t in c.inputs[1:]))


@layer("Bidirectional")
def bidirectional(c: LayerCall) -> list[Node]:
    """The wrapped layer run forwards and backwards, the backward output turned back to input
    order; ``merge_mode`` ``concat`` (features side by side), ``sum``, ``ave``, ``mul``, or
    ``None`` (two outputs). With ``return_state``: the forward states, then the backward ones."""
    inner = c.get("layer")
    if not isinstance(inner, dict) or not isinstance(inner.get("config"), dict):
        raise c.fail("'layer' must be a layer config")
    cls = inner.get("class_name")
    if cls not in RECURRENT_LAYERS:
        return unknown(c, f"the wrapped {cls} is not followed")
    cfg = inner["config"]
    merge = c.get("merge_mode", "concat")
    if merge not in ("concat", "sum", "ave", "mul", None):
        raise c.fail(f"'merge_mode' is {_show(merge)}, expected concat, sum, ave, mul or null")
    fwd = _recurrent_outputs(replace(c, cls=str(cls)), cfg)
    if isinstance(fwd, str) or fwd[0].direction == "reverse":
        return unknown(c, f"the wrapped {cls} runs backwards")
    # an explicit backward layer may differ (units, class: its own states)
    back_layer = c.get("backward_layer")
    back = fwd
    if isinstance(back_layer, dict) and isinstance(back_layer.get("config"), dict):
        back_cls = back_layer.get("class_name")
        if back_cls not in RECURRENT_LAYERS:
            return unknown(c, f"the backward {back_cls} is not followed")
        bcfg = {**back_layer["config"], "go_backwards": False}
        got = _recurrent_outputs(replace(c, cls=str(back_cls)), bcfg)
        if isinstance(got, str):
            return unknown(c, got)
        back = got
    main, states = fwd[0], fwd[1:]
    b_main, b_states = back[0], back[1:]
    if merge is None:
        outs = [main, replace(b_main, direction="reverse")]
    else:
        units = main.units
        if merge == "concat":
            both = (main.units, b_main.units)
            units = None if None in both else sum(u for u in both if u is not None)
        outs = [replace(main, direction="bidirectional", units=units, merged=merge != "concat")]
    outs += states + [replace(s, direction="reverse") for s in b_states]
    return [_recurrent_node(c, outs)]


@layer("EinsumDense")
def einsum_dense(c: LayerCall) -> list[Node]:
    eq = c.get("equation")
    shape = c.get("output_shape")
    if isinstance(eq, str) and "," in eq and "->" in eq:
        lhs, rest = eq.replace(" ", "").split(",", 1)
        kernel, out = rest.split("->", 1)
        # dense along the last axis: "...c,cd->...d" style with the leading axes kept
        if (
            lhs[:-1] == out[:-1]
            and len(kernel) == 2
            and kernel[0] == lhs[-1]
            and kernel[1] == out[-1]
            and lhs[-1] not in out
        ):
            units = shape[-1] if isinstance(shape, list) and shape and _is_int(shape[-1]) else None
            if _is_int(shape):
                units = shape
            return [c.node("dense", [c.x()], axis=-1, units=units)]
    return unknown(c, "EinsumDense equation not recognised")


# ---------------------------------------------------------------------------------------------
# merges


@layer("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum")
def merge(c: LayerCall) -> list[Node]:
    if not c.inputs:
        raise c.fail("called on no tensor")
    return [c.node("elementwise", c.inputs)]


@layer("Dot")
def dot(c: LayerCall) -> list[Node]:
    """Keras ``batch_dot`` of two tensors along ``axes`` (one axis each, never the batch): the
    output has the batch, then the first tensor's other axes, then the second's (a (batch, 1)
    column when nothing else is left). ``normalize`` (cosine) mixes only the contracted axes."""
    if len(c.inputs) != 2:
        raise c.fail(f"expects two tensors, got {len(c.inputs)}")
    a, b = c.inputs
    ra, rb = c.rank(a), c.rank(b)
    if ra is None or rb is None:
        return unknown(c, "the ranks of its inputs are unknown")
    raw = c.get("axes", -1)
    pair = c.axis_list(raw, "axes")
    if len(pair) == 1:
        pair = (pair[0], pair[0])
    if len(pair) != 2 or not (-ra <= pair[0] < ra and -rb <= pair[1] < rb):
        raise c.fail(f"'axes' is {_show(raw)} for inputs of ranks {ra} and {rb}")
    ax_a, ax_b = pair[0] % ra, pair[1] % rb
    if ax_a == 0 or ax_b == 0:
        raise c.fail("'axes' names the batch axis")
    if ra + rb > 24:
        return unknown(c, "inputs of too high a rank")
    la = ["z"] + [chr(ord("a") + k) for k in range(ra - 1)]
    lb = ["z"] + [chr(ord("m") + k) for k in range(rb - 1)]
    la[ax_a] = lb[ax_b] = "y"
    out = "z" + "".join(la[k] for k in range(1, ra) if k != ax_a)
    out += "".join(lb[k] for k in range(1, rb) if k != ax_b)
    equation = f"{''.join(la)},{''.join(lb)}->{out}"
    if len(out) > 1:
        return [c.node("einsum", [a, b], equation=equation)]
    summed = c.aux("dot", "einsum", [a, b], equation=equation)
    return [summed, c.node("unsqueeze", [Tensor(summed.outputs[0])], axes=(1,))]


#: InceptionResNetV2's residual ``x + scale * branch``
APPLICATION_LAYERS["CustomScaleLayer"] = merge


@layer("Concatenate")
def concatenate(c: LayerCall) -> list[Node]:
    axis = c.get("axis", -1)
    if not _is_int(axis):
        raise c.fail(f"'axis' must be an integer, not {_show(axis)}")
    return [c.node("concat", c.inputs, axis=int(axis))]


# ---------------------------------------------------------------------------------------------
# layout changes


@layer("Flatten")
def flatten(c: LayerCall) -> list[Node]:
    x = c.x()
    if c.data_format() == "channels_first":
        rank = c.rank(x)
        if rank is None:
            return unknown(c, "rank of a channels_first Flatten input is unknown")
        if rank > 2:
            t = c.aux("to_channels_last", "transpose", [x], perm=(0, *range(2, rank), 1))
            return [t, c.node("flatten", [Tensor(t.outputs[0])], axis=1)]
    return [c.node("flatten", [x], axis=1)]


@layer("TimeDistributed")
def time_distributed(c: LayerCall) -> list[Node]:
    """The wrapped layer applied to every step of axis 1 (time, frames): its nodes see the
    tensor with batch and time merged, so every axis they name moves up by one. Wrapped layers
    whose nodes cannot be moved so (custom layers, attention, ...) are not followed."""
    inner = c.get("layer")
    if not isinstance(inner, dict) or not isinstance(inner.get("class_name"), str):
        raise c.fail("'layer' must be a layer config")
    cls = inner["class_name"]
    module = inner.get("module")
    conv = LAYERS.get(cls)
    if (
        conv is None
        or cls == "TimeDistributed"
        or (isinstance(module, str) and module.split(".")[0] not in ("keras", "tf_keras"))
    ):
        return unknown(c, f"the wrapped {cls} is not followed step by step")
    cfg = inner.get("config") or {}
    if not isinstance(cfg, dict):
        raise c.fail("the wrapped layer's config must be an object")
    x = c.x()
    step = Tensor(x.name, None if x.shape is None else (None, *x.shape[2:]))
    rank = c.rank(x)
    call = replace(
        c,
        cls=cls,
        module=module if isinstance(module, str) else None,
        config=cfg,
        inputs=[step],
        rank_of=lambda name: None if rank is None or name != x.name else rank - 1,
    )
    nodes = []
    for n in conv(call):
        moved = _over_time(n)
        if moved is None:
            return unknown(c, f"the wrapped {cls} is not followed step by step")
        nodes.append(replace(moved, source_op=f"TimeDistributed({cls})"))
    return nodes


def _over_time(n: Node) -> Node | None:
    """Node ``n`` of a wrapped layer, applied to each step of axis 1: its axes moved up by one."""
    a = dict(n.attrs)

    def up(t: int) -> int:
        return t + 1 if t >= 0 else t

    if n.op in ("window", "window_transpose", "pool"):
        a["spatial_axes"] = tuple(up(t) for t in a["spatial_axes"])
        if a.get("channel_axis") is not None:
            a["channel_axis"] = up(a["channel_axis"])
    elif n.op in ("reduce", "mix"):
        if "axes" not in a:
            return None
        a["axes"] = tuple(up(t) for t in a["axes"])
    elif n.op == "flatten":  # per step: batch and time stay
        return replace(n, op="reshape", attrs={"target": (0, 0, -1), "allowzero": False})
    elif n.op == "reshape":
        target = a.get("target")
        if target is None or not target or target[0] != 0:
            return None
        a["target"] = (0, 0, *target[1:])
    elif n.op == "pad":
        pads = a["pads"]
        a["pads"] = (pads[0], (0, 0), *pads[1:])
    elif n.op == "slice":
        a["slices"] = tuple((up(t), *rest) for t, *rest in a["slices"])
    elif n.op == "resize":
        if a.get("sizes") is not None:
            return None
        scales = a["scales"]
        a["scales"] = (scales[0], 1.0, *scales[1:])
    elif n.op == "transpose":
        perm = a["perm"]
        a["perm"] = (0, 1, *(t + 1 for t in perm[1:]))
    elif n.op == "dense":
        if a.get("axis", -1) >= 0:
            return None
    elif n.op != "elementwise":
        return None
    return replace(n, attrs=a)


@layer("Reshape")
def reshape(c: LayerCall) -> list[Node]:
    target = c.get("target_shape")
    if not isinstance(target, list) or not all(_is_int(t) for t in target):
        raise c.fail(f"'target_shape' must be a list of integers, not {_show(target)}")
    if any(t < -1 or t == 0 or t > MAX_DIM for t in target):
        raise c.fail(f"'target_shape' {target} has an invalid entry")
    return [c.node("reshape", [c.x()], target=(0, *target), allowzero=False)]


@layer("Permute")
def permute(c: LayerCall) -> list[Node]:
    dims = c.get("dims")
    if not isinstance(dims, list) or not all(_is_int(t) for t in dims):
        raise c.fail(f"'dims' must be a list of integers, not {_show(dims)}")
    if sorted(dims) != list(range(1, len(dims) + 1)):
        raise c.fail(f"'dims' {dims} is not a permutation of 1..{len(dims)}")
    return [c.node("transpose", [c.x()], perm=(0, *dims))]


def _pairs(c: LayerCall, key: str, nsp: int) -> tuple[tuple[int, int], ...]:
    v = c.get(key)
    if v is None:
        raise c.fail(f"missing {key!r}")
    if _is_int(v):
        vals = [[v, v]] * nsp
    elif isinstance(v, list) and len(v) == nsp and all(_is_int(x) for x in v):
        vals = [[x, x] for x in v]
    elif isinstance(v, list) and len(v) == 2 and nsp == 1 and all(_is_int(x) for x in v):
        vals = [v]
    elif (
        isinstance(v, list)
        and len(v) == nsp
        and all(isinstance(p, list) and len(p) == 2 and all(_is_int(x) for x in p) for p in v)
    ):
        vals = v
    else:
        raise c.fail(f"{key!r} must be an integer, one per axis, or pairs, not {_show(v)}")
    for p in vals:
        for x in p:
            if not 0 <= x <= MAX_DIM:
                raise c.fail(f"{key!r} value {x} is out of range")
    return tuple((int(p[0]), int(p[1])) for p in vals)


@layer("ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D")
def zero_padding(c: LayerCall) -> list[Node]:
    nsp = _nsp(c.cls)
    pairs = _pairs(c, "padding", nsp)
    axes, _ = spatial_layout(c.data_format(), nsp)
    pads = [(0, 0)] * (nsp + 2)
    for t, p in zip(axes, pairs):
        pads[t] = p
    return [c.node("pad", [c.x()], pads=tuple(pads), mode="constant")]


@layer("Cropping1D", "Cropping2D", "Cropping3D")
def cropping(c: LayerCall) -> list[Node]:
    nsp = _nsp(c.cls)
    pairs = _pairs(c, "cropping", nsp)
    axes, _ = spatial_layout(c.data_format(), nsp)
    slices = tuple((t, lo, -hi if hi else BIG, 1) for t, (lo, hi) in zip(axes, pairs))
    return [c.node("slice", [c.x()], slices=slices)]


_INTERP = {"nearest": "nearest", "bilinear": "linear", "bicubic": "cubic"}


@layer("UpSampling1D", "UpSampling2D", "UpSampling3D")
def upsampling(c: LayerCall) -> list[Node]:
    nsp = _nsp(c.cls)
    size = c.ints("length" if nsp == 1 and "length" in c.config else "size", nsp, default=2)
    fmt = c.data_format() if nsp > 1 else "channels_last"
    axes, _ = spatial_layout(fmt, nsp)
    interp = c.str_("interpolation", "nearest") if nsp == 2 else "nearest"
    if interp not in _INTERP:
        return unknown(c, f"interpolation {interp!r}")
    scales = [1.0] * (nsp + 2)
    for t, f in zip(axes, size):
        scales[t] = float(f)
    if interp == "nearest":  # ops.repeat: output i reads input floor(i / f)
        coord, nearest = "asymmetric", "floor"
    else:
        coord, nearest = "half_pixel", "floor"
    return [
        c.node(
            "resize",
            [c.x()],
            scales=tuple(scales),
            sizes=None,
            mode=_INTERP[interp],
            coord_mode=coord,
            nearest_mode=nearest,
        )
    ]


def _resize_node(
    c: LayerCall,
    x: Tensor,
    axes: Sequence[int],
    out: Sequence[int],
    interp: str,
    aux: str | None = None,
    antialias: bool = False,
) -> Node | None:
    """A resize of ``x``'s ``axes`` to sizes ``out`` (Keras/TF image resize: half-pixel centres;
    nearest reads ``floor((i + 0.5) * n_in / n_out)``; ``antialias`` widens the bilinear and
    bicubic kernels by ``1/scale`` when downscaling, as TF and torch do)."""
    if interp not in _INTERP:
        return None
    if x.shape is None or any(x.shape[t] is None for t in range(1, len(x.shape)) if t not in axes):
        return None
    sizes: list[int | None] = list(x.shape)
    for t, n in zip(axes, out):
        sizes[t] = n
    if interp == "nearest":
        coord, nearest = "tf_half_pixel_for_nn", "floor"
    else:
        coord, nearest = "half_pixel", "floor"
    attrs = dict(
        scales=None,
        sizes=tuple(sizes),
        mode=_INTERP[interp],
        coord_mode=coord,
        nearest_mode=nearest,
        antialias=antialias and interp != "nearest",
    )
    if aux is not None:
        return c.aux(aux, "resize", [x], **attrs)
    return c.node("resize", [x], **attrs)


@layer("Resizing")
def resizing(c: LayerCall) -> list[Node]:
    h, w = c.int_("height"), c.int_("width")
    interp = c.str_("interpolation", "bilinear")
    antialias = c.bool_("antialias", False)
    axes, _ = spatial_layout(c.data_format(), 2)
    x = c.x()
    nodes: list[Node] = []
    crop = c.bool_("crop_to_aspect_ratio", False)
    padr = c.bool_("pad_to_aspect_ratio", False)
    if crop or padr:
        if x.shape is None or any(x.shape[t] is None for t in axes):
            return unknown(c, "aspect-ratio crop or pad of an input of unknown size")
        ih, iw = (int(x.shape[t] or 0) for t in axes)
        # keras: crop (or pad) to the target aspect ratio, centred, then resize
        if crop:
            ch_ = min(ih, (iw * h) // w)
            cw_ = min(iw, (ih * w) // h)
            oh, ow = (ih - ch_) // 2, (iw - cw_) // 2
            sl = c.aux(
                "crop",
                "slice",
                [x],
                slices=((axes[0], oh, oh + ch_, 1), (axes[1], ow, ow + cw_, 1)),
            )
            shape = list(x.shape)
            shape[axes[0]], shape[axes[1]] = ch_, cw_
        else:
            ph_ = max(ih, (iw * h + w - 1) // w)
            pw_ = max(iw, (ih * w + h - 1) // h)
            th, tw = (ph_ - ih) // 2, (pw_ - iw) // 2
            pads = [(0, 0)] * len(x.shape)
            pads[axes[0]] = (th, ph_ - ih - th)
            pads[axes[1]] = (tw, pw_ - iw - tw)
            sl = c.aux("pad", "pad", [x], pads=tuple(pads), mode="constant")
            shape = list(x.shape)
            shape[axes[0]], shape[axes[1]] = ph_, pw_
        nodes.append(sl)
        x = Tensor(sl.outputs[0], tuple(shape))
    node = _resize_node(c, x, axes, (h, w), interp, antialias=antialias)
    if node is None:
        if interp not in _INTERP:
            return unknown(c, f"interpolation {interp!r}")
        return unknown(c, "the channel count of the resized tensor is unknown")
    return [*nodes, node]


@layer("CenterCrop")
def center_crop(c: LayerCall) -> list[Node]:
    h, w = c.int_("height"), c.int_("width")
    axes, _ = spatial_layout(c.data_format(), 2)
    x = c.x()
    if x.shape is None or any(x.shape[t] is None for t in axes):
        return unknown(c, "center crop of an input of unknown size")
    ih, iw = (int(x.shape[t] or 0) for t in axes)
    if ih < h or iw < w:
        return unknown(c, "center crop larger than its input (Keras resizes instead)")
    oh, ow = (ih - h) // 2, (iw - w) // 2
    return [c.node("slice", [x], slices=((axes[0], oh, oh + h, 1), (axes[1], ow, ow + w, 1)))]


# ---------------------------------------------------------------------------------------------
# attention


def _attention(
    c: LayerCall, query: Tensor, others: list[Tensor], axes: tuple[int, ...]
) -> list[Node]:
    """Each output position depends on its own query position and on every position of key
    and value along ``axes``: a ``mix`` of the query when it attends to itself, else the query
    merged with key/value reduced over all their non-batch axes."""
    if all(o.name == query.name for o in others):
        return [c.node("mix", [query], axes=axes)]
    nodes: list[Node] = []
    parts = [query]
    seen: set[str] = set()
    for k, o in enumerate(others):
        if o.name == query.name or o.name in seen:
            continue
        seen.add(o.name)
        r = c.rank(o)
        if r is None:
            return unknown(c, "rank of the attended tensor is unknown")
        red = c.aux(f"attend{k}", "reduce", [o], axes=tuple(range(1, r)), keepdims=True)
        nodes.append(red)
        parts.append(Tensor(red.outputs[0]))
    mixed = c.aux("query", "mix", [query], axes=axes)
    return [*nodes, mixed, c.node("elementwise", [Tensor(mixed.outputs[0]), *parts[1:]])]


@layer("MultiHeadAttention", "GroupedQueryAttention")
def mha(c: LayerCall) -> list[Node]:
    tensors = [a for a in c.args if isinstance(a, Tensor)]
    query = tensors[0] if tensors else c.kwargs.get("query")
    value = tensors[1] if len(tensors) > 1 else c.kwargs.get("value")
    key = tensors[2] if len(tensors) > 2 else c.kwargs.get("key")
    if not isinstance(query, Tensor) or not isinstance(value, Tensor):
        raise c.fail("called without query and value tensors")
    if c.kwargs.get("return_attention_scores") is True:
        return unknown(c, "returns attention scores")
    rank = c.rank(query)
    if rank is None:
        return unknown(c, "rank of the query is unknown")
    raw = c.get("attention_axes")
    if raw is None:
        axes = tuple(range(1, rank - 1))
    else:
        axes = tuple(a if a >= 0 else rank + a for a in c.axis_list(raw, "attention_axes"))
    others = [value] + ([key] if isinstance(key, Tensor) else [])
    nodes = _attention(c, query, others, axes)
    out_shape = c.get("output_shape")
    if out_shape is not None:
        units = (
            out_shape
            if _is_int(out_shape)
            else (out_shape[-1] if isinstance(out_shape, list) and out_shape else None)
        )
        last = nodes[-1]
        inner = c.aux("attention", last.op, [Tensor(n) for n in last.inputs if n], **last.attrs)
        nodes[-1] = c.node("dense", [Tensor(inner.outputs[0])], axis=-1, units=units)
        nodes.insert(len(nodes) - 1, inner)
    return nodes


@layer("Attention", "AdditiveAttention")
def dot_attention(c: LayerCall) -> list[Node]:
    if len(c.inputs) < 2:
        raise c.fail("called without query and value tensors")
    query = c.inputs[0]
    rank = c.rank(query)
    if rank is None:
        return unknown(c, "rank of the query is unknown")
    if c.kwargs.get("return_attention_scores") is True:
        return unknown(c, "returns attention scores")
    return _attention(c, query, c.inputs[1:], tuple(range(1, rank - 1)))


# ---------------------------------------------------------------------------------------------
# Keras 3 op layers (keras.src.ops.*)


OP_POINTWISE = (
    "Add",
    "Subtract",
    "Multiply",
    "Divide",
    "TrueDivide",
    "FloorDivide",
    "Power",
    "Maximum",
    "Minimum",
    "Mod",
    "Negative",
    "Abs",
    "Absolute",
    "Square",
    "Sqrt",
    "Rsqrt",
    "Exp",
    "Expm1",
    "Log",
    "Log1p",
    "Log2",
    "Log10",
    "Sign",
    "Floor",
    "Ceil",
    "Round",
    "Clip",
    "Where",
    "Reciprocal",
    "Tanh",
    "Sin",
    "Cos",
    "Erf",
    "Equal",
    "NotEqual",
    "Greater",
    "GreaterEqual",
    "Less",
    "LessEqual",
    "LogicalAnd",
    "LogicalOr",
    "LogicalNot",
    "Cast",
    "ConvertToTensor",
    "StopGradient",
    "NanToNum",
    "Relu",
    "Relu6",
    "Sigmoid",
    "HardSigmoid",
    "HardSilu",
    "HardSwish",
    "Softplus",
    "Softsign",
    "Silu",
    "Swish",
    "LogSigmoid",
    "LeakyRelu",
    "Elu",
    "Selu",
    "Gelu",
    "Celu",
    "SparsePlus",
    "SparseSigmoid",
    "Squareplus",
    "Tanhshrink",
    "Mish",
    "Hardtanh",
    "SoftShrink",
    "HardShrink",
    "Threshold",
)


@op(*OP_POINTWISE)
def op_pointwise(c: LayerCall) -> list[Node]:
    if not c.inputs:
        return [c.node("constant", [])]
    return [c.node("elementwise", c.inputs)]


def _call_arg(c: LayerCall, pos: int, key: str, default: Any = None) -> Any:
    """An op's argument: from its config (init args), else the call's args/kwargs."""
    if key in c.config:
        return c.config[key]
    if key in c.kwargs:
        return c.kwargs[key]
    if len(c.args) > pos:
        return c.args[pos]
    return default


@op(
    "Mean",
    "Max",
    "Min",
    "Sum",
    "Prod",
    "Std",
    "Var",
    "Amax",
    "Amin",
    "Any",
    "All",
    "Average",
    "Median",
    "Logsumexp",
    "Argmax",
    "Argmin",
    "Norm",
)
def op_reduce(c: LayerCall) -> list[Node]:
    x = c.x()
    raw = _call_arg(c, 1, "axis")
    keep = c.config.get("keepdims", c.kwargs.get("keepdims", False))
    if not isinstance(keep, bool):
        raise c.fail(f"'keepdims' must be true or false, not {_show(keep)}")
    if raw is None:
        if c.cls in ("Argmax", "Argmin"):
            return [c.node("reduce", [x], axes=(), keepdims=False)]
        return [c.node("reduce", [x], axes=(), keepdims=keep)]
    axes = c.axis_list(raw, "axis")
    return [c.node("reduce", [x], axes=axes, keepdims=keep)]


@op("Softmax", "LogSoftmax", "Normalize")
def op_softmax(c: LayerCall) -> list[Node]:
    raw = _call_arg(c, 1, "axis", -1)
    return [c.node("mix", [c.x()], axes=c.axis_list(raw, "axis"))]


@op("Concatenate")
def op_concat(c: LayerCall) -> list[Node]:
    axis = _call_arg(c, 1, "axis", 0)
    if not _is_int(axis):
        raise c.fail(f"'axis' must be an integer, not {_show(axis)}")
    return [c.node("concat", c.inputs, axis=int(axis))]


@op("Reshape")
def op_reshape(c: LayerCall) -> list[Node]:
    shape = _call_arg(c, 1, "newshape")
    if shape is None:
        shape = _call_arg(c, 1, "new_shape")
    if _is_int(shape):
        shape = [shape]
    if not isinstance(shape, list) or not all(_is_int(t) or t is None for t in shape):
        return unknown(c, "reshape target is not static")
    target = tuple(-1 if t is None else int(t) for t in shape)
    if any(t < -1 or t > MAX_DIM for t in target):
        raise c.fail(f"reshape target {list(target)} has an invalid entry")
    x = c.x()
    if target.count(-1) > 1 and x.shape is not None and x.shape[0] is None:
        # keras allows None for the batch dim: keep it as a copy
        target = (0, *target[1:])
    return [c.node("reshape", [x], target=target, allowzero=True)]


@op("Transpose")
def op_transpose(c: LayerCall) -> list[Node]:
    axes = _call_arg(c, 1, "axes")
    if axes is None:
        return [c.node("transpose", [c.x()], perm=None)]
    perm = c.axis_list(axes, "axes")
    return [c.node("transpose", [c.x()], perm=perm)]


@op("ExpandDims")
def op_expand(c: LayerCall) -> list[Node]:
    return [c.node("unsqueeze", [c.x()], axes=c.axis_list(_call_arg(c, 1, "axis"), "axis"))]


@op("Squeeze")
def op_squeeze(c: LayerCall) -> list[Node]:
    raw = _call_arg(c, 1, "axis")
    axes = None if raw is None else c.axis_list(raw, "axis")
    return [c.node("squeeze", [c.x()], axes=axes)]


@op("Matmul")
def op_matmul(c: LayerCall) -> list[Node]:
    if len(c.inputs) < 2:
        return [c.node("elementwise", c.inputs[:1])] if c.inputs else [c.node("constant", [])]
    return [c.node("matmul", c.inputs[:2])]


@op("MaxPool", "AveragePool")
def op_pool(c: LayerCall) -> list[Node]:
    x = c.x()
    rank = c.rank(x)
    if rank is None:
        return unknown(c, "rank of the pooled tensor is unknown")
    nsp = rank - 2
    k = c.int_tuple(_call_arg(c, 1, "pool_size"), "pool_size", nsp)
    raw_s = _call_arg(c, 2, "strides")
    s = k if raw_s is None else c.int_tuple(raw_s, "strides", nsp)
    fmt = _call_arg(c, 4, "data_format") or c.default_format
    if fmt not in ("channels_last", "channels_first"):
        raise c.fail(f"'data_format' is {_show(fmt)}")
    pad = _call_arg(c, 3, "padding", "valid")
    if pad not in ("valid", "same"):
        raise c.fail(f"'padding' is {_show(pad)}")
    axes, _ = spatial_layout(fmt, nsp)
    return [
        c.node(
            "pool",
            [x],
            spatial_axes=axes,
            kernel=k,
            strides=s,
            dilations=(1,) * nsp,
            padding=Padding("same_upper" if pad == "same" else "valid"),
            channel_axis=None,
            ceil_mode=False,
            kind=c.cls,
        )
    ]


def _value_shape(v: Any) -> tuple[int, ...] | None:
    """Shape of a serialized constant (``__tensor__``/``__numpy__``) or a tensor."""
    if isinstance(v, Tensor):
        return None if v.shape is None or None in v.shape else tuple(int(d or 0) for d in v.shape)
    if isinstance(v, dict) and isinstance(v.get("config"), dict):
        v = v["config"].get("value")
    dims: list[int] = []
    while isinstance(v, list):
        dims.append(len(v))
        if not v:
            break
        v = v[0]
    return tuple(dims) if dims else None


@op("Conv", "DepthwiseConv")
def op_conv(c: LayerCall) -> list[Node]:
    x = c.x()
    kernel = _call_arg(c, 1, "kernel")
    kshape = _value_shape(kernel)
    rank = c.rank(x)
    if kshape is None or rank is None or len(kshape) != rank:
        return unknown(c, "kernel shape is not static")
    nsp = rank - 2
    k = kshape[:nsp]
    s = c.int_tuple(_call_arg(c, 2, "strides", 1), "strides", nsp)
    d = c.int_tuple(_call_arg(c, 5, "dilation_rate", 1), "dilation_rate", nsp)
    pad = _call_arg(c, 3, "padding", "valid")
    fmt = _call_arg(c, 4, "data_format") or c.default_format
    if pad not in ("valid", "same") or fmt not in ("channels_last", "channels_first"):
        raise c.fail(f"padding {_show(pad)} / data_format {_show(fmt)} not understood")
    axes, ch = spatial_layout(fmt, nsp)
    return [
        c.node(
            "window",
            [x],
            spatial_axes=axes,
            kernel=k,
            strides=s,
            dilations=d,
            padding=Padding("same_upper" if pad == "same" else "valid"),
            channel_axis=ch,
            out_channels=None if c.cls == "DepthwiseConv" else kshape[-1],
            ceil_mode=False,
        )
    ]


@op("Resize")
def op_resize(c: LayerCall) -> list[Node]:
    size = _call_arg(c, 1, "size")
    interp = str(_call_arg(c, 2, "interpolation", "bilinear")).lower()
    antialias = bool(c.config.get("antialias") or _call_arg(c, 3, "antialias", False))
    if c.config.get("crop_to_aspect_ratio") or c.config.get("pad_to_aspect_ratio"):
        return unknown(c, "aspect-ratio crop/pad")
    if not isinstance(size, list) or len(size) != 2 or not all(_is_int(v) and v > 0 for v in size):
        return unknown(c, "resize target is not static")
    fmt = c.config.get("data_format") or c.default_format
    axes, _ = spatial_layout(str(fmt), 2)
    node = _resize_node(c, c.x(), axes, (int(size[0]), int(size[1])), interp, antialias=antialias)
    if node is None:
        return unknown(c, f"interpolation {interp!r} or unknown channel count")
    return [node]


def _slices_from_key(c: LayerCall, key: Any, rank: int | None) -> list[Node]:
    """``x[key]`` with slices, integers, ``None`` (new axis) and one Ellipsis."""
    items = key if isinstance(key, list) else [key]
    specs: list[tuple[str, Any]] = []
    for it in items:
        if isinstance(it, dict) and it.get("class_name") == "__slice__":
            cfg = it.get("config") or {}
            specs.append(("slice", (cfg.get("start"), cfg.get("stop"), cfg.get("step"))))
        elif isinstance(it, dict) and set(it) >= {"start", "stop", "step"}:
            specs.append(("slice", (it.get("start"), it.get("stop"), it.get("step"))))
        elif _is_int(it):
            specs.append(("int", int(it)))
        elif it is None:
            specs.append(("new", None))
        elif (
            it == "__ellipsis__"
            or it == "..."
            or (isinstance(it, dict) and it.get("class_name") in ("__ellipsis__", "Ellipsis"))
        ):
            specs.append(("ellipsis", None))
        else:
            return unknown(c, "index is not static")
    real = sum(1 for k, _ in specs if k in ("slice", "int"))
    if any(k == "ellipsis" for k, _ in specs):
        if rank is None:
            return unknown(c, "rank of the indexed tensor is unknown")
        i = next(i for i, (k, _) in enumerate(specs) if k == "ellipsis")
        fill = [("slice", (None, None, None))] * max(rank - real, 0)
        specs = specs[:i] + fill + specs[i + 1 :]
    slices = []
    drop = []
    new = []
    t = 0  # input axis
    out_t = 0
    for kind, val in specs:
        if kind == "new":
            new.append(out_t)
            out_t += 1
            continue
        if kind == "int":
            i = val
            slices.append((t, i, i + 1 if i != -1 else BIG, 1))
            drop.append(t)
            t += 1
            continue
        start, stop, step = val
        if not all(v is None or _is_int(v) for v in (start, stop, step)):
            return unknown(c, "slice bounds are not static")
        st = 1 if step is None else int(step)
        if st == 0:
            raise c.fail("slice step 0")
        if start is None and stop is None and st == 1:
            t += 1
            out_t += 1
            continue
        if st > 0:
            lo = 0 if start is None else int(start)
            hi = BIG if stop is None else int(stop)
        else:
            lo = -1 if start is None else int(start)
            hi = -BIG if stop is None else int(stop)
        slices.append((t, lo, hi, st))
        t += 1
        out_t += 1
    x = c.x()
    nodes: list[Node] = []
    steps: list[tuple[str, dict[str, Any]]] = []
    if slices:
        steps.append(("slice", {"slices": tuple(slices)}))
    if drop:
        steps.append(("squeeze", {"axes": tuple(drop)}))
    if new:
        steps.append(("unsqueeze", {"axes": tuple(new)}))
    if not steps:
        return [c.node("elementwise", [x])]
    cur = x
    for k, (kind, attrs) in enumerate(steps):
        if k == len(steps) - 1:
            nodes.append(c.node(kind, [cur], **attrs))
        else:
            n = c.aux(kind, kind, [cur], **attrs)
            nodes.append(n)
            cur = Tensor(n.outputs[0])
    return nodes


@op("GetItem")
def op_getitem(c: LayerCall) -> list[Node]:
    key = c.args[1] if len(c.args) > 1 else c.kwargs.get("key")
    return _slices_from_key(c, key, c.rank(c.x()))


@op("Pad")
def op_pad(c: LayerCall) -> list[Node]:
    width = _call_arg(c, 1, "pad_width")
    if not isinstance(width, list) or not all(
        isinstance(p, list) and len(p) == 2 and all(_is_int(v) for v in p) for p in width
    ):
        return unknown(c, "pad widths are not static")
    return [
        c.node("pad", [c.x()], pads=tuple((int(p[0]), int(p[1])) for p in width), mode="constant")
    ]


@op("DepthToSpace", "SpaceToDepth")
def op_block(c: LayerCall) -> list[Node]:
    b = _call_arg(c, 1, "block_size")
    if not _is_int(b) or b < 1:
        return unknown(c, "block size is not static")
    fmt = _call_arg(c, 2, "data_format") or c.default_format
    axes, ch = spatial_layout(str(fmt), 2)
    kind = "depth_to_space" if c.cls == "DepthToSpace" else "space_to_depth"
    return [c.node(kind, [c.x()], block=int(b), spatial_axes=axes, channel_axis=ch)]


# ---------------------------------------------------------------------------------------------
# Keras 2 TFOpLambda (config.function names a TensorFlow function)


TF_POINTWISE = (
    "math.add",
    "__operators__.add",
    "math.subtract",
    "math.multiply",
    "math.truediv",
    "math.divide",
    "math.multiply_no_nan",
    "math.divide_no_nan",
    "math.maximum",
    "math.minimum",
    "math.pow",
    "math.square",
    "math.sqrt",
    "math.rsqrt",
    "math.exp",
    "math.log",
    "math.abs",
    "math.negative",
    "math.sigmoid",
    "nn.sigmoid",
    "math.tanh",
    "nn.tanh",
    "nn.relu",
    "nn.relu6",
    "nn.elu",
    "nn.selu",
    "nn.gelu",
    "nn.silu",
    "nn.swish",
    "nn.leaky_relu",
    "math.softplus",
    "nn.softplus",
    "math.softsign",
    "nn.softsign",
    "clip_by_value",
    "cast",
    "identity",
    "stop_gradient",
    "math.reciprocal",
    "math.erf",
    "math.floor",
    "math.ceil",
    "math.round",
    "math.sign",
    "where",
    "math.greater",
    "math.less",
    "math.equal",
    "math.greater_equal",
    "math.less_equal",
    "math.not_equal",
    "nn.bias_add",
    "math.scalar_mul",
    "math.add_n",
    "math.squared_difference",
    "math.floordiv",
    "math.floormod",
    "math.log_sigmoid",
    "nn.crelu",
    "math.logical_and",
    "math.logical_or",
    "math.logical_not",
)


@tf_op(*TF_POINTWISE)
def tf_pointwise(c: LayerCall) -> list[Node]:
    if not c.inputs:
        return [c.node("constant", [])]
    return [c.node("elementwise", c.inputs)]


def _tf_arg(c: LayerCall, pos: int, key: str, default: Any = None) -> Any:
    if key in c.kwargs:
        return c.kwargs[key]
    if len(c.args) > pos:
        return c.args[pos]
    return default


@tf_op(
    "math.reduce_mean",
    "math.reduce_max",
    "math.reduce_min",
    "math.reduce_sum",
    "math.reduce_prod",
    "math.reduce_std",
    "math.reduce_variance",
    "math.reduce_logsumexp",
    "math.reduce_any",
    "math.reduce_all",
    "reduce_mean",
    "reduce_max",
    "reduce_min",
    "reduce_sum",
    "math.reduce_euclidean_norm",
    "norm",
    "math.argmax",
    "math.argmin",
)
def tf_reduce(c: LayerCall) -> list[Node]:
    arg = c.cls in ("math.argmax", "math.argmin")
    raw = _tf_arg(c, 1, "axis", 0 if arg else None)
    keep = False if arg else _tf_arg(c, 2, "keepdims", False)
    if not isinstance(keep, bool):
        keep = bool(keep)
    axes = () if raw is None else c.axis_list(raw, "axis")
    return [c.node("reduce", [c.x()], axes=axes, keepdims=keep)]


@tf_op(
    "nn.softmax",
    "math.softmax",
    "nn.log_softmax",
    "math.log_softmax",
    "math.l2_normalize",
    "nn.l2_normalize",
    "linalg.l2_normalize",
)
def tf_softmax(c: LayerCall) -> list[Node]:
    raw = _tf_arg(c, 1, "axis", -1)
    return [c.node("mix", [c.x()], axes=c.axis_list(raw, "axis"))]


@tf_op("concat")
def tf_concat(c: LayerCall) -> list[Node]:
    axis = _tf_arg(c, 1, "axis")
    if not _is_int(axis):
        raise c.fail(f"'axis' must be an integer, not {_show(axis)}")
    return [c.node("concat", c.inputs, axis=int(axis))]


@tf_op("reshape")
def tf_reshape(c: LayerCall) -> list[Node]:
    shape = _tf_arg(c, 1, "shape")
    if not isinstance(shape, list) or not all(_is_int(t) for t in shape):
        return unknown(c, "reshape target is not static")
    if any(t < -1 or t > MAX_DIM for t in shape):
        raise c.fail(f"reshape target {shape} has an invalid entry")
    return [c.node("reshape", [c.x()], target=tuple(int(t) for t in shape), allowzero=True)]


@tf_op("transpose", "linalg.matrix_transpose")
def tf_transpose(c: LayerCall) -> list[Node]:
    perm = _tf_arg(c, 1, "perm")
    if c.cls == "linalg.matrix_transpose":
        rank = c.rank(c.x())
        if rank is None:
            return unknown(c, "rank unknown")
        return [c.node("transpose", [c.x()], perm=(*range(rank - 2), rank - 1, rank - 2))]
    return [c.node("transpose", [c.x()], perm=None if perm is None else c.axis_list(perm, "perm"))]


@tf_op("expand_dims")
def tf_expand(c: LayerCall) -> list[Node]:
    return [c.node("unsqueeze", [c.x()], axes=c.axis_list(_tf_arg(c, 1, "axis"), "axis"))]


@tf_op("squeeze")
def tf_squeeze(c: LayerCall) -> list[Node]:
    raw = _tf_arg(c, 1, "axis")
    return [c.node("squeeze", [c.x()], axes=None if raw is None else c.axis_list(raw, "axis"))]


@tf_op("linalg.matmul", "matmul")
def tf_matmul(c: LayerCall) -> list[Node]:
    if len(c.inputs) < 2:
        return [c.node("elementwise", c.inputs[:1])] if c.inputs else [c.node("constant", [])]
    a, b = c.inputs[0], c.inputs[1]
    nodes: list[Node] = []
    ins = []
    for which, t, flag in (("a", a, "transpose_a"), ("b", b, "transpose_b")):
        if _tf_arg(c, 9, flag, False) or _tf_arg(c, 9, flag.replace("transpose", "adjoint"), False):
            r = c.rank(t)
            if r is None:
                return unknown(c, "rank of a transposed operand is unknown")
            n = c.aux(f"transpose_{which}", "transpose", [t], perm=(*range(r - 2), r - 1, r - 2))
            nodes.append(n)
            ins.append(Tensor(n.outputs[0]))
        else:
            ins.append(t)
    return [*nodes, c.node("matmul", ins)]


@tf_op("image.resize", "compat.v1.image.resize")
def tf_resize(c: LayerCall) -> list[Node]:
    size = _tf_arg(c, 1, "size")
    method = str(_tf_arg(c, 2, "method", "bilinear")).lower()
    if _tf_arg(c, 3, "preserve_aspect_ratio", False):
        return unknown(c, "preserve_aspect_ratio")
    antialias = bool(_tf_arg(c, 4, "antialias", False))
    if not isinstance(size, list) or len(size) != 2 or not all(_is_int(v) and v > 0 for v in size):
        return unknown(c, "resize target is not static")
    node = _resize_node(c, c.x(), (1, 2), (int(size[0]), int(size[1])), method, antialias=antialias)
    if node is None:
        return unknown(c, f"method {method!r} or unknown channel count")
    return [node]


@tf_op("nn.depth_to_space", "nn.space_to_depth", "compat.v1.depth_to_space")
def tf_block(c: LayerCall) -> list[Node]:
    b = _tf_arg(c, 1, "block_size")
    if not _is_int(b) or b < 1:
        return unknown(c, "block size is not static")
    kind = "depth_to_space" if "depth_to_space" in c.cls else "space_to_depth"
    fmt = _tf_arg(c, 3, "data_format", "NHWC")
    axes, ch = spatial_layout("channels_first" if fmt == "NCHW" else "channels_last", 2)
    return [c.node(kind, [c.x()], block=int(b), spatial_axes=axes, channel_axis=ch)]


@tf_op("__operators__.getitem")
def tf_getitem(c: LayerCall) -> list[Node]:
    spec = c.kwargs.get("slice_spec")
    if spec is None and len(c.args) > 1:
        spec = c.args[1]
    return _slices_from_key(c, spec, c.rank(c.x()))


@tf_op("pad", "compat.v1.pad")
def tf_pad(c: LayerCall) -> list[Node]:
    width = _tf_arg(c, 1, "paddings")
    mode = str(_tf_arg(c, 2, "mode", "CONSTANT")).lower()
    if not isinstance(width, list) or not all(
        isinstance(p, list) and len(p) == 2 and all(_is_int(v) for v in p) for p in width
    ):
        return unknown(c, "paddings are not static")
    return [c.node("pad", [c.x()], pads=tuple((int(p[0]), int(p[1])) for p in width), mode=mode)]


@tf_op("nn.max_pool2d", "nn.avg_pool2d", "nn.max_pool", "nn.avg_pool", "nn.pool")
def tf_pool(c: LayerCall) -> list[Node]:
    k = _tf_arg(c, 1, "ksize")
    s = _tf_arg(c, 2, "strides")
    pad = str(_tf_arg(c, 3, "padding", "VALID")).upper()
    fmt = str(_tf_arg(c, 4, "data_format", "NHWC")).upper()
    if pad not in ("VALID", "SAME") or fmt not in ("NHWC", "NCHW"):
        return unknown(c, "padding or data format not understood")

    def two(v: Any, key: str) -> tuple[int, ...]:
        if isinstance(v, list) and len(v) == 4:
            v = v[1:3] if fmt == "NHWC" else v[2:4]
        return c.int_tuple(v, key, 2)

    kk = two(k, "ksize")
    ss = two(s, "strides")
    axes, _ = spatial_layout("channels_first" if fmt == "NCHW" else "channels_last", 2)
    return [
        c.node(
            "pool",
            [c.x()],
            spatial_axes=axes,
            kernel=kk,
            strides=ss,
            dilations=(1, 1),
            padding=Padding("same_upper" if pad == "SAME" else "valid"),
            channel_axis=None,
            ceil_mode=False,
            kind=c.cls,
        )
    ]


def iter_tensors(obj: Any, limit: int = 64) -> Iterator[Tensor]:
    """Tensors inside nested lists/dicts, in order (dict values in insertion order)."""
    stack: list[tuple[Any, int]] = [(obj, 0)]
    while stack:
        cur, depth = stack.pop()
        if isinstance(cur, Tensor):
            yield cur
        elif depth < limit and isinstance(cur, list):
            stack.extend((v, depth + 1) for v in reversed(cur))
        elif depth < limit and isinstance(cur, dict):
            stack.extend((v, depth + 1) for v in reversed(list(cur.values())))
