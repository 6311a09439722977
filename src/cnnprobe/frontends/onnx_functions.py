"""Model-local functions (``ModelProto.functions``, IR version 8 and newer).

A node of the main graph whose domain, op type and overload name a function of the model stands
for that function's body (PyTorch's ``export_modules_as_functions``, onnxscript, exporters that
keep a module hierarchy). The analysis needs the body's convolutions and pools, so every such
call is replaced by the body before conversion, as a runtime does it:

- the function's formal inputs and outputs become the caller's actual tensors (a missing actual
  input is an absent optional input; a missing actual output gets a fresh name);
- every other tensor of the body gets a fresh name under the caller's name, unique in the model;
- an attribute that refers to the caller's (``ref_attr_name``) takes the caller's value, else
  the function's default, else it is absent;
- calls inside a body are expanded the same way. A function that calls itself, directly or not,
  is an error (never expanded forever), and so is an expansion past :data:`MAX_NODES` nodes.

Inlined nodes are named ``CALLER/NODE`` (the body node's name, or its op type).
"""

from __future__ import annotations

from typing import Any

from ..errors import ModelError
from .onnx_wire import FunctionInfo, ModelInfo, NodeInfo

#: An expansion that would make more nodes than this is refused (a hostile file can nest calls
#: so that the body doubles at every level).
MAX_NODES = 1_000_000

FunctionKey = tuple[str, str, str]


def _key(domain: str, name: str, overload: str) -> FunctionKey:
    return ("" if domain == "ai.onnx" else domain, name, overload)


def inline_functions(model: ModelInfo) -> tuple[list[NodeInfo], str | None]:
    """The main graph's nodes with every call of a model-local function replaced by its body,
    and a sentence saying what was inlined (``None`` when nothing was)."""
    g = model.graph
    assert g is not None  # parse_model checked it
    if not model.functions:
        return g.node, None
    table: dict[FunctionKey, FunctionInfo] = {}
    for f in model.functions:
        k = _key(f.domain, f.name, f.overload)
        if k in table:
            raise ModelError(f"two model-local functions named {_label(k)!r}")
        table[k] = f
    if not any(_key(p.domain, p.op_type, p.overload) in table for p in g.node):
        return g.node, None
    taken = {vi.name for vi in (*g.input, *g.output, *g.value_info)}
    taken.update(t.name for t in g.initializer)
    for p in g.node:
        taken.update(p.input)
        taken.update(p.output)
    inliner = _Inliner(table, taken)
    out: list[NodeInfo] = []
    for index, p in enumerate(g.node):
        called = table.get(_key(p.domain, p.op_type, p.overload))
        if called is None:
            out.append(p)
        else:
            caller = p.name or (p.output[0] if p.output else f"node{index}")
            inliner.expand(p, called, caller, out, ())
    calls = inliner.calls
    names = ", ".join(sorted({_label(k) for k in calls}))
    count = sum(calls.values())
    note = (
        f"{count} call{'s' if count != 1 else ''} of model-local function"
        f"{'s' if len(calls) != 1 else ''} {names} inlined"
    )
    return out, note


def _label(k: FunctionKey) -> str:
    domain, name, overload = k
    text = f"{domain}.{name}" if domain else name
    return f"{text}:{overload}" if overload else text


class _Inliner:
    def __init__(self, table: dict[FunctionKey, FunctionInfo], taken: set[str]) -> None:
        self.table = table
        self.taken = taken
        self.made = 0
        self.calls: dict[FunctionKey, int] = {}

    def fresh(self, wanted: str) -> str:
        name, n = wanted, 1
        while name in self.taken:
            n += 1
            name = f"{wanted}#{n}"
        self.taken.add(name)
        return name

    def emit(self, out: list[NodeInfo], node: NodeInfo) -> None:
        self.made += 1
        if self.made > MAX_NODES:
            raise ModelError(
                f"inlining the model-local functions would make more than {MAX_NODES:,} nodes"
            )
        out.append(node)

    def expand(
        self,
        call: NodeInfo,
        f: FunctionInfo,
        caller: str,
        out: list[NodeInfo],
        stack: tuple[FunctionKey, ...],
    ) -> None:
        k = _key(f.domain, f.name, f.overload)
        if k in stack:
            chain = " -> ".join(_label(x) for x in (*stack, k))
            raise ModelError(f"model-local function {_label(k)!r} calls itself ({chain})")
        self.calls[k] = self.calls.get(k, 0) + 1
        names: dict[str, str] = {"": ""}
        for i, formal in enumerate(f.input):
            names[formal] = call.input[i] if i < len(call.input) else ""
        for j, formal in enumerate(f.output):
            actual = call.output[j] if j < len(call.output) else ""
            names.setdefault(formal, actual or self.fresh(f"{caller}/{formal}"))
        values: dict[str, Any] = dict(f.defaults)
        values.update(call.attrs)

        def rename(name: str) -> str:
            new = names.get(name)
            if new is None:
                new = names[name] = self.fresh(f"{caller}/{name}")
            return new

        produced: set[str] = set()
        for b, refs in zip(f.node, f.refs):
            attrs = dict(b.attrs)
            for attr, ref in refs.items():
                if ref in values:
                    attrs[attr] = values[ref]
            node = NodeInfo(
                f"{caller}/{b.name or b.op_type}",
                b.op_type,
                b.domain,
                tuple(rename(x) for x in b.input),
                tuple(rename(x) for x in b.output),
                attrs,
                b.overload,
            )
            produced.update(b.output)
            inner = self.table.get(_key(b.domain, b.op_type, b.overload))
            if inner is None:
                self.emit(out, node)
            else:
                self.expand(node, inner, node.name, out, (*stack, k))
        # an output that is one of the inputs, passed through: the caller's tensor still needs
        # a producer
        for j, formal in enumerate(f.output):
            if formal in produced or formal not in f.input or j >= len(call.output):
                continue
            source, target = names[formal], call.output[j]
            if source and target:
                identity = NodeInfo(f"{caller}/{formal}", "Identity", "", (source,), (target,), {})
                self.emit(out, identity)
