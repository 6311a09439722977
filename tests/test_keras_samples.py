"""The committed Keras samples (written by sample_models/make_keras_samples.py with Keras 3 and,
for ``tf_keras_*``, with tf_keras 2.21): formats, node encodings, figures worked out by hand, and
parity with the ONNX twins that Keras itself exported.

Parity matching: the ONNX exporter renames every node (``node_Conv_100``...), so layers are matched
by family and order: the k-th convolution (``Conv`` / Keras ``window``), transposed convolution,
pooling and resize of the ONNX graph, in analysis (topological) order, against the k-th of the same
family in the Keras graph. For each pair the receptive field, jump, start and per-phase starts must
be equal; so must the verdict's last-spatial-layer figures.
"""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cnnprobe import analyze
from cnnprobe.cli import app
from cnnprobe.results import AnalysisResult
from paths import SAMPLES

NAMES = ["mnist_convnet", "mnist_pooled", "residual_net", "nested_net", "se_net", "decoder_net"]
KERAS_FAMILY = {"window": "conv", "window_transpose": "conv_t", "pool": "pool", "resize": "resize"}
ONNX_FAMILY = {
    "Conv": "conv",
    "ConvTranspose": "conv_t",
    "MaxPool": "pool",
    "AveragePool": "pool",
    "Resize": "resize",
}


def _families(r: AnalysisResult, onnx: bool) -> list[tuple[object, ...]]:
    out = []
    for lay in r.layers:
        fam = ONNX_FAMILY.get(lay.op) if onnx else KERAS_FAMILY.get(lay.kind)
        if fam is None:
            continue
        out.append(
            (
                fam,
                tuple(lay.rf),
                tuple(lay.jump),
                tuple(lay.start),
                tuple(a.phase_starts for a in lay.axes),
                lay.status,
            )
        )
    return out


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("ext", ["keras", "h5"])
def test_parity_with_onnx_twin(name: str, ext: str) -> None:
    keras_r = analyze(SAMPLES / f"keras_{name}.{ext}")
    # the decoder's ONNX graph starts with a Pad on the NHWC input, which the ONNX frontend's
    # layout detection does not recognise: say it
    onnx_r = analyze(SAMPLES / f"keras_{name}.onnx", layout="nhwc")
    k, o = _families(keras_r, False), _families(onnx_r, True)
    assert k and k == o
    for attr in ("rf", "jump", "start", "sees_full_input", "coverage_centre", "coverage_min"):
        assert getattr(keras_r.verdict, attr) == getattr(onnx_r.verdict, attr), attr
    assert keras_r.verdict.certain and onnx_r.verdict.certain
    assert (keras_r.verdict.global_while_spatial is None) == (
        onnx_r.verdict.global_while_spatial is None
    )


@pytest.mark.parametrize("name", NAMES)
def test_keras_and_h5_give_identical_layers(name: str) -> None:
    a = analyze(SAMPLES / f"keras_{name}.keras")
    b = analyze(SAMPLES / f"keras_{name}.h5")
    assert a.model.format == "keras" and b.model.format == "h5"
    assert [(x.name, x.op, x.kind, x.output_shape, x.axes, x.status) for x in a.layers] == [
        (x.name, x.op, x.kind, x.output_shape, x.axes, x.status) for x in b.layers
    ]
    assert a.verdict == b.verdict
    # the shapes the file records agree with the computed ones
    assert not [d for d in a.diagnostics if d.code == "shape-mismatch"]
    # Sequential models have no nodes to encode
    assert a.model.meta.get("node_encoding", "Keras 3") == "Keras 3"


def test_mnist_convnet_sees_seven_by_seven() -> None:
    r = analyze(SAMPLES / "keras_mnist_convnet.keras")
    # three valid 3x3 convs: r = 1 + 2 + 2 + 2 = 7, j = 1, sizes 26, 24, 22
    for name, rf, size, ch in [("conv1", 3, 26, 32), ("conv2", 5, 24, 64), ("conv3", 7, 22, 64)]:
        lay = r.layer(name)
        assert lay.op == "Conv2D"
        assert lay.rf == [rf, rf] and lay.jump == [1, 1] and lay.start == [0, 0]
        assert lay.output_shape == (None, size, size, ch)
    v = r.verdict
    assert r.model.input.layout == "NHWC" and r.model.input.name == "image"
    assert v.input_size == (28, 28)
    assert v.last_spatial_layer == "conv3"
    assert v.rf == (7, 7)
    assert v.area_centre == pytest.approx(49 / 784)
    assert v.sees_full_input is False
    assert v.certain


def test_mnist_summary_says_seven_by_seven_of_28() -> None:
    res = CliRunner().invoke(app, ["summary", str(SAMPLES / "keras_mnist_convnet.keras")])
    assert res.exit_code == 0, res.stderr
    assert "sees 7×7 of the 28×28 input" in res.stdout


def test_mnist_pooled() -> None:
    r = analyze(SAMPLES / "keras_mnist_pooled.h5")
    # conv3: 3, pool2: 3+1 = 4 (j 2), conv3: 4+2*2 = 8, pool2: 8+1*2 = 10 (j 4), conv3: 10+2*4 = 18
    expected = {
        "conv1": (3, 1),
        "pool1": (4, 2),
        "conv2": (8, 2),
        "pool2": (10, 4),
        "conv3": (18, 4),
    }
    for name, (rf, jump) in expected.items():
        assert r.layer(name).rf == [rf, rf], name
        assert r.layer(name).jump == [jump, jump], name
    v = r.verdict
    assert v.last_spatial_layer == "conv3"
    assert v.rf == (18, 18) and v.total_stride == (4, 4)
    assert v.coverage_centre == (pytest.approx(18 / 28), pytest.approx(18 / 28))
    assert v.first_global_layer == "dense"
    assert [s.layer for s in v.stages] == ["pool1", "pool2"]
    assert r.layer("flatten").output_shape == (None, 576)


def test_residual_projection_and_tf_same_padding() -> None:
    r = analyze(SAMPLES / "keras_residual_net.keras")
    # 'same' with stride 2 on 32: total pad 1, all of it at the end (TF/Keras), so pad_lo = 0
    c1 = r.layer("block_conv1")
    assert [a.pad_lo for a in c1.axes] == [0, 0] and [a.pad_hi for a in c1.axes] == [1, 1]
    assert c1.rf == [5, 5] and c1.start == [-1, -1] and c1.jump == [2, 2]
    assert r.layer("block_conv2").rf == [9, 9] and r.layer("block_conv2").start == [-3, -3]
    assert r.layer("shortcut").rf == [3, 3] and r.layer("shortcut").start == [-1, -1]
    assert r.layer("add").rf == [9, 9]
    # centres 1 (block) and 0 (shortcut): the classic TF off-centre merge
    assert [d.where for d in r.diagnostics if d.code == "off-centre-merge"] == ["add", "add"]
    assert r.verdict.first_full_coverage_layer == "gap"


def test_se_block_is_global_while_spatial() -> None:
    for ext in ("keras", "h5"):
        r = analyze(SAMPLES / f"keras_se_net.{ext}")
        v = r.verdict
        assert v.global_while_spatial == "excite"
        excite = r.layer("excite")
        assert excite.is_spatial and excite.is_global
        assert excite.rf == [3, 3]  # the local window beside the global dependence
        assert v.last_spatial_layer == "conv2"
        assert r.layer("conv2").is_global


def test_nested_layers_are_named_by_path_and_call() -> None:
    r = analyze(SAMPLES / "keras_nested_net.keras")
    names = [lay.name for lay in r.layers]
    assert names == [
        "stem",
        "block/unit/conv",
        "block/unit/bn",
        "block/relu",
        "block/conv_b",
        "block/add",
        "pool",
        "block[1]/unit/conv",
        "block[1]/unit/bn",
        "block[1]/relu",
        "block[1]/conv_b",
        "block[1]/add",
    ]
    # Keras 3 op layers (x + y, ops.relu) are read from their module
    assert r.layer("block/relu").op == "Relu" and r.layer("block/add").op == "Add"
    # the model's output is the block's second call: output_layers says ["block", 2, 0]
    assert r.verdict.last_spatial_layer == "block[1]/add"
    assert r.verdict.rf == (16, 16)
    assert r.layer("block[1]/conv_b").start == [-7, -7]


def test_decoder_transpose_and_upsampling() -> None:
    r = analyze(SAMPLES / "keras_decoder_net.keras")
    up = r.layer("up")
    # conv 3x3 s2 after pad (1,0)/(2,1): r 3, j 2, start -1/-2; transposed conv 3x3 s2 'same'
    # with output_padding 1: output (n-1)*2 + 3 - 2 + 1 = 2n, pad_lo (2 - 1) // 2 = 0
    assert up.output_shape == (None, 16, 18, 4)
    assert up.jump == [Fraction(1), Fraction(1)]  # mean jump 2 / 2
    assert up.rf == [5, 5] and [a.phase_starts for a in up.axes] == [(-3, -1), (-4, -2)]
    ups = r.layer("upsample")
    assert ups.output_shape == (None, 16, 18, 4) and ups.rf == [5, 5]
    assert r.layer("crop").start == [-1, -4]
    assert r.verdict.certain


@pytest.mark.parametrize("ext", ["keras", "h5"])
def test_time_distributed_by_hand(ext: str) -> None:
    """A 6-frame clip of 20x20 (axes frames x H x W). TimeDistributed(Conv2D 3x3/2): r 1x3x3,
    jump 1x2x2, 9x9 per frame; TimeDistributed(MaxPooling2D 2): r 3 + 1*2 = 5, jump 4, 4x4;
    Conv3D (3,1,1) across frames: r 3 frames, 6 -> 4; TimeDistributed(Conv2D 3x3 'same'): r 5 +
    2*4 = 13, start -1*4 = -4. The per-frame layers never mix frames (r 1 along time)."""
    r = analyze(SAMPLES / f"keras_video_net.{ext}")
    assert r.verdict.certain and r.model.input.layout == "NDHWC"
    fc = r.layer("frame_conv")
    assert fc.op == "TimeDistributed(Conv2D)" and fc.output_shape == (None, 6, 9, 9, 4)
    assert fc.rf == [1, 3, 3] and fc.jump == [1, 2, 2]
    assert [a.kernel for a in fc.axes] == [None, 3, 3]  # the frame conv does not slide in time
    assert r.layer("frame_pool").rf == [1, 5, 5]
    last = r.layer("frame_conv2")
    assert last.output_shape == (None, 4, 4, 4, 4)
    assert last.rf == [3, 13, 13] and last.jump == [1, 4, 4] and last.start == [0, -4, -4]
    assert r.verdict.last_spatial_layer == "frame_conv2"


def test_time_distributed_units_match_onnxruntime() -> None:
    """Every unit of the clip model's output reads exactly the frames and pixels onnxruntime
    shows it depends on, measured on the ONNX twin Keras exported (which unrolls the frames)."""
    import onnx

    from oracle import measure_intervals

    r = analyze(SAMPLES / "keras_video_net.keras")
    last = r.layer("frame_conv2")
    twin = onnx.load(str(SAMPLES / "keras_video_net.onnx"))
    out = twin.graph.output[0].name
    measured = measure_intervals(
        twin, twin.graph.input[0].name, [out], spatial_axes_in=(1, 2, 3), layout="NXC",
    )[out]
    for a in range(3):
        assert [last.real_interval(a, k) for k in range(len(measured[a]))] == measured[a]


def test_time_distributed_of_an_unfollowed_layer_is_unknown(tmp_path: Path) -> None:
    import json
    import zipfile

    src = SAMPLES / "keras_video_net.keras"
    with zipfile.ZipFile(src) as z:
        files = {n: z.read(n) for n in z.namelist()}
    cfg = json.loads(files["config.json"])
    inner = cfg["config"]["layers"][-1]["config"]["layer"]
    inner["class_name"], inner["module"] = "MyLayer", "my_package.layers"
    files["config.json"] = json.dumps(cfg).encode()
    path = tmp_path / "custom.keras"
    with zipfile.ZipFile(path, "w") as z:
        for n, data in files.items():
            z.writestr(n, data)
    r = analyze(path)
    assert not r.verdict.certain
    [d] = [d for d in r.diagnostics if d.code == "unknown-op"]
    assert d.message.startswith(
        "operator 'TimeDistributed' is not followed: the wrapped MyLayer is not followed step by "
        "step (1 node(s): frame_conv2)"
    )
    assert r.verdict.last_spatial_layer == "temporal"


TF_KERAS = [
    SAMPLES / "tf_keras_nested.h5",
    SAMPLES / "tf_keras_nested.keras",
    SAMPLES / "tf_keras_nested_savedmodel",
]


@pytest.mark.parametrize("path", TF_KERAS, ids=["h5", "keras", "savedmodel"])
def test_real_tf_keras_files(path: object) -> None:
    r = analyze(str(path))
    assert r.model.meta["node_encoding"] == "Keras 2"
    assert r.model.meta["keras_version"].startswith("2.")
    names = [lay.name for lay in r.layers]
    # nested Functional called twice (1-based node indices), a nested Sequential, TFOpLambda
    assert names == [
        "stem",
        "block/conv_b",
        "block/tf.nn.relu",
        "block/add",
        "pool",
        "block[1]/conv_b",
        "block[1]/tf.nn.relu",
        "block[1]/add",
        "tf.math.multiply",
        "tf.math.reduce_mean",
        "tf.math.multiply_1",
        "head/head_conv",
    ]
    assert r.layer("block[1]/conv_b").rf == [10, 10]
    assert r.layer("tf.math.reduce_mean").op == "tf.math.reduce_mean"
    assert r.verdict.global_while_spatial == "tf.math.multiply_1"
    assert r.verdict.last_spatial_layer == "head/head_conv"
    assert r.verdict.rf == (14, 14)
    assert r.verdict.certain


def test_runtime_never_imports_keras() -> None:
    analyze(SAMPLES / "keras_nested_net.keras")
    analyze(SAMPLES / "keras_nested_net.h5")
    analyze(str(SAMPLES / "tf_keras_nested_savedmodel"))
    assert not {"keras", "tensorflow", "tf_keras", "torch"} & set(sys.modules)
