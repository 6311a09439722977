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

:func:`expand_calls` does this for any node type: the frontend expands the reader's
:class:`~.onnx_wire.NodeInfo` (:func:`inline_functions`), and ``shift-test`` expands onnx's
``NodeProto`` so that onnxruntime can output the same inner tensors under the same names.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from ..errors import ModelError
from .onnx_wire import ModelInfo, NodeInfo

#: An expansion that would make more nodes, or expand more calls, than this is refused (a
#: hostile file can nest calls so that the body doubles at every level).
MAX_NODES = 1_000_000
#: Calls nested deeper than this are refused (onnxruntime stops at 100 too).
MAX_DEPTH = 100

#: (domain, op type or function name, overload)
FunctionKey = tuple[str, str, str]


class NodeLike(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def op_type(self) -> str: ...

    @property
    def input(self) -> Sequence[str]: ...

    @property
    def output(self) -> Sequence[str]: ...


N = TypeVar("N", bound=NodeLike)
V = TypeVar("V")  # an attribute value as the node type holds it


@dataclass
class Body(Generic[N, V]):
    """A function: formal inputs and outputs, attribute defaults, body nodes and, per body node,
    its attributes that refer to the caller's (attribute name -> caller attribute name)."""

    key: FunctionKey
    input: Sequence[str]
    output: Sequence[str]
    defaults: dict[str, V]
    nodes: Sequence[N]
    refs: Sequence[dict[str, str]]


@dataclass
class NodeKind(Generic[N, V]):
    """How to read and make nodes of one type."""

    #: the function a node would call
    key: Callable[[N], FunctionKey]
    #: a node's own attributes (not references)
    attrs: Callable[[N], dict[str, V]]
    #: ``make(template, name, inputs, outputs, attrs, rename)``: the template's op with these;
    #: ``rename`` maps the body's tensor names, for subgraphs of the template that read them
    make: Callable[
        [N, str, tuple[str, ...], tuple[str, ...], dict[str, V], Callable[[str], str]], N
    ]
    #: ``identity(name, source, target)``
    identity: Callable[[str, str, str], N]


def function_key(domain: str, name: str, overload: str = "") -> FunctionKey:
    return ("" if domain == "ai.onnx" else domain, name, overload)


def label(k: FunctionKey) -> str:
    domain, name, overload = k
    text = f"{domain}.{name}" if domain else name
    return f"{text}:{overload}" if overload else text


def function_table(bodies: Sequence[Body[N, V]]) -> dict[FunctionKey, Body[N, V]]:
    table: dict[FunctionKey, Body[N, V]] = {}
    for b in bodies:
        if b.key in table:
            raise ModelError(f"two model-local functions named {label(b.key)!r}")
        table[b.key] = b
    return table


def expand_calls(
    nodes: Sequence[N],
    table: dict[FunctionKey, Body[N, V]],
    taken: set[str],
    kind: NodeKind[N, V],
) -> tuple[list[N], dict[FunctionKey, int]]:
    """``nodes`` with every call of a function of ``table`` replaced by its body (``taken``:
    every tensor name of the graph; fresh names are added to it). Inlined nodes get node names
    unique in the graph. Also returns how many calls of each function were expanded."""
    inliner = _Inliner(table, taken, {p.name for p in nodes if p.name}, kind)
    out: list[N] = []
    for index, p in enumerate(nodes):
        called = table.get(kind.key(p))
        if called is None:
            out.append(p)
        else:
            caller = p.name or (p.output[0] if p.output else f"node{index}")
            inliner.expand(p, called, caller, out, ())
    return out, inliner.calls


def summary(calls: dict[FunctionKey, int]) -> str:
    """``"6 calls of model-local functions A, B inlined"``."""
    names = ", ".join(sorted({label(k) for k in calls}))
    count = sum(calls.values())
    return (
        f"{count} call{'s' if count != 1 else ''} of model-local function"
        f"{'s' if len(calls) != 1 else ''} {names} inlined"
    )


def graph_names(model: ModelInfo) -> set[str]:
    """Every tensor name the main graph uses."""
    g = model.graph
    assert g is not None
    taken = {vi.name for vi in (*g.input, *g.output, *g.value_info)}
    taken.update(t.name for t in g.initializer)
    taken.update(t.name for t in g.sparse_initializer)
    for p in g.node:
        taken.update(p.input)
        taken.update(p.output)
    return taken


def _make_info(
    p: NodeInfo,
    name: str,
    inputs: tuple[str, ...],
    outputs: tuple[str, ...],
    attrs: dict[str, Any],
    rename: Callable[[str], str],
) -> NodeInfo:
    # (the reader keeps no subgraph attributes: nothing for ``rename`` to do)
    return NodeInfo(name, p.op_type, p.domain, inputs, outputs, attrs, p.overload)


INFO_KIND: NodeKind[NodeInfo, Any] = NodeKind(
    key=lambda p: function_key(p.domain, p.op_type, p.overload),
    attrs=lambda p: p.attrs,
    make=_make_info,
    identity=lambda name, source, target: NodeInfo(name, "Identity", "", (source,), (target,), {}),
)


def inline_functions(model: ModelInfo) -> tuple[list[NodeInfo], str | None]:
    """The main graph's nodes with every call of a model-local function replaced by its body,
    and a sentence saying what was inlined (``None`` when nothing was)."""
    g = model.graph
    assert g is not None  # parse_model checked it
    if not model.functions:
        return g.node, None
    table = function_table(
        [
            Body(
                function_key(f.domain, f.name, f.overload),
                f.input,
                f.output,
                f.defaults,
                f.node,
                f.refs,
            )
            for f in model.functions
        ]
    )
    if not any(INFO_KIND.key(p) in table for p in g.node):
        return g.node, None
    nodes, calls = expand_calls(g.node, table, graph_names(model), INFO_KIND)
    return nodes, summary(calls)


class FreshNames:
    """Fresh names, unique among ``taken``: ``wanted``, else ``wanted#2``, ``wanted#3``... (a
    counter per wanted name keeps this linear when thousands of calls want the same one)."""

    def __init__(self, taken: set[str]) -> None:
        self.taken = taken
        self.counters: dict[str, int] = {}

    def __call__(self, wanted: str) -> str:
        name = wanted
        if name in self.taken:
            n = self.counters.get(wanted, 1)
            while name in self.taken:
                n += 1
                name = f"{wanted}#{n}"
            self.counters[wanted] = n
        self.taken.add(name)
        return name


class _Inliner(Generic[N, V]):
    def __init__(
        self,
        table: dict[FunctionKey, Body[N, V]],
        taken: set[str],
        node_names: set[str],
        kind: NodeKind[N, V],
    ) -> None:
        self.table = table
        self.fresh = FreshNames(taken)
        self.node_name = FreshNames(node_names)
        self.kind = kind
        self.made = 0
        self.calls: dict[FunctionKey, int] = {}

    def spend(self) -> None:
        """One more node made or call expanded: refused past :data:`MAX_NODES`."""
        self.made += 1
        if self.made > MAX_NODES:
            raise ModelError(
                f"inlining the model-local functions would make more than {MAX_NODES:,} nodes"
            )

    def emit(self, out: list[N], node: N) -> None:
        self.spend()
        out.append(node)

    def expand(
        self,
        call: N,
        f: Body[N, V],
        caller: str,
        out: list[N],
        stack: tuple[FunctionKey, ...],
    ) -> None:
        if f.key in stack:
            chain = " -> ".join(label(x) for x in (*stack, f.key))
            raise ModelError(f"model-local function {label(f.key)!r} calls itself ({chain})")
        if len(stack) >= MAX_DEPTH:
            raise ModelError(f"model-local functions call each other more than {MAX_DEPTH} deep")
        self.spend()
        self.calls[f.key] = self.calls.get(f.key, 0) + 1
        kind = self.kind
        actual_in, actual_out = list(call.input), list(call.output)
        names: dict[str, str] = {"": ""}
        for i, formal in enumerate(f.input):
            names[formal] = actual_in[i] if i < len(actual_in) else ""
        for j, formal in enumerate(f.output):
            actual = actual_out[j] if j < len(actual_out) else ""
            names.setdefault(formal, actual or self.fresh(f"{caller}/{formal}"))
        values = dict(f.defaults)
        values.update(kind.attrs(call))

        def rename(name: str) -> str:
            new = names.get(name)
            if new is None:
                new = names[name] = self.fresh(f"{caller}/{name}")
            return new

        produced: set[str] = set()
        for b, refs in zip(f.nodes, f.refs):
            attrs = dict(kind.attrs(b))
            for attr, ref in refs.items():
                if ref in values:
                    attrs[attr] = values[ref]
            node = kind.make(
                b,
                self.node_name(f"{caller}/{b.name or b.op_type}"),
                tuple(rename(x) for x in b.input),
                tuple(rename(x) for x in b.output),
                attrs,
                rename,
            )
            produced.update(b.output)
            inner = self.table.get(kind.key(b))
            if inner is None:
                self.emit(out, node)
            else:
                self.expand(node, inner, node.name, out, (*stack, f.key))
        # an output that is one of the inputs, passed through: the caller's tensor still needs
        # a producer
        for j, formal in enumerate(f.output):
            if formal in produced or formal not in f.input or j >= len(actual_out):
                continue
            source, target = names[formal], actual_out[j]
            if source and target:
                self.emit(out, kind.identity(self.node_name(f"{caller}/{formal}"), source, target))
