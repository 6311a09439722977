"""A tiny spec language for planned networks: ``cnnprobe design "conv3,conv3,maxpool2,conv3"``.

Layers are separated by commas (or spaces). Each layer is ``KIND[KERNEL][OPTIONS][*N]``:

==================  =========================================================================
kind                meaning
==================  =========================================================================
``conv``            convolution, kernel required (``conv3``, ``conv3x1``, ``conv3x3x3``)
``maxpool``/``pool`` max pooling (stride defaults to the kernel, as in Keras)
``avgpool``         average pooling
``deconv``          transposed convolution (``deconv2s2``, ``deconv4s2p1``)
``up``              nearest upsampling by the given factor (``up2``)
``pad``             zero padding on every side (``pad1``)
``gap``             global average pooling
``dense``           flatten + dense layer
==================  =========================================================================

Options: ``sN`` stride, ``dN`` dilation, ``pN`` padding on both sides, ``same``, ``valid``
(default), ``causal`` (1-D). ``*N`` repeats the layer. A kernel with one number applies to every
axis; ``3x1`` gives one per axis. The input is given as spatial sizes (``28x28``; one to three
axes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from ..errors import UsageError
from ..ir import Graph, ModelInput, Node, Padding

KINDS = {
    "conv": "conv",
    "maxpool": "maxpool",
    "pool": "maxpool",
    "avgpool": "avgpool",
    "deconv": "deconv",
    "convt": "deconv",
    "up": "up",
    "upsample": "up",
    "pad": "pad",
    "gap": "gap",
    "dense": "dense",
    "fc": "dense",
}
NEEDS_KERNEL = {"conv", "maxpool", "avgpool", "deconv", "up", "pad"}
_TOKEN = re.compile(
    r"^(?P<kind>[a-z]+)(?P<kernel>\d+(?:x\d+)*)?(?P<opts>(?:s\d+|d\d+|p\d+|same|valid|causal)*)"
    r"(?:\*(?P<rep>\d+))?$"
)
_OPT = re.compile(r"s\d+|d\d+|p\d+|same|valid|causal")


@dataclass(frozen=True)
class LayerSpec:
    kind: str
    kernel: tuple[int, ...] = ()
    stride: int | None = None
    dilation: int = 1
    pad: int | None = None
    mode: str = "valid"

    def text(self) -> str:
        k = (
            "x".join(str(v) for v in self.kernel)
            if len(set(self.kernel)) > 1
            else (str(self.kernel[0]) if self.kernel else "")
        )
        out = f"{self.kind}{k}"
        default_stride = (
            self.kernel[0] if self.kind in ("maxpool", "avgpool") and self.kernel else 1
        )
        if self.stride is not None and self.stride != default_stride:
            out += f"s{self.stride}"
        if self.dilation != 1:
            out += f"d{self.dilation}"
        if self.pad:
            out += f"p{self.pad}"
        if self.mode in ("same", "causal"):
            out += self.mode
        return out


def parse_spec(spec: str, ndim: int) -> list[LayerSpec]:
    items = [t for t in re.split(r"[,\s]+", spec.strip().lower()) if t]
    if not items:
        raise UsageError('the spec is empty (e.g. "conv3,conv3,maxpool2,conv3")')
    layers: list[LayerSpec] = []
    for item in items:
        m = _TOKEN.match(item)
        kind = KINDS.get(m.group("kind")) if m else None
        if m is None or kind is None:
            raise UsageError(
                f"cannot read layer {item!r}: expected KIND[KERNEL][sN][dN][pN][same|valid]"
                f"[*N] with KIND one of {', '.join(sorted(set(KINDS)))}"
            )
        kernel: tuple[int, ...] = ()
        if m.group("kernel"):
            kernel = tuple(int(v) for v in m.group("kernel").split("x"))
            if len(kernel) == 1:
                kernel = kernel * ndim
            if len(kernel) != ndim:
                raise UsageError(f"layer {item!r}: {len(kernel)} kernel sizes for {ndim} axes")
            if any(k <= 0 for k in kernel):
                raise UsageError(f"layer {item!r}: kernel sizes must be positive")
        elif kind in NEEDS_KERNEL:
            raise UsageError(f"layer {item!r}: needs a size, e.g. {m.group('kind')}3")
        layer = LayerSpec(kind, kernel)
        for opt in _OPT.findall(m.group("opts") or ""):
            if opt in ("same", "valid", "causal"):
                if opt == "causal" and ndim != 1:
                    raise UsageError(f"layer {item!r}: causal padding is for 1-D inputs")
                layer = replace(layer, mode=opt)
            else:
                value = int(opt[1:])
                if value <= 0 and opt[0] != "p":
                    raise UsageError(f"layer {item!r}: {opt} must be positive")
                if opt[0] == "s":
                    layer = replace(layer, stride=value)
                elif opt[0] == "d":
                    layer = replace(layer, dilation=value)
                else:
                    layer = replace(layer, pad=value)
        if layer.pad is not None and layer.mode != "valid":
            raise UsageError(f"layer {item!r}: give either pN or {layer.mode}, not both")
        rep = int(m.group("rep") or 1)
        if not 1 <= rep <= 1000:
            raise UsageError(f"layer {item!r}: repeat count must be 1 to 1000")
        layers.extend([layer] * rep)
    return layers


def spec_graph(layers: list[LayerSpec], sizes: tuple[int, ...], label: str) -> Graph:
    """The IR of a planned network: NCHW-like, one channel in, channels left unknown."""
    ndim = len(sizes)
    shape = (1, 1, *sizes)
    spatial = tuple(range(2, 2 + ndim))
    nodes: list[Node] = []
    prev = "input"
    for i, layer in enumerate(layers, 1):
        name = f"{i}:{layer.text()}"
        out = name
        nodes.extend(_nodes(layer, name, prev, out, spatial))
        prev = out
    letters = {1: "W", 2: "HW", 3: "DHW"}[ndim]
    return Graph(
        path=label,
        format="spec",
        input=ModelInput("input", shape, "NC" + letters, spatial),
        nodes=nodes,
        outputs=(prev,),
    )


def _padding(layer: LayerSpec, ndim: int) -> Padding:
    if layer.mode == "same":
        return Padding("same_upper")
    if layer.mode == "causal":
        eff = layer.dilation * (layer.kernel[0] - 1)
        return Padding("explicit", (eff,), (0,))
    p = layer.pad or 0
    return Padding("explicit", (p,) * ndim, (p,) * ndim)


def _nodes(layer: LayerSpec, name: str, src: str, out: str, spatial: tuple[int, ...]) -> list[Node]:
    ndim = len(spatial)
    k = layer.kind
    if k in ("conv", "maxpool", "avgpool", "deconv"):
        pool = k in ("maxpool", "avgpool")
        stride = layer.stride if layer.stride is not None else (layer.kernel[0] if pool else 1)
        attrs = dict(
            spatial_axes=spatial,
            kernel=layer.kernel,
            strides=(stride,) * ndim,
            dilations=(layer.dilation,) * ndim,
            padding=_padding(layer, ndim),
            channel_axis=None if pool else 1,
            out_channels=None,
        )
        if k == "deconv":
            attrs.update(output_padding=(0,) * ndim, output_size=None)
            return [Node(name, "window_transpose", "ConvTranspose", (src,), (out,), attrs)]
        op = "pool" if pool else "window"
        source = {"conv": "Conv", "maxpool": "MaxPool", "avgpool": "AveragePool"}[k]
        return [Node(name, op, source, (src,), (out,), attrs)]
    if k == "up":
        scales = (1.0, 1.0) + tuple(float(f) for f in layer.kernel)
        return [
            Node(
                name,
                "resize",
                "Upsample",
                (src,),
                (out,),
                dict(scales=scales, mode="nearest", coord_mode="asymmetric", nearest_mode="floor"),
            )
        ]
    if k == "pad":
        pads = ((0, 0), (0, 0)) + tuple((p, p) for p in layer.kernel)
        return [Node(name, "pad", "Pad", (src,), (out,), dict(pads=pads))]
    if k == "gap":
        return [
            Node(
                name,
                "reduce",
                "GlobalAveragePool",
                (src,),
                (out,),
                dict(axes=spatial, keepdims=True),
            )
        ]
    flat = f"{name}/flatten"
    return [
        Node(flat, "flatten", "Flatten", (src,), (flat,), dict(axis=1)),
        Node(name, "dense", "Dense", (flat,), (out,), dict(axis=-1, units=None)),
    ]


def parse_sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UsageError(f"--input {text!r}: expected spatial sizes like 28x28") from None
    if not 1 <= len(sizes) <= 3 or any(s <= 0 for s in sizes):
        raise UsageError(f"--input {text!r}: one to three positive sizes, like 28x28")
    return sizes
