"""Files written by onnxruntime's own tools, as deployed:

- ``q_``: quantized by ``onnxruntime.quantization.quantize_static`` in the QOperator format
  (``QLinearConv`` and the ``com.microsoft`` ``QLinearAdd``, ``QLinearMul``, ``QLinearSigmoid``,
  ``QLinearConcat``, ``QLinearGlobalAveragePool``, ``QGemm``);
- ``qo_``: those saved after onnxruntime's full graph optimisation, which moves quantized
  convolutions and pools to channels-last ``com.microsoft`` variants (``QLinearConv`` with
  ``channels_last``, ``NhwcMaxPool``) between ``Transpose`` nodes;
- ``fo_``: the float samples saved after the same optimisation, in onnxruntime's blocked NCHWc
  layout (``com.microsoft.nchwc`` ``Conv`` with a fused residual ``Sum`` and activation,
  ``MaxPool``, ``GlobalAveragePool``, ``Upsample``, ``ReorderInput``/``ReorderOutput``).

They are made here from the committed float samples (onnxruntime is a test dependency). Every
unit of every spatial layer must read exactly the input pixels onnxruntime shows it depends on,
every output shape must be the one onnxruntime computes, and the verdict must be the float
model's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from cnnprobe import analyze
from cnnprobe.results import AnalysisResult
from oracle import measure_intervals
from paths import SAMPLES

FLOAT_MODELS = ["torch_se_net.onnx", "residual_net.onnx", "torch_unet.onnx"]
#: optimised only (not quantized): attention, whose fused matmuls hide shapes from ONNX inference
ATTENTION_MODELS = ["torch_attention.onnx", "torch_vit.onnx"]


def _quantize(src: Path, dst: Path) -> Path:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    model = onnx.load(str(src))
    inp = model.graph.input[0]
    shape = [d.dim_value or 1 for d in inp.type.tensor_type.shape.dim]

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.n = 0

        def get_next(self) -> dict[str, np.ndarray] | None:
            self.n += 1
            if self.n > 4:
                return None
            rng = np.random.default_rng(self.n)
            return {inp.name: rng.standard_normal(shape).astype(np.float32)}

    quantize_static(
        str(src),
        str(dst),
        Reader(),
        quant_format=QuantFormat.QOperator,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QUInt8,
    )
    return dst


def _optimized(src: Path, dst: Path, level: str = "all") -> Path:
    so = ort.SessionOptions()
    so.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if level == "all"
        else ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    )
    so.optimized_model_filepath = str(dst)
    so.log_severity_level = 3
    ort.InferenceSession(str(src), so, providers=["CPUExecutionProvider"])
    return dst


@pytest.fixture(scope="module")
def quantized(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("quantized")
    out = {}
    for name in FLOAT_MODELS:
        q = _quantize(SAMPLES / name, d / f"q_{name}")
        out[f"q_{name}"] = q
        out[f"qo_{name}"] = _optimized(q, d / f"qo_{name}")
        out[f"fo_{name}"] = _optimized(SAMPLES / name, d / f"fo_{name}")
    for name in FLOAT_MODELS + ATTENTION_MODELS:
        out[f"eo_{name}"] = _optimized(SAMPLES / name, d / f"eo_{name}", "extended")
    for name in ATTENTION_MODELS:
        out[f"fo_{name}"] = _optimized(SAMPLES / name, d / f"fo_{name}")
    return out


#: every (prefix, float sample) made
CASES = [
    *((p, n) for p in ("q_", "qo_", "fo_", "eo_") for n in FLOAT_MODELS),
    *((p, n) for p in ("fo_", "eo_") for n in ATTENTION_MODELS),
]
NCHWC = "com.microsoft.nchwc"


def _ops(path: Path) -> set[tuple[str, str]]:
    return {(n.domain, n.op_type) for n in onnx.load(str(path)).graph.node}


def test_the_samples_use_the_operators_they_are_meant_to(quantized: dict[str, Path]) -> None:
    ops = set().union(*(_ops(p) for k, p in quantized.items() if k.startswith("q_")))
    ms = "com.microsoft"
    assert {("", "QLinearConv"), (ms, "QLinearAdd"), (ms, "QLinearMul"), (ms, "QLinearSigmoid"),
            (ms, "QLinearConcat"), (ms, "QLinearGlobalAveragePool"), (ms, "QGemm")} <= ops
    optimized = set().union(*(_ops(p) for k, p in quantized.items() if k.startswith("qo_")))
    assert {(ms, "QLinearConv"), (ms, "NhwcMaxPool")} <= optimized
    channels_last = [
        n for k, p in quantized.items() if k.startswith("qo_")
        for n in onnx.load(str(p)).graph.node
        if n.op_type == "QLinearConv" and any(a.name == "channels_last" and a.i
                                              for a in n.attribute)
    ]
    assert channels_last
    blocked = set().union(*(_ops(p) for k, p in quantized.items() if k.startswith("fo_")))
    nchwc = "com.microsoft.nchwc"
    assert {(nchwc, op) for op in ("Conv", "MaxPool", "GlobalAveragePool", "Upsample",
                                   "ReorderInput", "ReorderOutput")} <= blocked
    fused_sum = [
        n for k, p in quantized.items() if k.startswith("fo_")
        for n in onnx.load(str(p)).graph.node
        if n.domain == nchwc and n.op_type == "Conv" and len(n.input) > 3
    ]
    assert fused_sum


@pytest.mark.parametrize("prefix, name", CASES)
def test_verdict_is_the_float_models(quantized: dict[str, Path], prefix: str, name: str) -> None:
    q = analyze(quantized[prefix + name])
    f = analyze(SAMPLES / name)
    assert q.verdict.certain, [d.message for d in q.diagnostics]
    a, b = q.verdict, f.verdict
    assert (a.rf, a.jump, a.start, a.total_stride, a.sees_full_input) == (
        b.rf, b.jump, b.start, b.total_stride, b.sees_full_input
    )
    assert (a.first_full_coverage_layer is None) == (b.first_full_coverage_layer is None)


def _plain_copies(model: onnx.ModelProto, result: AnalysisResult) -> dict[str, str]:
    """onnxruntime hands blocked (NCHWc) tensors out in their blocked memory order, which cannot
    be read unit by unit. Adds to ``model`` a ``ReorderOutput`` to the plain layout for each
    (those made by NCHWc ops but ReorderOutput, and by ops reading them, such as a fused
    activation); returns tensor -> its plain copy."""
    from cnnprobe.shift.runners import _blocked

    shapes = {lay.output: lay.output_shape for lay in result.layers}
    copies = {}
    for t in sorted(_blocked(model)):
        if t in shapes and len(shapes[t]) == 4:
            copies[t] = f"{t}__plain"
            model.graph.node.append(onnx.helper.make_node(
                "ReorderOutput", [t], [copies[t]], domain=NCHWC, channels=shapes[t][1]
            ))
    return copies


@pytest.mark.parametrize("prefix, name", CASES)
def test_intervals_match_onnxruntime(quantized: dict[str, Path], prefix: str, name: str) -> None:
    path = quantized[prefix + name]
    result = analyze(path)
    rank = len(result.model.input.shape)
    n_axes = len(result.model.input.spatial_size)
    model = onnx.load(str(path))
    shape = tuple(1 if d is None else d for d in result.model.input.shape)
    produced = {o for n in model.graph.node for o in n.output}
    readable = _plain_copies(model, result)
    checked = glob = 0
    for dims, layout in (((2, 3), "NC"), ((1, 2), "NXC")):
        spatial = [
            lay for lay in result.layers
            if lay.is_spatial and len(lay.output_shape) == rank
            and tuple(lay.spatial_dims) == dims and lay.output in produced
        ]
        if not spatial:
            continue
        measured = measure_intervals(
            model, result.model.input.name,
            [readable.get(lay.output, lay.output) for lay in spatial],
            spatial_axes_in=result.model.input.spatial_axes, layout=layout, input_shape=shape,
        )
        for lay in spatial:
            for a in range(n_axes):
                units = measured[readable.get(lay.output, lay.output)][a]
                assert len(units) == lay.axes[a].size, lay.name
                if lay.is_global:  # every unit depends on every pixel the global op reaches
                    reach = lay.axes[a].reach
                    assert reach is not None
                    assert all(
                        u is not None and u[0] <= reach[0] and reach[1] <= u[1] for u in units
                    ), f"{lay.name} axis {a}"
                    if lay.axes[a].full:
                        n = result.model.input.spatial_size[a] or 0
                        assert all(u == (0, n - 1) for u in units), f"{lay.name} axis {a}"
                    glob += 1
                    continue
                mine = [lay.real_interval(a, k) for k in range(len(units))]
                assert mine == units, f"{lay.name} axis {a}"
                checked += 1
    assert checked >= 2  # at least one layer's two axes
    if name == "torch_attention.onnx":  # (its attention output is a map again: global units)
        assert glob >= 2


@pytest.mark.parametrize("prefix, name", CASES)
def test_output_shapes_are_onnxruntimes(quantized: dict[str, Path], prefix: str, name: str) -> None:
    path = quantized[prefix + name]
    result = analyze(path)
    model = onnx.load(str(path))
    produced = {o for n in model.graph.node for o in n.output}
    names = [lay.output for lay in result.layers if lay.output in produced]
    del model.graph.output[:]
    model.graph.output.extend(onnx.ValueInfoProto(name=n) for n in names)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), so)
    shape = tuple(1 if d is None else d for d in result.model.input.shape)
    x = np.zeros(shape, np.float32)
    values = dict(zip(names, session.run(names, {result.model.input.name: x})))
    assert len(values) >= 8
    for lay in result.layers:
        if lay.output in values:
            assert tuple(lay.output_shape) == values[lay.output].shape, lay.name


def test_fused_matmul_reads_like_transpose_then_matmul(tmp_path: Path) -> None:
    """onnxruntime's FusedMatMul with transA (or transB) is a MatMul of the operand with its last
    two axes swapped: both graphs compute the same (onnxruntime) and analyse the same."""
    from onnx import TensorProto, helper, numpy_helper

    def model(fused: bool, trans_b: bool) -> Path:
        w = numpy_helper.from_array(np.ones((2, 1, 3, 3), np.float32) * 0.1, "w")
        shape = numpy_helper.from_array(np.array([1, 2, 36], np.int64), "shape")
        nodes = [
            helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
            helper.make_node("Reshape", ["c", "shape"], ["r"]),
        ]
        if fused:
            ins = ["r", "r"] if not trans_b else ["rt", "rt"]
            if trans_b:  # A [1, 36, 2] @ B^T with B [1, 36, 2]
                nodes.append(helper.make_node("Transpose", ["r"], ["rt"], perm=[0, 2, 1]))
            nodes.append(helper.make_node(
                "FusedMatMul", ins, ["m"], domain="com.microsoft",
                transA=0 if trans_b else 1, transB=1 if trans_b else 0, alpha=1.0,
            ))
        else:
            nodes += [
                helper.make_node("Transpose", ["r"], ["rt"], perm=[0, 2, 1]),
                helper.make_node("MatMul", ["rt", "r"], ["m"]),
            ]
        nodes.append(helper.make_node("Softmax", ["m"], ["y"], axis=-1))
        graph = helper.make_graph(
            nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 6, 6])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w, shape],
        )
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                     helper.make_opsetid("com.microsoft", 1)])
        path = tmp_path / f"m_{fused}_{trans_b}.onnx"
        onnx.save(m, path)
        return path

    x = np.random.default_rng(0).standard_normal((1, 1, 6, 6)).astype(np.float32)
    plain = model(False, False)
    want = ort.InferenceSession(str(plain)).run(None, {"x": x})[0]
    reference = analyze(plain).layers[-1]
    for trans_b in (False, True):
        path = model(True, trans_b)
        got = ort.InferenceSession(str(path)).run(None, {"x": x})[0]
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        r = analyze(path)
        assert r.verdict.certain
        last = r.layers[-1]
        assert (last.output_shape, last.axes, last.is_global) == (
            reference.output_shape, reference.axes, reference.is_global
        )


def _shift_json(path: Path) -> dict[str, Any]:
    import json

    from typer.testing import CliRunner

    from cnnprobe.cli import app

    res = CliRunner().invoke(
        app, ["shift-test", str(path), "--layers", "all", "-n", "2", "--mode", "roll", "-f", "json"]
    )
    assert res.exit_code == 0, res.stderr
    doc: dict[str, Any] = json.loads(res.stdout)
    return doc


@pytest.mark.parametrize("prefix", ["q_", "qo_", "fo_"])
def test_shift_test_reads_inner_maps_of_onnxruntime_files(
    quantized: dict[str, Path], prefix: str
) -> None:
    """Inner feature maps of these files are uint8 (quantized) or blocked (NCHWc) tensors of
    contrib ops: shift-test still measures them, and a blocked map that computes what a float
    layer computes gives the float layer's figures (read out of the blocked layout, not as it
    lies in memory)."""
    doc = _shift_json(quantized[prefix + "torch_se_net.onnx"])
    layers = {la["name"]: la for la in doc["layers"]}
    assert len(layers) >= 5
    if prefix != "fo_":
        return
    assert "not tensors of the file: not measured" in " ".join(doc["notes"])
    plain = {la["name"]: la for la in _shift_json(SAMPLES / "torch_se_net.onnx")["layers"]}
    for blocked, float_name in (
        ("/stem/Conv_output_0_nchwc", "/stem/Conv"),
        ("/proj/Conv_output_0_nchwc", "/proj/Conv"),
        ("/pool/MaxPool_output_0_nchwc", "/pool/MaxPool"),
    ):
        got, want = layers[blocked]["period_multiple"], plain[float_name]["period_multiple"]
        assert got["value"] == pytest.approx(want["value"], rel=1e-4, abs=1e-7), blocked


def test_fused_matmul_moving_batch_axes_is_not_followed(tmp_path: Path) -> None:
    """transBatchB moves B's batch axes: not followed, and said so (unknown-op, both operands
    its inputs: figures after it withheld, not lost)."""
    from onnx import TensorProto, helper, numpy_helper

    a = numpy_helper.from_array(np.ones((2, 4, 3), np.float32), "a")
    shape = numpy_helper.from_array(np.array([1, 3, 48], np.int64), "shape")
    w = numpy_helper.from_array(np.ones((3, 1, 3, 3), np.float32), "w")
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[3, 3], pads=[1] * 4,
                         name="conv"),
        helper.make_node("Reshape", ["c", "shape"], ["r"], name="flat"),
        helper.make_node("FusedMatMul", ["a", "r"], ["m"], domain="com.microsoft",
                         transBatchB=1, name="fmm"),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 6])],
        [helper.make_tensor_value_info("m", TensorProto.FLOAT, None)], [a, shape, w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                     helper.make_opsetid("com.microsoft", 1)])
    path = tmp_path / "tb.onnx"
    onnx.save(model, path)
    r = analyze(path)
    assert not r.verdict.certain
    [d] = [d for d in r.diagnostics if d.code == "unknown-op"]
    assert d.where == "fmm" and "transBatchA/transBatchB" in d.message
    assert r.layer("fmm").status == "unknown"


@pytest.mark.parametrize("name", ["torch_se_net.onnx", "torch_unet.onnx"])
def test_shift_test_reads_quantized_maps_as_values(quantized: dict[str, Path], name: str) -> None:
    """Quantized maps are compared as the values they encode (scale * (code - zero point)), not
    as uint8 codes, whose zero point inflated the denominator of the equivariance error 10-50x.
    Quantization changes figures a little: each stays within a factor 2 of the float layer's."""
    q = {la["name"]: la for la in _shift_json(quantized["q_" + name])["layers"]}
    f = {la["name"]: la for la in _shift_json(SAMPLES / name)["layers"]}
    pairs = [(n, n.removesuffix("_quant")) for n in q if n.removesuffix("_quant") in f]
    assert len(pairs) >= 5
    for qn, fn in pairs:
        a, b = q[qn]["period_multiple"]["value"], f[fn]["period_multiple"]["value"]
        assert b / 2 <= a <= 2 * b, (qn, a, b)


def test_shift_test_drops_the_padding_channels_of_blocked_maps(tmp_path: Path) -> None:
    """12 channels padded to onnxruntime's block size, after a Sigmoid (the padding channels are
    then 0.5, not 0): the blocked map reads as its 12 real channels, the figure of the file's own
    ReorderOutput of the same map."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(1)
    w1 = numpy_helper.from_array(rng.standard_normal((12, 3, 3, 3)).astype(np.float32) * 0.3, "w1")
    b1 = numpy_helper.from_array(rng.standard_normal(12).astype(np.float32) * 0.1, "b1")
    w2 = numpy_helper.from_array(rng.standard_normal((12, 12, 3, 3)).astype(np.float32) * 0.3, "w2")
    nodes = [
        helper.make_node("Conv", ["input", "w1", "b1"], ["c1"], name="conv1", strides=[2, 2],
                         pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
        helper.make_node("Sigmoid", ["c1"], ["s1"], name="sig1"),
        helper.make_node("Conv", ["s1", "w2"], ["c2"], name="conv2", strides=[2, 2],
                         pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("GlobalAveragePool", ["r2"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["output"], name="flat"),
    ]
    graph = helper.make_graph(
        nodes, "m", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["b", 3, 32, 32])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["b", 12])], [w1, b1, w2],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    plain = tmp_path / "sig.onnx"
    onnx.save(model, plain)
    blocked_file = _optimized(plain, tmp_path / "sig_opt.onnx")
    layers = _shift_json(blocked_file)["layers"]
    by_op: dict[str, list[float]] = {}
    for la in layers:
        by_op.setdefault(la["op"], []).append(la["period_multiple"]["value"])
    assert "com.microsoft.nchwc.Conv" in by_op and "com.microsoft.nchwc.ReorderOutput" in by_op
    blocked = by_op["com.microsoft.nchwc.Conv"][0]  # the fused conv + sigmoid, blocked
    own = by_op["com.microsoft.nchwc.ReorderOutput"][0]  # the file's own plain copy of it
    assert blocked == pytest.approx(own, rel=1e-6)


def test_shift_test_names_a_map_made_inside_a_fused_op(quantized: dict[str, Path]) -> None:
    from typer.testing import CliRunner

    from cnnprobe.cli import app

    path = quantized["fo_torch_se_net.onnx"]
    inner = next(lay.output for lay in analyze(path).layers if lay.output.endswith("#conv"))
    res = CliRunner().invoke(app, ["shift-test", str(path), "--layers", inner, "-n", "2"])
    assert res.exit_code == 2 and res.stdout == ""
    assert "lies inside a fused onnxruntime op" in res.stderr and inner in res.stderr


def test_fused_gemm_of_an_optimised_squeeze_excite(tmp_path: Path) -> None:
    """onnxruntime's basic/extended optimisation of Keras's SE net fuses its gate's Dense+ReLU and
    Dense+Sigmoid into FusedGemm (and conv+bias+ReLU into FusedConv): the verdict and every
    layer's geometry stay the float file's."""
    src = SAMPLES / "keras_se_net.onnx"
    path = _optimized(src, tmp_path / "eo.onnx", "extended")
    assert ("com.microsoft", "FusedGemm") in _ops(path)
    q, f = analyze(path, layout="nhwc"), analyze(src, layout="nhwc")
    assert q.verdict.certain and not [d for d in q.diagnostics if d.code == "unknown-op"]
    for attr in ("rf", "jump", "start", "sees_full_input", "first_global_layer", "global_kind"):
        assert getattr(q.verdict, attr) == getattr(f.verdict, attr), attr
