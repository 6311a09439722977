"""Per-op geometry tests against hand-computed values.

Every expected number here is worked out by hand from the definitions in
``shared/notes/receptive-field.md`` (the arithmetic is in a comment next to each row), never taken
from the tool. Notation per spatial axis: ``k_eff = d*(k-1) + 1``,
``n_out = floor((n + lo + hi - k_eff) / s) + 1``, ``r_out = r_in + (k_eff - 1) * j_in``,
``j_out = j_in * s``, ``start_out = start_in - lo * j_in``; the model input has ``r = 1, j = 1,
start = 0``, so after one op on the input ``r = k_eff``, ``j = s``, ``start = -lo``.
Unit ``i`` covers ``[start + i*j, start + i*j + r - 1]`` (unclipped, may reach into padding).

Models are built with ``onnx.helper`` (opset 17 unless a row is about another opset), weights are
``np.random`` initializers with a fixed seed, files go to ``tmp_path``.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from cnnprobe import analyze
from cnnprobe.errors import CnnprobeError

F = Fraction
INT64_MAX = 2**63 - 1
SEED = 1234


# --------------------------------------------------------------------------- model building


def weight(name: str, shape: Sequence[int], seed: int = SEED) -> onnx.TensorProto:
    data = np.random.default_rng(seed).standard_normal(tuple(shape)).astype(np.float32)
    return numpy_helper.from_array(data, name)


def ints(name: str, values: Sequence[int]) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(values, dtype=np.int64), name)


def floats(name: str, values: Sequence[float]) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(values, dtype=np.float32), name)


def node(op: str, inputs: Sequence[str], output: str, **attrs: Any) -> onnx.NodeProto:
    """A node whose single output tensor and name are ``output``."""
    return helper.make_node(op, list(inputs), [output], name=output, **attrs)


def save(
    tmp_path: Path,
    nodes: Sequence[onnx.NodeProto],
    in_shape: Sequence[int | str],
    inits: Sequence[onnx.TensorProto] = (),
    *,
    opset: int = 17,
    outputs: Sequence[str] | None = None,
    value_info: Sequence[onnx.ValueInfoProto] = (),
    extra_opsets: Sequence[tuple[str, int]] = (),
    ir_version: int | None = None,
    inits_as_inputs: bool = False,
    check: bool = True,
    name: str = "model.onnx",
) -> Path:
    """Write a one-input model (input ``x``) whose outputs are ``outputs`` (default: the last
    node's outputs, shapes left open)."""
    graph_inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(in_shape))]
    if inits_as_inputs:  # IR < 4 style: every initializer is also a graph input
        graph_inputs += [
            helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in inits
        ]
    outs = list(outputs) if outputs is not None else list(nodes[-1].output)
    graph = helper.make_graph(
        list(nodes),
        "g",
        graph_inputs,
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outs],
        initializer=list(inits),
        value_info=list(value_info),
    )
    opsets = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, v) for d, v in extra_opsets]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="test_geometry_ops")
    model.ir_version = ir_version if ir_version is not None else 8
    if check:  # the checker wants a shape on every output: check a copy with rank-0 stubs
        probe = onnx.ModelProto()
        probe.CopyFrom(model)
        for vi in probe.graph.output:
            vi.type.tensor_type.shape.SetInParent()
        onnx.checker.check_model(probe)
    path = tmp_path / name
    onnx.save(model, str(path))
    return path


def check_axis(layer: Any, a: int, size: int | None, rf: int, jump: Any, start: int) -> None:
    ax = layer.axes[a]
    got = (ax.size, ax.rf, ax.jump, ax.start)
    assert got == (size, rf, jump, start), f"{layer.name} axis {a}: (size, rf, jump, start)"
    assert isinstance(ax.jump, Fraction)


def codes(result: Any) -> list[str]:
    return [d.code for d in result.diagnostics]


# --------------------------------------------------------------------------- Conv

# (in_shape, weight_shape, attrs, out_shape, per axis (rf, jump, start, pad_lo, pad_hi))
CONV_CASES = [
    pytest.param(
        (1, 2, 8, 8), (4, 2, 3, 3), dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        (1, 4, 8, 8), [(3, 1, -1, 1, 1)] * 2,
        id="k3-s1-pad1",
    ),  # n = (8+1+1-3)//1+1 = 8; r = 1+(3-1)*1 = 3; start = 0-1*1 = -1
    pytest.param(
        (1, 2, 8, 8), (4, 2, 5, 5), dict(kernel_shape=[5, 5], pads=[0, 0, 0, 0]),
        (1, 4, 4, 4), [(5, 1, 0, 0, 0)] * 2,
        id="k5-pad0",
    ),  # n = (8-5)//1+1 = 4; r = 1+(5-1)*1 = 5; start = 0
    pytest.param(
        (1, 2, 16, 16), (4, 2, 7, 7), dict(kernel_shape=[7, 7], strides=[2, 2], pads=[3] * 4),
        (1, 4, 8, 8), [(7, 2, -3, 3, 3)] * 2,
        id="k7-s2-pad3",
    ),  # n = (16+3+3-7)//2+1 = 15//2+1 = 8; r = 1+6*1 = 7; j = 1*2; start = 0-3*1 = -3
    pytest.param(
        (1, 2, 9, 9), (4, 2, 3, 3), dict(kernel_shape=[3, 3], strides=[3, 3]),
        (1, 4, 3, 3), [(3, 3, 0, 0, 0)] * 2,
        id="k3-s3",
    ),  # n = (9-3)//3+1 = 3; r = 3; j = 3; start = 0
    pytest.param(
        (1, 2, 10, 10), (4, 2, 3, 3), dict(kernel_shape=[3, 3], dilations=[2, 2], pads=[2] * 4),
        (1, 4, 10, 10), [(5, 1, -2, 2, 2)] * 2,
        id="k3-d2-pad2",
    ),  # k_eff = 2*(3-1)+1 = 5; n = (10+4-5)//1+1 = 10; r = 5; start = -2
    pytest.param(
        (1, 2, 8, 8), (4, 2, 3, 3), dict(kernel_shape=[3, 3], pads=[0, 1, 2, 3]),
        (1, 4, 8, 10), [(3, 1, 0, 0, 2), (3, 1, -1, 1, 3)],
        id="k3-asymmetric-pads",
    ),  # pads = [H_lo, W_lo, H_hi, W_hi]; H: n = (8+0+2-3)+1 = 8, start = 0;
    #     W: n = (8+1+3-3)+1 = 10, start = -1
    pytest.param(
        (1, 2, 8, 8), (4, 2, 3, 3),
        dict(kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER"),
        (1, 4, 4, 4), [(3, 2, 0, 0, 1)] * 2,
        id="same-upper-even-s2",
    ),  # n = ceil(8/2) = 4; total = (4-1)*2+3-8 = 1; UPPER: lo 0, hi 1; start = 0
    pytest.param(
        (1, 2, 8, 8), (4, 2, 3, 3),
        dict(kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_LOWER"),
        (1, 4, 4, 4), [(3, 2, -1, 1, 0)] * 2,
        id="same-lower-even-s2",
    ),  # total = 1 as above; LOWER: lo 1, hi 0; start = -1
    pytest.param(
        (1, 2, 7, 7), (4, 2, 3, 3),
        dict(kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER"),
        (1, 4, 4, 4), [(3, 2, -1, 1, 1)] * 2,
        id="same-upper-odd-s2",
    ),  # n = ceil(7/2) = 4; total = 3*2+3-7 = 2; lo 1, hi 1; start = -1
    pytest.param(
        (1, 2, 7, 7), (4, 2, 3, 3),
        dict(kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_LOWER"),
        (1, 4, 4, 4), [(3, 2, -1, 1, 1)] * 2,
        id="same-lower-odd-s2",
    ),  # total = 2 (even): LOWER = UPPER = 1, 1; start = -1
    pytest.param(
        (1, 2, 7, 7), (4, 2, 2, 2),
        dict(kernel_shape=[2, 2], strides=[2, 2], auto_pad="SAME_UPPER"),
        (1, 4, 4, 4), [(2, 2, 0, 0, 1)] * 2,
        id="same-upper-k2-odd-s2",
    ),  # n = ceil(7/2) = 4; total = 3*2+2-7 = 1; UPPER: lo 0, hi 1; start = 0
    pytest.param(
        (1, 2, 7, 7), (4, 2, 2, 2),
        dict(kernel_shape=[2, 2], strides=[2, 2], auto_pad="SAME_LOWER"),
        (1, 4, 4, 4), [(2, 2, -1, 1, 0)] * 2,
        id="same-lower-k2-odd-s2",
    ),  # total = 1; LOWER: lo 1, hi 0; start = -1
    pytest.param(
        (1, 2, 8, 8), (4, 2, 4, 4), dict(kernel_shape=[4, 4], auto_pad="SAME_UPPER"),
        (1, 4, 8, 8), [(4, 1, -1, 1, 2)] * 2,
        id="same-upper-k4-s1",
    ),  # n = 8; total = 7*1+4-8 = 3; UPPER: lo 3//2 = 1, hi 2; start = -1
    pytest.param(
        (1, 2, 8, 8), (4, 2, 4, 4), dict(kernel_shape=[4, 4], auto_pad="SAME_LOWER"),
        (1, 4, 8, 8), [(4, 1, -2, 2, 1)] * 2,
        id="same-lower-k4-s1",
    ),  # total = 3; LOWER: lo 2, hi 1; start = -2
    pytest.param(
        (1, 2, 8, 8), (4, 2, 3, 3),
        dict(kernel_shape=[3, 3], dilations=[2, 2], auto_pad="SAME_UPPER"),
        (1, 4, 8, 8), [(5, 1, -2, 2, 2)] * 2,
        id="same-upper-k3-d2",
    ),  # k_eff = 5; total = 7*1+5-8 = 4 -> lo 2, hi 2; r = 5; start = -2
    pytest.param(
        (1, 2, 8, 8), (4, 2, 1, 1),
        dict(kernel_shape=[1, 1], strides=[2, 2], auto_pad="SAME_UPPER"),
        (1, 4, 4, 4), [(1, 2, 0, 0, 0)] * 2,
        id="same-upper-k1-s2-no-pad",
    ),  # n = ceil(8/2) = 4; total = max(3*2+1-8, 0) = max(-1, 0) = 0; start 0
    pytest.param(
        (1, 2, 9, 9), (4, 2, 3, 3), dict(kernel_shape=[3, 3], strides=[2, 2], auto_pad="VALID"),
        (1, 4, 4, 4), [(3, 2, 0, 0, 0)] * 2,
        id="valid-s2",
    ),  # n = (9-3)//2+1 = 4; r = 3; j = 2; start = 0
    pytest.param(
        (1, 2, 8, 6), (4, 2, 3, 1), dict(kernel_shape=[3, 1], pads=[1, 0, 1, 0]),
        (1, 4, 8, 6), [(3, 1, -1, 1, 1), (1, 1, 0, 0, 0)],
        id="k3x1",
    ),  # H: n = (8+2-3)+1 = 8, r = 3, start = -1; W: k 1, n = 6, r = 1, start = 0
    pytest.param(
        (1, 2, 5, 12), (4, 2, 1, 7), dict(kernel_shape=[1, 7], pads=[0, 3, 0, 3]),
        (1, 4, 5, 12), [(1, 1, 0, 0, 0), (7, 1, -3, 3, 3)],
        id="k1x7",
    ),  # H: n = 5, r = 1; W: n = (12+6-7)+1 = 12, r = 7, start = -3
    pytest.param(
        (1, 2, 10, 6), (4, 2, 3, 3), dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1] * 4),
        (1, 4, 5, 3), [(3, 2, -1, 1, 1)] * 2,
        id="h-ne-w-s2",
    ),  # H: n = (10+2-3)//2+1 = 4+1 = 5; W: n = (6+2-3)//2+1 = 2+1 = 3; start = -1
    pytest.param(
        (1, 2, 8, 8), (4, 2, 3, 3), dict(kernel_shape=[3, 3], strides=[2, 1], pads=[1] * 4),
        (1, 4, 4, 8), [(3, 2, -1, 1, 1), (3, 1, -1, 1, 1)],
        id="strides-2x1",
    ),  # H: n = (8+2-3)//2+1 = 4, j = 2; W: n = 8, j = 1
    pytest.param(
        (1, 4, 6, 6), (6, 2, 3, 3), dict(kernel_shape=[3, 3], pads=[1] * 4, group=2),
        (1, 6, 6, 6), [(3, 1, -1, 1, 1)] * 2,
        id="groups2",
    ),  # grouped conv: same geometry as dense; n = 6; C_out = W.shape[0] = 6
    pytest.param(
        (1, 3, 8, 8), (3, 1, 3, 3),
        dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1] * 4, group=3),
        (1, 3, 4, 4), [(3, 2, -1, 1, 1)] * 2,
        id="depthwise-s2",
    ),  # depthwise: n = (8+2-3)//2+1 = 4; r = 3; j = 2; start = -1
    pytest.param(
        (1, 2, 9, 9), (4, 2, 5, 3), dict(),
        (1, 4, 5, 7), [(5, 1, 0, 0, 0), (3, 1, 0, 0, 0)],
        id="no-kernel-shape-attr",
    ),  # kernel from W dims [4,2,5,3]: H n = 9-5+1 = 5, r = 5; W n = 9-3+1 = 7, r = 3
    pytest.param(
        (1, 2, 20), (4, 2, 5), dict(kernel_shape=[5], strides=[2], pads=[2, 2]),
        (1, 4, 10), [(5, 2, -2, 2, 2)],
        id="conv1d-k5-s2-pad2",
    ),  # n = (20+4-5)//2+1 = 9+1 = 10; r = 5; j = 2; start = -2
    pytest.param(
        (1, 2, 20), (4, 2, 3), dict(kernel_shape=[3], dilations=[4]),
        (1, 4, 12), [(9, 1, 0, 0, 0)],
        id="conv1d-k3-d4",
    ),  # k_eff = 4*2+1 = 9; n = 20-9+1 = 12; r = 9
    pytest.param(
        (1, 1, 6, 8, 10), (2, 1, 3, 3, 3),
        dict(kernel_shape=[3, 3, 3], strides=[1, 2, 2], pads=[1] * 6),
        (1, 2, 6, 4, 5), [(3, 1, -1, 1, 1), (3, 2, -1, 1, 1), (3, 2, -1, 1, 1)],
        id="conv3d",
    ),  # D: n = (6+2-3)+1 = 6; H: (8+2-3)//2+1 = 4; W: (10+2-3)//2+1 = 5; r = 3, start = -1
]


@pytest.mark.parametrize("in_shape, w_shape, attrs, out_shape, geo", CONV_CASES)
def test_conv(
    tmp_path: Path,
    in_shape: tuple[int, ...],
    w_shape: tuple[int, ...],
    attrs: dict[str, Any],
    out_shape: tuple[int, ...],
    geo: list[tuple[int, int, int, int, int]],
) -> None:
    inits = [weight("w", w_shape), weight("b", w_shape[:1], seed=SEED + 1)]
    path = save(tmp_path, [node("Conv", ["x", "w", "b"], "conv", **attrs)], in_shape, inits)
    r = analyze(path)
    lay = r.layer("conv")
    assert lay.status == "ok"
    assert lay.output_shape == out_shape
    assert len(lay.axes) == len(geo)
    for a, (rf, jump, start, lo, hi) in enumerate(geo):
        check_axis(lay, a, out_shape[2 + a], rf, jump, start)
        ax = lay.axes[a]
        assert (ax.kernel, ax.pad_lo, ax.pad_hi) == (w_shape[2 + a], lo, hi)
        assert ax.stride == jump  # one op on the input: j_out = s
    assert not [d for d in r.diagnostics if d.severity == "error"]


@pytest.mark.parametrize(
    "source, with_kernel_shape",
    [
        ("constant-of-shape", True),
        ("constant-of-shape", False),
        ("reshape-of-flat-initializer", False),
    ],
)
def test_conv_weight_from_a_node(tmp_path: Path, source: str, with_kernel_shape: bool) -> None:
    # old model-zoo patterns: W = ConstantOfShape(int64 shape initializer [4, 2, 3, 3]) or
    # W = Reshape(flat [72] initializer, [4, 2, 3, 3]); the kernel then comes from W's shape
    attrs: dict[str, Any] = dict(pads=[1, 1, 1, 1])
    if with_kernel_shape:
        attrs["kernel_shape"] = [3, 3]
    if source == "constant-of-shape":
        value = helper.make_tensor("v", TensorProto.FLOAT, [1], [0.1])
        w_node = node("ConstantOfShape", ["wshape"], "w", value=value)
        inits = [ints("wshape", [4, 2, 3, 3])]
    else:
        w_node = node("Reshape", ["wflat", "wshape"], "w")
        inits = [weight("wflat", (72,)), ints("wshape", [4, 2, 3, 3])]
    nodes = [w_node, node("Conv", ["x", "w"], "conv", **attrs)]
    lay = analyze(save(tmp_path, nodes, (1, 2, 8, 8), inits)).layer("conv")
    # kernel 3 from the shape; n = (8+2-3)+1 = 8; r = 3; start = -1; C_out = 4
    assert lay.status == "ok"
    assert lay.output_shape == (1, 4, 8, 8)
    for a in range(2):
        check_axis(lay, a, 8, 3, 1, -1)
        assert lay.axes[a].kernel == 3


def test_conv_weight_as_a_sparse_initializer(tmp_path: Path) -> None:
    """A weight stored as a sparse initializer (dense dims [3, 1, 5, 3], two non-zeros) is a
    constant like any other, and its dims give the kernel: 20x16 input, stride 2 ->
    (20-5)//2+1 = 8 by (16-3)//2+1 = 7, r 5x3. onnxruntime agrees on the output shape."""
    import onnxruntime as ort

    vals = numpy_helper.from_array(np.array([1.0, 2.0], np.float32), "w")
    idx = numpy_helper.from_array(np.array([0, 44], np.int64), "w_idx")
    sparse = helper.make_sparse_tensor(vals, idx, [3, 1, 5, 3])
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 20, 16])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    conv = helper.make_node("Conv", ["x", "w"], ["y"], strides=[2, 2], name="conv")
    graph = helper.make_graph([conv], "g", [x], [y], sparse_initializer=[sparse])
    path = tmp_path / "sparse.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    out = ort.InferenceSession(str(path)).run(None, {"x": np.ones((1, 1, 20, 16), np.float32)})
    assert out[0].shape == (1, 3, 8, 7)
    r = analyze(path)
    lay = r.layer("conv")
    assert r.verdict.certain and lay.output_shape == (1, 3, 8, 7)
    assert lay.rf == [5, 3] and lay.jump == [2, 2]


def test_conv_coverage_off_centre_unit_with_rf_larger_than_input(tmp_path: Path) -> None:
    # 6 px, k7 pads 3: n = (6+6-7)+1 = 6, r = 7 >= 6, start -3.
    # unit i covers [i-3, i+3]: unit 0 [-3, 3] sees [0, 3] = 4 px (misses 4, 5);
    # unit 5 [2, 8] sees [2, 5] = 4 px; centre unit (6-1)//2 = 2: [-1, 5] sees all 6.
    inits = [weight("w", (1, 1, 7, 7))]
    conv = node("Conv", ["x", "w"], "conv", kernel_shape=[7, 7], pads=[3] * 4)
    r = analyze(save(tmp_path, [conv], (1, 1, 6, 6), inits))
    lay = r.layer("conv")
    for a in range(2):
        ax = lay.axes[a]
        assert (ax.rf, ax.start, ax.full) == (7, -3, False)
        assert ax.coverage_centre == pytest.approx(1.0)
        assert ax.coverage_min == pytest.approx(4 / 6)
    assert lay.sees_full_input is False
    assert r.verdict.sees_full_input is False
    assert r.verdict.area_centre == pytest.approx(1.0)
    assert r.verdict.area_min == pytest.approx((4 / 6) ** 2)
    assert r.verdict.first_full_coverage_layer is None


def test_conv_full_coverage_single_unit(tmp_path: Path) -> None:
    # 5 px, k5 valid: n = 1, unit 0 covers [0, 4] = the whole input on both axes
    inits = [weight("w", (1, 1, 5, 5))]
    r = analyze(save(tmp_path, [node("Conv", ["x", "w"], "conv", kernel_shape=[5, 5])],
                     (1, 1, 5, 5), inits))
    lay = r.layer("conv")
    assert lay.output_shape == (1, 1, 1, 1)
    assert [a.full for a in lay.axes] == [True, True]
    assert lay.sees_full_input is True
    assert r.verdict.first_full_coverage_layer == "conv"
    assert r.verdict.area_centre == pytest.approx(1.0)


def test_pad_then_valid_conv_equals_padded_conv(tmp_path: Path) -> None:
    # Pad 1 everywhere: start = -1, n = 10; Conv k3 valid: n = 8, r = 1+2*1 = 3,
    # start = -1 - 0*1 = -1: the same as Conv k3 pads 1.
    nodes = [
        node("Pad", ["x", "pads"], "pad"),
        node("Conv", ["pad", "w"], "conv", kernel_shape=[3, 3]),
    ]
    inits = [ints("pads", [0, 0, 1, 1, 0, 0, 1, 1]), weight("w", (4, 2, 3, 3))]
    lay = analyze(save(tmp_path, nodes, (1, 2, 8, 8), inits)).layer("conv")
    assert lay.output_shape == (1, 4, 8, 8)
    for a in range(2):
        check_axis(lay, a, 8, 3, 1, -1)


# --------------------------------------------------------------------------- pooling

# (op, in_shape, attrs, out_shape, per axis (rf, jump, start), unit checks {(axis, i): (lo, hi)})
POOL_CASES = [
    pytest.param(
        "MaxPool", (1, 2, 7, 7), dict(kernel_shape=[2, 2], strides=[2, 2]),
        (1, 2, 3, 3), [(2, 2, 0)] * 2, {(0, 2): (4, 5)},
        id="max-k2s2-floor-odd",
    ),  # n = (7-2)//2+1 = 3; r = 2, j = 2, start 0; unit 2: [0+2*2, 4+1] = [4, 5]
    pytest.param(
        "MaxPool", (1, 2, 7, 7), dict(kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1),
        (1, 2, 4, 4), [(2, 2, 0)] * 2, {(0, 3): (6, 7), (1, 3): (6, 7)},
        id="max-k2s2-ceil-odd",
    ),  # n = ceil((7-2)/2)+1 = 4 (last window starts at 6 < 7: kept); unit 3: [6, 7]
    pytest.param(
        "MaxPool", (1, 2, 8, 8), dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1] * 4),
        (1, 2, 4, 4), [(3, 2, -1)] * 2, {(0, 3): (5, 7)},
        id="max-k3s2p1-floor-even",
    ),  # n = (8+2-3)//2+1 = 3+1 = 4; start -1; unit 3: [-1+6, -1+6+2] = [5, 7]
    pytest.param(
        "MaxPool", (1, 2, 8, 8),
        dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1] * 4, ceil_mode=1),
        (1, 2, 5, 5), [(3, 2, -1)] * 2, {(0, 4): (7, 9)},
        id="max-k3s2p1-ceil-even",
    ),  # n = ceil(7/2)+1 = 5; last window starts at 4*2-1 = 7 < 8: kept; unit 4: [7, 9]
    pytest.param(
        "MaxPool", (1, 2, 5, 5),
        dict(kernel_shape=[2, 2], strides=[2, 2], pads=[1] * 4, ceil_mode=1),
        (1, 2, 3, 3), [(2, 2, -1)] * 2, {(0, 2): (3, 4)},
        id="max-k2s2p1-ceil-drops-window-in-right-pad",
    ),  # span = 5+2-2 = 5; ceil(5/2)+1 = 4, but window 3 would start at 3*2-1 = 5 = n (right
    #     padding): dropped -> 3 (= floor: 5//2+1); unit 2: [-1+4, -1+4+1] = [3, 4]
    pytest.param(
        "MaxPool", (1, 2, 5, 5), dict(kernel_shape=[2, 2]),
        (1, 2, 4, 4), [(2, 1, 0)] * 2, {(0, 3): (3, 4)},
        id="max-k2-default-stride-is-1",
    ),  # ONNX default strides = 1: n = (5-2)//1+1 = 4; r = 2; j = 1
    pytest.param(
        "MaxPool", (1, 2, 9, 9), dict(kernel_shape=[3, 3], dilations=[2, 2]),
        (1, 2, 5, 5), [(5, 1, 0)] * 2, {(1, 4): (4, 8)},
        id="max-k3-d2",
    ),  # k_eff = 2*2+1 = 5; n = 9-5+1 = 5; r = 5; unit 4: [4, 8]
    pytest.param(
        "MaxPool", (1, 2, 9, 9),
        dict(kernel_shape=[3, 3], dilations=[2, 2], strides=[2, 2], pads=[2] * 4),
        (1, 2, 5, 5), [(5, 2, -2)] * 2, {(0, 4): (6, 10)},
        id="max-k3-d2-s2-p2",
    ),  # n = (9+4-5)//2+1 = 5; r = 5; j = 2; start -2; unit 4: [-2+8, -2+8+4] = [6, 10]
    pytest.param(
        "MaxPool", (1, 2, 9, 4), dict(kernel_shape=[3, 1], strides=[2, 1]),
        (1, 2, 4, 4), [(3, 2, 0), (1, 1, 0)], {(0, 1): (2, 4), (1, 3): (3, 3)},
        id="max-k3x1-s2x1",
    ),  # H: n = (9-3)//2+1 = 4, r 3, j 2; W: k 1 s 1: n = 4, r 1
    pytest.param(
        "MaxPool", (1, 2, 8, 8), dict(kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER"),
        (1, 2, 4, 4), [(3, 2, 0)] * 2, {(0, 3): (6, 8)},
        id="max-k3s2-same-upper-even",
    ),  # n = ceil(8/2) = 4; total = 3*2+3-8 = 1: lo 0, hi 1; start 0; unit 3: [6, 8]
    pytest.param(
        "AveragePool", (1, 2, 8, 8),
        dict(kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_LOWER"),
        (1, 2, 4, 4), [(3, 2, -1)] * 2, {(0, 3): (5, 7)},
        id="avg-k3s2-same-lower-even",
    ),  # total = 1: lo 1, hi 0; start -1; unit 3: [-1+6, -1+6+2] = [5, 7]
    pytest.param(
        "AveragePool", (1, 2, 7, 7), dict(kernel_shape=[2, 2], strides=[2, 2]),
        (1, 2, 3, 3), [(2, 2, 0)] * 2, {},
        id="avg-k2s2-floor-odd",
    ),  # n = (7-2)//2+1 = 3
    pytest.param(
        "AveragePool", (1, 2, 8, 8),
        dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1] * 4, ceil_mode=1),
        (1, 2, 5, 5), [(3, 2, -1)] * 2, {(1, 4): (7, 9)},
        id="avg-k3s2p1-ceil-even",
    ),  # as for MaxPool: n = ceil(7/2)+1 = 5 (window 4 starts at 7 < 8)
    pytest.param(
        "AveragePool", (1, 2, 6, 6), dict(kernel_shape=[3, 3], pads=[1, 0, 0, 1]),
        (1, 2, 5, 5), [(3, 1, -1), (3, 1, 0)], {},
        id="avg-asymmetric-pads",
    ),  # H: lo 1, hi 0: n = (6+1-3)+1 = 5, start -1; W: lo 0, hi 1: n = 5, start 0
    pytest.param(
        "LpPool", (1, 2, 8, 8), dict(kernel_shape=[2, 2], strides=[2, 2], p=2),
        (1, 2, 4, 4), [(2, 2, 0)] * 2, {(0, 1): (2, 3)},
        id="lp-k2s2",
    ),  # n = (8-2)//2+1 = 4; r = 2; j = 2
    pytest.param(
        "LpPool", (1, 2, 6, 6), dict(kernel_shape=[3, 3], pads=[1] * 4),
        (1, 2, 6, 6), [(3, 1, -1)] * 2, {},
        id="lp-k3-p1",
    ),  # n = (6+2-3)+1 = 6; start -1
]


@pytest.mark.parametrize("op, in_shape, attrs, out_shape, geo, units", POOL_CASES)
def test_pool(
    tmp_path: Path,
    op: str,
    in_shape: tuple[int, ...],
    attrs: dict[str, Any],
    out_shape: tuple[int, ...],
    geo: list[tuple[int, int, int]],
    units: dict[tuple[int, int], tuple[int, int]],
) -> None:
    r = analyze(save(tmp_path, [node(op, ["x"], "pool", **attrs)], in_shape))
    lay = r.layer("pool")
    assert lay.status == "ok"
    assert lay.output_shape == out_shape
    for a, (rf, jump, start) in enumerate(geo):
        check_axis(lay, a, out_shape[2 + a], rf, jump, start)
    for (a, i), interval in units.items():
        assert lay.unit_interval(a, i) == interval, (a, i)


# --------------------------------------------------------------------------- global ops

# Every model: x [1,2,8,8] -> Conv k3 pads 1 (4 channels; r 3, start -1) -> op "red".
# (opset, op, attrs, axes input or None, out_shape, global per axis, local (rf, start) per axis)
REDUCE_CASES = [
    pytest.param(17, "GlobalAveragePool", {}, None, (1, 4, 1, 1), (True, True), None,
                 id="gap"),
    pytest.param(17, "GlobalMaxPool", {}, None, (1, 4, 1, 1), (True, True), None,
                 id="gmp"),
    pytest.param(13, "ReduceMean", dict(axes=[2, 3]), None, (1, 4, 1, 1), (True, True), None,
                 id="reducemean13-keepdims1"),
    pytest.param(13, "ReduceMean", dict(axes=[2, 3], keepdims=0), None, (1, 4), (True, True),
                 None, id="reducemean13-keepdims0"),
    pytest.param(18, "ReduceMean", {}, [2, 3], (1, 4, 1, 1), (True, True), None,
                 id="reducemean18-axes-input-keepdims1"),
    pytest.param(18, "ReduceMean", dict(keepdims=0), [-2, -1], (1, 4), (True, True), None,
                 id="reducemean18-axes-input-keepdims0"),
    pytest.param(18, "ReduceMean", {}, None, (1, 1, 1, 1), (True, True), None,
                 id="reducemean18-no-axes-reduces-all"),
    # no axes input, noop_with_empty_axes 0: every axis reduced (N, C, H, W -> 1)
    # only W reduced: H keeps the conv's window (r 3, start -1), W is global
    pytest.param(13, "ReduceMean", dict(axes=[-1]), None, (1, 4, 8, 1), (False, True),
                 [(3, -1), None], id="reducemean13-W-only"),
    pytest.param(18, "ReduceMax", dict(keepdims=0), [2], (1, 4, 8), (True, False),
                 [None, (3, -1)], id="reducemax18-H-only-keepdims0"),
]


@pytest.mark.parametrize("opset, op, attrs, axes, out_shape, glob, local", REDUCE_CASES)
def test_global_reductions(
    tmp_path: Path,
    opset: int,
    op: str,
    attrs: dict[str, Any],
    axes: list[int] | None,
    out_shape: tuple[int, ...],
    glob: tuple[bool, bool],
    local: list[tuple[int, int] | None] | None,
) -> None:
    inits = [weight("w", (4, 2, 3, 3))]
    red_inputs = ["conv"]
    if axes is not None:
        inits.append(ints("axes", axes))
        red_inputs.append("axes")
    nodes = [
        node("Conv", ["x", "w"], "conv", kernel_shape=[3, 3], pads=[1] * 4),
        node(op, red_inputs, "red", **attrs),
    ]
    r = analyze(save(tmp_path, nodes, (1, 2, 8, 8), inits, opset=opset))
    lay = r.layer("red")
    assert lay.status == "ok"
    assert lay.output_shape == out_shape
    assert tuple(a.is_global for a in lay.axes) == glob
    for a, g in enumerate(glob):
        ax = lay.axes[a]
        if g:  # every unit depends on all 8 pixels of this axis
            assert ax.full is True
            assert ax.coverage_centre == pytest.approx(1.0)
            assert ax.coverage_min == pytest.approx(1.0)
            assert ax.effective_rf == 8
        else:
            assert local is not None and local[a] is not None
            rf, start = local[a]
            assert (ax.size, ax.rf, ax.jump, ax.start) == (8, rf, 1, start)
            assert ax.full is False
    if all(glob):
        assert lay.is_global
        assert lay.sees_full_input is True
        assert not lay.is_spatial  # a 1x1 (or flat) global result is not a feature map
        assert r.verdict.first_global_layer == "red"
        assert r.verdict.first_full_coverage_layer == "red"
        assert r.verdict.last_spatial_layer == "conv"
        assert r.verdict.global_while_spatial is None
    else:
        assert not lay.is_global


# conv k3 pads 1 (r 3, start -1, size kept) in 1-D / 2-D / 3-D, then a global op
ND_CASES = [
    pytest.param((1, 2, 20), (4, 2, 3), id="1d"),
    pytest.param((1, 2, 8, 6), (4, 2, 3, 3), id="2d"),
    pytest.param((1, 1, 6, 8, 10), (4, 1, 3, 3, 3), id="3d"),
]


@pytest.mark.parametrize("op", ["GlobalAveragePool", "GlobalMaxPool"])
@pytest.mark.parametrize("in_shape, w_shape", ND_CASES)
def test_global_pool_any_rank(
    tmp_path: Path, op: str, in_shape: tuple[int, ...], w_shape: tuple[int, ...]
) -> None:
    # [1, 4, *spatial] -> [1, 4, 1, ...]: every spatial axis reduced, global on all of them
    nsp = len(in_shape) - 2
    nodes = [
        node("Conv", ["x", "w"], "conv", kernel_shape=[3] * nsp, pads=[1] * (2 * nsp)),
        node(op, ["conv"], "gp"),
    ]
    r = analyze(save(tmp_path, nodes, in_shape, [weight("w", w_shape)]))
    lay = r.layer("gp")
    assert lay.status == "ok"
    assert lay.output_shape == (1, 4) + (1,) * nsp
    assert [a.is_global for a in lay.axes] == [True] * nsp
    assert [a.full for a in lay.axes] == [True] * nsp
    assert [a.effective_rf for a in lay.axes] == list(in_shape[2:])
    assert r.verdict.first_global_layer == "gp"


@pytest.mark.parametrize("in_shape, w_shape", ND_CASES)
def test_instance_norm_any_rank(
    tmp_path: Path, in_shape: tuple[int, ...], w_shape: tuple[int, ...]
) -> None:
    # InstanceNormalization normalises over all spatial axes: global on each, local r 3 kept
    nsp = len(in_shape) - 2
    nodes = [
        node("Conv", ["x", "w"], "conv", kernel_shape=[3] * nsp, pads=[1] * (2 * nsp)),
        node("InstanceNormalization", ["conv", "scale", "bias"], "inorm"),
    ]
    inits = [weight("w", w_shape), weight("scale", (4,)), weight("bias", (4,))]
    r = analyze(save(tmp_path, nodes, in_shape, inits))
    lay = r.layer("inorm")
    assert lay.status == "ok"
    assert lay.output_shape == (1, 4, *in_shape[2:])
    assert [a.is_global for a in lay.axes] == [True] * nsp
    for a in range(nsp):
        check_axis(lay, a, in_shape[2 + a], 3, 1, -1)
    assert r.verdict.global_while_spatial == "inorm"


@pytest.mark.parametrize("trans_b", [0, 1])
def test_flatten_gemm_is_global(tmp_path: Path, trans_b: int) -> None:
    # conv k3 p1 on 4x4 (r 3, start -1) -> Flatten [1, 4*4*4 = 64] -> Gemm (B [64, 10], or
    # [10, 64] with transB) -> [1, 10]: every logit depends on every position
    nodes = [
        node("Conv", ["x", "w"], "conv", kernel_shape=[3, 3], pads=[1] * 4),
        node("Flatten", ["conv"], "flat"),
        node("Gemm", ["flat", "fc_w", "fc_b"], "fc", transB=trans_b),
    ]
    fc_shape = (10, 64) if trans_b else (64, 10)
    inits = [weight("w", (4, 2, 3, 3)), weight("fc_w", fc_shape), weight("fc_b", (10,))]
    r = analyze(save(tmp_path, nodes, (1, 2, 4, 4), inits))
    flat = r.layer("flat")
    assert flat.output_shape == (1, 64)
    assert not flat.is_spatial and not flat.is_global
    fc = r.layer("fc")
    assert fc.status == "ok"
    assert fc.output_shape == (1, 10)
    assert fc.is_global and not fc.is_spatial
    assert [a.full for a in fc.axes] == [True, True]
    assert [a.effective_rf for a in fc.axes] == [4, 4]
    v = r.verdict
    assert v.last_spatial_layer == "conv"
    assert v.first_global_layer == "fc"
    assert v.first_full_coverage_layer == "fc"
    assert v.rf == (3, 3) and v.start == (-1, -1)
    assert v.certain


def _matmul_weight(source: str, name: str, shape: tuple[int, int]) -> tuple[
    list[onnx.NodeProto], list[onnx.TensorProto]
]:
    """A constant MatMul operand as an initializer or as the output of a Constant node."""
    w = weight(name, shape)
    if source == "initializer":
        return [], [w]
    return [helper.make_node("Constant", [], [name], name=name, value=w)], []


@pytest.mark.parametrize("batch", [1, "N"])
@pytest.mark.parametrize("source", ["initializer", "constant-node"])
def test_reshape_matmul_is_global(tmp_path: Path, source: str, batch: int | str) -> None:
    # Reshape [0, -1]: [N, 2, 4, 4] -> [N, 32]; MatMul with a constant [32, 5] -> [N, 5]:
    # out[0, c] = sum over all 32 (channel, y, x) of flat * W: global on H and W
    w_nodes, w_inits = _matmul_weight(source, "mw", (32, 5))
    nodes = [
        *w_nodes,
        node("Reshape", ["x", "shape"], "flat"),
        node("MatMul", ["flat", "mw"], "mm"),
    ]
    r = analyze(save(tmp_path, nodes, (batch, 2, 4, 4), [ints("shape", [0, -1]), *w_inits]))
    assert r.layer("flat").output_shape[1:] == (32,)
    mm = r.layer("mm")
    assert mm.status == "ok"
    assert mm.output_shape[1:] == (5,)
    assert mm.is_global
    assert [a.full for a in mm.axes] == [True, True]
    assert r.verdict.first_global_layer == "mm"
    assert r.verdict.certain


@pytest.mark.parametrize("source", ["initializer", "constant-node"])
def test_matmul_over_channels_after_nhwc_reshape_stays_local(tmp_path: Path, source: str) -> None:
    # conv k3 p1 (r 3, start -1) [1,3,6,4] -> Transpose NHWC [1,6,4,3] -> Reshape [1,24,3]
    # -> MatMul [3,5] (mixes channels only: a 1x1 conv) -> Reshape [1,6,4,5] -> Transpose NCHW
    # [1,5,6,4]: still local, r 3, start -1, j 1
    w_nodes, w_inits = _matmul_weight(source, "mw", (3, 5))
    nodes = [
        *w_nodes,
        node("Conv", ["x", "w"], "conv", kernel_shape=[3, 3], pads=[1] * 4),
        node("Transpose", ["conv"], "nhwc", perm=[0, 2, 3, 1]),
        node("Reshape", ["nhwc", "s1"], "rows"),
        node("MatMul", ["rows", "mw"], "mm"),
        node("Reshape", ["mm", "s2"], "back"),
        node("Transpose", ["back"], "nchw", perm=[0, 3, 1, 2]),
    ]
    inits = [
        weight("w", (3, 2, 3, 3)), ints("s1", [1, 24, 3]), *w_inits, ints("s2", [1, 6, 4, 5]),
    ]
    r = analyze(save(tmp_path, nodes, (1, 2, 6, 4), inits))
    assert r.layer("rows").output_shape == (1, 24, 3)
    assert not r.layer("rows").is_spatial
    mm = r.layer("mm")
    assert mm.status == "ok"
    assert mm.output_shape == (1, 24, 5)
    assert not mm.is_global
    out = r.layer("nchw")
    assert out.status == "ok"
    assert out.output_shape == (1, 5, 6, 4)
    assert out.is_spatial and not out.is_global
    check_axis(out, 0, 6, 3, 1, -1)
    check_axis(out, 1, 4, 3, 1, -1)


def test_transpose_reshape_round_trip_then_conv(tmp_path: Path) -> None:
    # conv k3 p1: r 3, j 1, start -1, [1,3,6,4]; NHWC; Reshape [1,24,3]; Reshape [1,6,4,3];
    # back to NCHW: unchanged geometry. Then conv k3 s2 valid:
    # H: n = (6-3)//2+1 = 2; W: n = (4-3)//2+1 = 1; r = 3+(3-1)*1 = 5; j = 2; start = -1
    nodes = [
        node("Conv", ["x", "w"], "conv", kernel_shape=[3, 3], pads=[1] * 4),
        node("Transpose", ["conv"], "nhwc", perm=[0, 2, 3, 1]),
        node("Reshape", ["nhwc", "s1"], "flat"),
        node("Reshape", ["flat", "s2"], "unflat"),
        node("Transpose", ["unflat"], "nchw", perm=[0, 3, 1, 2]),
        node("Conv", ["nchw", "w2"], "conv2", kernel_shape=[3, 3], strides=[2, 2]),
    ]
    inits = [
        weight("w", (3, 2, 3, 3)), ints("s1", [1, 24, 3]), ints("s2", [1, 6, 4, 3]),
        weight("w2", (4, 3, 3, 3)),
    ]
    r = analyze(save(tmp_path, nodes, (1, 2, 6, 4), inits))
    assert r.layer("nhwc").output_shape == (1, 6, 4, 3)
    assert r.layer("nhwc").is_spatial
    assert not r.layer("flat").is_spatial
    back = r.layer("nchw")
    assert back.output_shape == (1, 3, 6, 4)
    check_axis(back, 0, 6, 3, 1, -1)
    check_axis(back, 1, 4, 3, 1, -1)
    c2 = r.layer("conv2")
    assert c2.status == "ok"
    assert c2.output_shape == (1, 4, 2, 1)
    check_axis(c2, 0, 2, 5, 2, -1)
    check_axis(c2, 1, 1, 5, 2, -1)


def test_softmax_over_flattened_positions(tmp_path: Path) -> None:
    # x [1,2,4,4] -> Reshape [1,2,16] -> Softmax(axis=-1) -> Reshape [1,2,4,4]:
    # every output depends on all 16 positions of its channel (global on H and W), while the
    # local window stays the pixel itself (r 1, start 0)
    nodes = [
        node("Reshape", ["x", "s1"], "flat"),
        node("Softmax", ["flat"], "sm", axis=-1),
        node("Reshape", ["sm", "s2"], "back"),
    ]
    inits = [ints("s1", [1, 2, 16]), ints("s2", [1, 2, 4, 4])]
    r = analyze(save(tmp_path, nodes, (1, 2, 4, 4), inits))
    sm = r.layer("sm")
    assert sm.output_shape == (1, 2, 16)
    assert sm.is_global
    back = r.layer("back")
    assert back.status == "ok"
    assert back.output_shape == (1, 2, 4, 4)
    assert back.is_spatial and back.is_global
    assert [a.rf for a in back.axes] == [1, 1]
    assert [a.full for a in back.axes] == [True, True]
    assert r.verdict.global_while_spatial == "back"


@pytest.mark.parametrize(
    "opset, axis, glob",
    [
        (11, 1, (True, True)),  # opset < 13: coerced to 2-D [N, C*H*W] from axis 1: C, H, W mixed
        (13, 1, (False, False)),  # opset 13: over channels only: each position on its own
        (13, -1, (False, True)),  # opset 13, axis -1 = W: every unit sees its whole row
    ],
)
def test_softmax_axis_semantics_by_opset(
    tmp_path: Path, opset: int, axis: int, glob: tuple[bool, bool]
) -> None:
    # conv k3 p1 (r 3, start -1) on 8x8 -> Softmax(axis); the local window is kept in every case
    nodes = [
        node("Conv", ["x", "w"], "conv", kernel_shape=[3, 3], pads=[1] * 4),
        node("Softmax", ["conv"], "sm", axis=axis),
    ]
    r = analyze(save(tmp_path, nodes, (1, 2, 8, 8), [weight("w", (4, 2, 3, 3))], opset=opset))
    lay = r.layer("sm")
    assert lay.status == "ok"
    assert lay.output_shape == (1, 4, 8, 8)
    assert tuple(a.is_global for a in lay.axes) == glob
    for a in range(2):
        check_axis(lay, a, 8, 3, 1, -1)
        assert lay.axes[a].full is glob[a]  # not global: unit 0 [-1, 1] misses pixels 2..7


def test_instance_norm_global_keeps_local_window(tmp_path: Path) -> None:
    # conv k3 p1 on 8x8 (r 3, start -1) -> InstanceNormalization: mean/var over H, W make every
    # unit depend on the whole map; the local window r 3, start -1 stays
    nodes = [
        node("Conv", ["x", "w"], "conv", kernel_shape=[3, 3], pads=[1] * 4),
        node("InstanceNormalization", ["conv", "scale", "bias"], "inorm"),
    ]
    inits = [weight("w", (4, 2, 3, 3)), weight("scale", (4,)), weight("bias", (4,))]
    r = analyze(save(tmp_path, nodes, (1, 2, 8, 8), inits))
    lay = r.layer("inorm")
    assert lay.status == "ok"
    assert lay.output_shape == (1, 4, 8, 8)
    assert lay.is_spatial and lay.is_global
    for a in range(2):
        check_axis(lay, a, 8, 3, 1, -1)
        assert lay.axes[a].full is True
        assert lay.axes[a].effective_rf == 8
    assert r.verdict.global_while_spatial == "inorm"
    assert r.verdict.first_global_layer == "inorm"
    assert r.verdict.sees_full_input is True


# --------------------------------------------------------------------------- Pad and Slice

# (opset, pads (input or attribute), pads axes input, out_shape, per axis start)
PAD_CASES = [
    pytest.param(11, [0, 0, 1, 2, 0, 0, 3, 4], None, (1, 2, 12, 14), (-1, -2),
                 id="opset11-pads-input"),
    # H: 8+1+3 = 12, start = 0-1*1 = -1; W: 8+2+4 = 14, start = -2
    pytest.param(2, [0, 0, 2, 0, 0, 0, 2, 0], None, (1, 2, 12, 8), (-2, 0),
                 id="opset2-pads-attribute"),
    # H: 8+2+2 = 12, start -2; W untouched
    pytest.param(13, [0, 0, -1, -2, 0, 0, -1, 0], None, (1, 2, 6, 6), (1, 2),
                 id="negative-pads-crop"),
    # H: 8-1-1 = 6, start = 0-(-1)*1 = 1; W: 8-2+0 = 6, start = 2
    pytest.param(13, [0, 0, 2, -1, 0, 0, -2, 3], None, (1, 2, 8, 10), (-2, 1),
                 id="mixed-pad-and-crop"),
    # H: 8+2-2 = 8, start -2; W: 8-1+3 = 10, start 1
    pytest.param(18, [1, 2, 1, 2], [2, 3], (1, 2, 10, 12), (-1, -2),
                 id="opset18-axes-input"),
    pytest.param(13, [0, 0, 3, 0, 0, 0, -6, 0], None, (1, 2, 5, 8), (-3, 0),
                 id="crop-into-begin-padding"),
    # H: 8+3-6 = 5 (the crop removes 6 of the 8 pixels), start -3: units 0-2 are padding
    pytest.param(13, [0, 1, 0, 0, 0, 1, 0, 0], None, (1, 4, 8, 8), (0, 0),
                 id="channel-axis-only"),
    # padding channels 2 -> 4 leaves H and W alone
    # axes [2, 3]: H lo 1 hi 1 -> 10, start -1; W lo 2 hi 2 -> 12, start -2
]


@pytest.mark.parametrize("opset, pads, axes, out_shape, starts", PAD_CASES)
def test_pad(
    tmp_path: Path,
    opset: int,
    pads: list[int],
    axes: list[int] | None,
    out_shape: tuple[int, ...],
    starts: tuple[int, int],
) -> None:
    inits = []
    if opset < 11:
        pad = node("Pad", ["x"], "pad", pads=pads)
    else:
        inputs = ["x", "pads"]
        inits.append(ints("pads", pads))
        if axes is not None:
            inputs += ["", "axes"]
            inits.append(ints("axes", axes))
        pad = node("Pad", inputs, "pad")
    lay = analyze(save(tmp_path, [pad], (1, 2, 8, 8), inits, opset=opset)).layer("pad")
    assert lay.status == "ok"
    assert lay.output_shape == out_shape
    for a in range(2):
        check_axis(lay, a, out_shape[2 + a], 1, 1, starts[a])
        # unit i reads pixel start + i
        assert lay.unit_interval(a, 3) == (starts[a] + 3, starts[a] + 3)


# (opset, starts, ends, axes, steps, in_shape, out_shape, per axis (jump, start))
SLICE_CASES = [
    pytest.param(13, [1], [7], [2], None, (1, 2, 8, 8), (1, 2, 6, 8), [(1, 1), (1, 0)],
                 id="H-1-to-7"),
    # H: indices 1..6 -> 6, start = 0+1*1 = 1; W untouched
    pytest.param(13, [0], [INT64_MAX], [3], [2], (1, 2, 8, 8), (1, 2, 8, 4), [(1, 0), (2, 0)],
                 id="W-step2-int64max"),
    # W: 0, 2, 4, 6 -> 4 units, j = 1*2 = 2, start 0
    pytest.param(13, [-3], [INT64_MAX], [2], None, (1, 2, 8, 8), (1, 2, 3, 8), [(1, 5), (1, 0)],
                 id="H-negative-start"),
    # H: -3 -> 8-3 = 5: indices 5, 6, 7 -> 3 units, start 5
    pytest.param(13, [1, -6], [INT64_MAX, -1], [2, 3], [3, 2], (1, 2, 10, 10), (1, 2, 3, 3),
                 [(3, 1), (2, 4)], id="both-axes-steps-3-2"),
    # H: 1, 4, 7 -> 3 units, j 3, start 1; W: -6 -> 4, -1 -> 9: 4, 6, 8 -> 3 units, j 2, start 4
    pytest.param(13, [2], [-2], [-1], None, (1, 2, 8, 8), (1, 2, 8, 4), [(1, 0), (1, 2)],
                 id="negative-axis-and-end"),
    # axis -1 = W: 2 .. 8-2 = 6 (exclusive): 2, 3, 4, 5 -> 4 units, start 2
    pytest.param(13, [0, 0, 1, 0], [1, 2, 7, INT64_MAX], None, None, (1, 2, 8, 8),
                 (1, 2, 6, 8), [(1, 1), (1, 0)], id="no-axes-input"),
    # axes default 0..3: H 1..6 -> 6 units, start 1; W full
    pytest.param(10, [1], [8], [2], [2], (1, 2, 8, 8), (1, 2, 4, 8), [(2, 1), (1, 0)],
                 id="opset10-inputs-step2"),
    # H: 1, 3, 5, 7 -> 4 units, j 2, start 1
    pytest.param(13, [0], [1], [1], None, (1, 2, 8, 8), (1, 1, 8, 8), [(1, 0), (1, 0)],
                 id="channel-axis-only"),
    # slicing channels leaves H and W alone
    pytest.param(9, [2], [6], [3], None, (1, 2, 8, 8), (1, 2, 8, 4), [(1, 0), (1, 2)],
                 id="opset9-attributes"),
    # W: 2, 3, 4, 5 -> 4 units, start 2
]


@pytest.mark.parametrize(
    "opset, starts, ends, axes, steps, in_shape, out_shape, geo", SLICE_CASES
)
def test_slice(
    tmp_path: Path,
    opset: int,
    starts: list[int],
    ends: list[int],
    axes: list[int] | None,
    steps: list[int] | None,
    in_shape: tuple[int, ...],
    out_shape: tuple[int, ...],
    geo: list[tuple[int, int]],
) -> None:
    inits = []
    if opset < 10:
        sl = node("Slice", ["x"], "slice", starts=starts, ends=ends, axes=axes)
    else:
        inputs = ["x", "starts", "ends"]
        inits += [ints("starts", starts), ints("ends", ends)]
        if axes is not None or steps is not None:
            inputs.append("axes" if axes is not None else "")
            if axes is not None:
                inits.append(ints("axes", axes))
        if steps is not None:
            inputs.append("steps")
            inits.append(ints("steps", steps))
        sl = node("Slice", inputs, "slice")
    lay = analyze(save(tmp_path, [sl], in_shape, inits, opset=opset)).layer("slice")
    assert lay.status == "ok"
    assert lay.output_shape == out_shape
    for a, (jump, start) in enumerate(geo):
        check_axis(lay, a, out_shape[2 + a], 1, jump, start)
        # unit 2 reads pixel start + 2*jump
        assert lay.unit_interval(a, 2) == (start + 2 * jump, start + 2 * jump)


def test_slice_after_strided_conv_scales_by_jump(tmp_path: Path) -> None:
    # conv k3 s2 p1 on 16: n = (16+2-3)//2+1 = 8, r 3, j 2, start -1.
    # Slice H from 2, step 2: start = -1 + 2*2 = 3, j = 2*2 = 4, r 3, n = ceil((8-2)/2) = 3
    nodes = [
        node("Conv", ["x", "w"], "conv", kernel_shape=[3, 3], strides=[2, 2], pads=[1] * 4),
        node("Slice", ["conv", "st", "en", "ax", "sp"], "slice"),
    ]
    inits = [weight("w", (4, 2, 3, 3)), ints("st", [2]), ints("en", [INT64_MAX]), ints("ax", [2]),
             ints("sp", [2])]
    lay = analyze(save(tmp_path, nodes, (1, 2, 16, 16), inits)).layer("slice")
    assert lay.output_shape == (1, 4, 3, 8)
    check_axis(lay, 0, 3, 3, 4, 3)
    check_axis(lay, 1, 8, 3, 2, -1)
    assert lay.unit_interval(0, 2) == (11, 13)  # 3 + 2*4 = 11 .. 11+2


# --------------------------------------------------------------------------- ConvTranspose

# Input [1,2,4,4], W [2,3,k,k] (C_in, C_out, k, k). Definition: input unit i reaches output unit
# o = i*s + u*d - pad_lo through tap u (0 <= u < k). n_out = s*(n-1) + out_pad + k_eff - lo - hi.
# (attrs, n_out, intervals of output units 0..7, rf, rf_min, start, phase_starts)
CONV_T_CASES = [
    pytest.param(
        dict(kernel_shape=[2, 2], strides=[2, 2]), 8,
        [(0, 0), (0, 0), (1, 1), (1, 1), (2, 2), (2, 2), (3, 3), (3, 3)], 1, 1, 0, (0, 0),
        id="k2-s2",
    ),  # n = 2*3+2 = 8; o = 2i+u: o even <- (u=0, i=o/2), o odd <- (u=1, i=(o-1)/2): i = o//2
    pytest.param(
        dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1] * 4, output_padding=[1, 1]), 8,
        [(0, 0), (0, 1), (1, 1), (1, 2), (2, 2), (2, 3), (3, 3), (3, 4)], 2, 1, 0, (0, 0),
        id="k3-s2-pad1-outpad1",
    ),  # n = 2*3+1+3-1-1 = 8; i = (o+1-u)/2: o=0: u=1 -> 0; o=1: u=0 -> 1, u=2 -> 0;
    #     o=2: u=1 -> 1; o=3: u=0 -> 2, u=2 -> 1; ... o=7: u=0 -> 4, u=2 -> 3 (4: past the end)
    pytest.param(
        dict(kernel_shape=[4, 4], strides=[2, 2], pads=[1] * 4), 8,
        [(-1, 0), (0, 1), (0, 1), (1, 2), (1, 2), (2, 3), (2, 3), (3, 4)], 2, 2, -1, (-1, 0),
        id="k4-s2-pad1",
    ),  # n = 2*3+4-2 = 8; i = (o+1-u)/2: o=0: u=1 -> 0, u=3 -> -1; o=1: u=0 -> 1, u=2 -> 0;
    #     o=2: u=1 -> 1, u=3 -> 0; o=3: 2, 1; ... o=7: u=0 -> 4, u=2 -> 3
]


@pytest.mark.parametrize(
    "attrs, n_out, intervals, rf, rf_min, start, phases", CONV_T_CASES
)
def test_conv_transpose(
    tmp_path: Path,
    attrs: dict[str, Any],
    n_out: int,
    intervals: list[tuple[int, int]],
    rf: int,
    rf_min: int,
    start: int,
    phases: tuple[int, ...],
) -> None:
    k = attrs["kernel_shape"][0]
    inits = [weight("w", (2, 3, k, k)), weight("b", (3,))]
    ct = node("ConvTranspose", ["x", "w", "b"], "convt", **attrs)
    r = analyze(save(tmp_path, [ct], (1, 2, 4, 4), inits))
    lay = r.layer("convt")
    assert lay.status == "ok"
    assert lay.output_shape == (1, 3, n_out, n_out)
    for a in range(2):
        ax = lay.axes[a]
        assert ax.jump == Fraction(1, 2) and isinstance(ax.jump, Fraction)
        assert (ax.size, ax.rf, ax.rf_min, ax.start) == (n_out, rf, rf_min, start)
        assert ax.phase_starts == phases
        assert ax.staircase
        assert [lay.unit_interval(a, o) for o in range(8)] == intervals


def test_conv_transpose_then_strided_conv_is_uniform_again(tmp_path: Path) -> None:
    # ConvTranspose k2 s2: output o reads input o//2 (j 1/2, staircase).
    # Conv k2 s2 valid: unit p reads o = 2p, 2p+1 -> input p, p: [p, p]: r 1, j 1, start 0,
    # a plain grid again (no phases). n = (8-2)//2+1 = 4
    nodes = [
        node("ConvTranspose", ["x", "wt"], "convt", kernel_shape=[2, 2], strides=[2, 2]),
        node("Conv", ["convt", "w"], "conv", kernel_shape=[2, 2], strides=[2, 2]),
    ]
    inits = [weight("wt", (2, 3, 2, 2)), weight("w", (4, 3, 2, 2))]
    r = analyze(save(tmp_path, nodes, (1, 2, 4, 4), inits))
    lay = r.layer("conv")
    assert lay.output_shape == (1, 4, 4, 4)
    for a in range(2):
        check_axis(lay, a, 4, 1, 1, 0)
        assert lay.axes[a].rf_min == 1
        assert not lay.axes[a].staircase
        assert [lay.unit_interval(a, p) for p in range(4)] == [(p, p) for p in range(4)]
    # resolution changes: 1 -> 1/2 at the transposed conv, 1/2 -> 1 at the strided conv
    assert [(st.layer, st.jump_before, st.jump_after) for st in r.verdict.stages] == [
        ("convt", (1, 1), (F(1, 2), F(1, 2))), ("conv", (F(1, 2), F(1, 2)), (1, 1))
    ]


# --------------------------------------------------------------------------- Resize / Upsample

# Input [1,1,4,4]. Source coordinate of output unit o (scale f): asymmetric x = o/f; half_pixel
# x = (o+1/2)/f - 1/2; align_corners x = o*(n_in-1)/(n_out-1). nearest reads round(x) (per
# nearest_mode), linear reads floor(x) and floor(x)+1 (only x when x is an integer: weight 0).
# (opset, op, attrs, "scales"/"sizes"/"attr", values, out_shape,
#  per axis: (intervals of units 0..5, jump, rf, rf_min, start, phase_starts))
STAIR_X2_FLOOR = ([(0, 0), (0, 0), (1, 1), (1, 1), (2, 2), (2, 2)], F(1, 2), 1, 1, 0, (0, 0))
NEAREST_ASYM_FLOOR = dict(
    mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor"
)
RESIZE_CASES = [
    pytest.param(11, "Resize", NEAREST_ASYM_FLOOR, "scales", [1, 1, 2, 2], (1, 1, 8, 8),
                 [STAIR_X2_FLOOR] * 2, id="r11-scales-nearest-asymmetric-floor"),
    # x = o/2, floor: 0, 0, 1, 1, 2, 2
    pytest.param(11, "Resize", NEAREST_ASYM_FLOOR, "sizes", [1, 1, 8, 8], (1, 1, 8, 8),
                 [STAIR_X2_FLOOR] * 2, id="r11-sizes-nearest-asymmetric-floor"),
    # sizes 8 from 4: f = 2, as above
    pytest.param(13, "Resize", NEAREST_ASYM_FLOOR, "sizes", [1, 1, 8, 8], (1, 1, 8, 8),
                 [STAIR_X2_FLOOR] * 2, id="r13-sizes-nearest-asymmetric-floor"),
    pytest.param(13, "Resize", dict(mode="nearest", coordinate_transformation_mode="asymmetric"),
                 "scales", [1, 1, 2, 2], (1, 1, 8, 8), [STAIR_X2_FLOOR] * 2,
                 id="r13-nearest-asymmetric-default-prefer-floor"),
    # x = o/2 = 0, .5, 1, 1.5, 2, 2.5; round_prefer_floor: 0, 0, 1, 1, 2, 2
    pytest.param(13, "Resize",
                 dict(mode="nearest", coordinate_transformation_mode="asymmetric",
                      nearest_mode="round_prefer_ceil"),
                 "scales", [1, 1, 2, 2], (1, 1, 8, 8),
                 [([(0, 0), (1, 1), (1, 1), (2, 2), (2, 2), (3, 3)], F(1, 2), 1, 1, 0, (0, 1))]
                 * 2, id="r13-nearest-asymmetric-prefer-ceil"),
    # x = 0, .5, 1, 1.5, 2, 2.5; round_prefer_ceil: 0, 1, 1, 2, 2, 3 -> phases (0, 1)
    pytest.param(13, "Resize",
                 dict(mode="nearest", coordinate_transformation_mode="half_pixel",
                      nearest_mode="round_prefer_floor"),
                 "scales", [1, 1, 2, 2], (1, 1, 8, 8), [STAIR_X2_FLOOR] * 2,
                 id="r13-nearest-half-pixel-prefer-floor"),
    # x = (o+.5)/2-.5 = o/2-1/4 = -.25, .25, .75, 1.25, 1.75, 2.25 -> 0, 0, 1, 1, 2, 2
    pytest.param(18, "Resize",
                 dict(mode="nearest", coordinate_transformation_mode="half_pixel",
                      nearest_mode="round_prefer_floor"),
                 "scales", [1, 1, 3, 3], (1, 1, 12, 12),
                 [([(0, 0), (0, 0), (0, 0), (1, 1), (1, 1), (1, 1)], F(1, 3), 1, 1, 0,
                   (0, 0, 0))] * 2, id="r18-nearest-half-pixel-x3"),
    # x = (o+.5)/3-.5 = (o-1)/3 = -1/3, 0, 1/3, 2/3, 1, 4/3 -> 0, 0, 0, 1, 1, 1
    pytest.param(13, "Resize", dict(mode="linear", coordinate_transformation_mode="half_pixel"),
                 "scales", [1, 1, 2, 2], (1, 1, 8, 8),
                 [([(-1, 0), (0, 1), (0, 1), (1, 2), (1, 2), (2, 3)], F(1, 2), 2, 2, -1,
                   (-1, 0))] * 2, id="r13-linear-half-pixel"),
    # x = -.25, .25, .75, 1.25, 1.75, 2.25 -> [floor, floor+1]: [-1,0], [0,1], [0,1], [1,2], ...
    # r = 2 = r_in + j_in as in the notes; unit 0 reaches the (extrapolated) border pixel -1
    pytest.param(13, "Resize",
                 dict(mode="linear", coordinate_transformation_mode="align_corners"),
                 "scales", [1, 1, 2, 2], (1, 1, 8, 8),
                 [([(0, 0), (0, 1), (0, 1), (1, 2), (1, 2), (2, 3)], F(3, 7), 2, 1, 0,
                   (0, 0, 0, 1, 1, 2, 2))] * 2, id="r13-linear-align-corners"),
    # x = o*(4-1)/(8-1) = 3o/7: 0, 3/7, 6/7, 9/7, 12/7, 15/7, 18/7, 3 -> units 0 and 7 on a
    # sample (1 pixel), the others 2; x(o+7) = x(o)+3: period 7, mean jump 3/7 (not 1/2)
    pytest.param(13, "Resize", NEAREST_ASYM_FLOOR, "sizes", [1, 1, 6, 6], (1, 1, 6, 6),
                 [([(0, 0), (0, 0), (1, 1), (2, 2), (2, 2), (3, 3)], F(2, 3), 1, 1, 0,
                   (0, 0, 1))] * 2, id="r13-sizes-4-to-6"),
    # f = 6/4 = 3/2: x = 2o/3 = 0, 2/3, 4/3, 2, 8/3, 10/3 -> floor 0, 0, 1, 2, 2, 3; period 3
    pytest.param(13, "Resize", NEAREST_ASYM_FLOOR, "scales", [1, 1, 2, 3], (1, 1, 8, 12),
                 [STAIR_X2_FLOOR,
                  ([(0, 0), (0, 0), (0, 0), (1, 1), (1, 1), (1, 1)], F(1, 3), 1, 1, 0,
                   (0, 0, 0))], id="r13-scales-2x3"),
    # H: floor(o/2); W: floor(o/3) = 0, 0, 0, 1, 1, 1
    pytest.param(10, "Resize", dict(mode="nearest"), "scales10", [1, 1, 2, 2], (1, 1, 8, 8),
                 [STAIR_X2_FLOOR] * 2, id="resize10-nearest"),
    # opset 10 Resize: like Upsample, x = o/2 -> floor: 0, 0, 1, 1, 2, 2
    pytest.param(9, "Upsample", dict(mode="nearest"), "scales10", [1, 1, 2, 2], (1, 1, 8, 8),
                 [STAIR_X2_FLOOR] * 2, id="upsample9-nearest"),
    pytest.param(9, "Upsample", dict(mode="linear"), "scales10", [1, 1, 2, 2], (1, 1, 8, 8),
                 [([(0, 0), (0, 1), (1, 1), (1, 2), (2, 2), (2, 3)], F(1, 2), 2, 1, 0, (0, 0))]
                 * 2, id="upsample9-linear"),
    # x = o/2 = 0, .5, 1, 1.5, 2, 2.5: on a sample -> 1 pixel, else floor and floor+1
    pytest.param(13, "Resize", dict(mode="linear", coordinate_transformation_mode="asymmetric"),
                 "scales", [1, 1, 2, 2], (1, 1, 8, 8),
                 [([(0, 0), (0, 1), (1, 1), (1, 2), (2, 2), (2, 3)], F(1, 2), 2, 1, 0, (0, 0))]
                 * 2, id="r13-linear-asymmetric"),
    pytest.param(13, "Resize",
                 dict(mode="nearest", coordinate_transformation_mode="half_pixel",
                      nearest_mode="round_prefer_floor"),
                 "scales", [1, 1, 0.5, 0.5], (1, 1, 2, 2),
                 [([(0, 0), (2, 2)], F(2), 1, 1, 0, ())] * 2, id="r13-nearest-half-pixel-down2"),
    # n = floor(4*0.5) = 2; x = (o+.5)*2-.5 = 2o+.5 = .5, 2.5 -> prefer floor: 0, 2; j 2
    pytest.param(13, "Resize",
                 dict(mode="nearest", coordinate_transformation_mode="half_pixel",
                      nearest_mode="round_prefer_ceil"),
                 "scales", [1, 1, 0.5, 0.5], (1, 1, 2, 2),
                 [([(1, 1), (3, 3)], F(2), 1, 1, 1, ())] * 2,
                 id="r13-nearest-half-pixel-prefer-ceil-down2"),
    # x = .5, 2.5 -> prefer ceil: 1, 3: start 1
    pytest.param(13, "Resize", dict(mode="linear", coordinate_transformation_mode="half_pixel"),
                 "scales", [1, 1, 0.5, 0.5], (1, 1, 2, 2),
                 [([(0, 1), (2, 3)], F(2), 2, 2, 0, ())] * 2, id="r13-linear-half-pixel-down2"),
    # x = 2o+.5 -> floor 2o and 2o+1: (0,1), (2,3); r 2, j 2, a plain grid (no phases)
    pytest.param(7, "Upsample", dict(mode="nearest"), "attr", [1, 1, 2, 2], (1, 1, 8, 8),
                 [STAIR_X2_FLOOR] * 2, id="upsample7-scales-attribute"),
]


def _resize_model(
    tmp_path: Path, opset: int, op: str, attrs: dict[str, Any], how: str, values: list[float]
) -> Path:
    inits: list[onnx.TensorProto] = []
    if how == "attr":
        n = node(op, ["x"], "up", scales=[float(v) for v in values], **attrs)
    elif how == "scales10":
        inits.append(floats("scales", values))
        n = node(op, ["x", "scales"], "up", **attrs)
    elif opset == 11:  # roi and scales inputs are required (may be empty)
        inits.append(floats("roi", []))
        if how == "scales":
            inits.append(floats("scales", values))
            n = node(op, ["x", "roi", "scales"], "up", **attrs)
        else:
            inits += [floats("scales", []), ints("sizes", [int(v) for v in values])]
            n = node(op, ["x", "roi", "scales", "sizes"], "up", **attrs)
    elif how == "scales":
        inits.append(floats("scales", values))
        n = node(op, ["x", "", "scales"], "up", **attrs)
    else:
        inits.append(ints("sizes", [int(v) for v in values]))
        n = node(op, ["x", "", "", "sizes"], "up", **attrs)
    return save(tmp_path, [n], (1, 1, 4, 4), inits, opset=opset)


@pytest.mark.parametrize("opset, op, attrs, how, values, out_shape, geo", RESIZE_CASES)
def test_resize(
    tmp_path: Path,
    opset: int,
    op: str,
    attrs: dict[str, Any],
    how: str,
    values: list[float],
    out_shape: tuple[int, ...],
    geo: list[tuple[list[tuple[int, int]], Fraction, int, int, int, tuple[int, ...]]],
) -> None:
    r = analyze(_resize_model(tmp_path, opset, op, attrs, how, values))
    lay = r.layer("up")
    assert lay.status == "ok"
    assert lay.output_shape == out_shape
    for a, (intervals, jump, rf, rf_min, start, phases) in enumerate(geo):
        ax = lay.axes[a]
        assert ax.jump == jump and isinstance(ax.jump, Fraction), a
        assert (ax.size, ax.rf, ax.rf_min, ax.start) == (out_shape[2 + a], rf, rf_min, start), a
        assert ax.phase_starts == phases, a
        assert [lay.unit_interval(a, o) for o in range(len(intervals))] == intervals, a


@pytest.mark.parametrize("src", ["input", "identity", "conv1x1"])
@pytest.mark.parametrize("how", ["scales", "sizes"])
def test_resize_opset18_axes_attribute(tmp_path: Path, how: str, src: str) -> None:
    # opset 18, axes=[2, 3]: scales [2, 2] / sizes [8, 8] name H and W only. Nearest, asymmetric,
    # floor: unit o reads o//2 -> r 1, j 1/2, start 0, phases (0, 0). Resize reads the model
    # input directly, or the output of an Identity or of a 1x1 conv (3 channels), whose shapes
    # the file does not record; neither changes anything spatially: [1, C, 4, 4] -> [1, C, 8, 8]
    inits = [floats("scales", [2, 2]) if how == "scales" else ints("sizes", [8, 8])]
    data = "x" if src == "input" else "src"
    inputs = [data, "", "scales"] if how == "scales" else [data, "", "", "sizes"]
    nodes = [node("Resize", inputs, "up", axes=[2, 3], **NEAREST_ASYM_FLOOR)]
    if src == "conv1x1":
        nodes.insert(0, node("Conv", ["x", "w"], "src", kernel_shape=[1, 1]))
        inits.append(weight("w", (3, 2, 1, 1)))
    elif src == "identity":
        nodes.insert(0, node("Identity", ["x"], "src"))
    r = analyze(save(tmp_path, nodes, (1, 2, 4, 4), inits, opset=18))
    lay = r.layer("up")
    assert lay.status == "ok"
    assert lay.output_shape == (1, 3 if src == "conv1x1" else 2, 8, 8)
    for a in range(2):
        ax = lay.axes[a]
        assert (ax.size, ax.rf, ax.jump, ax.start, ax.phase_starts) == (8, 1, F(1, 2), 0, (0, 0))
        assert [lay.unit_interval(a, o) for o in range(4)] == [(0, 0), (0, 0), (1, 1), (1, 1)]


def test_resize_then_conv_staircase(tmp_path: Path) -> None:
    # nearest x2 (asymmetric, floor): unit u reads input u//2. Conv k3 p1 after it: unit o reads
    # resize units o-1..o+1 -> input (o-1)//2 .. (o+1)//2:
    # o0: -1..0, o1: 0..1, o2: 0..1, o3: 1..2, o4: 1..2, o5: 2..3 -> r 2, start -1, j 1/2
    nodes = [
        node("Resize", ["x", "", "scales"], "up", **NEAREST_ASYM_FLOOR),
        node("Conv", ["up", "w"], "conv", kernel_shape=[3, 3], pads=[1] * 4),
    ]
    inits = [floats("scales", [1, 1, 2, 2]), weight("w", (2, 1, 3, 3))]
    lay = analyze(save(tmp_path, nodes, (1, 1, 4, 4), inits)).layer("conv")
    assert lay.output_shape == (1, 2, 8, 8)
    for a in range(2):
        ax = lay.axes[a]
        assert (ax.rf, ax.rf_min, ax.jump, ax.start) == (2, 2, F(1, 2), -1)
        assert ax.phase_starts == (-1, 0)
        assert [lay.unit_interval(a, o) for o in range(6)] == [
            (-1, 0), (0, 1), (0, 1), (1, 2), (1, 2), (2, 3)
        ]


# --------------------------------------------------------------------------- SpaceToDepth

def test_space_to_depth(tmp_path: Path) -> None:
    # block 2: unit p reads [2p, 2p+1]: r 2, j 2, start 0; [1,2,8,8] -> [1,8,4,4]
    lay = analyze(save(tmp_path, [node("SpaceToDepth", ["x"], "s2d", blocksize=2)],
                       (1, 2, 8, 8))).layer("s2d")
    assert lay.status == "ok"
    assert lay.output_shape == (1, 8, 4, 4)
    for a in range(2):
        check_axis(lay, a, 4, 2, 2, 0)
        assert lay.unit_interval(a, 1) == (2, 3)


@pytest.mark.parametrize("mode", ["DCR", "CRD"])
def test_depth_to_space(tmp_path: Path, mode: str) -> None:
    # block 2: output unit o reads input unit o//2: r 1, j 1/2, start 0, phases (0, 0);
    # [1,8,4,4] -> [1,2,8,8]
    d2s = node("DepthToSpace", ["x"], "d2s", blocksize=2, mode=mode)
    lay = analyze(save(tmp_path, [d2s], (1, 8, 4, 4))).layer("d2s")
    assert lay.status == "ok"
    assert lay.output_shape == (1, 2, 8, 8)
    for a in range(2):
        ax = lay.axes[a]
        assert (ax.size, ax.rf, ax.rf_min, ax.jump, ax.start) == (8, 1, 1, F(1, 2), 0)
        assert ax.phase_starts == (0, 0)
        assert [lay.unit_interval(a, o) for o in range(6)] == [
            (0, 0), (0, 0), (1, 1), (1, 1), (2, 2), (2, 2)
        ]


def test_space_to_depth_then_depth_to_space(tmp_path: Path) -> None:
    # S2D: unit p reads [2p, 2p+1]; D2S: unit o reads S2D unit o//2 -> [2*(o//2), 2*(o//2)+1]:
    # (0,1), (0,1), (2,3), (2,3), ... : r 2, mean jump 2/2 = 1, start 0, a staircase (0, 0)
    nodes = [
        node("SpaceToDepth", ["x"], "s2d", blocksize=2),
        node("DepthToSpace", ["s2d"], "d2s", blocksize=2),
    ]
    lay = analyze(save(tmp_path, nodes, (1, 2, 8, 8))).layer("d2s")
    assert lay.output_shape == (1, 2, 8, 8)
    for a in range(2):
        ax = lay.axes[a]
        assert (ax.rf, ax.rf_min, ax.jump, ax.start) == (2, 2, 1, 0)
        assert ax.phase_starts == (0, 0)
        assert [lay.unit_interval(a, o) for o in range(6)] == [
            (0, 1), (0, 1), (2, 3), (2, 3), (4, 5), (4, 5)
        ]


# --------------------------------------------------------------------------- merges


def _two_branch(
    tmp_path: Path,
    in_shape: tuple[int, ...],
    a_attrs: dict[str, Any],
    a_k: int,
    b_attrs: dict[str, Any],
    b_k: int,
    merge: str = "Add",
    b_channels: int = 4,
) -> Path:
    c = in_shape[1]
    inits = [weight("wa", (4, c, a_k, a_k)), weight("wb", (b_channels, c, b_k, b_k), SEED + 7)]
    merge_attrs = dict(axis=1) if merge == "Concat" else {}
    nodes = [
        node("Conv", ["x", "wa"], "a", kernel_shape=[a_k, a_k], **a_attrs),
        node("Conv", ["x", "wb"], "b", kernel_shape=[b_k, b_k], **b_attrs),
        node(merge, ["a", "b"], "merge", **merge_attrs),
    ]
    return save(tmp_path, nodes, in_shape, inits)


def test_add_union_of_different_rfs(tmp_path: Path) -> None:
    # a: k3 pads 1: [i-1, i+1] (n 8); b: k5 pads lo 0, hi 4: n = (8+0+4-5)+1 = 8, [i, i+4].
    # union: start = min(-1, 0) = -1; end = max(-1+3-1, 0+5-1) = 4; r = 4-(-1)+1 = 6; j 1.
    # centres of unit 0 differ (0 vs 2): off-centre merge
    path = _two_branch(tmp_path, (1, 2, 8, 8), dict(pads=[1] * 4), 3, dict(pads=[0, 0, 4, 4]), 5)
    r = analyze(path)
    lay = r.layer("merge")
    assert lay.status == "ok"
    assert lay.output_shape == (1, 4, 8, 8)
    for a in range(2):
        check_axis(lay, a, 8, 6, 1, -1)
        assert lay.unit_interval(a, 3) == (2, 7)
    assert "off-centre-merge" in codes(r)
    assert "misaligned-merge" not in codes(r)


def test_add_nested_centred_paths(tmp_path: Path) -> None:
    # a: k3 p1 [i-1, i+1]; b: k5 p2 [i-2, i+2]: union [i-2, i+2]: r 5, start -2; centres equal
    path = _two_branch(tmp_path, (1, 2, 8, 8), dict(pads=[1] * 4), 3, dict(pads=[2] * 4), 5)
    r = analyze(path)
    lay = r.layer("merge")
    for a in range(2):
        check_axis(lay, a, 8, 5, 1, -2)
    assert not {"off-centre-merge", "misaligned-merge"} & set(codes(r))


def test_concat_on_channels(tmp_path: Path) -> None:
    # a: k3 p1 (4 ch) [i-1, i+1]; b: 1x1 (3 ch) [i, i]; Concat axis 1 -> [1, 7, 8, 8];
    # union: start -1, end max(1, 0) = 1, r 3; both centred at 0
    path = _two_branch(tmp_path, (1, 2, 8, 8), dict(pads=[1] * 4), 3, {}, 1, "Concat", 3)
    r = analyze(path)
    lay = r.layer("merge")
    assert lay.status == "ok"
    assert lay.output_shape == (1, 7, 8, 8)
    for a in range(2):
        check_axis(lay, a, 8, 3, 1, -1)
    assert not {"off-centre-merge", "misaligned-merge"} & set(codes(r))


def test_misaligned_merge(tmp_path: Path) -> None:
    # 8x8: a = k5 valid: n 4, j 1, unit i [i, i+4]; b = k2 s2: n = (8-2)//2+1 = 4, j 2,
    # unit i [2i, 2i+1]. Jumps differ: no single (start, jump) describes the union.
    # Union per unit: [min(i, 2i), max(i+4, 2i+1)] = (0,4), (1,5), (2,6), (3,7)
    path = _two_branch(tmp_path, (1, 2, 8, 8), {}, 5, dict(strides=[2, 2]), 2)
    r = analyze(path)
    assert r.layer("a").jump == [1, 1] and r.layer("b").jump == [2, 2]
    lay = r.layer("merge")
    assert lay.output_shape == (1, 4, 4, 4)
    assert "misaligned-merge" in codes(r)
    assert [d.where for d in r.diagnostics if d.code == "misaligned-merge"] == ["merge"] * 2
    for a in range(2):
        assert lay.axes[a].jump is None
        assert lay.axes[a].misaligned
        assert [lay.unit_interval(a, i) for i in range(4)] == [(0, 4), (1, 5), (2, 6), (3, 7)]


def test_off_centre_merge_same_padding_stride2_even(tmp_path: Path) -> None:
    # 8x8: a = k3 s2 SAME_UPPER: total = (4-1)*2+3-8 = 1 -> lo 0, hi 1: unit 0 [0, 2], centre 1;
    # b = 1x1 s2 projection: n = (8-1)//2+1 = 4, unit 0 [0, 0], centre 0 -> off-centre.
    # union: start 0, end max(2, 0) = 2: r 3, j 2
    path = _two_branch(tmp_path, (1, 2, 8, 8), dict(strides=[2, 2], auto_pad="SAME_UPPER"), 3,
                       dict(strides=[2, 2]), 1)
    r = analyze(path)
    lay = r.layer("merge")
    assert lay.output_shape == (1, 4, 4, 4)
    for a in range(2):
        check_axis(lay, a, 4, 3, 2, 0)
    assert [d.where for d in r.diagnostics if d.code == "off-centre-merge"] == ["merge"] * 2
    assert "misaligned-merge" not in codes(r)


def test_centred_merge_explicit_pad_stride2(tmp_path: Path) -> None:
    # as above but a = k3 s2 pads 1 (PyTorch style): unit 0 [-1, 1], centre 0 = b's centre:
    # no diagnostic; union start -1, end 1, r 3, j 2; n = (8+2-3)//2+1 = 4
    path = _two_branch(tmp_path, (1, 2, 8, 8), dict(strides=[2, 2], pads=[1] * 4), 3,
                       dict(strides=[2, 2]), 1)
    r = analyze(path)
    for a in range(2):
        check_axis(r.layer("merge"), a, 4, 3, 2, -1)
    assert not {"off-centre-merge", "misaligned-merge"} & set(codes(r))


@pytest.mark.parametrize("excite", ["conv1x1", "flatten-gemm-reshape"])
def test_squeeze_excitation(tmp_path: Path, excite: str) -> None:
    # c = Conv k3 p1 (r 3, start -1) [1,4,8,8]; gate = Sigmoid(fc(GAP(c))) [1,4,1,1] (global),
    # fc a 1x1 conv (MobileNetV3 style) or Flatten -> Gemm -> Reshape [1,4,1,1] (older exports);
    # m = c * gate: spatial, every unit depends on the whole input (is_global), local window r 3.
    # A conv k3 p1 after it: still global; local r = 3+2*1 = 5, start = -1-1 = -2
    if excite == "conv1x1":
        fc = [node("Conv", ["gap", "w_se", "b_se"], "se", kernel_shape=[1, 1])]
        fc_inits = [weight("w_se", (4, 4, 1, 1)), weight("b_se", (4,))]
    else:
        fc = [
            node("Flatten", ["gap"], "flat"),
            node("Gemm", ["flat", "w_se", "b_se"], "fc"),
            node("Reshape", ["fc", "se_shape"], "se"),
        ]
        fc_inits = [weight("w_se", (4, 4)), weight("b_se", (4,)), ints("se_shape", [1, 4, 1, 1])]
    nodes = [
        node("Conv", ["x", "w"], "c", kernel_shape=[3, 3], pads=[1] * 4),
        node("GlobalAveragePool", ["c"], "gap"),
        *fc,
        node("Sigmoid", ["se"], "gate"),
        node("Mul", ["c", "gate"], "m"),
        node("Conv", ["m", "w2"], "after", kernel_shape=[3, 3], pads=[1] * 4),
    ]
    inits = [weight("w", (4, 3, 3, 3)), *fc_inits, weight("w2", (4, 4, 3, 3))]
    r = analyze(save(tmp_path, nodes, (1, 3, 8, 8), inits))
    assert not r.layer("c").is_global
    gate = r.layer("gate")
    assert gate.output_shape == (1, 4, 1, 1)
    assert gate.is_global and not gate.is_spatial
    m = r.layer("m")
    assert m.status == "ok"
    assert m.output_shape == (1, 4, 8, 8)
    assert m.is_spatial
    assert [a.is_global for a in m.axes] == [True, True]
    for a in range(2):
        check_axis(m, a, 8, 3, 1, -1)
        assert m.axes[a].full is True
        assert m.axes[a].effective_rf == 8
    after = r.layer("after")
    assert after.is_global
    for a in range(2):
        check_axis(after, a, 8, 5, 1, -2)
    v = r.verdict
    assert v.global_while_spatial == "m"
    assert v.first_full_coverage_layer == "gap"
    assert v.first_global_layer == "gap"
    assert v.last_spatial_layer == "after"
    assert v.sees_full_input is True


# --------------------------------------------------------------------------- unknown ops


def _custom_op_model(tmp_path: Path, declare_shape: bool) -> Path:
    # Conv k3 p1 -> com.example.MyOp -> Conv k3 p1 on [1, 2, 8, 8]
    nodes = [
        node("Conv", ["x", "w1"], "c1", kernel_shape=[3, 3], pads=[1] * 4),
        helper.make_node("MyOp", ["c1"], ["custom"], name="custom", domain="com.example"),
        node("Conv", ["custom", "w2"], "c2", kernel_shape=[3, 3], pads=[1] * 4),
    ]
    vi = [helper.make_tensor_value_info("custom", TensorProto.FLOAT, [1, 4, 8, 8])]
    return save(tmp_path, nodes, (1, 2, 8, 8), [weight("w1", (4, 2, 3, 3)),
                                              weight("w2", (4, 4, 3, 3))],
                value_info=vi if declare_shape else (), extra_opsets=[("com.example", 1)],
                check=False)


@pytest.mark.parametrize("declare_shape", [True, False], ids=["declared-shape", "no-shape"])
def test_unknown_op(tmp_path: Path, declare_shape: bool) -> None:
    r = analyze(_custom_op_model(tmp_path, declare_shape))
    assert r.layer("c1").status == "ok"
    custom = r.layer("custom")
    assert custom.status == "unknown"
    c2 = r.layer("c2")
    assert c2.status == "uncertain"
    assert c2.rf == [None, None]
    assert "unknown-op" in codes(r)
    assert [d.where for d in r.diagnostics if d.code == "unknown-op"] == ["custom"]
    assert not r.verdict.certain


def test_verdict_after_an_unknown_op_on_a_residual_path(tmp_path: Path) -> None:
    # c1 -> MyOp (unknown) -> Add(c1, MyOp) -> c2: the Add keeps c1's layout (still a spatial
    # map) but is uncertain; the verdict speaks of the last spatial layer whose geometry is known
    # (c1: r 3, start -1) and does not claim whether the real last one sees the full input
    nodes = [
        node("Conv", ["x", "w1"], "c1", kernel_shape=[3, 3], pads=[1] * 4),
        helper.make_node("MyOp", ["c1"], ["custom"], name="custom", domain="com.example"),
        node("Add", ["c1", "custom"], "add"),
        node("Conv", ["add", "w2"], "c2", kernel_shape=[3, 3], pads=[1] * 4),
    ]
    vi = [helper.make_tensor_value_info("custom", TensorProto.FLOAT, [1, 4, 8, 8])]
    path = save(tmp_path, nodes, (1, 2, 8, 8), [weight("w1", (4, 2, 3, 3)),
                                                weight("w2", (4, 4, 3, 3))],
                value_info=vi, extra_opsets=[("com.example", 1)], check=False)
    r = analyze(path)
    assert r.layer("add").status == "uncertain" and r.layer("add").is_spatial
    v = r.verdict
    assert not v.certain
    assert v.last_spatial_layer == "c1"
    assert v.rf == (3, 3) and v.start == (-1, -1)
    assert v.sees_full_input is None


@pytest.mark.parametrize("name", ["MyOp", "com.example.MyOp"])
def test_unknown_op_assumed_pointwise(tmp_path: Path, name: str) -> None:
    # treated as pointwise: c2 = k3 p1 after k3 p1: r = 3+2*1 = 5, start = -1-1 = -2, n 8
    r = analyze(_custom_op_model(tmp_path, True), assume_pointwise=[name])
    assert [lay.status for lay in r.layers] == ["ok", "ok", "ok"]
    for a in range(2):
        check_axis(r.layer("custom"), a, 8, 3, 1, -1)
        check_axis(r.layer("c2"), a, 8, 5, 1, -2)
    assert "unknown-op" not in codes(r)
    assert r.verdict.certain


def test_assumed_pointwise_op_reads_every_data_input(tmp_path: Path) -> None:
    """A custom op over two maps (a + 0.5 * b, say) declared pointwise is an elementwise merge
    of both: a 1x1 conv (r 1) and a 5x5 conv (r 5, start -2) give r 5, start -2 (it used to read
    only its first input, r 1, and said so with certainty); its weight input is not data."""
    nodes = [
        node("Conv", ["x", "w1"], "a", kernel_shape=[1, 1]),
        node("Conv", ["x", "w5"], "b", kernel_shape=[5, 5], pads=[2] * 4),
        helper.make_node(
            "ScaleAdd", ["a", "b", "scale"], ["custom"], name="custom", domain="com.example"
        ),
    ]
    vi = [helper.make_tensor_value_info("custom", TensorProto.FLOAT, [1, 4, 8, 8])]
    inits = [weight("w1", (4, 2, 1, 1)), weight("w5", (4, 2, 5, 5)), weight("scale", (4,))]
    path = save(tmp_path, nodes, (1, 2, 8, 8), inits, value_info=vi,
                extra_opsets=[("com.example", 1)], check=False)
    r = analyze(path, assume_pointwise=["ScaleAdd"])
    assert r.verdict.certain
    for a in range(2):
        check_axis(r.layer("custom"), a, 8, 5, 1, -2)


@pytest.mark.parametrize("op", ["Gemm", "MatMul"])
def test_classifier_analysed_at_another_input_size(tmp_path: Path, op: str) -> None:
    """conv 3x3 valid (2 channels) -> Flatten -> dense made for 8x8 inputs (2*6*6 = 72 features).
    At 10x10 (--input-shape) the flattened map has 2*8*8 = 128 values: the model cannot run,
    and the dense layer says so (an error, not a confident verdict)."""
    nodes = [
        node("Conv", ["x", "w"], "conv", kernel_shape=[3, 3]),
        node("Flatten", ["conv"], "flat"),
        node(op, ["flat", "fc"], "fc_out"),
    ]
    path = save(tmp_path, nodes, (1, 1, 8, 8), [weight("w", (2, 1, 3, 3)), weight("fc", (72, 5))])
    assert analyze(path).verdict.certain
    r = analyze(path, input_shape=(1, 1, 10, 10))
    assert r.layer("fc_out").status == "error"
    assert [d.message for d in r.diagnostics if d.code == "bad-op"] == [
        "contracts 128 values with an operand made for 72: the model cannot run at this input size"
    ]


# --------------------------------------------------------------------------- whole-model verdicts


def test_verdict_describes_every_output(tmp_path: Path) -> None:
    """A two-scale detector with a classifier: outputs p3 (conv 3x3/2 'same' on 16 pixels: 8
    units, r 3, jump 2), p4 (another: 4 units, r 3 + 2*2 = 7, jump 4, start -3) and logits
    (flatten + dense over p4, whose units together read pixels -3..15: the whole input)."""
    import json

    from typer.testing import CliRunner

    from cnnprobe.cli import app

    conv = dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1] * 4)
    nodes = [
        node("Conv", ["x", "w1"], "p3", **conv),
        node("Conv", ["p3", "w2"], "p4", **conv),
        node("Flatten", ["p4"], "flat"),
        node("Gemm", ["flat", "fc"], "logits"),
    ]
    inits = [weight("w1", (2, 1, 3, 3)), weight("w2", (2, 2, 3, 3)), weight("fc", (32, 5))]
    path = save(tmp_path, nodes, (1, 1, 16, 16), inits, outputs=["p3", "p4", "logits"])
    r = analyze(path)
    p3, p4, logits = r.verdict.outputs
    assert (p3.output, p3.spatial, p3.rf, p3.jump) == ("p3", True, (3, 3), (2, 2))
    assert (p4.rf, p4.jump, p4.start, p4.sees_full_input) == ((7, 7), (4, 4), (-3, -3), False)
    assert (logits.spatial, logits.shape, logits.sees_full_input) == (False, (1, 5), True)
    text = CliRunner().invoke(app, ["summary", str(path)]).stdout
    assert "Outputs (3):\n  p3: 8×8 units, RF 3×3, jump 2×2; not every unit sees the full" in text
    assert "  logits: [1, 5], not a feature map; every unit sees the full input." in text
    doc = json.loads(CliRunner().invoke(app, ["summary", str(path), "-f", "json"]).stdout)
    assert [o["output"] for o in doc["verdict"]["outputs"]] == ["p3", "p4", "logits"]
    assert doc["verdict"]["outputs"][1]["rf"] == [7, 7]


def test_verdict_words_for_stages_in_turn_and_the_input_as_output(tmp_path: Path) -> None:
    """Down by 2, up by 2, down, up: four stages told in their order (only consecutive ones
    with the same change are grouped); the input itself, also an output, is said to be so."""
    from typer.testing import CliRunner

    from cnnprobe.cli import app

    down = dict(kernel_shape=[2, 2], strides=[2, 2])
    up = dict(kernel_shape=[2, 2], strides=[2, 2])
    nodes = [
        node("MaxPool", ["x"], "down_a", **down),
        node("ConvTranspose", ["down_a", "wt"], "up_a", **up),
        node("MaxPool", ["up_a"], "down_b", **down),
        node("ConvTranspose", ["down_b", "wt"], "up_b", **up),
    ]
    path = save(tmp_path, nodes, (1, 1, 8, 8), [weight("wt", (1, 1, 2, 2))], outputs=["up_b", "x"])
    text = CliRunner().invoke(app, ["summary", str(path)]).stdout
    assert (
        "down_a (MaxPool) jump 1×1 -> 2×2; up_a (ConvTranspose) jump 2×2 -> 1×1; down_b (MaxPool) "
        "jump 1×1 -> 2×2; up_b (ConvTranspose) jump 2×2 -> 1×1." in text
    )
    assert "  x: the model input itself." in text
    x = analyze(path).verdict.outputs[1]
    assert (x.output, x.shape, x.spatial, x.rf) == ("x", (1, 1, 8, 8), True, (1, 1))
    assert x.sees_full_input is False


def test_verdict_mnist_three_valid_convs(tmp_path: Path) -> None:
    # 28 -> 26 -> 24 -> 22; r = 1+2+2+2 = 7, j 1, start 0. Centre unit (22-1)//2 = 10 covers
    # [10, 16]: 7/28 per axis; every unit lies inside the image: min also 7/28;
    # area 49/784. Then Flatten -> Gemm (global).
    nodes = [
        node("Conv", ["x", "w1"], "conv1", kernel_shape=[3, 3]),
        node("Conv", ["conv1", "w2"], "conv2", kernel_shape=[3, 3]),
        node("Conv", ["conv2", "w3"], "conv3", kernel_shape=[3, 3]),
        node("Flatten", ["conv3"], "flat"),
        node("Gemm", ["flat", "fc"], "logits"),
    ]
    inits = [weight("w1", (4, 1, 3, 3)), weight("w2", (4, 4, 3, 3)), weight("w3", (4, 4, 3, 3)),
             weight("fc", (4 * 22 * 22, 10))]
    r = analyze(save(tmp_path, nodes, (1, 1, 28, 28), inits))
    assert r.layer("conv3").output_shape == (1, 4, 22, 22)
    v = r.verdict
    assert v.input_size == (28, 28)
    assert v.last_spatial_layer == "conv3"
    assert v.rf == (7, 7)
    assert v.jump == (1, 1) and v.total_stride == (1, 1)
    assert v.start == (0, 0)
    assert v.sees_full_input is False
    assert v.coverage_centre == pytest.approx((7 / 28, 7 / 28))
    assert v.coverage_min == pytest.approx((7 / 28, 7 / 28))
    assert v.area_centre == pytest.approx(49 / 784)
    assert v.area_min == pytest.approx(49 / 784)
    assert v.first_global_layer == "logits"
    assert v.first_full_coverage_layer == "logits"
    assert v.global_while_spatial is None
    assert v.stages == ()
    assert v.certain


def test_verdict_conv_pool_conv_pool_conv(tmp_path: Path) -> None:
    # 28 -conv3-> 26 -pool2-> 13 -conv3-> 11 -pool2-> (11-2)//2+1 = 5 -conv3-> 3
    # r: 1 +2*1 = 3; +1*1 = 4 (j 2); +2*2 = 8; +1*2 = 10 (j 4); +2*4 = 18; start 0.
    # centre unit (3-1)//2 = 1 covers [4, 21]: 18/28; units 0 [0,17], 2 [8,25]: min 18/28
    nodes = [
        node("Conv", ["x", "w1"], "conv1", kernel_shape=[3, 3]),
        node("MaxPool", ["conv1"], "pool1", kernel_shape=[2, 2], strides=[2, 2]),
        node("Conv", ["pool1", "w2"], "conv2", kernel_shape=[3, 3]),
        node("MaxPool", ["conv2"], "pool2", kernel_shape=[2, 2], strides=[2, 2]),
        node("Conv", ["pool2", "w3"], "conv3", kernel_shape=[3, 3]),
    ]
    inits = [weight("w1", (4, 1, 3, 3)), weight("w2", (4, 4, 3, 3)), weight("w3", (4, 4, 3, 3))]
    r = analyze(save(tmp_path, nodes, (1, 1, 28, 28), inits))
    assert [r.layer(n).output_shape[2] for n in ("conv1", "pool1", "conv2", "pool2", "conv3")] \
        == [26, 13, 11, 5, 3]
    assert r.layer("pool1").rf == [4, 4] and r.layer("conv2").rf == [8, 8]
    assert r.layer("pool2").rf == [10, 10]
    v = r.verdict
    assert v.last_spatial_layer == "conv3"
    assert v.rf == (18, 18)
    assert v.jump == (4, 4)
    assert v.start == (0, 0)
    assert v.sees_full_input is False
    assert v.coverage_centre == pytest.approx((18 / 28, 18 / 28))
    assert v.coverage_min == pytest.approx((18 / 28, 18 / 28))
    assert v.area_centre == pytest.approx((18 / 28) ** 2)
    assert [(s.layer, s.jump_before, s.jump_after) for s in v.stages] == [
        ("pool1", (1, 1), (2, 2)), ("pool2", (2, 2), (4, 4))
    ]
    assert v.first_global_layer is None
    assert v.certain


# --------------------------------------------------------------------------- old-style files


def test_ir3_initializers_listed_as_inputs(tmp_path: Path) -> None:
    # IR 3 / opset 8: w and b are graph inputs too; the image input is x.
    # Conv k3 p1 s2 on 8: n = (8+2-3)//2+1 = 4; r 3, j 2, start -1
    inits = [weight("w", (4, 2, 3, 3)), weight("b", (4,))]
    conv = node("Conv", ["x", "w", "b"], "conv", kernel_shape=[3, 3], strides=[2, 2],
                pads=[1] * 4)
    path = save(tmp_path, [conv], (1, 2, 8, 8), inits, opset=8, ir_version=3,
                inits_as_inputs=True, check=False)
    assert [i.name for i in onnx.load(str(path)).graph.input] == ["x", "w", "b"]
    r = analyze(path)
    assert r.model.input.name == "x"
    assert r.model.input.shape == (1, 2, 8, 8)
    lay = r.layer("conv")
    assert lay.status == "ok"
    assert lay.output_shape == (1, 4, 4, 4)
    for a in range(2):
        check_axis(lay, a, 4, 3, 2, -1)


def test_symbolic_batch_dim(tmp_path: Path) -> None:
    # batch "N" is fine without --input-shape: conv k3 p1 on 8: n 8, r 3, start -1
    conv = node("Conv", ["x", "w"], "conv", kernel_shape=[3, 3], pads=[1] * 4)
    r = analyze(save(tmp_path, [conv], ("N", 2, 8, 8), [weight("w", (4, 2, 3, 3))]))
    lay = r.layer("conv")
    assert lay.status == "ok"
    assert lay.output_shape[1:] == (4, 8, 8)
    for a in range(2):
        check_axis(lay, a, 8, 3, 1, -1)


def test_symbolic_spatial_dims_need_input_shape(tmp_path: Path) -> None:
    # H, W symbolic: needs input_shape. With 16x16: conv k3 s2 p1: n = (16+2-3)//2+1 = 8
    conv = node("Conv", ["x", "w"], "conv", kernel_shape=[3, 3], strides=[2, 2], pads=[1] * 4)
    path = save(tmp_path, [conv], ("N", 2, "H", "W"), [weight("w", (4, 2, 3, 3))])
    with pytest.raises(CnnprobeError, match="--input-shape"):
        analyze(path)
    for shape in ((1, 2, 16, 16), "1x2x16x16"):
        lay = analyze(path, input_shape=shape).layer("conv")
        assert lay.status == "ok"
        assert lay.output_shape == (1, 4, 8, 8)
        for a in range(2):
            check_axis(lay, a, 8, 3, 2, -1)


def test_crop_reaching_into_the_added_padding(tmp_path: Path) -> None:
    """Pad 3 at the start of H, crop more than the 8 pixels at its end: what is left is padding
    and the first pixels. Unit v reads input unit v - 3 (Pad definition)."""
    pads = [0, 0, 3, 0, 0, 0, -6, 0]  # H: 8 + 3 - 6 = 5 units: -3, -2, -1, 0, 1
    pad = node("Pad", ["x", "pads"], "pad")
    lay = analyze(save(tmp_path, [pad], (1, 2, 8, 8), [ints("pads", pads)], opset=13)).layer("pad")
    assert lay.output_shape == (1, 2, 5, 8)
    assert [lay.real_interval(0, v) for v in range(5)] == [None, None, None, (0, 0), (1, 1)]
    pads = [0, 0, 3, 0, 0, 0, -9, 0]  # H: 8 + 3 - 9 = 2 units, both in the padding
    pad = node("Pad", ["x", "pads"], "pad")
    lay = analyze(save(tmp_path, [pad], (1, 2, 8, 8), [ints("pads", pads)], opset=13)).layer("pad")
    assert lay.output_shape == (1, 2, 2, 8)
    assert [lay.real_interval(0, v) for v in range(2)] == [None, None]
    assert lay.unit_interval(0, 0) == (-3, -3)


# Normalisations over chosen axes and newer pointwise ops. conv k3 p1 on 6x8 (r 3, j 1, start -1
# on both axes) -> op. An op whose statistics run over a spatial axis makes every unit depend on
# that whole axis (global there, local window kept); over channels only, nothing changes. The
# expected global axes follow from each op's definition (ONNX operator docs) and are measured
# with onnxruntime below.
NORM_CASES = [
    # LpNormalization: the p-norm along `axis` alone
    pytest.param("LpNormalization", 17, dict(axis=-1), None, (False, True), id="lpnorm-axis-W"),
    pytest.param("LpNormalization", 17, dict(axis=2), None, (True, False), id="lpnorm-axis-H"),
    pytest.param("LpNormalization", 17, dict(axis=1), None, (False, False), id="lpnorm-channels"),
    # RMSNormalization (opset 23): mean of squares over axes `axis`..last (scale: their shape)
    pytest.param("RMSNormalization", 23, dict(axis=-1), (8,), (False, True), id="rms-last-axis"),
    pytest.param("RMSNormalization", 23, dict(axis=2), (6, 8), (True, True), id="rms-from-H"),
    pytest.param("RMSNormalization", 23, dict(axis=1), (4, 6, 8), (True, True), id="rms-from-C"),
    # Swish (opset 24): x * sigmoid(alpha * x), pointwise
    pytest.param("Swish", 24, dict(alpha=0.5), None, (False, False), id="swish"),
]


@pytest.mark.parametrize("op, opset, attrs, scale_shape, glob", NORM_CASES)
def test_normalisations_and_pointwise(
    tmp_path: Path,
    op: str,
    opset: int,
    attrs: dict[str, Any],
    scale_shape: tuple[int, ...] | None,
    glob: tuple[bool, bool],
) -> None:
    from oracle import measure_intervals

    inits = [weight("w", (4, 2, 3, 3))]
    inputs = ["conv"]
    if scale_shape is not None:
        inits.append(numpy_helper.from_array(np.ones(scale_shape, np.float32), "scale"))
        inputs.append("scale")
    nodes = [
        node("Conv", ["x", "w"], "conv", kernel_shape=[3, 3], pads=[1] * 4),
        node(op, inputs, "out", **attrs),
    ]
    path = save(tmp_path, nodes, (1, 2, 6, 8), inits, opset=opset, ir_version=10)
    r = analyze(path)
    lay = r.layer("out")
    assert lay.status == "ok"
    assert lay.output_shape == (1, 4, 6, 8)
    assert tuple(a.is_global for a in lay.axes) == glob
    for a, n in enumerate((6, 8)):
        check_axis(lay, a, n, 3, 1, -1)  # the local window of the conv is kept
        assert lay.axes[a].full is glob[a]  # unit 0's window [-1, 1] misses pixels 2..n-1
    # onnxruntime: along a global axis every unit reads the whole axis; along the others unit u
    # reads the conv's window [u-1, u+1] clipped to the input
    measured = measure_intervals(onnx.load(str(path)), "x", ["out"], spatial_axes_in=(2, 3))
    for a, n in enumerate((6, 8)):
        expected = [(0, n - 1) if glob[a] else (max(u - 1, 0), min(u + 1, n - 1)) for u in range(n)]
        assert measured["out"][a] == expected, (op, a)


@pytest.mark.parametrize("op", ["SkipLayerNormalization", "SkipSimplifiedLayerNormalization"])
def test_skip_layer_norm_merges_its_skip_input(tmp_path: Path, op: str) -> None:
    # onnxruntime's com.microsoft ops: LN(input + skip) over the last axis. [1, 4, 16] read as
    # N, C, W: input = conv k3 p1 (r 3, start -1), skip = conv k5 p2 (r 5, start -2); the sum's
    # window is the union, unit u reads [u-2, u+2] (r 5, start -2), and the statistics over W
    # make every unit depend on the whole axis
    from oracle import measure_intervals

    nodes = [
        node("Conv", ["x", "w3"], "c3", kernel_shape=[3], pads=[1, 1]),
        node("Conv", ["x", "w5"], "c5", kernel_shape=[5], pads=[2, 2]),
        helper.make_node(
            op, ["c3", "c5", "gamma"], ["out"], name="out", domain="com.microsoft", epsilon=1e-5
        ),
    ]
    inits = [
        weight("w3", (4, 4, 3)),
        weight("w5", (4, 4, 5)),
        numpy_helper.from_array(np.ones((16,), np.float32), "gamma"),
    ]
    path = save(
        tmp_path, nodes, (1, 4, 16), inits, extra_opsets=[("com.microsoft", 1)], check=False
    )
    r = analyze(path)
    lay = r.layer("out")
    assert lay.status == "ok"
    assert lay.output_shape == (1, 4, 16)
    assert lay.axes[0].is_global and lay.axes[0].full
    check_axis(lay, 0, 16, 5, 1, -2)
    assert [lay.unit_interval(0, u) for u in (0, 7)] == [(-2, 2), (5, 9)]
    measured = measure_intervals(onnx.load(str(path)), "x", ["out"], spatial_axes_in=(2,))
    assert measured["out"][0] == [(0, 15)] * 16


def test_channel_shuffle_twice_keeps_the_spatial_axes(tmp_path: Path) -> None:
    # ShuffleNet v2 units: channel shuffle = Reshape [1, 2, 4, 8, 8] -> Transpose(0, 2, 1, 3, 4)
    # -> Reshape [1, 8, 8, 8]; the next unit slices the shuffled channels in two halves, convolves
    # one, concatenates and shuffles again. Only channels are regrouped, so every window stays:
    # c0 k3 p1 (r 3, start -1); half b through c1 k3 p1 (r 5, start -2); the concat's union is
    # r 5, start -2; c2 k3 p1 after the second shuffle: r 7, start -3
    from oracle import measure_intervals

    def shuffle(src: str, tag: str) -> list[onnx.NodeProto]:
        return [
            node("Reshape", [src, "split_shape"], f"{tag}_r"),
            node("Transpose", [f"{tag}_r"], f"{tag}_t", perm=[0, 2, 1, 3, 4]),
            node("Reshape", [f"{tag}_t", "merged_shape"], f"{tag}"),
        ]

    nodes = [
        node("Conv", ["x", "w0"], "c0", kernel_shape=[3, 3], pads=[1] * 4),
        *shuffle("c0", "s1"),
        node("Slice", ["s1", "start_a", "end_a", "axis_c"], "a"),
        node("Slice", ["s1", "start_b", "end_b", "axis_c"], "b"),
        node("Conv", ["b", "w1"], "c1", kernel_shape=[3, 3], pads=[1] * 4),
        node("Concat", ["a", "c1"], "cat", axis=1),
        *shuffle("cat", "s2"),
        node("Conv", ["s2", "w2"], "c2", kernel_shape=[3, 3], pads=[1] * 4),
    ]
    inits = [
        weight("w0", (8, 2, 3, 3)),
        weight("w1", (4, 4, 3, 3)),
        weight("w2", (4, 8, 3, 3)),
        ints("split_shape", [1, 2, 4, 8, 8]),
        ints("merged_shape", [1, 8, 8, 8]),
        ints("start_a", [0]),
        ints("end_a", [4]),
        ints("start_b", [4]),
        ints("end_b", [8]),
        ints("axis_c", [1]),
    ]
    path = save(tmp_path, nodes, (1, 2, 8, 8), inits)
    r = analyze(path)
    assert r.verdict.certain, [d.message for d in r.diagnostics]
    for name, rf, start in (("s1", 3, -1), ("cat", 5, -2), ("s2", 5, -2), ("c2", 7, -3)):
        lay = r.layer(name)
        assert lay.status == "ok"
        for a in range(2):
            check_axis(lay, a, 8, rf, 1, start)
    measured = measure_intervals(onnx.load(str(path)), "x", ["c2"], spatial_axes_in=(2, 3))
    for a in range(2):
        assert measured["c2"][a] == [(max(u - 3, 0), min(u + 3, 7)) for u in range(8)]


def test_pad_amounts_from_a_torch_style_constant_chain(tmp_path: Path) -> None:
    # torch.onnx's export of F.pad(x, (0, pad_w, 0, pad_h)) with pad_h = (4 - 5 % 4) % 4 = 3 and
    # pad_w = (4 - 7 % 4) % 4 = 1 computed from static sizes (as Swin pads to the window size):
    # Mod/Sub -> Concat with zeros -> Reshape [-1, 2] -> Slice (reversed) -> Transpose -> Reshape
    # [-1] -> Cast -> Pad. Every value is static: pads [0, 0, 0, 0, 0, 0, 3, 1], the 5x7 map
    # becomes 8x8 with the padding at the end (start 0, r 1, j 1)
    def const(name: str, values: list[int]) -> onnx.NodeProto:
        return helper.make_node(
            "Constant", [], [name], value=numpy_helper.from_array(np.array(values, np.int64))
        )

    def padded_to_4(n: int, tag: str) -> list[onnx.NodeProto]:
        return [
            const(f"{tag}_n", [n]),
            const(f"{tag}_4", [4]),
            helper.make_node("Mod", [f"{tag}_n", f"{tag}_4"], [f"{tag}_r"]),
            helper.make_node("Sub", [f"{tag}_4", f"{tag}_r"], [f"{tag}_d"]),
            helper.make_node("Mod", [f"{tag}_d", f"{tag}_4"], [tag]),
        ]

    nodes = [
        *padded_to_4(5, "ph"),
        *padded_to_4(7, "pw"),
        const("zero", [0]),
        const("zeros4", [0, 0, 0, 0]),
        helper.make_node("Concat", ["zero", "pw", "zero", "ph", "zeros4"], ["raw"], axis=0),
        const("pairs", [-1, 2]),
        helper.make_node("Reshape", ["raw", "pairs"], ["raw2"]),
        const("s", [-1]),
        const("e", [-(2**63)]),
        const("ax", [0]),
        const("st", [-1]),
        helper.make_node("Slice", ["raw2", "s", "e", "ax", "st"], ["rev"]),
        helper.make_node("Transpose", ["rev"], ["tr"], perm=[1, 0]),
        const("flat", [-1]),
        helper.make_node("Reshape", ["tr", "flat"], ["pads64"]),
        helper.make_node("Cast", ["pads64"], ["pads"], to=TensorProto.INT64),
        helper.make_node("Pad", ["x", "pads"], ["y"], name="y"),
    ]
    path = save(tmp_path, nodes, (1, 2, 5, 7))
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ran = sess.run(None, {"x": np.ones((1, 2, 5, 7), np.float32)})[0]
    assert ran.shape == (1, 2, 8, 8)
    assert ran[0, 0, :5, :7].all() and not ran[0, 0, 5:, :].any() and not ran[0, 0, :, 7:].any()
    r = analyze(path)
    lay = r.layer("y")
    assert lay.status == "ok" and not codes(r)
    assert lay.output_shape == (1, 2, 8, 8)
    for a in range(2):
        check_axis(lay, a, 8, 1, 1, 0)
    assert [lay.real_interval(0, u) for u in (0, 4, 5, 7)] == [(0, 0), (4, 4), None, None]


@pytest.mark.parametrize("first", [True, False])
def test_constant_channels_concatenated_before_the_image(tmp_path: Path, first: bool) -> None:
    # CoordConv: two constant coordinate channels concatenated with the image (before it, or
    # after), then conv k3 p1: the constant operand changes nothing spatially, r 3, start -1
    from oracle import measure_intervals

    coords = numpy_helper.from_array(
        np.random.default_rng(1).standard_normal((1, 2, 6, 6)).astype(np.float32), "coords"
    )
    inputs = ["coords", "x"] if first else ["x", "coords"]
    nodes = [
        node("Concat", inputs, "cat", axis=1),
        node("Conv", ["cat", "w"], "conv", kernel_shape=[3, 3], pads=[1] * 4),
    ]
    path = save(tmp_path, nodes, (1, 1, 6, 6), [coords, weight("w", (4, 3, 3, 3))])
    r = analyze(path)
    assert r.verdict.certain, [d.message for d in r.diagnostics]
    lay = r.layer("conv")
    for a in range(2):
        check_axis(lay, a, 6, 3, 1, -1)
    measured = measure_intervals(onnx.load(str(path)), "x", ["conv"], spatial_axes_in=(2, 3))
    for a in range(2):
        assert measured["conv"][a] == [(max(u - 1, 0), min(u + 1, 5)) for u in range(6)]


def test_a_problem_is_reported_once_where_it_starts(tmp_path: Path) -> None:
    # conv -> Reshape [1, 4, 36] (H and W folded into one axis) -> Gather(axis 2, [0]): the
    # gather loses both spatial axes but is one problem (one diagnostic); the Reshape after it
    # cannot follow the axes either, but its input is uncertain already: nothing more is said
    nodes = [
        node("Conv", ["x", "w"], "conv", kernel_shape=[3, 3], pads=[1] * 4),
        node("Reshape", ["conv", "flat"], "flat_out"),
        node("Gather", ["flat_out", "idx"], "first", axis=2),
        node("Reshape", ["first", "split"], "split_out"),
    ]
    inits = [weight("w", (4, 2, 3, 3)), ints("flat", [1, 4, 36]), ints("idx", [0]),
             ints("split", [1, 2, 2, 1])]
    r = analyze(save(tmp_path, nodes, (1, 2, 6, 6), inits))
    assert [(d.code, d.where) for d in r.diagnostics] == [("gather-on-spatial-axis", "first")]
    assert r.layer("split_out").status == "uncertain"


def test_input_shape_replacing_a_static_one_is_said(tmp_path: Path) -> None:
    # the file records x [1, 2, 8, 8] and conv's output [1, 4, 6, 6]; --input-shape 1x2x10x10
    # analyses a 10x10 input: conv k3 valid gives 8x8 (the recorded 6x6 no longer applies and is
    # ignored, not reported as a mismatch), and the report says what replaced what
    from typer.testing import CliRunner

    from cnnprobe.cli import app

    vi = [helper.make_tensor_value_info("conv", TensorProto.FLOAT, [1, 4, 6, 6])]
    nodes = [node("Conv", ["x", "w"], "conv", kernel_shape=[3, 3]),
             node("Relu", ["conv"], "relu")]
    path = save(tmp_path, nodes, (1, 2, 8, 8), [weight("w", (4, 2, 3, 3))], value_info=vi)
    r = analyze(path, input_shape="1x2x10x10")
    assert r.verdict.certain and not codes(r)
    assert r.layer("conv").output_shape == (1, 4, 8, 8)
    assert r.model.meta["note"].startswith("--input-shape [1, 2, 10, 10] replaces the file's")
    res = CliRunner().invoke(app, ["summary", str(path), "--input-shape", "1x2x10x10"])
    assert res.exit_code == 0
    assert "  Note: --input-shape [1, 2, 10, 10] replaces the file's [1, 2, 8, 8]" in res.stdout
    assert "note" not in analyze(path).model.meta  # the file's own shape: nothing to say


# Einsum after conv k3 p1 on 6x8 (r 3, start -1): a label the output keeps carries its axis over
# (local window kept, or moved with the axis), a label summed away makes the output global there
EINSUM_CASES = [
    # a 1x1 convolution written as einsum: local, r 3 on both axes
    pytest.param("nchw,oc->nohw", "w", (5, 4), (1, 5, 6, 8), (False, False), "NC", id="1x1-conv"),
    # the constant operand first
    pytest.param("oc,nchw->nohw", "w", (5, 4), (1, 5, 6, 8), (False, False), "NC",
                 id="constant-first"),
    # channels last: the axes move with their labels
    pytest.param("nchw->nhwc", None, None, (1, 6, 8, 4), (False, False), "NXC", id="transpose"),
    # ellipsis over the leading axes
    pytest.param("...chw,oc->...ohw", "w", (5, 4), (1, 5, 6, 8), (False, False), "NC",
                 id="ellipsis"),
    # a product with itself, summed over channels: local
    pytest.param("nchw,nchw->nhw", "self", None, (1, 6, 8), (False, False), None, id="self-dot"),
    # summed over W: every unit depends on its whole row
    pytest.param("nchw->nch", None, None, (1, 4, 6), (False, True), None, id="sum-over-W"),
    # summed over both: global
    pytest.param("nchw->nc", None, None, (1, 4), (True, True), None, id="sum-over-HW"),
]


@pytest.mark.parametrize("eq, other, other_shape, out_shape, glob, layout", EINSUM_CASES)
def test_einsum(
    tmp_path: Path,
    eq: str,
    other: str | None,
    other_shape: tuple[int, ...] | None,
    out_shape: tuple[int, ...],
    glob: tuple[bool, bool],
    layout: str | None,
) -> None:
    from oracle import measure_intervals

    inits = [weight("w0", (4, 2, 3, 3))]
    if other == "w":
        inits.append(weight("w", other_shape or ()))
        inputs = ["w", "conv"] if eq.startswith("oc,") else ["conv", "w"]
    else:
        inputs = ["conv", "conv"] if other == "self" else ["conv"]
    nodes = [
        node("Conv", ["x", "w0"], "conv", kernel_shape=[3, 3], pads=[1] * 4),
        node("Einsum", inputs, "out", equation=eq),
    ]
    path = save(tmp_path, nodes, (1, 2, 6, 8), inits, opset=17)
    r = analyze(path)
    lay = r.layer("out")
    assert lay.status == "ok" and r.verdict.certain, [d.message for d in r.diagnostics]
    assert lay.output_shape == out_shape
    assert tuple(a.is_global for a in lay.axes) == glob
    for a, n in enumerate((6, 8)):
        if glob[a]:
            assert lay.axes[a].reach == (0, n - 1) and lay.axes[a].full
        elif len(out_shape) >= 3:
            assert lay.axes[a].rf == 3 and lay.axes[a].start == -1
    if layout is not None:  # onnxruntime: unit u of each axis reads [u-1, u+1] clipped
        measured = measure_intervals(
            onnx.load(str(path)), "x", ["out"], spatial_axes_in=(2, 3), layout=layout
        )
        for a, n in enumerate((6, 8)):
            assert measured["out"][a] == [(max(u - 1, 0), min(u + 1, n - 1)) for u in range(n)]


def test_einsum_diagonal_is_an_error_not_a_guess(tmp_path: Path) -> None:
    nodes = [
        node("Conv", ["x", "w0"], "conv", kernel_shape=[3, 3], pads=[1] * 4),
        node("Einsum", ["conv"], "out", equation="nchh->nch"),
    ]
    r = analyze(save(tmp_path, nodes, (1, 2, 6, 6), [weight("w0", (4, 2, 3, 3))], opset=17))
    assert r.layer("out").status == "error"
    assert "bad-op" in codes(r) and "diagonal" in r.diagnostics[0].message


@pytest.mark.parametrize("then", ["pool", "conv"])
def test_concat_along_a_spatial_axis(tmp_path: Path, then: str) -> None:
    # 1-D: conv k3 p1 on 8 (unit u reads u-1..u+1), then a constant unit concatenated before
    # the 8 along W: the axis is no longer a grid (unit 0 reads nothing, unit k reads k-2..k),
    # so windows are not tracked. A global pool over it is exact (every pixel 0..7, certain); a
    # conv sliding along it cannot be followed (uncertain, said once)
    const = numpy_helper.from_array(np.zeros((1, 4, 1), np.float32), "const")
    nodes = [
        node("Conv", ["x", "w"], "conv", kernel_shape=[3], pads=[1, 1]),
        node("Concat", ["const", "conv"], "cat", axis=2),
        node("GlobalAveragePool", ["cat"], "out")
        if then == "pool"
        else node("Conv", ["cat", "w2"], "out", kernel_shape=[3], pads=[1, 1]),
    ]
    inits = [weight("w", (4, 2, 3)), const, weight("w2", (4, 4, 3))]
    r = analyze(save(tmp_path, nodes, (1, 2, 8), inits))
    cat = r.layer("cat")
    assert cat.status == "ok" and cat.output_shape == (1, 4, 9)
    assert cat.axes[0].rf is None and not cat.axes[0].is_global
    out = r.layer("out")
    if then == "pool":
        assert r.verdict.certain and out.status == "ok"
        assert out.axes[0].is_global and out.axes[0].reach == (0, 7) and out.axes[0].full
        assert r.verdict.first_full_coverage_layer == "out"
    else:
        assert out.status == "uncertain"
        assert [d.code for d in r.diagnostics] == ["untracked-positions"]


def _reference_intervals(
    model: onnx.ModelProto, n_in: int, n_out: int, runtime: bool = False
) -> list[Any]:
    """Per output column of a linear map on [1, n, n, 1] (NHWC): the first and last input column
    with a non-zero weight, from onnx's reference implementation (exact zeros where the
    definition gives zero) or from onnxruntime (whose float arithmetic can leave ~1e-7 at the
    ends of a cubic kernel)."""
    from onnx.reference import ReferenceEvaluator

    if runtime:
        import onnxruntime as ort

        session = ort.InferenceSession(model.SerializeToString())
    else:
        session = ReferenceEvaluator(model)
    hits: list[list[int]] = [[] for _ in range(n_out)]
    for p in range(n_in):
        x = np.zeros((1, n_in, n_in, 1), np.float32)
        x[0, :, p, 0] = 1.0
        y = session.run(None, {"x": x})[0]
        for k in range(n_out):
            if np.any(y[0, :, k, 0] != 0):
                hits[k].append(p)
    return [(min(h), max(h)) if h else None for h in hits]


@pytest.mark.parametrize("mode", ["linear", "cubic"])
@pytest.mark.parametrize(
    "coord", ["half_pixel", "pytorch_half_pixel", "asymmetric", "align_corners",
              "half_pixel_symmetric"],
)
@pytest.mark.parametrize("n_in, n_out", [(12, 6), (12, 4), (10, 4), (9, 5), (16, 3), (5, 9)])
def test_resize_antialias(tmp_path: Path, mode: str, coord: str, n_in: int, n_out: int) -> None:
    """Opset 18 ``antialias``: downscaling by ``s`` stretches the linear (cubic) kernel to
    ``1/s`` (``2/s``) input units each side, so unit ``i`` reads every input column strictly
    within that distance of its source coordinate ``x(i)``: from ``floor(x - R) + 1`` to
    ``ceil(x + R) - 1``, clipped to the input. Upscaling is unchanged. Checked column by column
    against onnx's reference implementation."""
    sizes = numpy_helper.from_array(np.array([1, n_out, n_out, 1], np.int64), "sizes")
    resize = helper.make_node(
        "Resize", ["x", "", "", "sizes"], ["y"], mode=mode, antialias=1,
        coordinate_transformation_mode=coord, name="resize",
    )
    graph = helper.make_graph(
        [resize], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, n_in, n_in, 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [sizes],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    path = tmp_path / "aa.onnx"
    onnx.save(model, path)
    lay = analyze(path, layout="nhwc").layer("resize")
    assert lay.status == "ok" and lay.output_shape == (1, n_out, n_out, 1)
    want = _reference_intervals(model, n_in, n_out)
    assert [lay.real_interval(1, k) for k in range(n_out)] == want
    if mode == "linear":
        assert _reference_intervals(model, n_in, n_out, runtime=True) == want


def test_resize_antialias_by_hand(tmp_path: Path) -> None:
    """12 -> 4 linear, half_pixel: x(i) = (i + 1/2) * 3 - 1/2 = 3i + 1, kernel stretched to 3:
    unit i reads 3i - 1 .. 3i + 3 (3i - 2 and 3i + 4 are exactly 3 away: weight 0); without
    antialias only 3i + 1 (x is on a sample)."""
    for antialias, want in ((1, [(0, 3), (2, 6), (5, 9), (8, 11)]), (0, [(1, 1), (4, 4), (7, 7),
                                                                         (10, 10)])):
        sizes = numpy_helper.from_array(np.array([1, 1, 1, 4], np.int64), "sizes")
        resize = helper.make_node("Resize", ["x", "", "", "sizes"], ["y"], mode="linear",
                                  antialias=antialias, name="resize")
        graph = helper.make_graph(
            [resize], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 1, 12])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [sizes],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
        model.ir_version = 8
        path = tmp_path / f"aa{antialias}.onnx"
        onnx.save(model, path)
        lay = analyze(path).layer("resize")
        assert [lay.real_interval(1, k) for k in range(4)] == want


@pytest.mark.parametrize("explicit", [True, False])
def test_row_broadcast_down_a_map(tmp_path: Path, explicit: bool) -> None:
    """``a + a[:, :, 2:3, :]`` (row 2 of a conv's map added to every row), with the row expanded
    explicitly (``Expand``, as PyTorch exports ``row.expand(...)``) or broadcast by the Add: every
    unit also reads what row 2 reads, and onnxruntime agrees unit by unit."""
    from oracle import measure_intervals

    w = numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w")
    w2 = numpy_helper.from_array(np.ones((4, 4, 3, 3), np.float32), "w2")
    starts = numpy_helper.from_array(np.array([2], np.int64), "starts")
    ends = numpy_helper.from_array(np.array([3], np.int64), "ends")
    axes = numpy_helper.from_array(np.array([2], np.int64), "axes")
    shape = numpy_helper.from_array(np.array([1, 4, 14, 12], np.int64), "shape")
    nodes = [
        node("Conv", ["x", "w"], "a", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        node("Slice", ["a", "starts", "ends", "axes"], "row"),
    ]
    if explicit:
        nodes.append(node("Expand", ["row", "shape"], "rows"))
    nodes += [
        node("Add", ["a", "rows" if explicit else "row"], "sum"),
        node("Conv", ["sum", "w2"], "y", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
    ]
    path = save(tmp_path, nodes, (1, 3, 14, 12), [w, w2, starts, ends, axes, shape])
    r = analyze(path)
    assert r.verdict.certain
    lay = r.layer("y")
    measured = measure_intervals(onnx.load(str(path)), "x", ["y"], spatial_axes_in=(2, 3))["y"]
    for a in range(2):
        assert [lay.real_interval(a, k) for k in range(lay.axes[a].size or 0)] == measured[a]
    # by hand: row 2 of `a` reads input rows 1..3; unit 0 of y reads rows of `sum` 0..1, so
    # input rows 0..2 from `a` and 1..3 from the row: 0..3
    assert lay.real_interval(0, 0) == (0, 3)


@pytest.mark.parametrize("scale, n, want", [(0.7, 30, 21), (0.7, 20, 14), (5 / 6, 18, 15)])
def test_resize_size_from_a_float32_scale(tmp_path: Path, scale: float, n: int, want: int) -> None:
    """Resize scales are float32: 0.7 is 0.699999988..., and 30 x that is 20.99999... in double
    precision, but runtimes multiply in float32, where it rounds to 21.0 (PyTorch gives 21 too).
    The output size is the runtime's."""
    import onnxruntime as ort

    scales = numpy_helper.from_array(np.array([1, 1, scale, scale], np.float32), "scales")
    nodes = [node("Resize", ["x", "", "scales"], "y", mode="linear")]
    path = save(tmp_path, nodes, (1, 1, n, n), [scales])
    got = ort.InferenceSession(str(path)).run(None, {"x": np.zeros((1, 1, n, n), np.float32)})[0]
    assert got.shape == (1, 1, want, want)
    assert analyze(path).layer("y").output_shape == (1, 1, want, want)


def test_slicing_channels_that_mixed_an_input_axis_is_no_internal_error(tmp_path: Path) -> None:
    """A channels-last 5-D clip read with the default (channels-first) layout: the last axis (3)
    is taken for a spatial one, a conv then mixes it into 16 channels and a Slice keeps 8 of
    them. That slice once indexed a per-unit table of 3 entries on a 16-long axis; now the
    coverage of that axis is merely unknown."""
    w = numpy_helper.from_array(np.ones((16, 3, 3, 3), np.float32), "w")
    idx = numpy_helper.from_array(np.array(0, np.int64), "idx")
    starts = numpy_helper.from_array(np.array([0], np.int64), "starts")
    ends = numpy_helper.from_array(np.array([8], np.int64), "ends")
    axes = numpy_helper.from_array(np.array([1], np.int64), "axes")
    nodes = [
        node("Gather", ["x", "idx"], "frame", axis=1),
        node("Transpose", ["frame"], "nchw", perm=[0, 3, 1, 2]),
        node("Conv", ["nchw", "w"], "conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        node("Slice", ["conv", "starts", "ends", "axes"], "y"),
    ]
    r = analyze(save(tmp_path, nodes, (1, 4, 12, 10, 3), [w, idx, starts, ends, axes]))
    assert not [d for d in r.diagnostics if "malformed" in d.message]
