"""Whole-model answers: downsampling stages, the last spatial layer and what it sees, where every
unit first sees the whole input, and where the network goes global."""

from __future__ import annotations

from fractions import Fraction
from math import prod

from ..ir import Graph
from ..results import OK, LayerResult, OutputGeometry, Stage, Verdict
from .graph_order import feeds_outputs
from .receptive_field import Propagation

GLOBAL_KINDS = {
    "reduce": "global pooling / reduction over positions",
    "dense": "dense layer over flattened positions",
    "gemm": "dense layer over flattened positions",
    "matmul": "matrix product over positions (a dense layer, or attention)",
    "einsum": "a sum over positions (Einsum)",
    "mix": "normalisation or softmax over positions",
    "recurrent": "recurrent layer over positions",
    "elementwise": "a global result merged back onto the feature map (squeeze-excitation)",
    "window": "a convolution over positions folded into channels",
}


#: operators whose kind above would not say what they do
GLOBAL_OPS = {
    "TopK": "a top-k selection over positions",
    "GatherElements": "elements picked at positions computed from all of them",
}


def make_verdict(graph: Graph, prop: Propagation) -> Verdict:
    useful = feeds_outputs(prop.plan)
    plan = prop.plan
    nsp = len(graph.input.spatial_axes)
    input_size = tuple(graph.input.shape[t] for t in graph.input.spatial_axes)
    ones: tuple[Fraction | None, ...] = tuple(Fraction(1) for _ in range(nsp))

    # one pass over the layers in graph order (each is read once: large models do not fit in
    # the processor's caches); only layers that feed an output count, except as stage sources
    layer_of = prop.layer_of
    last: LayerResult | None = None  # the last spatial layer
    # layers after an unknown op have no trusted layout: the real last spatial layer may be
    # among them, so nothing is claimed about what "the last spatial layer" sees
    unsure_after = False
    first_full = first_global = global_spatial = None
    certain = True
    stages: list[Stage] = []
    for ins, outs in zip(plan.inputs, plan.outputs):
        for out in outs:
            lay = layer_of[out]
            if lay is None or not useful[out]:
                continue
            ok = lay.status == OK
            certain = certain and ok
            if lay.is_spatial and ok:
                last, unsure_after = lay, False
            elif not ok and last is not None:
                unsure_after = True  # the real last spatial layer may come later
            if first_full is None and lay.sees_full_input:
                first_full = lay
            if ok and (first_global is None or global_spatial is None) and lay.is_global:
                first_global = first_global or lay
                if global_spatial is None and lay.is_spatial:
                    global_spatial = lay
            if not ok or not lay.is_spatial:
                continue
            src = next((s for n in ins if (s := layer_of[n]) is not None), None)
            if src is not None and (src.axes is lay.axes or src.status != OK or not src.is_spatial):
                continue  # (the same axes: the layer passed its input through)
            before = tuple(a.jump for a in src.axes) if src is not None else ones
            after = tuple(a.jump for a in lay.axes)
            # jumps are shared Fraction objects: compare identities first (Fraction == is slow)
            if any(
                a is not b and b is not None and a is not None and a != b
                for a, b in zip(after, before)
            ):
                stages.append(Stage(lay.name, lay.op, before, after))

    def axes_of(lay: LayerResult | None, attr: str) -> tuple:  # type: ignore[type-arg]
        if lay is None:
            return tuple(None for _ in range(nsp))
        return tuple(getattr(a, attr) for a in lay.axes)

    cov_c = axes_of(last, "coverage_centre")
    cov_m = axes_of(last, "coverage_min")
    return Verdict(
        input_size=input_size,
        last_spatial_layer=last.name if last else None,
        rf=axes_of(last, "rf"),
        jump=axes_of(last, "jump"),
        start=axes_of(last, "start"),
        total_stride=axes_of(last, "jump"),
        sees_full_input=last.sees_full_input if last and not unsure_after else None,
        coverage_centre=cov_c,
        coverage_min=cov_m,
        area_centre=None if any(c is None for c in cov_c) else prod(cov_c),
        area_min=None if any(c is None for c in cov_m) else prod(cov_m),
        first_full_coverage_layer=first_full.name if first_full else None,
        first_global_layer=first_global.name if first_global else None,
        global_kind=(
            GLOBAL_OPS.get(first_global.op)
            or GLOBAL_KINDS.get(first_global.kind, first_global.op)
            if first_global
            else None
        ),
        global_while_spatial=global_spatial.name if global_spatial else None,
        stages=tuple(stages),
        certain=certain,
        outputs=_outputs(graph, prop),
    )


def _outputs(graph: Graph, prop: Propagation) -> tuple[OutputGeometry, ...]:
    wanted = set(graph.outputs)
    found = {}
    names = prop.plan.names
    for n in range(len(names) - 1, -1, -1):  # (outputs come late as a rule: stop when all found)
        if names[n] in wanted:
            found[names[n]] = prop.layer_of[n]
            if len(found) == len(wanted):
                break
    out = []
    inp = graph.input
    sizes = [inp.shape[t] for t in inp.spatial_axes]
    for name in graph.outputs:
        lay = found.get(name)
        if name == inp.name:  # (the input itself: each unit is one pixel)
            n = len(sizes)
            full = all(d == 1 for d in sizes)
            ones, jumps, zeros = (1,) * n, (Fraction(1),) * n, (0,) * n
            out.append(OutputGeometry(name, None, inp.shape, True, ones, jumps, zeros, full, OK))
            continue
        if lay is None:
            out.append(OutputGeometry(name, None, (), False, (), (), (), None, OK))
            continue
        out.append(
            OutputGeometry(
                name,
                lay.name,
                lay.output_shape,
                lay.is_spatial and lay.status == OK,
                tuple(lay.rf),
                tuple(lay.jump),
                tuple(lay.start),
                lay.sees_full_input,
                lay.status,
            )
        )
    return tuple(out)
