"""shift-test on the committed sample models: results that follow from their architecture."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from cnnprobe.shift import ShiftOptions, run_shift_test
from paths import SAMPLES


def test_unpooled_valid_convnet_is_exactly_equivariant_on_the_overlap() -> None:
    # mnist_convnet: three unpadded 3x3 convolutions, stride 1. A crop shifted by d gives the
    # same units, moved by d, wherever both crops hold the unit's whole receptive field: the
    # overlap of the two maps. The relative error there is exactly 0.
    r = run_shift_test(
        ShiftOptions(str(SAMPLES / "mnist_convnet.onnx"), mode="crop", count=2, max_shift=3)
    )
    assert r.period == (1, 1)
    assert r.output.kind == "dense" and r.output.shape == (64, 22, 22)
    m = r.output.measure("equivariance_error")
    assert m is not None and m.all.n == 2 * 9
    assert m.all.value is not None and m.all.value < 1e-12
    assert m.off_grid.n == 0  # P = 1: every whole-pixel shift is on the grid


def test_pooled_convnet_feature_maps_follow_their_jump() -> None:
    # mnist_pooled: conv-pool-conv-pool-conv, no padding, then flatten + dense. Each feature map
    # is exactly equivariant to crops shifted by multiples of its own jump (1, 2 or 4).
    r = run_shift_test(
        ShiftOptions(str(SAMPLES / "mnist_pooled.onnx"), mode="crop", count=2, layers=("all",))
    )
    assert r.period == (4, 4)
    by = {la.name: la for la in r.layers}
    assert [str(by[n].jump[0]) for n in ("conv1", "pool1", "pool2")] == ["1", "2", "4"]
    for la in r.layers:
        assert la.period.value is not None and la.period.value < 1e-12, la.name
        if la.jump_multiple.n:
            assert la.jump_multiple.value is not None and la.jump_multiple.value < 1e-12
        assert la.sub_unit.n == 0  # linear shifts: no sub-unit comparison
    # shifts 2 (x, y, diagonal) are multiples of pool1's jump 2 but not of P = 4
    assert by["pool1"].jump_multiple.n == 2 * 3
    # the dense layer over flattened positions has weights per position: no invariance even on
    # the grid, and the report says why
    ns = r.output.measure("ns")
    assert ns is not None and ns.on_grid.value is not None and ns.on_grid.value > 0.05
    from cnnprobe.shift.report.common import reading

    assert any("specific to each position" in line for line in reading(r))


def test_encoder_decoder_period_exceeds_its_total_stride() -> None:
    # unet_like: pooled twice (jump 4), upsampled back to jump 1. S = 1 but P = 4.
    r = run_shift_test(ShiftOptions(str(SAMPLES / "unet_like.onnx"), mode="roll", count=2))
    assert [int(s) for s in r.total_stride if s is not None] == [1, 1]
    assert r.period == (4, 4)
    assert r.protocol.max_shift == (4.0, 4.0)
    assert any("period P differs from the total stride" in n for n in r.notes)
    assert r.output.kind == "dense"


def test_residual_net_is_a_classifier_with_period_two() -> None:
    r = run_shift_test(
        ShiftOptions(str(SAMPLES / "residual_net.onnx"), shifts="random", pairs=2, count=10)
    )
    assert r.period == (2, 2)
    assert r.output.kind == "classifier" and r.output.scores == "logits"
    assert r.protocol.comparisons == 20 and r.protocol.inferences == 40
    agree = r.output.measure("agreement")
    assert agree is not None and agree.all.method == "wilson" and agree.all.n == 20
    for p in r.points:
        assert all(-2 < s < 2 for s in p.shift)  # offsets in [0, 2): differences in (-2, 2)


@pytest.mark.parametrize("batch", [1, 7])
def test_fixed_batch_models_run_in_batches_anyway(batch: int) -> None:
    # the sample files fix the batch dimension to 1; the runner frees it in memory
    r = run_shift_test(
        ShiftOptions(str(SAMPLES / "mnist_pooled.onnx"), count=2, batch_size=batch, max_shift=2)
    )
    assert r.protocol.inferences == 2 * (1 + 3 * 2)
    assert not any("one at a time" in n for n in r.notes)


def test_no_equivariance_claim_without_shifts_on_the_grid() -> None:
    """mnist_pooled has P = 4; shifts of at most 2 pixels include none on the grid, so no map
    is said to lose (or keep) equivariance off the grid: there is nothing to compare with."""
    from cnnprobe.shift.report.common import reading

    r = run_shift_test(
        ShiftOptions(
            str(SAMPLES / "mnist_pooled.onnx"), mode="crop", count=2, max_shift=2, layers=("all",)
        )
    )
    assert r.period == (4, 4)
    assert all(la.period.value is None for la in r.layers)
    lines = reading(r)
    assert not any("first lost" in line or "stays equivariant" in line for line in lines)
    assert any("no measured shift is a multiple of P = 4×4" in line for line in lines)


def _detector(tmp_path: Path) -> Path:
    """A detector's output as YOLO writes it: predictions of two scales (8x8 and 4x4 cells),
    flattened and concatenated along the cells: [1, 6, 80] per image."""
    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.standard_normal((6, 3, 3, 3)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.standard_normal((6, 6, 3, 3)).astype(np.float32), "w2")
    flat = numpy_helper.from_array(np.array([1, 6, -1], dtype=np.int64), "flat")
    conv = dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["p3"], name="p3", **conv),
        helper.make_node("Conv", ["p3", "w2"], ["p4"], name="p4", **conv),
        helper.make_node("Reshape", ["p3", "flat"], ["f3"], name="f3"),
        helper.make_node("Reshape", ["p4", "flat"], ["f4"], name="f4"),
        helper.make_node("Concat", ["f3", "f4"], ["preds"], name="preds", axis=2),
    ]
    graph = helper.make_graph(
        nodes,
        "det",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("preds", TensorProto.FLOAT, [1, 6, 80])],
        [w1, w2, flat],
    )
    path = tmp_path / "det.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_detector_predictions_are_not_class_scores(tmp_path: Path) -> None:
    """[6, 80] values per image (predictions per cell) are not a vector of class scores: no
    top-1 agreement over 480 'classes', no argmax notes; the sensitivity measures remain."""
    from cnnprobe.shift.report.common import output_line

    r = run_shift_test(ShiftOptions(str(_detector(tmp_path)), mode="roll", count=2))
    assert r.output.kind == "values" and r.output.shape == (6, 80)
    names = {m.key for m in r.output.measures}
    assert {"ns", "abs_change"} <= names and not names & {"agreement", "mac", "js"}
    assert not any("argmax" in n for n in r.notes)
    assert "480 values, not a vector of class scores" in output_line(r)
