"""Operands computed from shapes that only the analysis knows.

ONNX shape inference stops at operators it has no schema for (onnxruntime's contrib ops, custom
ops). A reshape target computed from the shape of such an op's output (``Shape -> Gather ->
Concat -> Reshape``, as exporters write it) is then unknown to the frontend; the analysis knows
that shape, and the graph is rebuilt with it (``cnnprobe.api.refined``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from cnnprobe import analyze
from cnnprobe.frontends import load_graph


def _model(tmp_path: Path) -> Path:
    """x [1, 2, 8, 6] -> conv 3x3 'same' -> MyAct (custom) -> reshape to [N, C, H*W] with the
    target built from MyAct's shape -> softmax over the positions -> reshape back [1, 2, 8, 6]
    (static) -> conv 3x3."""
    w = numpy_helper.from_array(np.ones((2, 2, 3, 3), np.float32), "w")
    idx = numpy_helper.from_array(np.array([0, 1], np.int64), "idx")
    flat = numpy_helper.from_array(np.array([-1], np.int64), "flat")
    back = numpy_helper.from_array(np.array([1, 2, 8, 6], np.int64), "back")
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[3, 3], pads=[1] * 4, name="conv"),
        helper.make_node("MyAct", ["c"], ["a"], domain="my.ops", name="act"),
        helper.make_node("Shape", ["a"], ["s"], name="shape"),
        helper.make_node("Gather", ["s", "idx"], ["nc"], axis=0, name="gather"),
        helper.make_node("Concat", ["nc", "flat"], ["target"], axis=0, name="concat"),
        helper.make_node("Reshape", ["a", "target"], ["r"], name="reshape"),
        helper.make_node("Softmax", ["r"], ["sm"], axis=-1, name="softmax"),
        helper.make_node("Reshape", ["sm", "back"], ["b"], name="back"),
        helper.make_node("Conv", ["b", "w"], ["y"], kernel_shape=[3, 3], name="conv2"),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 8, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w, idx, flat, back],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("my.ops", 1)]
    )
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    return path


def test_target_settled_with_the_analysis_shapes(tmp_path: Path) -> None:
    path = _model(tmp_path)
    graph = load_graph(str(path))
    assert graph.unresolved == ("reshape",) and graph.refine is not None
    r = analyze(path, assume_pointwise=["MyAct"])
    assert r.verdict.certain, [d.message for d in r.diagnostics]
    assert r.layer("reshape").output_shape == (1, 2, 48)
    # softmax over all 48 positions: every unit sees the whole 8x6 input from there on
    assert r.layer("softmax").is_global and r.verdict.first_full_coverage_layer == "softmax"
    assert r.layer("conv2").output_shape == (1, 2, 6, 4)
    assert r.model.meta["refined"].startswith("1 operand(s) settled")


def test_without_the_shape_the_reshape_stays_uncertain(tmp_path: Path) -> None:
    """MyAct not declared: its output shape is unknown to the analysis too, so nothing settles
    (one rebuild is tried, with no progress) and the figures after it stay withheld."""
    r = analyze(_model(tmp_path))
    assert not r.verdict.certain
    assert r.verdict.last_spatial_layer == "conv"
    assert any(d.code == "unknown-op" for d in r.diagnostics)


def test_the_rebuild_is_what_settles_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cnnprobe import api

    monkeypatch.setattr(api, "REFINE_ROUNDS", 0)
    r = analyze(_model(tmp_path), assume_pointwise=["MyAct"])
    assert not r.verdict.certain
    assert [d.where for d in r.diagnostics if d.code == "bad-op"] == ["reshape"]


def test_a_partly_recorded_shape_is_completed(tmp_path: Path) -> None:
    """The file records MyAct's output as [N, 2, H, W] (symbolic, as exporters write it): the
    analysis's complete shape fills the unknown dims and the target settles all the same."""
    model = onnx.load(str(_model(tmp_path)))
    model.graph.value_info.append(
        helper.make_tensor_value_info("a", TensorProto.FLOAT, ["N", 2, "H", "W"])
    )
    path = tmp_path / "partial.onnx"
    onnx.save(model, path)
    r = analyze(path, assume_pointwise=["MyAct"])
    assert r.verdict.certain, [d.message for d in r.diagnostics]
    assert r.layer("reshape").output_shape == (1, 2, 48)


def _chunk_chain(tmp_path: Path, blocks: int) -> Path:
    """``blocks`` x (conv 3x3 'same' 8 -> 16 channels, ``a, b = y.chunk(2, 1)``, ``a + b``), as
    torch.onnx writes ``chunk``: Slices whose bounds come from Shape -> Gather -> Add -> Div ->
    Mul of the conv's output (ONNX shape inference does not follow Div). Each block's bounds
    need the shape of a tensor after the previous block's Slices."""
    def const(name: str, value: int, scalar: bool = False) -> onnx.NodeProto:
        arr = np.array(value if scalar else [value], dtype=np.int64)
        return helper.make_node(
            "Constant", [], [name], value=numpy_helper.from_array(arr, name)
        )

    rng = np.random.default_rng(0)
    nodes: list[onnx.NodeProto] = []
    inits = []
    x = "x"
    for b in range(blocks):
        p = f"b{b}"
        w = numpy_helper.from_array(
            rng.standard_normal((16, 8, 3, 3)).astype(np.float32), f"{p}.w"
        )
        inits.append(w)
        nodes += [
            helper.make_node("Conv", [x, w.name], [f"{p}.y"], name=f"{p}/conv", pads=[1] * 4),
            helper.make_node("Shape", [f"{p}.y"], [f"{p}.shape"], name=f"{p}/shape"),
            const(f"{p}.axis", 1),
            helper.make_node(
                "Gather", [f"{p}.shape", f"{p}.axis"], [f"{p}.c"], name=f"{p}/gather", axis=0
            ),
            const(f"{p}.zero", 0),
            const(f"{p}.one", 1),
            helper.make_node("Add", [f"{p}.c", f"{p}.one"], [f"{p}.c1"], name=f"{p}/add"),
            const(f"{p}.two", 2),
            helper.make_node("Div", [f"{p}.c1", f"{p}.two"], [f"{p}.half"], name=f"{p}/div"),
            helper.make_node("Mul", [f"{p}.half", f"{p}.one"], [f"{p}.end"], name=f"{p}/mul"),
            helper.make_node("Mul", [f"{p}.half", f"{p}.two"], [f"{p}.end2"], name=f"{p}/mul2"),
            helper.make_node(
                "Slice", [f"{p}.y", f"{p}.zero", f"{p}.end", f"{p}.axis"], [f"{p}.a"],
                name=f"{p}/slice_a",
            ),
            helper.make_node(
                "Slice", [f"{p}.y", f"{p}.end", f"{p}.end2", f"{p}.axis"], [f"{p}.b"],
                name=f"{p}/slice_b",
            ),
            helper.make_node("Add", [f"{p}.a", f"{p}.b"], [f"{p}.out"], name=f"{p}/merge"),
        ]
        x = f"{p}.out"
    graph = helper.make_graph(
        nodes,
        "chunks",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 16, 16])],
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, None)],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "chunks.onnx"
    onnx.save(model, path)
    return path


def test_a_chain_of_chunks_settles_link_by_link(tmp_path: Path) -> None:
    """YOLOv8's C2f blocks, 12 in a row: every Slice settles (one block per round: it used to
    stop after 6 rounds, leaving the rest of the network uncertain). 12 convs 3x3 'same':
    r = 1 + 12*2 = 25, start -12."""
    r = analyze(_chunk_chain(tmp_path, 12))
    assert r.verdict.certain, [d.message for d in r.diagnostics][:3]
    last = r.layer("b11/merge")
    assert last.output_shape == (1, 8, 16, 16)
    assert last.rf == [25, 25] and last.start == [-12, -12]
    # (the first block's bounds fold from the conv shape ONNX inference gives; the 11 others'
    # two Slice bounds each are settled by the rebuilds)
    assert r.model.meta["refined"].startswith("22 operand(s) settled")


def test_rebuilding_stops_within_its_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each rebuild analyses the whole graph again: past a budget of analysed nodes it stops, says
    so, and what is still unresolved stays uncertain (never guessed)."""
    from cnnprobe import api

    path = _chunk_chain(tmp_path, 12)
    nodes = len(load_graph(str(path), None, None, "auto").nodes)
    monkeypatch.setattr(api, "REFINE_BUDGET", 3 * nodes)
    r = analyze(path)
    assert not r.verdict.certain
    stopped = r.model.meta["refine_stopped"]
    assert stopped.startswith("rebuilding with computed shapes stopped after 3 rounds")
    from cnnprobe.report.words import verdict_lines

    assert f"  Note: {stopped}." in verdict_lines(r)
    assert r.model.meta["refined"].startswith("6 operand(s) settled")
