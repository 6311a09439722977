"""``cnnprobe design``: the same analysis for a planned network written in the spec language
(:mod:`cnnprobe.frontends.spec`), plus the smallest changes that make the last spatial layer see
the full input, each one checked with the engine before it is offered."""

from __future__ import annotations

from dataclasses import dataclass, replace

from .api import analyze_graph
from .frontends.spec import LayerSpec, parse_sizes, parse_spec, spec_graph
from .results import AnalysisResult

#: candidates kept per search depth, and the deepest search
BEAM = 24
MAX_EDITS = 5


@dataclass(frozen=True)
class Suggestion:
    edits: tuple[str, ...]
    spec: str
    rf: tuple[int | None, ...]
    size: tuple[int | None, ...]
    total_stride: str


@dataclass(frozen=True)
class DesignResult:
    spec: str
    result: AnalysisResult
    suggestions: tuple[Suggestion, ...]


# an edit is (kind, index): "pool" inserts maxpool2 after layer index (-1: before the first),
# "stride" sets stride 2 on conv index, "dilate" doubles its dilation, "append" adds a conv
Edit = tuple[str, int]


def _apply(layers: list[LayerSpec], edits: frozenset[Edit]) -> tuple[list[LayerSpec], list[str]]:
    out: list[LayerSpec] = []
    words: list[str] = []
    ndim = len(layers[0].kernel) if layers[0].kernel else 2
    pool = LayerSpec("maxpool", (2,) * ndim)
    if ("pool", -1) in edits:
        out.append(pool)
        words.append("insert maxpool2 before the first layer")
    for i, layer in enumerate(layers):
        new = layer
        if ("stride", i) in edits:
            new = replace(new, stride=2)
            words.append(f"stride 2 in layer {i + 1} ({layer.text()})")
        if ("dilate", i) in edits:
            new = replace(new, dilation=layer.dilation * 2)
            words.append(f"dilation {layer.dilation * 2} in layer {i + 1} ({layer.text()})")
        out.append(new)
        if ("pool", i) in edits:
            out.append(pool)
            words.append(f"insert maxpool2 after layer {i + 1} ({layer.text()})")
    extra = sum(1 for e in edits if e[0] == "append")
    convs = [lay for lay in layers if lay.kind == "conv"]
    if extra:
        tail = convs[-1] if convs else LayerSpec("conv", (3,) * ndim)
        out.extend([replace(tail, stride=None)] * extra)
        words.append(f"append {extra} × {replace(tail, stride=None).text()}")
    return out, words


def _moves(layers: list[LayerSpec], edits: frozenset[Edit]) -> list[Edit]:
    moves: list[Edit] = [("pool", i) for i in range(-1, len(layers))]
    for i, layer in enumerate(layers):
        if layer.kind == "conv":
            if (layer.stride or 1) == 1:
                moves.append(("stride", i))
            moves.append(("dilate", i))
    n_append = sum(1 for e in edits if e[0] == "append")
    moves.append(("append", n_append))
    return [m for m in moves if m not in edits]


def _score(result: AnalysisResult) -> tuple[float, float]:
    v = result.verdict
    return (v.area_min or 0.0, v.area_centre or 0.0)


def suggest(layers: list[LayerSpec], sizes: tuple[int, ...], limit: int = 3) -> list[Suggestion]:
    """Smallest edit sets (beam search by coverage) whose network sees the full input."""
    found: list[tuple[int, float, Suggestion]] = []
    beam: list[frozenset[Edit]] = [frozenset()]
    seen: set[frozenset[Edit]] = {frozenset()}
    for depth in range(1, MAX_EDITS + 1):
        scored: list[tuple[tuple[float, float], frozenset[Edit]]] = []
        for base in beam:
            for move in _moves(layers, base):
                edits = base | {move}
                if edits in seen:
                    continue
                seen.add(edits)
                cand, words = _apply(layers, edits)
                result = analyze_graph(spec_graph(cand, sizes, "suggestion"))
                v = result.verdict
                if any(lay.status != "ok" for lay in result.layers):
                    continue
                if v.sees_full_input and v.last_spatial_layer:
                    sizes_out = tuple(a.size for a in result.layer(v.last_spatial_layer).axes)
                    units = 1.0
                    for n in sizes_out:
                        units *= n or 0
                    found.append(
                        (
                            depth,
                            -units,
                            Suggestion(
                                tuple(words),
                                ",".join(c.text() for c in cand),
                                v.rf,
                                sizes_out,
                                "×".join(str(j) for j in v.total_stride),
                            ),
                        )
                    )
                else:
                    scored.append((_score(result), edits))
        if found:
            break
        scored.sort(key=lambda t: t[0], reverse=True)
        beam = [e for _, e in scored[:BEAM]]
        if not beam:
            break
    found.sort(key=lambda t: (t[0], t[1]))
    return [s for _, _, s in found[:limit]]


def design(
    spec: str, input_sizes: str | tuple[int, ...], with_suggestions: bool = True
) -> DesignResult:
    sizes = parse_sizes(input_sizes) if isinstance(input_sizes, str) else tuple(input_sizes)
    layers = parse_spec(spec, len(sizes))
    label = f"design: {','.join(layer.text() for layer in layers)}"
    result = analyze_graph(spec_graph(layers, sizes, label))
    suggestions: list[Suggestion] = []
    if with_suggestions and result.verdict.sees_full_input is False:
        suggestions = suggest(layers, sizes)
    return DesignResult(spec, result, tuple(suggestions))
