"""Graph order: topological order with an explicit worklist; cycle and dangling-input checks."""

from __future__ import annotations

from collections import deque

from ..errors import ModelError
from ..ir import Graph, Node


def topological_order(graph: Graph) -> list[Node]:
    """Nodes so that every tensor is produced before it is read (Kahn's algorithm, O(V + E))."""
    producer: dict[str, int] = {}
    for k, node in enumerate(graph.nodes):
        for out in node.outputs:
            if out in producer:
                raise ModelError(f"tensor {out!r} is produced by two nodes")
            producer[out] = k
    available = {graph.input.name, *graph.constants, *graph.other_inputs}
    waiting = [0] * len(graph.nodes)
    readers: list[list[int]] = [[] for _ in graph.nodes]
    for k, node in enumerate(graph.nodes):
        deps = set()
        for name in (*node.inputs, *node.params):
            if not name or name in available:
                continue
            src = producer.get(name)
            if src is None:
                raise ModelError(
                    f"node {node.name!r} reads tensor {name!r}, which nothing produces"
                )
            deps.add(src)
        waiting[k] = len(deps)
        for src in deps:
            readers[src].append(k)
    ready = deque(k for k, w in enumerate(waiting) if w == 0)
    order: list[Node] = []
    while ready:
        k = ready.popleft()
        order.append(graph.nodes[k])
        for r in readers[k]:
            waiting[r] -= 1
            if waiting[r] == 0:
                ready.append(r)
    if len(order) != len(graph.nodes):
        stuck = [graph.nodes[k].name for k, w in enumerate(waiting) if w > 0][:3]
        raise ModelError(f"the graph has a cycle (through {', '.join(map(repr, stuck))})")
    return order


def feeds_outputs(graph: Graph, order: list[Node]) -> set[str]:
    """Tensors from which some graph output can be reached."""
    useful: set[str | None] = set(graph.outputs)
    for node in reversed(order):
        for out in node.outputs:
            if out in useful:
                useful.update(node.inputs)
                useful.update(node.params)
                break
    return {n for n in useful if n}  # not the empty names of absent optional inputs
