"""Graph order: the nodes in topological order with every tensor they exchange numbered; cycle and
dangling-input checks.

The analysis walks a model several times (order, last readers, states, verdict). Looking tensor
names up in tables of the whole model at every step is what made large models slower per node:
a 20,000-node model's tables do not fit in the processor's caches, so each lookup is a miss.
:func:`plan` looks every name up once and the walks index lists by tensor number instead.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from ..errors import ModelError
from ..ir import Graph, Node

#: The tensor number of an absent optional input (and of nothing else).
ABSENT = 0
#: The tensor number of the analysed image input.
IMAGE = 1


@dataclass(slots=True)
class Plan:
    """The graph as the analysis walks it. Tensor numbers: :data:`ABSENT`, :data:`IMAGE`, then
    every tensor a node produces and every constant a node reads as data. Constants read only as
    parameters (weights) get no number. Per node, in topological order:"""

    order: list[Node]
    #: the numbers of ``node.inputs``
    inputs: list[tuple[int, ...]]
    #: the numbers of the ``node.params`` that are not constants (the image, or computed from it)
    params: list[tuple[int, ...]]
    #: the numbers of ``node.outputs``
    outputs: list[tuple[int, ...]]
    #: tensor number -> name (``""`` for :data:`ABSENT` and for unnamed optional outputs)
    names: list[str]
    #: the numbers of the constants read as data (their states come from their recorded shapes)
    constant_data: list[int]
    #: the numbers of the graph's outputs that some node produces (or the image input)
    graph_outputs: list[int]

    @property
    def size(self) -> int:
        """How many tensor numbers there are."""
        return len(self.names)


def plan(graph: Graph) -> Plan:
    """Number the tensors and order the nodes so that every tensor is produced before it is
    read (Kahn's algorithm, O(V + E)); ties keep the breadth-first order of file order."""
    nodes = graph.nodes
    names = ["", graph.input.name]
    ids: dict[str, int] = {graph.input.name: IMAGE}
    producer = [-1, -1]  # tensor number -> index of the node that produces it
    outputs: list[tuple[int, ...]] = []
    for k, node in enumerate(nodes):
        outs = []
        for out in node.outputs:
            n = len(names)
            if out and ids.setdefault(out, n) != n:
                raise ModelError(f"tensor {out!r} is produced by two nodes")
            names.append(out)
            producer.append(k)
            outs.append(n)
        outputs.append(tuple(outs))
    constants = graph.constants  # (not copied: a large model has tens of thousands)
    others = set(graph.other_inputs)
    constant_data: list[int] = []

    inputs: list[tuple[int, ...]] = []
    params: list[tuple[int, ...]] = []
    waiting = [0] * len(nodes)
    readers: list[list[int]] = [[] for _ in nodes]
    counted = [-1] * len(nodes)  # counted[src] == k: node k already waits for node src
    for k, node in enumerate(nodes):
        ins = []
        for name in node.inputs:
            if not name:
                ins.append(ABSENT)
                continue
            found = ids.get(name)
            if found is None:
                if name not in constants and name not in others:
                    raise _dangling(node, name)
                found = ids[name] = len(names)  # a constant read as data: numbered on first read
                names.append(name)
                producer.append(-1)
                constant_data.append(found)
            ins.append(found)
        dyn: tuple[int, ...] = ()
        for name in node.params:
            found = ids.get(name)
            if found is None:  # a weight: nothing to number
                if name not in constants and name not in others:
                    raise _dangling(node, name)
            elif producer[found] >= 0 or found == IMAGE:
                dyn = (*dyn, found)
        ins_t = tuple(ins)
        inputs.append(ins_t)
        params.append(dyn)
        w = 0
        for n in (*ins_t, *dyn) if dyn else ins_t:
            src = producer[n]
            if src >= 0 and counted[src] != k:
                counted[src] = k
                w += 1
                readers[src].append(k)
        waiting[k] = w
    ready = deque(k for k, w in enumerate(waiting) if w == 0)
    order: list[int] = []
    while ready:
        k = ready.popleft()
        order.append(k)
        for r in readers[k]:
            waiting[r] -= 1
            if waiting[r] == 0:
                ready.append(r)
    if len(order) != len(nodes):
        stuck = [nodes[k].name for k, w in enumerate(waiting) if w > 0][:3]
        raise ModelError(f"the graph has a cycle (through {', '.join(map(repr, stuck))})")
    graph_outputs = []
    for o in graph.outputs:
        found = ids.get(o)
        if found is not None and (producer[found] >= 0 or found == IMAGE):
            graph_outputs.append(found)
    if order == list(range(len(nodes))):  # file order (chains): nothing to reorder
        return Plan(nodes, inputs, params, outputs, names, constant_data, graph_outputs)
    return Plan(
        [nodes[k] for k in order],
        [inputs[k] for k in order],
        [params[k] for k in order],
        [outputs[k] for k in order],
        names,
        constant_data,
        graph_outputs,
    )


def _dangling(node: Node, name: str) -> ModelError:
    return ModelError(f"node {node.name!r} reads tensor {name!r}, which nothing produces")


def feeds_outputs(p: Plan) -> list[bool]:
    """Per tensor number: whether a graph output can be reached from the tensor (computed by a
    node, or the image input; constants never count)."""
    useful = [False] * p.size
    for n in p.graph_outputs:
        useful[n] = True
    for k in range(len(p.order) - 1, -1, -1):
        if any(useful[n] for n in p.outputs[k]):
            for n in p.inputs[k]:
                useful[n] = True
            for n in p.params[k]:
                useful[n] = True
    for n in p.constant_data:
        useful[n] = False
    useful[ABSENT] = False
    return useful
