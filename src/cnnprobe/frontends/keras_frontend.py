"""Keras frontend: ``.keras``, legacy ``.h5`` and SavedModel files become an
:class:`~cnnprobe.ir.Graph`, without importing Keras or TensorFlow.

The architecture JSON (see :mod:`.keras_io`) is walked as data. Functional models are expanded
call by call in topological order; a nested model (a model used as a layer) is expanded inline for
each call, its layers named ``outer/inner`` (``name[k]`` for call ``k > 0`` of a shared layer).
Keras 3 nodes (``{"args", "kwargs"}`` with ``__keras_tensor__`` objects) and Keras 2 nodes (lists of
``[layer, node_index, tensor_index, kwargs]``) are told apart by their shape. Node indices that
point at a nested model are 1-based where Keras writes them so: everywhere in Keras 2 files, and in
``output_layers`` in Keras 3 files.
"""

from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass
from typing import Any

from ..errors import ModelError, UsageError
from ..ir import Graph, ModelInput, Node, Shape, format_shape, shape_hint
from . import given_shape
from .keras_io import (
    HDF5_MAGIC,
    ZIP_MAGIC,
    KerasSource,
    read_h5,
    read_keras_dir,
    read_keras_zip,
    read_savedmodel,
)
from .keras_layers import (
    APPLICATION_LAYERS,
    APPLICATION_MODULES,
    LAYERS,
    MAX_DIM,
    OPS,
    TF_OPS,
    LayerCall,
    Tensor,
    iter_tensors,
    unknown,
)

#: Models nested deeper than this are rejected.
MAX_NESTING = 32
#: Most layer calls accepted in one file (after expanding nested models).
MAX_CALLS = 200_000
#: Deepest structure accepted inside one call's arguments.
MAX_ARG_DEPTH = 32
#: Largest output index of one layer call.
MAX_TENSOR_INDEX = 4096

INPUT_CLASSES = ("InputLayer",)
MODEL_CLASSES = ("Functional", "Model", "Sequential")


def read_source(path: str, fmt: str) -> KerasSource:
    if os.path.isdir(path):
        if os.path.isfile(os.path.join(path, "config.json")):
            return read_keras_dir(path)
        return read_savedmodel(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        raise ModelError(f"cannot read file ({exc.strerror or exc})", path) from None
    if head == HDF5_MAGIC or (fmt == "h5" and not head.startswith(ZIP_MAGIC)):
        return read_h5(path)
    return read_keras_zip(path)


def load_keras(
    path: str,
    input_name: str | None = None,
    input_shape: Shape | None = None,
    layout: str = "auto",
    fmt: str = "keras",
) -> Graph:
    src = read_source(path, fmt)
    return build_graph(src, path, input_name, input_shape, layout)


# ---------------------------------------------------------------------------------------------
# small typed accessors


def _tname(x: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(x), "null" if x is None else f"a {type(x).__name__}"
    )


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


@dataclass(frozen=True)
class RawRef:
    """A tensor reference as written in the file (before node-index adjustment)."""

    layer: str
    node: int
    tensor: int
    shape: Shape | None = None


@dataclass
class Call:
    args: list[Any]
    kwargs: dict[str, Any]


class Builder:
    def __init__(self, path: str, meta: dict[str, str], default_format: str) -> None:
        self.path = path
        self.meta = meta
        self.default_format = default_format
        self.nodes: list[Node] = []
        self.declared: dict[str, Shape] = {}
        self.ranks: dict[str, int] = {}
        self.tensors: set[str] = set()
        self.inputs: list[tuple[str, Shape | None]] = []
        self.calls = 0
        self.encodings: set[str] = set()

    def fail(self, message: str) -> ModelError:
        return ModelError(message, self.path)

    # --- validation helpers ------------------------------------------------------------------

    def obj(self, x: Any, what: str) -> dict[str, Any]:
        if not isinstance(x, dict):
            raise self.fail(f"{what} is {_tname(x)}, expected an object")
        return x

    def lst(self, x: Any, what: str) -> list[Any]:
        if not isinstance(x, list):
            raise self.fail(f"{what} is {_tname(x)}, expected a list")
        return x

    def shape(self, v: Any, what: str) -> Shape | None:
        """A shape written in the file: a list of sizes or nulls; ``None`` if not a shape."""
        if not isinstance(v, list) or len(v) > 16:
            return None
        out: list[int | None] = []
        for d in v:
            if d is None:
                out.append(None)
            elif _is_int(d):
                if d < 0 or d > MAX_DIM:
                    raise self.fail(f"{what} has an absurd dimension {d}")
                out.append(int(d))
            else:
                return None
        return tuple(out)

    def layer_name(self, layer: dict[str, Any], what: str) -> str:
        name = layer.get("name")
        if name is None and isinstance(layer.get("config"), dict):
            name = layer["config"].get("name")
        if not isinstance(name, str) or not name:
            raise self.fail(f"{what} has no name")
        if len(name) > 1000:
            raise self.fail(f"{what} has a name of {len(name)} characters")
        return name

    def claim(self, name: str) -> str:
        """A unique tensor name."""
        if name not in self.tensors:
            self.tensors.add(name)
            return name
        k = 2
        while f"{name}#{k}" in self.tensors:
            k += 1
        self.tensors.add(f"{name}#{k}")
        return f"{name}#{k}"

    def declare(self, tensor: str, shape: Shape | None) -> None:
        if shape is not None and tensor not in self.declared:
            self.declared[tensor] = shape
            self.ranks.setdefault(tensor, len(shape))

    # --- models ------------------------------------------------------------------------------

    def model(
        self, obj: dict[str, Any], prefix: str, bind: list[str] | None, depth: int
    ) -> list[str]:
        if depth > MAX_NESTING:
            raise self.fail(f"models nested more than {MAX_NESTING} deep")
        cfg = self.obj(obj.get("config"), f"the config of model {prefix or 'root'!r}")
        layers = self.lst(cfg.get("layers"), f"the layer list of model {prefix or 'root'!r}")
        if (
            "input_layers" in cfg
            or "output_layers" in cfg
            or obj.get("class_name")
            in (
                "Functional",
                "Model",
            )
        ):
            return self.functional(obj, cfg, layers, prefix, bind, depth)
        return self.sequential(cfg, layers, prefix, bind, depth)

    def sequential(
        self,
        cfg: dict[str, Any],
        layers: list[Any],
        prefix: str,
        bind: list[str] | None,
        depth: int,
    ) -> list[str]:
        cur: str | None = None
        if bind is not None:
            if len(bind) != 1:
                raise self.fail(f"Sequential model {prefix!r} is called on {len(bind)} tensors")
            cur = bind[0]
        seen: set[str] = set()
        for k, raw in enumerate(layers):
            layer = self.obj(raw, f"layer {k} of Sequential model {prefix or 'root'!r}")
            cls = layer.get("class_name")
            name = self.layer_name(layer, f"layer {k} of Sequential model {prefix or 'root'!r}")
            if name in seen:
                raise self.fail(f"two layers named {name!r} in model {prefix or 'root'!r}")
            seen.add(name)
            if cls in INPUT_CLASSES:
                if cur is None:
                    lc = self.obj(layer.get("config"), f"input layer {name!r}")
                    shape = self.input_shape_of(lc, name)
                    cur = self.claim(prefix + name)
                    self.inputs.append((cur, shape))
                    self.declare(cur, shape)
                continue
            if cur is None:  # no InputLayer: the input shape is recorded elsewhere, if at all
                cur = self.claim(prefix + "input")
                shape = self.sequential_input_shape(cfg, layer)
                self.inputs.append((cur, shape))
                self.declare(cur, shape)
            self.build_config_shapes(layer, [Tensor(cur, self.declared.get(cur))])
            if self.is_model(layer):
                outs = self.model(layer, f"{prefix}{name}/", [cur], depth + 1)
                if len(outs) != 1:
                    raise self.fail(
                        f"nested model {name!r} in a Sequential model has {len(outs)} outputs"
                    )
                cur = outs[0]
                continue
            out = self.claim(prefix + name)
            self.convert(
                layer, prefix + name, Call([Tensor(cur, self.declared.get(cur))], {}), [out]
            )
            cur = out
        if cur is None:
            raise self.fail(f"Sequential model {prefix or 'root'!r} has no layers")
        return [cur]

    def input_shape_of(self, cfg: dict[str, Any], name: str) -> Shape | None:
        for key in ("batch_shape", "batch_input_shape"):
            if key in cfg and cfg[key] is not None:
                shape = self.shape(cfg[key], f"input layer {name!r}")
                if shape is None:
                    raise self.fail(f"input layer {name!r}: {key!r} is not a shape")
                return shape
        if "shape" in cfg and cfg["shape"] is not None:
            shape = self.shape(cfg["shape"], f"input layer {name!r}")
            return None if shape is None else (None, *shape)
        return None

    def sequential_input_shape(self, cfg: dict[str, Any], first: dict[str, Any]) -> Shape | None:
        cands: list[Any] = [cfg.get("build_input_shape")]
        fc = first.get("config")
        if isinstance(fc, dict):
            cands += [fc.get("batch_input_shape"), fc.get("batch_shape")]
        bc = first.get("build_config")
        if isinstance(bc, dict):
            cands.append(bc.get("input_shape"))
        for c in cands:
            shape = self.shape(c, "the Sequential model's input shape")
            if shape is not None:
                return shape
        return None

    def is_model(self, layer: dict[str, Any]) -> bool:
        cfg = layer.get("config")
        return layer.get("class_name") in MODEL_CLASSES or (
            isinstance(cfg, dict)
            and isinstance(cfg.get("layers"), list)
            and ("input_layers" in cfg or "output_layers" in cfg)
        )

    def is_functional(self, layer: dict[str, Any]) -> bool:
        if not self.is_model(layer):
            return False
        cfg = layer.get("config")
        return (
            layer.get("class_name") != "Sequential"
            and isinstance(cfg, dict)
            and ("input_layers" in cfg or "output_layers" in cfg)
        )

    def single_output(self, layer: dict[str, Any]) -> bool:
        """Built-in layers with one output (others get as many as the file reads)."""
        cls = layer.get("class_name")
        module = layer.get("module")
        if cls in (
            "MultiHeadAttention",
            "GroupedQueryAttention",
            "Attention",
            "AdditiveAttention",
            "TFOpLambda",
            "SlicingOpLambda",
            "Lambda",
            # recurrent layers: with return_state, the final states follow the output
            "LSTM",
            "GRU",
            "SimpleRNN",
            "CuDNNLSTM",
            "CuDNNGRU",
            "Bidirectional",
        ):
            return False
        if isinstance(module, str) and module.startswith(("keras.src.ops", "keras.ops")):
            return False
        return isinstance(cls, str) and cls in LAYERS

    def starts_with_input(self, layer: dict[str, Any]) -> bool:
        cfg = layer.get("config")
        ls = cfg.get("layers") if isinstance(cfg, dict) else None
        if not isinstance(ls, list) or not ls or not isinstance(ls[0], dict):
            return False
        return ls[0].get("class_name") in INPUT_CLASSES

    # --- functional models -----------------------------------------------------------------

    def triples(self, v: Any, what: str) -> list[RawRef]:
        """``input_layers``/``output_layers``: a triple, a list of triples, or a dict of them."""
        out: list[RawRef] = []
        stack: list[tuple[Any, int]] = [(v, 0)]
        while stack:
            cur, depth = stack.pop()
            if depth > MAX_ARG_DEPTH:
                raise self.fail(f"{what} is nested too deeply")
            if (
                isinstance(cur, list)
                and len(cur) == 3
                and isinstance(cur[0], str)
                and _is_int(cur[1])
                and _is_int(cur[2])
            ):
                out.append(RawRef(cur[0], cur[1], cur[2]))
            elif isinstance(cur, list):
                stack.extend((x, depth + 1) for x in reversed(cur))
            elif isinstance(cur, dict):
                stack.extend((cur[k], depth + 1) for k in reversed(sorted(cur)))
            else:
                raise self.fail(f"{what} holds {_tname(cur)} where a layer reference belongs")
        return out

    def functional(
        self,
        obj: dict[str, Any],
        cfg: dict[str, Any],
        layers: list[Any],
        prefix: str,
        bind: list[str] | None,
        depth: int,
    ) -> list[str]:
        where = f"model {prefix[:-1]!r}" if prefix else "the model"
        by_name: dict[str, dict[str, Any]] = {}
        order: list[str] = []
        for k, raw in enumerate(layers):
            layer = self.obj(raw, f"layer {k} of {where}")
            name = self.layer_name(layer, f"layer {k} of {where}")
            if name in by_name:
                raise self.fail(f"two layers named {name!r} in {where}")
            by_name[name] = layer
            order.append(name)
        in_refs = self.triples(cfg.get("input_layers", []), f"'input_layers' of {where}")
        out_refs = self.triples(cfg.get("output_layers"), f"'output_layers' of {where}")
        if not out_refs:
            raise self.fail(f"{where} has no outputs")

        # parse every call first: the encoding decides how node indices count
        calls: dict[str, list[Call]] = {}
        enc: str | None = None
        for name in order:
            layer = by_name[name]
            if layer.get("class_name") in INPUT_CLASSES:
                continue
            nodes = layer.get("inbound_nodes", [])
            if nodes is None:
                nodes = []
            self.lst(nodes, f"'inbound_nodes' of layer {name!r}")
            parsed = []
            for n in nodes:
                kind = "k3" if isinstance(n, dict) else "k2"
                enc = enc or kind
                self.encodings.add(kind)
                parsed.append(
                    self.parse_k3(n, name) if kind == "k3" else self.parse_k2(n, name, by_name)
                )
            calls[name] = parsed
        if enc is None:
            enc = "k3" if any("module" in by_name[n] for n in order) else "k2"

        inputs_map: dict[str, str] = {}
        for r in in_refs:
            if r.layer not in by_name:
                raise self.fail(f"{where} lists input {r.layer!r}, which is not one of its layers")
            if by_name[r.layer].get("class_name") not in INPUT_CLASSES:
                raise self.fail(f"{where} lists input {r.layer!r}, which is not an InputLayer")
        if bind is None:
            for r in in_refs:
                lc = self.obj(by_name[r.layer].get("config"), f"input layer {r.layer!r}")
                shape = self.input_shape_of(lc, r.layer)
                t = self.claim(prefix + r.layer)
                inputs_map[r.layer] = t
                self.inputs.append((t, shape))
                self.declare(t, shape)
        else:
            if len(bind) != len(in_refs):
                raise self.fail(
                    f"{where} has {len(in_refs)} inputs but is called on {len(bind)} tensors"
                )
            for r, t in zip(in_refs, bind):
                inputs_map[r.layer] = t
                icfg = by_name[r.layer].get("config")
                if isinstance(icfg, dict):
                    self.declare(t, self.input_shape_of(icfg, r.layer))

        def offset(layer: str, for_output: bool) -> int:
            target = by_name[layer]
            if enc == "k2":
                if self.is_functional(target):
                    return 1
                if target.get("class_name") == "Sequential" and self.starts_with_input(target):
                    return 1
                return 0
            return 1 if for_output and self.is_functional(target) else 0

        def index(ref: RawRef, reader: str, for_output: bool = False) -> tuple[str, int] | None:
            """(layer, call index) of the producer; ``None`` for a model input."""
            if ref.layer not in by_name:
                raise self.fail(f"{reader} refers to layer {ref.layer!r}, which does not exist")
            target = by_name[ref.layer]
            if target.get("class_name") in INPUT_CLASSES:
                if ref.layer not in inputs_map:
                    raise self.fail(
                        f"{reader} reads input layer {ref.layer!r}, which is not a model input"
                    )
                if ref.node != 0 or ref.tensor != 0:
                    raise self.fail(
                        f"{reader} refers to node {ref.node}, tensor {ref.tensor} of input layer "
                        f"{ref.layer!r}: out of range"
                    )
                return None
            n = len(calls.get(ref.layer, []))
            idx = ref.node - offset(ref.layer, for_output)
            if not 0 <= idx < n and enc == "k2" and target.get("class_name") == "Sequential":
                alt = ref.node + offset(ref.layer, for_output) - 1
                if 0 <= alt < n:  # Sequential built without an InputLayer: 0-based
                    idx = alt
            if not 0 <= idx < n:
                raise self.fail(
                    f"{reader} refers to node {ref.node} of layer {ref.layer!r}, which has "
                    f"{n} call(s): node index out of range"
                )
            if not 0 <= ref.tensor <= MAX_TENSOR_INDEX:
                raise self.fail(
                    f"{reader} refers to tensor {ref.tensor} of layer {ref.layer!r}: out of range"
                )
            return ref.layer, idx

        # dependency graph over calls (Kahn's algorithm)
        keys: list[tuple[str, int]] = [(n, i) for n in order for i in range(len(calls.get(n, [])))]
        self.calls += len(keys)
        if self.calls > MAX_CALLS:
            raise self.fail(f"more than {MAX_CALLS} layer calls")
        n_out: dict[tuple[str, int], int] = {}
        deps: dict[tuple[str, int], set[tuple[str, int]]] = {}
        readers: dict[tuple[str, int], list[tuple[str, int]]] = {k: [] for k in keys}
        for key in keys:
            name, i = key
            reader = f"layer {name!r}" + (f" (call {i})" if i else "")
            ds: set[tuple[str, int]] = set()
            for ref in _raw_refs(calls[name][i]):
                src = index(ref, reader)
                if src is not None:
                    ds.add(src)
                    n_out[src] = max(n_out.get(src, 1), ref.tensor + 1)
            deps[key] = ds
            for s in ds:
                readers[s].append(key)
        out_src: list[tuple[str, int] | None] = []
        for ref in out_refs:
            src = index(ref, f"'output_layers' of {where}", for_output=True)
            out_src.append(src)
            if src is not None:
                n_out[src] = max(n_out.get(src, 1), ref.tensor + 1)
        waiting = {k: len(v) for k, v in deps.items()}
        ready = deque(k for k in keys if waiting[k] == 0)
        produced: dict[tuple[str, int], list[str]] = {}
        done = 0

        def resolve(ref: RawRef, reader: str, for_output: bool = False) -> str:
            src = index(ref, reader, for_output)
            if src is None:
                return inputs_map[ref.layer]
            outs = produced[src]
            if ref.tensor >= len(outs):
                raise self.fail(
                    f"{reader} reads output {ref.tensor} of layer {ref.layer!r}, which has "
                    f"{len(outs)} output(s)"
                )
            return outs[ref.tensor]

        while ready:
            key = ready.popleft()
            done += 1
            name, i = key
            layer = by_name[name]
            reader = f"layer {name!r}" + (f" (call {i})" if i else "")
            call = self.resolve_call(calls[name][i], lambda r, rd=reader: resolve(r, rd))
            base = f"{prefix}{name}" + (f"[{i}]" if i else "")
            tensors = list(iter_tensors([call.args, call.kwargs]))
            if len(calls[name]) == 1:
                self.build_config_shapes(layer, tensors)
            if self.is_model(layer):
                produced[key] = self.model(layer, base + "/", [t.name for t in tensors], depth + 1)
            else:
                count = 1 if self.single_output(layer) else n_out.get(key, 1)
                outs = [self.claim(base if t == 0 else f"{base}:{t}") for t in range(count)]
                self.convert(layer, base, call, outs)
                produced[key] = outs
            for nxt in readers[key]:
                waiting[nxt] -= 1
                if waiting[nxt] == 0:
                    ready.append(nxt)
        if done != len(keys):
            stuck = [f"{n}" + (f"[{i}]" if i else "") for (n, i) in keys if waiting[(n, i)] > 0]
            through = ", ".join(map(repr, stuck[:3]))
            raise self.fail(f"the layer graph of {where} has a cycle (through {through})")
        return [resolve(r, f"'output_layers' of {where}", True) for r in out_refs]

    # --- node encodings ----------------------------------------------------------------------

    def parse_k3(self, node: dict[str, Any], reader: str) -> Call:
        args = node.get("args", [])
        kwargs = node.get("kwargs", {})
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            raise self.fail(f"layer {reader!r}: malformed inbound node (args/kwargs)")
        return Call(self.k3_walk(args, reader, 0), self.k3_walk(kwargs, reader, 0))

    def k3_walk(self, v: Any, reader: str, depth: int) -> Any:
        if depth > MAX_ARG_DEPTH:
            raise self.fail(f"layer {reader!r}: call arguments nested too deeply")
        if isinstance(v, list):
            return [self.k3_walk(x, reader, depth + 1) for x in v]
        if isinstance(v, dict):
            if v.get("class_name") == "__keras_tensor__":
                cfg = v.get("config")
                hist = cfg.get("keras_history") if isinstance(cfg, dict) else None
                if not (
                    isinstance(hist, list)
                    and len(hist) == 3
                    and isinstance(hist[0], str)
                    and _is_int(hist[1])
                    and _is_int(hist[2])
                ):
                    raise self.fail(f"layer {reader!r}: malformed tensor reference {_short(v)}")
                assert isinstance(cfg, dict)
                shape = self.shape(cfg.get("shape"), f"a tensor read by layer {reader!r}")
                return RawRef(hist[0], hist[1], hist[2], shape)
            return {k: self.k3_walk(x, reader, depth + 1) for k, x in v.items()}
        return v

    def parse_k2(self, node: Any, reader: str, names: dict[str, Any]) -> Call:
        if not isinstance(node, list) or not node:
            raise self.fail(f"layer {reader!r}: malformed inbound node {_short(node)}")
        entries = [node] if isinstance(node[0], str) else node
        items: list[Any] = []
        kwargs: dict[str, Any] = {}
        for e in entries:
            if not (isinstance(e, list) and len(e) >= 3 and isinstance(e[0], str)):
                raise self.fail(f"layer {reader!r}: malformed inbound node entry {_short(e)}")
            kw = e[3] if len(e) > 3 else {}
            if kw is None:
                kw = {}
            if not isinstance(kw, dict):
                raise self.fail(f"layer {reader!r}: call arguments are {_tname(kw)}")
            if e[0] == "_CONSTANT_VALUE":
                items.append(e[2])
            else:
                if not (_is_int(e[1]) and _is_int(e[2])):
                    raise self.fail(f"layer {reader!r}: malformed inbound node entry {_short(e)}")
                items.append(RawRef(e[0], e[1], e[2]))
            for k, v in kw.items():
                kwargs.setdefault(k, self.k2_walk(v, names, reader, 0))
        args = [items[0]] if len(items) == 1 else [items]
        return Call(args, kwargs)

    def k2_walk(self, v: Any, names: dict[str, Any], reader: str, depth: int) -> Any:
        if depth > MAX_ARG_DEPTH:
            raise self.fail(f"layer {reader!r}: call arguments nested too deeply")
        if isinstance(v, list):
            if (
                len(v) in (3, 4)
                and isinstance(v[0], str)
                and v[0] in names
                and _is_int(v[1])
                and _is_int(v[2])
            ):
                return RawRef(v[0], v[1], v[2])
            return [self.k2_walk(x, names, reader, depth + 1) for x in v]
        if isinstance(v, dict):
            return {k: self.k2_walk(x, names, reader, depth + 1) for k, x in v.items()}
        return v

    def resolve_call(self, call: Call, resolve: Any) -> Call:
        def walk(v: Any) -> Any:
            if isinstance(v, RawRef):
                name = resolve(v)
                self.declare(name, v.shape)
                return Tensor(name, self.declared.get(name))
            if isinstance(v, list):
                return [walk(x) for x in v]
            if isinstance(v, dict):
                return {k: walk(x) for k, x in v.items()}
            return v

        return Call(walk(call.args), walk(call.kwargs))

    def build_config_shapes(self, layer: dict[str, Any], tensors: list[Tensor]) -> None:
        """Input shapes a layer recorded when it was built (single-call layers only)."""
        bc = layer.get("build_config")
        if not isinstance(bc, dict) or not tensors:
            return
        raw = bc.get("input_shape")
        name = layer.get("name") or "?"
        one = self.shape(raw, f"the build_config of layer {name!r}")
        if one is not None and len(tensors) == 1:
            self.declare(tensors[0].name, one)
            return
        if isinstance(raw, list) and len(raw) == len(tensors):
            for t, s in zip(tensors, raw):
                self.declare(t.name, self.shape(s, f"the build_config of layer {name!r}"))

    # --- layers ------------------------------------------------------------------------------

    def convert(self, layer: dict[str, Any], name: str, call: Call, outs: list[str]) -> None:
        cls = layer.get("class_name")
        if not isinstance(cls, str) or not cls:
            raise self.fail(f"layer {name!r} has no class_name")
        cfg = layer.get("config", {})
        if cfg is None:
            cfg = {}
        if not isinstance(cfg, dict):
            raise self.fail(f"layer {name!r}: config is {_tname(cfg)}, expected an object")
        module = layer.get("module")
        module = module if isinstance(module, str) else None
        registered = layer.get("registered_name")
        inputs = list(iter_tensors([call.args, call.kwargs]))
        bare = cls.rsplit(">", 1)[-1]
        lc = LayerCall(
            name=name,
            cls=bare,
            module=module,
            config=cfg,
            args=call.args,
            kwargs=call.kwargs,
            inputs=inputs,
            outputs=outs,
            is_op=False,
            default_format=self.default_format,
            rank_of=self.ranks.get,
            path=self.path,
            meta=self.meta,
        )
        custom = (
            (">" in cls and not cls.startswith("keras"))
            or (
                isinstance(registered, str)
                and ">" in registered
                and not registered.startswith("keras")
            )
            or (
                module is not None
                and module.split(".")[0] not in ("keras", "tf_keras", "tensorflow")
            )
        )
        is_op = module is not None and (
            module.startswith("keras.src.ops") or module.startswith("keras.ops")
        )
        if module is None and cls in OPS and "trainable" not in cfg and cls not in ("InputLayer",):
            is_op = True  # legacy configs of Keras 3 op layers carry no module
        lc.is_op = is_op
        source: str | None = None
        if cls in ("TFOpLambda", "SlicingOpLambda") and not custom:
            fn = cfg.get("function")
            if not isinstance(fn, str):
                raise self.fail(f"layer {name!r} ({cls}): 'function' is {_tname(fn)}")
            fn = fn[3:] if fn.startswith("tf.") else fn
            source = "tf." + fn
            conv = TF_OPS.get(fn) or TF_OPS.get(fn.replace("compat.v1.", "", 1))
            lc.cls = fn if conv is not None else source
        elif cls == "Lambda" or custom:
            conv = None
        elif is_op:
            conv = OPS.get(cls)
        elif module is not None and module.startswith(APPLICATION_MODULES):
            conv = APPLICATION_LAYERS.get(bare)
        else:
            conv = LAYERS.get(cls)
        if conv is None:
            reason = "Lambda layer: its code is never decoded or run" if cls == "Lambda" else None
            nodes = unknown(lc, reason)
        else:
            nodes = conv(lc)
        if source is not None:
            nodes = [_with_source(n, source) for n in nodes]
        for n in nodes:
            self.nodes.append(n)
            self.track_rank(n)

    def track_rank(self, n: Node) -> None:
        ins = [self.ranks.get(t) for t in n.inputs if t]
        first = ins[0] if ins else None
        a = n.attrs
        r: int | None
        if n.op in ("reduce",):
            axes = a.get("axes")
            if a.get("keepdims", True) or first is None:
                r = first
            else:
                r = 0 if not axes else first - len(set(axes))
        elif n.op == "flatten":
            r = 2
        elif n.op == "reshape":
            t = a.get("target")
            r = len(t) if t is not None else None
        elif n.op == "squeeze":
            axes = a.get("axes")
            r = None if axes is None or first is None else first - len(axes)
        elif n.op == "unsqueeze":
            r = None if first is None else first + len(a["axes"])
        elif n.op in ("elementwise", "matmul", "concat"):
            known = [x for x in ins if x is not None]
            r = max(known) if known and len(known) == len(ins) else None
        elif n.op in ("unknown", "constant", "shape"):
            r = None
        else:
            r = first
        for o in n.outputs:
            if r is not None:
                self.ranks.setdefault(o, r)


def _with_source(n: Node, source: str) -> Node:
    return Node(n.name, n.op, source, n.inputs, n.outputs, n.attrs, n.params)


def _raw_refs(call: Call) -> list[RawRef]:
    out: list[RawRef] = []
    stack: list[Any] = [call.kwargs, call.args]
    while stack:
        cur = stack.pop()
        if isinstance(cur, RawRef):
            out.append(cur)
        elif isinstance(cur, list):
            stack.extend(reversed(cur))
        elif isinstance(cur, dict):
            stack.extend(reversed(list(cur.values())))
    return out


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


# ---------------------------------------------------------------------------------------------
# the whole graph


def _formats_in(root: Any) -> list[str]:
    """Explicit ``data_format`` values of every layer, in file order (iterative walk)."""
    found: list[str] = []
    stack: list[tuple[Any, int]] = [(root, 0)]
    while stack:
        cur, depth = stack.pop()
        if depth > 200:
            continue
        if isinstance(cur, dict):
            df = cur.get("data_format")
            if isinstance(df, str) and df.lower() in ("channels_first", "channels_last"):
                found.append(df.lower())
            stack.extend((v, depth + 1) for v in reversed(list(cur.values())))
        elif isinstance(cur, list):
            stack.extend((v, depth + 1) for v in reversed(cur))
    return found


def build_graph(
    src: KerasSource,
    path: str,
    input_name: str | None,
    input_shape: Shape | None,
    layout: str,
) -> Graph:
    root = src.config
    cls = root.get("class_name")
    cfg = root.get("config")
    if not isinstance(cfg, dict) or not isinstance(cfg.get("layers"), list):
        raise ModelError(
            f"the file's root object ({cls!r}) is not a Sequential or Functional model with a "
            "layer list (a subclassed model's architecture is Python code, which is never run)",
            path,
        )
    chosen = layout.lower()
    if chosen in ("nchw", "ncw", "ncdhw", "channels_first"):
        default = "channels_first"
    elif chosen in ("nhwc", "nwc", "ndhwc", "channels_last"):
        default = "channels_last"
    elif chosen == "auto":
        formats = _formats_in(cfg.get("layers"))
        default = formats[0] if formats else "channels_last"
    else:
        raise UsageError(f"unknown layout {layout!r} (use auto, nchw or nhwc)")
    meta = dict(src.meta)
    b = Builder(path, meta, default)
    outputs = b.model(root, "", None, 0)
    if not b.inputs:
        raise ModelError("the model has no inputs", path)
    image_name, file_shape = _pick_input(b.inputs, input_name, path)
    shape = given_shape(image_name, file_shape, input_shape, path)
    if (
        input_shape is not None
        and file_shape is not None
        and shape is not None
        and any(f is not None and f != u for f, u in zip(file_shape, shape))
    ):
        b.declared = {}
        meta["note"] = "--input-shape differs from the file's input shape: recorded shapes ignored"
    if shape is None:
        raise ModelError(
            f"input {image_name!r} has no recorded shape (the model was never built): give "
            "--input-shape, e.g. --input-shape 1x224x224x3",
            path,
        )
    rank = len(shape)
    if rank < 3:
        raise ModelError(
            f"input {image_name!r} has shape {format_shape(shape)}: no spatial axes "
            "(expected a batch, channels and 1 to 3 spatial dims)",
            path,
        )
    nsp = rank - 2
    letters = {1: "W", 2: "HW", 3: "DHW"}.get(nsp, "S" * nsp)
    if default == "channels_first":
        lay, spatial = "NC" + letters, tuple(range(2, rank))
    else:
        lay, spatial = "N" + letters + "C", tuple(range(1, rank - 1))
    missing = [t for t in spatial if shape[t] is None]
    if missing:
        raise ModelError(
            f"spatial size of input {image_name!r} is unknown ({format_shape(shape)}): give "
            f"--input-shape, e.g. --input-shape {shape_hint(shape, spatial)}",
            path,
        )
    b.declared.pop(image_name, None)
    others = tuple(n for n, _ in b.inputs if n != image_name)
    meta["format"] = {"keras": ".keras", "h5": "HDF5 (legacy)", "savedmodel": "SavedModel"}[
        src.format
    ]
    if isinstance(cls, str):
        meta["model_class"] = cls
    encs = sorted(b.encodings)
    if encs:
        meta["node_encoding"] = " + ".join("Keras 3" if e == "k3" else "Keras 2" for e in encs)
    return Graph(
        path=path,
        format=src.format,
        input=ModelInput(image_name, shape, lay, spatial),
        nodes=b.nodes,
        outputs=tuple(outputs),
        constants=frozenset(),
        other_inputs=others,
        declared_shapes=dict(b.declared),
        meta=meta,
    )


def _pick_input(
    inputs: list[tuple[str, Shape | None]], name: str | None, path: str
) -> tuple[str, Shape | None]:
    if name is not None:
        for n, s in inputs:
            if n == name:
                return n, s
        names = ", ".join(repr(n) for n, _ in inputs)
        raise UsageError(f"no input named {name!r} (inputs: {names})", path)
    if len(inputs) == 1:
        return inputs[0]
    spatial = [(n, s) for n, s in inputs if s is not None and len(s) >= 3]
    if len(spatial) == 1:
        return spatial[0]
    names = ", ".join(repr(n) for n, _ in (spatial or inputs))
    raise UsageError(f"several candidate image inputs ({names}): choose one with --input", path)
