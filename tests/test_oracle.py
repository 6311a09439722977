"""The empirical oracle against receptive fields worked out by hand on tiny models.

Per axis, unit ``i`` of a window layer reads input ``[i*s - p_lo, i*s - p_lo + k_eff - 1]``
(see shared/notes/receptive-field.md); the oracle only sees real pixels, so the expected values
below are those intervals clipped to the image.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from oracle import measure_intervals

Interval = tuple[int, int]
SAMPLES = Path(__file__).resolve().parents[1] / "sample_models"


def make_model(
    nodes: Sequence[onnx.NodeProto],
    input_shape: Sequence[int],
    output: str,
    initializers: Sequence[onnx.TensorProto] = (),
) -> onnx.ModelProto:
    graph = helper.make_graph(
        list(nodes),
        "oracle_test",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(input_shape))],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, None)],
        initializer=list(initializers),
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    model = onnx.shape_inference.infer_shapes(model)  # fills in the output's shape
    onnx.checker.check_model(model)
    return model


def weight(name: str, shape: Sequence[int], seed: int = 0) -> onnx.TensorProto:
    rng = np.random.default_rng(seed)
    return numpy_helper.from_array(rng.standard_normal(tuple(shape)).astype(np.float32), name)


def conv_model(
    input_shape: Sequence[int], kernel: Sequence[int], **attrs: list[int]
) -> onnx.ModelProto:
    c_in = input_shape[1]
    w = weight("w", (2, c_in, *kernel))
    node = helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=list(kernel))
    node.attribute.extend(helper.make_attribute(key, value) for key, value in attrs.items())
    return make_model([node], input_shape, "y", [w])


def window(n_out: int, stride: int, pad_lo: int, k_eff: int, n_in: int) -> list[Interval]:
    """Hand formula for one window layer, clipped to the real pixels [0, n_in - 1]."""
    return [
        (max(i * stride - pad_lo, 0), min(i * stride - pad_lo + k_eff - 1, n_in - 1))
        for i in range(n_out)
    ]


def test_conv3x3_valid() -> None:
    model = conv_model([1, 2, 10, 10], [3, 3])
    result = measure_intervals(model, "x", ["y"], spatial_axes_in=(2, 3))
    expected = [(i, i + 2) for i in range(8)]
    assert result["y"] == [expected, expected]


def test_conv3x3_stride2_pad1_clips_padding() -> None:
    # H = 10, W = 9: both give 5 units; unit i reads [2i - 1, 2i + 1].
    model = conv_model([1, 1, 10, 9], [3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    result = measure_intervals(model, "x", ["y"], spatial_axes_in=(2, 3))
    rows, cols = result["y"]
    assert rows == [(0, 1), (1, 3), (3, 5), (5, 7), (7, 9)]
    assert cols == [(0, 1), (1, 3), (3, 5), (5, 7), (7, 8)]
    assert rows == window(5, 2, 1, 3, 10)
    assert cols == window(5, 2, 1, 3, 9)


def test_maxpool2_stride2() -> None:
    node = helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2])
    model = make_model([node], [1, 3, 10, 10], "y")
    result = measure_intervals(model, "x", ["y"], spatial_axes_in=(2, 3))
    expected = [(2 * i, 2 * i + 1) for i in range(5)]
    assert result["y"] == [expected, expected]


def test_dilated_conv() -> None:
    # k = 3, d = 2: k_eff = 5, unit i reads [i, i + 4]; 12 - 4 = 8 units.
    model = conv_model([1, 1, 12, 12], [3, 3], dilations=[2, 2])
    result = measure_intervals(model, "x", ["y"], spatial_axes_in=(2, 3))
    expected = [(i, i + 4) for i in range(8)]
    assert result["y"] == [expected, expected]


def test_non_square_kernel_and_stride() -> None:
    # kernel (1, 4), stride (3, 1): rows [3i, 3i], cols [j, j + 3]
    model = conv_model([1, 1, 10, 8], [1, 4], strides=[3, 1])
    rows, cols = measure_intervals(model, "x", ["y"], spatial_axes_in=(2, 3))["y"]
    assert rows == [(0, 0), (3, 3), (6, 6), (9, 9)]
    assert cols == [(j, j + 3) for j in range(5)]


def test_chain_intermediate_tensors() -> None:
    # conv3 -> maxpool2 -> conv3 on 16: r = 3, 4, 8 and j = 1, 2, 2
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], kernel_shape=[3, 3]),
        helper.make_node("MaxPool", ["c1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "w2"], ["c2"], kernel_shape=[3, 3]),
    ]
    inits = [weight("w1", (2, 1, 3, 3), 1), weight("w2", (2, 2, 3, 3), 2)]
    model = make_model(nodes, [1, 1, 16, 16], "c2", inits)
    result = measure_intervals(model, "x", ["c1", "p1", "c2"], spatial_axes_in=(2, 3))
    assert result["c1"][0] == [(i, i + 2) for i in range(14)]
    assert result["p1"][1] == [(2 * i, 2 * i + 3) for i in range(7)]
    assert result["c2"][0] == [(2 * i, 2 * i + 7) for i in range(5)]


def test_unaffected_units_are_none() -> None:
    pads = numpy_helper.from_array(np.array([0, 0, 2, 0, 0, 0, 1, 0], dtype=np.int64), "pads")
    zero = numpy_helper.from_array(np.zeros((1,), dtype=np.float32), "zero")
    nodes = [
        helper.make_node("Pad", ["x", "pads"], ["padded"], mode="constant"),
        helper.make_node("Mul", ["x", "zero"], ["nothing"]),
    ]
    model = make_model(nodes, [1, 1, 5, 4], "padded", [pads, zero])
    result = measure_intervals(model, "x", ["padded", "nothing"], spatial_axes_in=(2, 3))
    rows, cols = result["padded"]
    assert rows == [None, None, (0, 0), (1, 1), (2, 2), (3, 3), (4, 4), None]
    assert cols == [(j, j) for j in range(4)]
    assert result["nothing"] == [[None] * 5, [None] * 4]


def test_conv1d_and_input_itself() -> None:
    model = conv_model([1, 2, 20], [3], dilations=[3])
    result = measure_intervals(model, "x", ["y", "x"], spatial_axes_in=(2,))
    assert result["y"] == [[(i, i + 6) for i in range(14)]]
    assert result["x"] == [[(i, i) for i in range(20)]]


def test_fixed_batch_reshape_falls_back_to_single_runs() -> None:
    # A Reshape to a hard-coded batch of 1 breaks the batched copy; results must not change.
    shape = numpy_helper.from_array(np.array([1, 2, 6, 6], dtype=np.int64), "shape")
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[3, 3]),
        helper.make_node("Reshape", ["c", "shape"], ["y"]),
    ]
    model = make_model(nodes, [1, 1, 8, 8], "y", [weight("w", (2, 1, 3, 3)), shape])
    result = measure_intervals(model, "x", ["y"], spatial_axes_in=(2, 3))
    expected = [(i, i + 2) for i in range(6)]
    assert result["y"] == [expected, expected]


def test_channels_last_layout() -> None:
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[2, 3]),
        helper.make_node("Transpose", ["c"], ["y"], perm=[0, 2, 3, 1]),
    ]
    model = make_model(nodes, [1, 1, 6, 7], "y", [weight("w", (3, 1, 2, 3))])
    result = measure_intervals(model, "x", ["y"], spatial_axes_in=(2, 3), layout="NXC")
    assert result["y"] == [[(i, i + 1) for i in range(5)], [(j, j + 2) for j in range(5)]]


def test_rejects_tensor_without_spatial_axes() -> None:
    nodes = [helper.make_node("Flatten", ["x"], ["y"], axis=1)]
    model = make_model(nodes, [1, 1, 4, 4], "y")
    with pytest.raises(ValueError, match="rank"):
        measure_intervals(model, "x", ["y"], spatial_axes_in=(2, 3))


def test_sample_mnist_convnet() -> None:
    path = SAMPLES / "mnist_convnet.onnx"
    if not path.exists():
        pytest.skip("run sample_models/make_onnx_samples.py first")
    model = onnx.load(path)
    result = measure_intervals(model, "input", ["relu3"], spatial_axes_in=(2, 3))
    expected = [(i, i + 6) for i in range(22)]  # three 3x3 valid convs: r = 7, j = 1
    assert result["relu3"] == [expected, expected]


def test_tiny_activations_still_show_their_changes() -> None:
    """Weights of 1e-12: the output changes by ~1e-6 when a pixel moves by 1e6, far below any
    absolute threshold; the threshold follows the tensor's own magnitude, so the windows show."""
    w = numpy_helper.from_array(np.full((2, 1, 3, 3), 1e-12, np.float32), "w")
    node = helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[3, 3])
    model = make_model([node], [1, 1, 8, 8], "y", [w])
    result = measure_intervals(model, "x", ["y"], spatial_axes_in=(2, 3), magnitude=1e6)
    expected = [(i, i + 2) for i in range(6)]
    assert result["y"] == [expected, expected]
