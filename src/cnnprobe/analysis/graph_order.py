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
    constants = graph.constants  # (not copied: a large model has tens of thousands)
    inputs = {graph.input.name, *graph.other_inputs}
    waiting = [0] * len(graph.nodes)
    readers: list[list[int]] = [[] for _ in graph.nodes]
    for k, node in enumerate(graph.nodes):
        deps = set()
        for name in (*node.inputs, *node.params):
            if not name or name in constants or name in inputs:
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
    """Tensors computed by nodes (or given as graph inputs) from which some graph output can be
    reached; constants are left out."""
    useful = set(graph.outputs)
    constants = graph.constants  # weights: most names of a model, never produced by a node
    for node in reversed(order):
        for out in node.outputs:
            if out in useful:
                useful.update(n for n in node.inputs if n and n not in constants)
                useful.update(n for n in node.params if n not in constants)
                break
    return useful
