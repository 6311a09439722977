"""The Python API: ``cnnprobe.analyze(path)`` returns an :class:`~cnnprobe.results.AnalysisResult`.

The CLI is a thin layer over this function.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

from .analysis.receptive_field import Propagation, propagate
from .analysis.verdict import make_verdict
from .errors import UsageError
from .frontends import load_graph
from .ir import Graph
from .results import OK, AnalysisResult, InputInfo, ModelInfo


def parse_shape(text: str) -> tuple[int, ...]:
    """``"1x3x224x224"`` -> ``(1, 3, 224, 224)``."""
    parts = text.lower().replace(",", "x").split("x")
    try:
        dims = tuple(int(p) for p in parts)
    except ValueError:
        raise UsageError(f"--input-shape {text!r}: expected integers separated by 'x'") from None
    if not dims or any(d <= 0 for d in dims):
        raise UsageError(f"--input-shape {text!r}: every dimension must be a positive integer")
    return dims


def analyze(
    path: str | os.PathLike[str],
    *,
    input_name: str | None = None,
    input_shape: Sequence[int] | str | None = None,
    layout: str = "auto",
    assume_pointwise: Iterable[str] = (),
) -> AnalysisResult:
    """Read a model file and compute per-layer receptive fields and the whole-model verdict.

    ``input_name`` picks the image input when there are several; ``input_shape`` fixes symbolic
    or missing dims (a sequence or ``"1x3x224x224"``); ``layout`` is ``auto``, ``nchw`` or
    ``nhwc``; ``assume_pointwise`` names custom operators to treat as pointwise.
    """
    shape = (
        parse_shape(input_shape)
        if isinstance(input_shape, str)
        else (tuple(int(d) for d in input_shape) if input_shape is not None else None)
    )
    with no_gc():
        graph = load_graph(os.fspath(path), input_name, shape, layout)
        return analyze_graph(graph, assume_pointwise)


@contextmanager
def no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector. The analysis and its reports allocate many small
    acyclic objects: collections in the middle of them would scan every live one again and again,
    and reference counting frees the rest.

    When the collector resumes, what was allocated meanwhile would all be young, and the first
    allocation after it would scan it at once (hundreds of thousands of objects for a large
    model: longer than some of the analysis). What is still alive then is the result, long-lived
    data: ``gc.freeze()`` + ``gc.unfreeze()`` put it (with the caller's young objects) in the
    oldest generation without scanning it, where any long-lived data waits for full collections.
    (Not when the caller keeps frozen objects of its own: unfreezing would release them.)
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            if gc.get_freeze_count() == 0:
                gc.freeze()
                gc.unfreeze()
            gc.enable()


#: At most this many rebuilds of a graph with shapes the analysis computed. Each round must
#: learn new shapes; a chain of operands each computed from the shape of a tensor past the
#: previous one (YOLO's C2f blocks: ``chunk`` as a Slice whose bounds come from ``Shape``)
#: settles one link per round.
REFINE_ROUNDS = 256
#: ... and at most this many nodes analysed by them all together (a long chain in a large
#: model would otherwise take rounds x nodes)
REFINE_BUDGET = 400_000


def refined(graph: Graph, assume_pointwise: Iterable[str] = ()) -> Graph:
    """``graph`` rebuilt by its frontend with the shapes the analysis computes, while that settles
    operands the frontend could not work out from the file (``Graph.unresolved``): a reshape
    target computed from the shape of a tensor that only the analysis knows. Only shapes of
    layers whose figures are exact are handed over."""
    return _refined(graph, tuple(assume_pointwise))[0]


def _refined(graph: Graph, pointwise: tuple[str, ...]) -> tuple[Graph, Propagation | None]:
    """:func:`refined`, and the analysis of the graph it returns when it made one last."""
    before = len(graph.unresolved)
    known_before = -1
    prop: Propagation | None = None
    spent = 0
    for rounds in range(REFINE_ROUNDS):
        prop = None
        if graph.refine is None or not graph.unresolved:
            break
        if rounds and spent + len(graph.nodes) > REFINE_BUDGET:
            graph.meta["refine_stopped"] = (
                f"rebuilding with computed shapes stopped after {rounds} rounds ({spent} nodes "
                f"analysed): {len(graph.unresolved)} operand(s) left unresolved stay uncertain"
            )
            break
        spent += len(graph.nodes)
        prop = propagate(graph, pointwise)
        known = {
            lay.output: lay.output_shape
            for lay in prop.layers
            if lay.status == OK and all(d is not None for d in lay.output_shape)
        }
        if len(known) <= known_before:
            break  # no progress: the analysis learnt no new shape
        known_before = len(known)
        better = graph.refine(known)
        if len(better.unresolved) > len(graph.unresolved):
            break
        graph, prop = better, None
        settled = before - len(graph.unresolved)
        if settled > 0:
            graph.meta["refined"] = (
                f"{settled} operand(s) settled with shapes computed by the analysis (the file's "
                "shape inference could not)"
            )
    return graph, prop


def analyze_graph(graph: Graph, assume_pointwise: Iterable[str] = ()) -> AnalysisResult:
    """Analyse an IR graph built by a frontend (or by hand)."""
    pointwise = tuple(assume_pointwise)
    graph, prop = _refined(graph, pointwise)
    if prop is None:  # (the last round's analysis is of this very graph otherwise)
        prop = propagate(graph, pointwise)
    verdict = make_verdict(graph, prop)
    inp = graph.input
    model = ModelInfo(
        path=graph.path,
        format=graph.format,
        input=InputInfo(inp.name, inp.shape, inp.layout, inp.spatial_axes),
        meta=dict(graph.meta),
    )
    return AnalysisResult(model, tuple(prop.layers), verdict, tuple(prop.diagnostics))
