"""The committed sample models: figures worked out by hand from the definitions
(r_out = r_in + (k_eff - 1) * j_in, j_out = j_in * s, start_out = start_in - pad_lo * j_in)."""

from __future__ import annotations

from fractions import Fraction

import pytest

from cnnprobe import analyze
from paths import SAMPLES


def test_mnist_convnet_sees_seven_by_seven() -> None:
    r = analyze(SAMPLES / "mnist_convnet.onnx")
    # three valid 3x3 convs: r = 1 + 2 + 2 + 2 = 7, j = 1, sizes 26, 24, 22
    for name, rf, size in [("conv1", 3, 26), ("conv2", 5, 24), ("conv3", 7, 22)]:
        lay = r.layer(name)
        assert lay.rf == [rf, rf]
        assert lay.jump == [1, 1]
        assert lay.start == [0, 0]
        assert [a.size for a in lay.axes] == [size, size]
    v = r.verdict
    assert v.last_spatial_layer == "relu3"
    assert v.rf == (7, 7)
    assert v.sees_full_input is False
    assert v.area_centre == pytest.approx(49 / 784)
    assert v.area_min == pytest.approx(49 / 784)
    assert v.first_full_coverage_layer is None
    assert v.stages == ()
    assert v.certain


def test_mnist_pooled_needs_the_dense_layer() -> None:
    r = analyze(SAMPLES / "mnist_pooled.onnx")
    # conv3: 3, pool2: 3+1*1=4 (j 2), conv3: 4+2*2=8, pool2: 8+1*2=10 (j 4), conv3: 10+2*4=18
    expected = {"conv1": (3, 1), "pool1": (4, 2), "conv2": (8, 2), "pool2": (10, 4),
                "conv3": (18, 4)}
    for name, (rf, jump) in expected.items():
        lay = r.layer(name)
        assert lay.rf == [rf, rf], name
        assert lay.jump == [jump, jump], name
    v = r.verdict
    assert v.last_spatial_layer == "relu3"
    # 3x3 units: [0,17], [4,21], [8,25]; the centre one sees 18 of 28 pixels per axis
    assert v.coverage_centre == (pytest.approx(18 / 28), pytest.approx(18 / 28))
    assert v.sees_full_input is False
    assert v.first_global_layer == "dense"
    # ...but the dense layer does not see the whole input either: pool2 (2x2/2, floor) keeps 5
    # of conv2's 11 units, dropping unit 10, the only one reading pool1 unit 12 (conv1 units
    # 24, 25: pixels 24..27). conv2 unit 9 reads pool1 9..11 -> conv1 18..23 -> pixels 18..25.
    # So pixels 26 and 27 of each axis reach no output (onnxruntime agrees:
    # test_real_exports.py::test_global_reach_matches_onnxruntime)
    dense = r.layer("dense")
    assert [a.reach for a in dense.axes] == [(0, 25), (0, 25)]
    assert [a.full for a in dense.axes] == [False, False]
    assert [a.effective_rf for a in dense.axes] == [26, 26]
    assert v.first_full_coverage_layer is None
    assert [s.layer for s in v.stages] == ["pool1", "pool2"]
    assert v.total_stride == (4, 4)


def test_residual_net_union_and_projection() -> None:
    r = analyze(SAMPLES / "residual_net.onnx")
    # stem 3x3 pad 1: r 3, start -1; conv 3x3 s2 pad 1: r 3+2=5, start -2, j 2;
    # conv 3x3 pad 1 at j 2: r 5+4=9, start -4; projection 1x1 s2: r 3, start -1.
    assert r.layer("block_conv2").rf == [9, 9]
    assert r.layer("block_conv2").start == [-4, -4]
    assert r.layer("shortcut_conv").rf == [3, 3]
    assert r.layer("shortcut_conv").jump == [2, 2]
    # union at the Add: [-4, 4] contains [-1, 1]
    add = next(lay for lay in r.layers if lay.op == "Add")
    assert add.rf == [9, 9] and add.start == [-4, -4]
    v = r.verdict
    assert v.last_spatial_layer == "block_relu2"
    # centre unit 7 of 16: [-4 + 14, 4 + 14] = [10, 18] -> 9/32; unit 0: [-4, 4] -> 5/32
    assert v.coverage_centre == (pytest.approx(9 / 32), pytest.approx(9 / 32))
    assert v.coverage_min == (pytest.approx(5 / 32), pytest.approx(5 / 32))
    assert v.first_full_coverage_layer == "gap"
    assert not [d for d in r.diagnostics if d.code == "off-centre-merge"]


def test_dilated_1d() -> None:
    r = analyze(SAMPLES / "dilated_1d.onnx")
    # k_eff 3, 5, 9: r = 1 + 2 + 4 + 8 = 15; sizes 62, 58, 50
    assert [lay.rf for lay in r.layers if lay.op == "Conv"] == [[3], [7], [15]]
    assert [lay.axes[0].size for lay in r.layers if lay.op == "Conv"] == [62, 58, 50]
    assert r.model.input.layout == "NCW"


def test_unet_upsampling_is_a_staircase() -> None:
    r = analyze(SAMPLES / "unet_like.onnx")
    bottleneck = r.layer("bottleneck_conv")
    # enc1 3 (-1), pool 4 (j2, -1), enc2 4+4=8 (-3), pool 10 (j4), conv 10+8=18 (start -7)
    assert bottleneck.rf == [18, 18] and bottleneck.start == [-7, -7]
    up1 = r.layer("up1")
    # ConvTranspose k2 s2: output o reads input floor(o/2) -> lo(o) = -7 + 4*floor(o/2)
    assert up1.jump == [Fraction(2), Fraction(2)]
    for o in range(6):
        assert up1.unit_interval(0, o) == (-7 + 4 * (o // 2), -7 + 4 * (o // 2) + 17)
    assert up1.axes[0].phase_starts == (-7, -7)
    assert r.verdict.total_stride == (1, 1)
    assert [s.layer for s in r.verdict.stages] == ["pool1", "pool2", "up1", "up2"]


def test_custom_op_marks_dependents_uncertain() -> None:
    r = analyze(SAMPLES / "custom_op.onnx")
    statuses = {lay.name: lay.status for lay in r.layers}
    assert statuses["conv1"] == "ok"
    assert statuses["blur"] == "unknown"
    assert statuses["conv2"] == "uncertain"
    assert r.layer("conv2").rf == [None, None]
    assert not r.verdict.certain
    codes = [d.code for d in r.diagnostics]
    assert "unknown-op" in codes


@pytest.mark.parametrize("name", ["keras_decoder_net.onnx", "keras_mnist_convnet.onnx"])
def test_channels_last_exports_are_detected(name: str) -> None:
    """Keras/tf2onnx exports take NHWC and transpose first (here after a Pad): auto layout."""
    r = analyze(SAMPLES / name)
    assert r.model.input.layout == "NHWC"
    assert r.model.input.spatial_axes == (1, 2)


def test_nchw_is_the_default() -> None:
    assert analyze(SAMPLES / "mnist_convnet.onnx").model.input.layout == "NCHW"


def test_mnist_pooled_report_says_which_pixels_no_layer_sees() -> None:
    from typer.testing import CliRunner

    from cnnprobe.cli import app

    res = CliRunner().invoke(app, ["summary", str(SAMPLES / "mnist_pooled.onnx")])
    assert res.exit_code == 0
    assert "26×26 (global)" in res.stdout  # the dense layer's RF: pixels 0..25 of 28
    assert (
        "never reads input pixels 26-27 along each axis, which therefore no later layer sees."
        in res.stdout
    )
    assert "Full input: no layer has every unit seeing the whole input." in res.stdout
