"""Model-local ONNX functions (``ModelProto.functions``): calls are replaced by their bodies.

References: onnx's own inliner (``onnx.inliner.inline_local_functions``) for what a call means,
onnxruntime (which runs models with functions) for which input pixels each unit reads, and
figures worked out by hand from the operator definitions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnx.inliner
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from typer.testing import CliRunner

from cnnprobe import analyze
from cnnprobe.cli import app
from cnnprobe.frontends import onnx_functions
from cnnprobe.frontends.onnx_wire import read_model_bytes
from cnnprobe.results import AnalysisResult
from oracle import measure_intervals
from paths import SAMPLES

TORCH = SAMPLES / "torch_functions.onnx"
OPSET = [helper.make_opsetid("", 17), helper.make_opsetid("local", 1)]
runner = CliRunner()


def _save(model: onnx.ModelProto, path: Path) -> Path:
    path.write_bytes(model.SerializeToString())
    return path


def _geometry(r: AnalysisResult) -> list[tuple[Any, ...]]:
    """Everything a layer reports except its name (inlined tensors are named differently)."""
    return [
        (
            lay.op,
            lay.kind,
            lay.output_shape,
            lay.status,
            lay.axes,
            [
                [lay.real_interval(a, k) for k in range(ax.size or 0)]
                for a, ax in enumerate(lay.axes)
            ],
        )
        for lay in r.layers
    ]


# ---------------------------------------------------------------------------------------------
# a PyTorch export (export_modules_as_functions): nested functions, attributes given per call


def test_reader_reads_functions_as_onnx_does() -> None:
    ours = read_model_bytes(TORCH.read_bytes())
    theirs = onnx.load(str(TORCH))
    assert len(ours.functions) == len(theirs.functions) == 2
    for f, g in zip(ours.functions, theirs.functions):
        assert (f.name, f.domain, f.overload) == (g.name, g.domain, g.overload)
        assert f.input == tuple(g.input) and f.output == tuple(g.output)
        assert set(f.attribute) == set(g.attribute) | {a.name for a in g.attribute_proto}
        assert [(n.op_type, n.domain, n.input, n.output) for n in f.node] == [
            (n.op_type, n.domain, tuple(n.input), tuple(n.output)) for n in g.node
        ]
        for n, refs, gn in zip(f.node, f.refs, g.node):
            assert refs == {a.name: a.ref_attr_name for a in gn.attribute if a.ref_attr_name}
            assert set(n.attrs) == {a.name for a in gn.attribute if not a.ref_attr_name}


def test_torch_functions_analyse_like_onnx_inliner_output(tmp_path: Path) -> None:
    result = analyze(TORCH)
    assert result.verdict.certain, [d.message for d in result.diagnostics]
    # Block three times, each calling ConvAct
    assert result.model.meta["functions"] == (
        "6 calls of model-local functions __main__.Block, __main__.ConvAct inlined"
    )
    inlined = _save(onnx.inliner.inline_local_functions(onnx.load(str(TORCH))), tmp_path / "i.onnx")
    reference = analyze(inlined)
    assert _geometry(result) == _geometry(reference)
    names = [lay.name for lay in result.layers]
    assert "/b2/Block/ConvAct_0/Conv_5" in names and len(set(names)) == len(names)


def test_torch_functions_intervals_match_onnxruntime(tmp_path: Path) -> None:
    """Every unit of every spatial layer inside the functions reads exactly the input pixels
    onnxruntime shows it depends on (measured on onnx's inlined copy, whose inner tensors can be
    model outputs; layers matched by position)."""
    result = analyze(TORCH)
    inlined_model = onnx.inliner.inline_local_functions(onnx.load(str(TORCH)))
    reference = analyze(_save(inlined_model, tmp_path / "i.onnx"))
    rank = len(result.model.input.shape)
    pairs = [
        (lay, ref)
        for lay, ref in zip(result.layers, reference.layers)
        if lay.is_spatial and not lay.is_global and len(lay.output_shape) == rank
    ]
    assert len(pairs) >= 15
    shape = tuple(1 if d is None else d for d in result.model.input.shape)
    measured = measure_intervals(
        inlined_model,
        result.model.input.name,
        [ref.output for _, ref in pairs],
        spatial_axes_in=result.model.input.spatial_axes,
        input_shape=shape,
    )
    for lay, ref in pairs:
        for a in range(2):
            units = measured[ref.output][a]
            assert [lay.real_interval(a, k) for k in range(len(units))] == units, lay.name


def test_inlined_figures_by_hand() -> None:
    """37x29 input. stem 3x3/2: r 3, jump 2, start 0. Block b2's ConvAct (5x5, stride 2, pad 2)
    comes after b1 (r 11, start -4): r 11 + 4*2 = 19, jump 4, start -4 - 2*2 = -8. b3's ConvAct
    is dilated (3x3, dilation 2, pad 2) after b2 (r 27, start -12): r 27 + 4*4 = 43, start
    -12 - 2*4 = -20."""
    layers = {lay.name: lay for lay in analyze(TORCH).layers}
    for name, rf, jump, start in [
        ("/stem/Conv", 3, 2, 0),
        ("/b1/Block/ConvAct_0/Conv_5", 7, 2, -2),
        ("/b2/Block/ConvAct_0/Conv_5", 19, 4, -8),
        ("/b2/Block/Conv_2", 11, 4, -4),
        ("/b3/Block/ConvAct_0/Conv_5", 43, 4, -20),
    ]:
        lay = layers[name]
        assert lay.rf == [rf, rf] and lay.jump == [jump, jump] and lay.start == [start, start]
    assert layers["/b3/Block/ConvAct_0/Conv_5"].axes[0].dilation == 2


# ---------------------------------------------------------------------------------------------
# hand-built functions


def _pool_function(
    name: str = "Pool", overload: str | None = None, default: list[int] | None = None
) -> onnx.FunctionProto:
    """MaxPool whose kernel is the caller's attribute ``k`` (default ``default``)."""
    node = helper.make_node("MaxPool", ["x"], ["y"], strides=[1, 1])
    ref = onnx.AttributeProto()
    ref.name, ref.ref_attr_name, ref.type = "kernel_shape", "k", onnx.AttributeProto.INTS
    node.attribute.append(ref)
    protos = [helper.make_attribute("k", default)] if default is not None else None
    return helper.make_function(
        "local", name, ["x"], ["y"], [node], [helper.make_opsetid("", 17)],
        attributes=None if protos else ["k"], attribute_protos=protos, overload=overload,
    )


def _model(nodes: list[onnx.NodeProto], functions: list[onnx.FunctionProto],
           size: int = 20, ir: int = 8) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, size, size])
    y = helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, None)
    graph = helper.make_graph(nodes, "g", [x], [y])
    model = helper.make_model(graph, opset_imports=OPSET, functions=functions)
    model.ir_version = ir
    return model


def test_attribute_given_by_the_call_or_the_default(tmp_path: Path) -> None:
    """20x20 -> pool k=5 (given) -> 16x16, r 5 -> pool k=3 (the default) -> 14x14, r 7."""
    model = _model(
        [
            helper.make_node("Pool", ["x"], ["a"], domain="local", name="p1", k=[5, 5]),
            helper.make_node("Pool", ["a"], ["b"], domain="local", name="p2"),
        ],
        [_pool_function(default=[3, 3])],
    )
    path = _save(model, tmp_path / "m.onnx")
    out = ort.InferenceSession(str(path)).run(None, {"x": np.zeros((1, 1, 20, 20), np.float32)})
    assert out[0].shape == (1, 1, 14, 14)
    r = analyze(path)
    assert r.verdict.certain
    assert [(lay.name, lay.output_shape, lay.rf) for lay in r.layers] == [
        ("p1/MaxPool", (1, 1, 16, 16), [5, 5]),
        ("p2/MaxPool", (1, 1, 14, 14), [7, 7]),
    ]
    assert r.model.meta["functions"] == "2 calls of model-local function local.Pool inlined"


def test_overloads_pick_their_own_body(tmp_path: Path) -> None:
    """Two functions local.Pool, overloads 'small' (k 3) and 'large' (k 5): a 'large' call then
    a 'small' one: r 5, then 7."""
    calls = [
        helper.make_node("Pool", ["x"], ["a"], domain="local", name="p1", overload="large"),
        helper.make_node("Pool", ["a"], ["b"], domain="local", name="p2", overload="small"),
    ]
    functions = [
        _pool_function(overload="small", default=[3, 3]),
        _pool_function(overload="large", default=[5, 5]),
    ]
    r = analyze(_save(_model(calls, functions, ir=10), tmp_path / "m.onnx"))
    assert [lay.rf for lay in r.layers] == [[5, 5], [7, 7]]


def test_output_passed_through_and_unused_outputs(tmp_path: Path) -> None:
    """A function returning its input unchanged besides a pooled copy: the caller's pass-through
    output is the input (r 1); the pooled output (r 3) is used only when the caller names it."""
    body = [helper.make_node("MaxPool", ["x"], ["p"], kernel_shape=[3, 3])]
    f = helper.make_function("local", "Both", ["x"], ["p", "x"], body, [OPSET[0]])
    model = _model(
        [
            helper.make_node("Both", ["x"], ["", "same"], domain="local", name="call"),
            helper.make_node("MaxPool", ["same"], ["y"], kernel_shape=[2, 2], name="after"),
        ],
        [f],
    )
    r = analyze(_save(model, tmp_path / "m.onnx"))
    assert r.verdict.certain
    layers = {lay.name: lay for lay in r.layers}
    assert layers["after"].rf == [2, 2] and layers["after"].output_shape == (1, 1, 19, 19)
    assert layers["call/MaxPool"].rf == [3, 3]


def test_inner_names_never_collide_with_the_graphs(tmp_path: Path) -> None:
    """The main graph already has a tensor named like the inlined inner tensor would be."""
    body = [
        helper.make_node("MaxPool", ["x"], ["t"], kernel_shape=[3, 3]),
        helper.make_node("MaxPool", ["t"], ["y"], kernel_shape=[3, 3]),
    ]
    f = helper.make_function("local", "Two", ["x"], ["y"], body, [OPSET[0]])
    model = _model(
        [
            helper.make_node("MaxPool", ["x"], ["c/t"], kernel_shape=[2, 2], name="first"),
            helper.make_node("Two", ["c/t"], ["z"], domain="local", name="c"),
        ],
        [f],
    )
    r = analyze(_save(model, tmp_path / "m.onnx"))
    assert r.verdict.certain
    assert [lay.rf for lay in r.layers] == [[2, 2], [4, 4], [6, 6]]
    assert len({lay.output for lay in r.layers}) == 3


def _bad(tmp_path: Path, model: onnx.ModelProto, needle: str) -> None:
    path = _save(model, tmp_path / "bad.onnx")
    res = runner.invoke(app, ["summary", str(path)])
    assert res.exit_code == 2 and res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and needle in lines[0], res.stderr


def test_recursive_functions_are_an_error(tmp_path: Path) -> None:
    a = helper.make_function(
        "local", "A", ["x"], ["y"], [helper.make_node("B", ["x"], ["y"], domain="local")], OPSET
    )
    b = helper.make_function(
        "local", "B", ["x"], ["y"], [helper.make_node("A", ["x"], ["y"], domain="local")], OPSET
    )
    model = _model([helper.make_node("A", ["x"], ["y"], domain="local")], [a, b])
    needle = "model-local function 'local.A' calls itself (local.A -> local.B -> local.A)"
    _bad(tmp_path, model, needle)


def test_exponential_expansion_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """F0 is a MaxPool; F(i) calls F(i-1) twice: F20 would be 2**20 nodes."""
    monkeypatch.setattr(onnx_functions, "MAX_NODES", 5000)
    functions = [_pool_function("F0", default=[1, 1])]
    for i in range(1, 21):
        body = [
            helper.make_node(f"F{i - 1}", ["x"], ["t"], domain="local"),
            helper.make_node(f"F{i - 1}", ["t"], ["y"], domain="local"),
        ]
        functions.append(helper.make_function("local", f"F{i}", ["x"], ["y"], body, OPSET))
    model = _model([helper.make_node("F20", ["x"], ["y"], domain="local")], functions)
    _bad(tmp_path, model, "would make more than 5,000 nodes")


def test_two_functions_with_one_name_are_an_error(tmp_path: Path) -> None:
    model = _model(
        [helper.make_node("Pool", ["x"], ["y"], domain="local", k=[2, 2])],
        [_pool_function(), _pool_function()],
    )
    _bad(tmp_path, model, "two model-local functions named 'local.Pool'")


def test_functions_nobody_calls_change_nothing(tmp_path: Path) -> None:
    model = _model([helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[3, 3])],
                   [_pool_function()])
    r = analyze(_save(model, tmp_path / "m.onnx"))
    assert "functions" not in r.model.meta and [lay.rf for lay in r.layers] == [[3, 3]]


# ---------------------------------------------------------------------------------------------
# shift-test: onnxruntime outputs the inner feature maps under the analysis's names


def test_shift_runner_inlines_with_the_analysis_names(tmp_path: Path) -> None:
    """The runner's inlined copy has every layer of the analysis as a tensor, and each computes
    what the tensor at the same position of onnx's own inlined copy computes."""
    from cnnprobe.shift.runners import _inline_functions

    original = onnx.load(str(TORCH))
    ours = onnx.load(str(TORCH))
    _inline_functions(ours)
    assert all(n.domain != "__main__" for n in ours.graph.node)
    theirs = onnx.inliner.inline_local_functions(original)
    mine = analyze(TORCH)
    reference = analyze(_save(theirs, tmp_path / "i.onnx"))
    pairs = [(a.output, b.output) for a, b in zip(mine.layers, reference.layers)]
    produced = {o for n in ours.graph.node for o in n.output}
    assert all(a in produced for a, _ in pairs)

    def run(model: onnx.ModelProto, names: list[str]) -> list[np.ndarray]:
        model = onnx.ModelProto.FromString(model.SerializeToString())
        outs = {o.name for o in model.graph.output}
        for name in names:
            if name not in outs:
                model.graph.output.append(helper.make_tensor_value_info(name, 1, None))
        sess = ort.InferenceSession(model.SerializeToString())
        return [np.asarray(v) for v in sess.run(names, {"input": x})]

    x = np.random.default_rng(0).standard_normal((1, 3, 37, 29)).astype(np.float32)
    got = run(ours, [a for a, _ in pairs])
    want = run(theirs, [b for _, b in pairs])
    for (name, _), g, w in zip(pairs, got, want):
        np.testing.assert_array_equal(g, w, err_msg=name)
    np.testing.assert_array_equal(run(ours, ["output"])[0], run(original, ["output"])[0])


def test_shift_test_measures_feature_maps_inside_functions() -> None:
    res = runner.invoke(
        app,
        ["shift-test", str(TORCH), "--mode", "roll", "-n", "2", "-f", "json", "--layers", "all"],
    )
    assert res.exit_code == 0, res.stderr
    names = [la["name"] for la in json.loads(res.stdout)["layers"]]
    assert "/b3/Block/ConvAct_0/Conv_5" in names and "/stem/Conv" in names


# ---------------------------------------------------------------------------------------------
# found in review: hostile nesting, name clashes, subgraphs in bodies


def test_calls_count_against_the_budget_even_with_empty_bodies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """F0 has an empty body and F(i) calls F(i-1) twice: 2**30 calls make no node at all; the
    expansion is still refused instead of running for ever."""
    monkeypatch.setattr(onnx_functions, "MAX_NODES", 5000)
    functions = [helper.make_function("local", "F0", ["x"], ["y"], [], [OPSET[0]])]
    for i in range(1, 31):
        body = [
            helper.make_node(f"F{i - 1}", ["x"], ["t"], domain="local"),
            helper.make_node(f"F{i - 1}", ["t"], ["y"], domain="local"),
        ]
        functions.append(helper.make_function("local", f"F{i}", ["x"], ["y"], body, OPSET))
    model = _model(
        [
            helper.make_node("MaxPool", ["x"], ["a"], kernel_shape=[2, 2]),
            helper.make_node("F30", ["a"], ["b"], domain="local"),
            helper.make_node("MaxPool", ["a"], ["y"], kernel_shape=[2, 2]),
        ],
        functions,
    )
    _bad(tmp_path, model, "would make more than 5,000 nodes")


def test_calls_nested_too_deep_are_an_error(tmp_path: Path) -> None:
    functions = [_pool_function("F0", default=[1, 1])]
    for i in range(1, 120):
        body = [helper.make_node(f"F{i - 1}", ["x"], ["y"], domain="local")]
        functions.append(helper.make_function("local", f"F{i}", ["x"], ["y"], body, OPSET))
    model = _model([helper.make_node("F119", ["x"], ["y"], domain="local")], functions)
    _bad(tmp_path, model, "model-local functions call each other more than 100 deep")


def _twice_unnamed() -> onnx.ModelProto:
    """Two unnamed MaxPools in a body, and two unnamed calls of it: four inlined nodes that
    would all be named after their op; fixed batch (shift-test then edits the model)."""
    body = [
        helper.make_node("MaxPool", ["a"], ["t"], kernel_shape=[3, 3]),
        helper.make_node("MaxPool", ["t"], ["b"], kernel_shape=[3, 3]),
    ]
    f = helper.make_function("local", "F", ["a"], ["b"], body, [OPSET[0]])
    return _model(
        [
            helper.make_node("F", ["x"], ["f1"], domain="local"),
            helper.make_node("F", ["f1"], ["f2"], domain="local"),
            helper.make_node("GlobalAveragePool", ["f2"], ["g"]),
            helper.make_node("Flatten", ["g"], ["y"]),
        ],
        [f],
        size=32,
    )


def test_inlined_node_names_are_unique_and_the_runner_can_load_them(tmp_path: Path) -> None:
    from cnnprobe.shift.runners import _inline_functions

    model = _twice_unnamed()
    r = analyze(_save(model, tmp_path / "m.onnx"))
    names = [lay.name for lay in r.layers]
    assert len(set(names)) == len(names) and not any("#" in n for n in names[:1])
    assert [lay.rf for lay in r.layers[:4]] == [[3, 3], [5, 5], [7, 7], [9, 9]]
    copy = onnx.load(str(tmp_path / "m.onnx"))
    _inline_functions(copy)
    node_names = [n.name for n in copy.graph.node if n.name]
    assert len(set(node_names)) == len(node_names)
    ort.InferenceSession(copy.SerializeToString())  # onnxruntime refuses duplicate node names
    res = runner.invoke(app, ["shift-test", str(tmp_path / "m.onnx"), "-n", "2", "--mode",
                              "roll", "--layers", "all", "-f", "json"])
    assert res.exit_code == 0, res.stderr
    assert len(json.loads(res.stdout)["layers"]) >= 4


def test_subgraphs_of_inlined_nodes_read_the_renamed_tensors(tmp_path: Path) -> None:
    """A body's If reads a body tensor from its branches: the runner's copy renames it there
    too (onnxruntime loads it and computes what the file computes)."""
    from cnnprobe.shift.runners import _inline_functions

    then_g = helper.make_graph(
        [helper.make_node("Relu", ["t"], ["o1"])], "then", [],
        [helper.make_tensor_value_info("o1", TensorProto.FLOAT, None)],
    )
    else_g = helper.make_graph(
        [helper.make_node("Neg", ["t"], ["o2"])], "else", [],
        [helper.make_tensor_value_info("o2", TensorProto.FLOAT, None)],
    )
    body = [
        helper.make_node("MaxPool", ["a"], ["t"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Constant", [], ["c"], value=numpy_helper.from_array(np.array(True))),
        helper.make_node("If", ["c"], ["b"], then_branch=then_g, else_branch=else_g),
    ]
    f = helper.make_function("local", "F", ["a"], ["b"], body, [OPSET[0]])
    # the main graph also has tensors named like the branches' own ('o1', 'o2'), and the function
    # is called twice: the copies' branch-local names must not collide
    model = _model(
        [
            helper.make_node("Relu", ["x"], ["o1"], name="first"),
            helper.make_node("F", ["o1"], ["o2"], domain="local", name="call"),
            helper.make_node("F", ["o2"], ["y"], domain="local", name="again"),
        ],
        [f],
    )
    x = np.random.default_rng(0).standard_normal((1, 1, 20, 20)).astype(np.float32)
    want = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})[0]
    _inline_functions(model)
    got = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})[0]
    np.testing.assert_array_equal(got, want)
