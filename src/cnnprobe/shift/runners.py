"""Runners: a model file behind ``run(batch) -> [target, *feature maps]`` (numpy arrays).

onnxruntime and Keras are imported inside the runner that needs them. The user's file is never
written: the ONNX runner edits a copy in memory when it must (extra graph outputs for ``--layers``,
a symbolic batch dimension so that views run in batches).
"""

from __future__ import annotations

import contextlib
import importlib
import itertools
import mmap
import os
import warnings
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import numpy as np

from ..errors import ModelError, UsageError
from .geometry import ModelGeometry, TensorGeometry, expand_stride, lcm_all

FLOAT_TYPES: dict[str, Any] = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(float16)": np.float16,
}
BATCH_PARAM = "cnnprobe_batch"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class Runner:
    """Runs batches; ``outputs`` names what ``run`` returns, the target first."""

    description: str = ""
    outputs: tuple[str, ...] = ()
    notes: list[str]
    dtype: Any = np.float32

    def run(self, batch: np.ndarray) -> list[np.ndarray]:  # pragma: no cover - interface
        raise NotImplementedError


# ---------------------------------------------------------------------------------------------
# onnxruntime


class OnnxRunner(Runner):
    def __init__(
        self,
        path: str,
        input_name: str,
        target: str | None,
        extra: Sequence[str],
        provider: str | None,
        shapes: dict[str, tuple[int | None, ...]] | None = None,
        optional: bool = False,
    ) -> None:
        """``extra``: inner tensors to output too. ``shapes``: their shapes as the analysis
        computed them (to read tensors that onnxruntime keeps in its blocked NCHWc layout).
        ``optional``: drop the extra tensors the file does not have (those the analysis made up
        inside a fused op) instead of failing."""
        try:
            import onnxruntime as ort
        except ImportError:
            raise ModelError(
                "running ONNX models needs onnxruntime: pip install 'cnnprobe[runtime]'", path
            ) from None
        self.path = path
        self.notes = []
        available = list(ort.get_available_providers())
        chosen = provider or "CPUExecutionProvider"
        if chosen not in available:
            raise UsageError(
                f"execution provider {chosen!r} is not available here (available: "
                f"{', '.join(available)})"
            )
        providers = [chosen] + (
            ["CPUExecutionProvider"] if chosen != "CPUExecutionProvider" else []
        )
        options = ort.SessionOptions()
        options.log_severity_level = 4  # failures become our own one-line errors
        self.run_options = ort.RunOptions()
        self.run_options.log_severity_level = 4

        def session(source: Any) -> Any:
            try:
                return ort.InferenceSession(source, options, providers=providers)
            except Exception as exc:  # onnxruntime raises its own exception types
                raise ModelError(
                    f"onnxruntime cannot load the model ({_first_line(exc)})", path
                ) from None

        # the file as it is, when it has every output needed and a free batch dimension
        self.session = session(path)
        graph_outputs = [o.name for o in self.session.get_outputs()]
        if not graph_outputs:
            raise ModelError("the graph has no outputs", path)
        target = target or graph_outputs[0]
        outputs = [target, *[e for e in extra if e != target]]
        self.fetch = list(outputs)  # the session's names for them
        first = next((i for i in self.session.get_inputs() if i.name == input_name), None)
        fixed_batch = first is not None and bool(first.shape) and isinstance(first.shape[0], int)
        if fixed_batch or any(o not in graph_outputs for o in outputs) or _needs_help(path):
            edited = self._edit(path, input_name, outputs, fixed_batch, shapes or {}, optional)
            self.session = session(edited)
            outputs = [o for o in outputs if o in self.fetch_of]
            self.fetch = [self.fetch_of[o] for o in outputs]
        inputs = {i.name: i for i in self.session.get_inputs()}
        if input_name not in inputs:
            raise ModelError(f"onnxruntime does not see input {input_name!r}", path)
        others = [n for n in inputs if n != input_name]
        if others:
            raise UsageError(
                f"the model has other inputs ({', '.join(repr(o) for o in others)}) that "
                "shift-test cannot feed; it feeds the image input only",
                path,
            )
        kind = inputs[input_name].type
        if kind not in FLOAT_TYPES:
            raise UsageError(
                f"input {input_name!r} is {kind}; shift-test feeds float images (float, float16 "
                "or double inputs)",
                path,
            )
        self.dtype = FLOAT_TYPES[kind]
        self.input_name = input_name
        self.outputs = tuple(outputs)
        self.one_at_a_time = False
        used = self.session.get_providers()
        self.description = f"onnxruntime {ort.__version__} ({used[0]})"

    def _edit(
        self,
        path: str,
        input_name: str,
        wanted: list[str],
        fixed_batch: bool,
        shapes: dict[str, tuple[int | None, ...]],
        optional: bool,
    ) -> bytes:
        """A copy of the model, in memory, with ``wanted`` among its outputs and a symbolic
        batch dimension. Sets ``fetch_of``: wanted tensor -> the output that holds it."""
        import onnx

        try:
            model = onnx.load(path)
        except Exception as exc:  # protobuf and external-data errors
            raise ModelError(f"cannot load the ONNX model ({_first_line(exc)})", path) from None
        try:
            _inline_functions(model)
        except ModelError as exc:
            raise ModelError(exc.message, path) from None
        g = model.graph
        graph_outputs = [o.name for o in g.output]
        produced = {name for node in g.node for name in node.output}
        present = [w for w in wanted if w in graph_outputs or w in produced]
        for k, name in enumerate(wanted):
            if name in present or (optional and k > 0):
                continue
            what = "--target" if k == 0 else "--layers"
            if name in shapes:  # a tensor the analysis made inside a fused op
                raise UsageError(
                    f"{what} {name!r} lies inside a fused onnxruntime op: the file has no such "
                    "tensor to measure",
                    path,
                )
            outs = ", ".join(repr(o) for o in graph_outputs)
            raise UsageError(
                f"{what} {name!r} is not a tensor of the model (outputs: {outs})", path
            )
        if len(present) < len(wanted):
            self.notes.append(
                f"{len(wanted) - len(present)} feature map(s) inside fused onnxruntime ops are not "
                "tensors of the file: not measured"
            )
        from ..frontends.onnx_functions import FreshNames

        taken = produced | set(graph_outputs) | {i.name for i in g.input}
        taken.update(t.name for t in g.initializer)
        fresh = FreshNames(taken)

        self.fetch_of = {name: name for name in present}
        # blocked (NCHWc) maps: reordered to plain NCHW, the padding channels dropped
        blocked = _blocked(model)
        real = _real_channels(model, blocked, shapes)
        unknown = 0
        for k, name in enumerate(present):
            if name not in blocked:
                continue
            if name not in real:
                if k == 0 or not optional:
                    raise ModelError(
                        f"cannot tell how many channels of {name!r} are real in onnxruntime's "
                        "blocked layout",
                        path,
                    )
                del self.fetch_of[name]
                unknown += 1
                continue
            plain = fresh(f"{name}#plain")
            g.node.append(
                onnx.helper.make_node(
                    "ReorderOutput", [name], [plain], domain=NCHWC, channels=real[name]
                )
            )
            self.fetch_of[name] = plain
        if unknown:
            self.notes.append(
                f"{unknown} blocked feature map(s) whose real channel count the file does not "
                "say: not measured"
            )
        # quantized maps: compared as the real values they encode, not as integer codes
        quant = _qparams(model)
        for name in list(self.fetch_of):
            if name in quant:
                scale, zero = quant[name]
                value = fresh(f"{name}#real")
                g.node.append(
                    onnx.helper.make_node("DequantizeLinear", [name, scale, zero], [value])
                )
                self.fetch_of[name] = value
        if fixed_batch:
            inp = next(i for i in model.graph.input if i.name == input_name)
            dim0 = inp.type.tensor_type.shape.dim[0]
            dim0.Clear()
            dim0.dim_param = BATCH_PARAM
            for out in model.graph.output:
                odims = out.type.tensor_type.shape.dim
                if odims and odims[0].HasField("dim_value"):
                    odims[0].Clear()
            del model.graph.value_info[:]
        missing = [f for f in self.fetch_of.values() if f not in graph_outputs]
        if missing:
            types = _elem_types(model)
            for name in missing:
                elem = types.get(name)
                if elem is None:  # (a contrib op's output: onnxruntime infers its type)
                    model.graph.output.append(onnx.ValueInfoProto(name=name))
                else:
                    model.graph.output.append(onnx.helper.make_tensor_value_info(name, elem, None))
        data: bytes = model.SerializeToString()
        return data

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        x = batch.astype(self.dtype, copy=False)
        if not self.one_at_a_time:
            try:
                outs = self._run(x)
                if all(o.shape[:1] == (len(x),) for o in outs):
                    return outs
            except ModelError:
                if len(x) == 1:
                    raise
            if len(x) == 1:
                raise ModelError(
                    "an output has no batch dimension; shift-test needs outputs shaped "
                    "[batch, ...]",
                    self.path,
                )
            self.one_at_a_time = True
            self.notes.append(
                "the model does not run in batches (a fixed batch size inside the graph): "
                "inputs ran one at a time"
            )
        parts = [self._run(x[k : k + 1]) for k in range(len(x))]
        return [np.concatenate([p[j] for p in parts]) for j in range(len(self.outputs))]

    def _run(self, x: np.ndarray) -> list[np.ndarray]:
        try:
            outs = self.session.run(self.fetch, {self.input_name: x}, self.run_options)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelError(
                f"onnxruntime failed to run the model ({_first_line(exc)})", self.path
            ) from None
        return [np.asarray(o) for o in outs]


NCHWC = "com.microsoft.nchwc"

#: Bytes whose presence in a model file means inner maps may need help to be read: onnxruntime's
#: blocked layout, quantized operators
_HELP_MARKERS = (b"com.microsoft.nchwc", b"QLinear", b"QuantizeLinear", b"QGemm")


def _needs_help(path: str) -> bool:
    """Whether the file names one of :data:`_HELP_MARKERS` (searched in place, memory-mapped:
    weights make files of hundreds of MB)."""
    try:
        with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return any(data.find(m) >= 0 for m in _HELP_MARKERS)
    except (OSError, ValueError):  # (ValueError: an empty file cannot be mapped)
        return False


#: Quantized operators: (domain, op) -> input positions of their output's scale and zero point
_QUANT_OUT = {
    ("", "QuantizeLinear"): (1, 2),
    ("", "QLinearConv"): (6, 7),
    ("", "QLinearMatMul"): (6, 7),
    ("com.microsoft", "QLinearConv"): (6, 7),
    ("com.microsoft", "QLinearAdd"): (6, 7),
    ("com.microsoft", "QLinearMul"): (6, 7),
    ("com.microsoft", "QLinearSigmoid"): (3, 4),
    ("com.microsoft", "QLinearLeakyRelu"): (3, 4),
    ("com.microsoft", "QLinearSoftmax"): (3, 4),
    ("com.microsoft", "QLinearGlobalAveragePool"): (3, 4),
    ("com.microsoft", "QLinearAveragePool"): (3, 4),
    ("com.microsoft", "QLinearReduceMean"): (3, 4),
    ("com.microsoft", "QLinearConcat"): (0, 1),
    ("com.microsoft", "QGemm"): (7, 8),
}
#: Ops that move quantized codes without changing what they encode
_QUANT_KEEP = frozenset(
    {
        "MaxPool",
        "NhwcMaxPool",
        "Transpose",
        "Reshape",
        "Flatten",
        "Squeeze",
        "Unsqueeze",
        "Identity",
        "Slice",
        "DepthToSpace",
        "SpaceToDepth",
        "Resize",
        "Upsample",
        "Split",
        "Gather",
        "Expand",
        "Tile",
    }
)


def _qparams(model: Any) -> dict[str, tuple[str, str]]:
    """Tensors holding quantized codes -> (scale, zero point) tensors that decode them."""
    out: dict[str, tuple[str, str]] = {}
    for n in model.graph.node:
        where = _QUANT_OUT.get(("" if n.domain in ("", "ai.onnx") else n.domain, n.op_type))
        if where is not None:
            s, z = where
            if len(n.input) > s and n.input[s] and n.output:
                out[n.output[0]] = (n.input[s], n.input[z] if len(n.input) > z else "")
        elif n.op_type in _QUANT_KEEP and n.input and n.input[0] in out:
            for o in n.output:
                out[o] = out[n.input[0]]
    return out


def _real_channels(
    model: Any, blocked: set[str], shapes: dict[str, tuple[int | None, ...]]
) -> dict[str, int]:
    """How many channels of each blocked tensor are real (the rest pad to the block size): said
    by a ReorderOutput reading it, or by the plain tensor a ReorderInput read, and carried
    through ops that keep channels (pools, upsampling, a conv's residual sum, activations)."""
    real: dict[str, int] = {}
    nodes = list(model.graph.node)
    for n in nodes:
        if n.domain != NCHWC or not n.input or not n.output:
            continue
        last = any(a.name == "channels_last" and a.i for a in n.attribute)
        if n.op_type == "ReorderOutput":
            channels = next((a.i for a in n.attribute if a.name == "channels"), 0)
            if channels > 0:
                real[n.input[0]] = int(channels)
        elif n.op_type == "ReorderInput":
            shape = shapes.get(n.input[0])
            if shape is not None and len(shape) == 4:
                c = shape[3] if last else shape[1]
                if c:
                    real[n.output[0]] = int(c)
    keep = {"MaxPool", "AveragePool", "GlobalMaxPool", "GlobalAveragePool", "Upsample"}
    changed = True
    while changed:
        changed = False
        for n in nodes:
            if n.domain == NCHWC and n.op_type in keep:
                group = [n.input[0], n.output[0]]
            elif n.domain == NCHWC and n.op_type == "Conv" and len(n.input) > 3 and n.input[3]:
                group = [n.input[3], n.output[0]]
            elif n.domain != NCHWC and any(i in blocked for i in n.input):
                group = [t for t in (*n.input, *n.output) if t in blocked]
            else:
                continue
            known = {real[t] for t in group if t in real}
            if len(known) == 1:
                c = known.pop()
                for t in group:
                    if t not in real:
                        real[t] = c
                        changed = True
    return real


def _blocked(model: Any) -> set[str]:
    """Tensors that onnxruntime holds in its blocked NCHWc layout (made by an NCHWc op other
    than ReorderOutput, or by an op reading one, such as a fused activation): handed out as they
    lie in memory, they cannot be compared unit by unit."""
    blocked: set[str] = set()
    for n in model.graph.node:
        if n.domain == NCHWC:
            if n.op_type != "ReorderOutput":
                blocked.update(n.output)
        elif any(i in blocked for i in n.input):
            blocked.update(n.output)
    return blocked


def _elem_types(model: Any) -> dict[str, int]:
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # only a hint: unknown types default to float
        inferred = model
    g = inferred.graph
    return {
        vi.name: vi.type.tensor_type.elem_type
        for vi in [*g.input, *g.value_info, *g.output]
        if vi.type.tensor_type.elem_type
    }


# ---------------------------------------------------------------------------------------------
# Keras

#: Keras layer classes with a spatial stride (``strides``; pooling defaults to ``pool_size``).
_STRIDED = ("Conv", "SeparableConv", "DepthwiseConv", "MaxPooling", "AveragePooling")
_GLOBAL = ("Global", "Flatten", "Reshape", "Attention", "MultiHeadAttention", "Permute")


def import_keras(path: str) -> Any:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            keras = importlib.import_module("keras")
    except ImportError as exc:
        missing = getattr(exc, "name", None) or ""
        if missing.split(".")[0] == "keras":
            raise ModelError(
                "running Keras models needs Keras and one of its backends: pip install keras "
                "torch (then KERAS_BACKEND=torch), or convert the model to ONNX",
                path,
            ) from None
        raise ModelError(
            f"Keras is installed but its backend cannot start ({_first_line(exc)}); install "
            "one (e.g. pip install torch) and set KERAS_BACKEND",
            path,
        ) from None
    except Exception as exc:
        raise ModelError(f"Keras cannot start ({_first_line(exc)})", path) from None
    return keras


class KerasRunner(Runner):
    def __init__(self, path: str, keras: Any, model: Any, target: str, extra: Sequence[str]):
        self.path = path
        self.notes = []
        self.keras = keras
        names = [target, *[e for e in extra if e != target]]
        tensors = [_keras_tensor(model, n) for n in names]
        try:
            self.model = (
                model
                if names == [model_output_name(model)]
                else keras.Model(inputs=model.inputs, outputs=tensors)
            )
        except Exception as exc:
            raise ModelError(f"cannot expose inner layers ({_first_line(exc)})", path) from None
        self.outputs = tuple(names)
        self.dtype = np.float32
        self.description = f"keras {keras.__version__} ({keras.backend.backend()})"

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out = self.model.predict_on_batch(batch.astype(np.float32, copy=False))
        except Exception as exc:
            raise ModelError(
                f"Keras failed to run the model ({_first_line(exc)})", self.path
            ) from None
        outs = out if isinstance(out, (list, tuple)) else [out]
        return [np.asarray(o) for o in outs]


def load_keras(path: str) -> tuple[Any, Any]:
    keras = import_keras(path)
    try:
        with warnings.catch_warnings(), _quiet():
            warnings.simplefilter("ignore")
            model = keras.saving.load_model(path, safe_mode=True)
    except Exception as exc:
        raise ModelError(f"Keras cannot load the model ({_first_line(exc)})", path) from None
    if len(getattr(model, "inputs", None) or []) != 1:
        raise UsageError("the Keras model must have exactly one input", path)
    return keras, model


@contextlib.contextmanager
def _quiet() -> Any:
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        yield


def model_output_name(model: Any) -> str:
    outs = model.outputs
    op = outs[0]._keras_history.operation if hasattr(outs[0], "_keras_history") else None
    return str(op.name) if op is not None else "output"


def _keras_tensor(model: Any, name: str) -> Any:
    if name == model_output_name(model):
        return model.outputs[0]
    try:
        return model.get_layer(name).output
    except (ValueError, AttributeError):
        names = ", ".join(layer.name for layer in model.layers)
        raise UsageError(f"no Keras layer named {name!r} (layers: {names})") from None


def keras_geometry(
    path: str,
    model: Any,
    input_shape: tuple[int, ...] | None,
    layout: str,
    stride: tuple[int, ...] | None,
) -> ModelGeometry:
    """Geometry of a Keras model from its layers' strides (the summary engine reads Keras
    architectures without running Keras; this is the fallback while it cannot)."""
    shape: tuple[int | None, ...] = tuple(model.inputs[0].shape)
    if input_shape is not None:
        if len(input_shape) != len(shape):
            raise UsageError(
                f"--input-shape has {len(input_shape)} dims but the input has {len(shape)}", path
            )
        shape = input_shape
    rank = len(shape)
    if rank < 3:
        raise ModelError(f"input of shape {list(shape)}: no spatial axes", path)
    first = layout.lower() in ("nchw", "ncw", "ncdhw") or (
        layout == "auto"
        and any(getattr(layer, "data_format", None) == "channels_first" for layer in model.layers)
    )
    spatial = tuple(range(2, rank)) if first else tuple(range(1, rank - 1))
    if any(shape[t] is None for t in spatial) or shape[1 if first else -1] is None:
        raise ModelError(
            f"input size is unknown ({list(shape)}): give --input-shape, e.g. 1x224x224x3", path
        )
    nsp = len(spatial)
    one = tuple(Fraction(1) for _ in range(nsp))
    jumps: dict[str, tuple[Fraction, ...] | None] = {}
    maps: list[TensorGeometry] = []
    tensors: dict[str, TensorGeometry] = {}
    previous: str | None = None
    for layer in model.layers:
        parents = _parents(layer) or ([previous] if previous else [])
        known = [jumps[p] for p in parents if p in jumps]
        jump: tuple[Fraction, ...] | None
        if type(layer).__name__ == "InputLayer":
            jump = one
        elif any(j is None for j in known):
            jump = None
        else:
            # no known parent: the layer reads the model input
            base = [j for j in known if j is not None] or [one]
            jump = _layer_jump(layer, tuple(max(j[k] for j in base) for k in range(nsp)))
        jumps[layer.name] = jump
        previous = layer.name
        out_shape = tuple(getattr(getattr(layer, "output", None), "shape", ()) or ())
        tg = TensorGeometry(layer.name, layer.name, type(layer).__name__, out_shape)
        if len(out_shape) != rank:
            jumps[layer.name] = jump = None
        if jump is not None:
            tg = TensorGeometry(layer.name, layer.name, tg.op, out_shape, spatial, jump)
            if type(layer).__name__ != "InputLayer":
                maps.append(tg)
        tensors[layer.name] = tg
    if stride is not None:
        period = expand_stride(stride, nsp)
        source = "--stride"
    else:
        period = tuple(lcm_all([m.jump[k].numerator for m in maps]) for k in range(nsp))
        source = "keras layers"
    total = maps[-1].jump if maps else one
    out_name = model_output_name(model)
    return ModelGeometry(
        path=path,
        format="keras",
        input_name=str(getattr(model.inputs[0], "name", "input")),
        input_shape=shape,
        layout=("NC" if first else "N") + "DHW"[3 - nsp :] + ("" if first else "C"),
        spatial_axes=spatial,
        total_stride=tuple(total),
        period=period,
        period_source=source,
        feature_maps=tuple(maps),
        tensors=tensors,
        outputs=(out_name,),
        notes=(
            "Keras model: strides read from the layers' configurations (Conv, pooling, "
            "upsampling); --stride overrides the period",
        ),
    )


def _parents(layer: Any) -> list[str]:
    try:
        nodes = layer._inbound_nodes
        return [str(p.operation.name) for p in nodes[0].parent_nodes] if nodes else []
    except (AttributeError, IndexError):
        return []


def _layer_jump(layer: Any, jump: tuple[Fraction, ...]) -> tuple[Fraction, ...] | None:
    name = type(layer).__name__
    nsp = len(jump)
    cfg: dict[str, Any] = {}
    with contextlib.suppress(Exception):
        cfg = layer.get_config()

    def per_axis(value: Any) -> list[int]:
        if value is None:
            return [1] * nsp
        if isinstance(value, int):
            return [value] * nsp
        return [int(v) for v in value]

    if name.startswith(_GLOBAL):
        return None
    if "Transpose" in name:
        return tuple(j / s for j, s in zip(jump, per_axis(cfg.get("strides"))))
    if name.startswith("UpSampling"):
        return tuple(j / s for j, s in zip(jump, per_axis(cfg.get("size"))))
    if name.startswith(_STRIDED):
        strides = cfg.get("strides") or cfg.get("pool_size")
        return tuple(j * s for j, s in zip(jump, per_axis(strides)))
    return jump


def _inline_functions(model: Any) -> None:
    """Replace the calls of model-local functions in ``model`` (an ``onnx.ModelProto``) by their
    bodies, named as the analysis names them (the same expansion), so that inner feature maps
    can be outputs."""
    import onnx

    from ..frontends.onnx_functions import (
        Body,
        NodeKind,
        expand_calls,
        function_key,
        function_table,
    )

    if not model.functions:
        return

    own = onnx.AttributeProto

    def make(
        template: Any,
        name: str,
        inputs: tuple[str, ...],
        outputs: tuple[str, ...],
        attrs: dict[str, Any],
        rename: Any,
    ) -> Any:
        node = onnx.NodeProto()
        node.op_type, node.domain, node.overload = (
            template.op_type,
            template.domain,
            template.overload,
        )
        node.name = name
        node.input.extend(inputs)
        node.output.extend(outputs)
        mine = {a.name for a in template.attribute if not a.ref_attr_name}
        for key, value in attrs.items():
            copy = node.attribute.add()
            copy.CopyFrom(value)
            copy.name = key
            if key in mine:  # a branch or loop body of the function reads the body's tensors
                for g in [copy.g] if copy.type == own.GRAPH else list(copy.graphs):
                    _rename_subgraph(g, rename, {})
        return node

    kind: NodeKind[Any, Any] = NodeKind(
        key=lambda n: function_key(n.domain, n.op_type, n.overload),
        attrs=lambda n: {a.name: a for a in n.attribute if not a.ref_attr_name},
        make=make,
        identity=lambda name, source, target: onnx.helper.make_node(
            "Identity", [source], [target], name=name
        ),
    )
    table = function_table(
        [
            Body(
                function_key(f.domain, f.name, f.overload),
                list(f.input),
                list(f.output),
                {a.name: a for a in f.attribute_proto},
                list(f.node),
                [{a.name: a.ref_attr_name for a in n.attribute if a.ref_attr_name} for n in f.node],
            )
            for f in model.functions
        ]
    )
    g = model.graph
    if not any(kind.key(n) in table for n in g.node):
        return
    taken = {vi.name for vi in (*g.input, *g.output, *g.value_info)}
    taken.update(t.name for t in g.initializer)
    taken.update(t.values.name for t in g.sparse_initializer)
    for n in g.node:
        taken.update(n.input)
        taken.update(n.output)
    nodes, _ = expand_calls(list(g.node), table, taken, kind)
    del g.node[:]
    g.node.extend(nodes)
    have = {o.domain for o in model.opset_import}
    for f in model.functions:
        for o in f.opset_import:
            if o.domain not in have:
                model.opset_import.append(o)
                have.add(o.domain)


_SUBGRAPH_TAGS = itertools.count()


def _rename_subgraph(graph: Any, rename: Any, outer: dict[str, str]) -> None:
    """Rename, in a subgraph (``If`` branch, ``Loop`` body) of an inlined node, the tensors it
    reads from the function body (``rename``) and the tensors it defines itself (fresh names:
    the inlined copies of a function, and the main graph, may use the same names). ``outer``:
    names defined by enclosing subgraphs, already renamed."""
    local = dict(outer)

    def define(name: str) -> str:
        if not name:
            return name
        new: str = rename(f"{name}@{next(_SUBGRAPH_TAGS)}")  # (fresh: never a body name)
        local[name] = new
        return new

    def read(name: str) -> str:
        if not name:
            return name
        new: str = local.get(name) or rename(name)
        return new

    for i in graph.input:
        i.name = define(i.name)
    for t in graph.initializer:
        t.name = define(t.name)
    for t in graph.sparse_initializer:
        t.values.name = define(t.values.name)
    for n in graph.node:
        for k, name in enumerate(n.input):
            n.input[k] = read(name)
        for a in n.attribute:
            for g in [a.g] if a.HasField("g") else list(a.graphs):
                _rename_subgraph(g, rename, local)
        for k, name in enumerate(n.output):
            n.output[k] = define(name)
    for o in graph.output:
        o.name = read(o.name)
