"""Real model-zoo architectures shipped with the onnx package (IR version 3, opset 9, weights as
ConstantOfShape chains, initializers listed among the inputs): every one analyses cleanly."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnnprobe import analyze
from paths import zoo_dir

ZOO = sorted(zoo_dir().glob("*.onnx"))


def test_zoo_is_there() -> None:
    assert len(ZOO) >= 9


@pytest.mark.parametrize("path", ZOO, ids=lambda p: Path(p).name)
def test_zoo_model_analyses_cleanly(path: Path) -> None:
    r = analyze(path)
    assert r.verdict.certain, [d for d in r.diagnostics if d.severity == "error"]
    assert all(lay.status == "ok" for lay in r.layers)
    assert not [d for d in r.diagnostics if d.severity == "error"]
    assert r.verdict.last_spatial_layer is not None
    assert r.model.input.shape == (1, 3, 224, 224)
    # every classifier here goes global (global pooling or a dense layer over positions)
    assert r.verdict.first_global_layer is not None
    glob = r.layer(r.verdict.first_global_layer)
    reach = UNREAD_EDGE.get(Path(path).name, (0, 223))
    assert [a.reach for a in glob.axes] == [reach, reach]
    assert (r.verdict.first_full_coverage_layer is not None) == (reach == (0, 223))


#: Models built for 227-pixel inputs lose the last pixels at 224 (no padding, stride > 1), so their
#: global layer reads pixels 0..hi only:
UNREAD_EDGE = {
    # AlexNet: conv1 11/4 -> 54 units (unit 53 reads 212..222, pixel 223 never); pool 3/2 -> 26
    # units over conv units 0..52, the last reading pixels 200..218 (conv unit 53 dropped)
    "light_bvlc_alexnet.onnx": (0, 218),
    # ZFNet: conv 7/2 -> 109 (216..222); pool 3/2 -> 54 (conv 106..108, ..222); conv 5/2 -> 25
    # units over pool units 0..52 (pool unit 53 dropped): the last reads 208..218
    "light_zfnet512.onnx": (0, 218),
    # SqueezeNet 1.1: conv1 3/2 -> 111 units, the last reads 220..222; pool 3/2 -> 55 units
    # over conv units 0..110: pixel 223 is never read
    "light_squeezenet.onnx": (0, 222),
}


def _last_pool(path: Path):  # type: ignore[no-untyped-def]
    r = analyze(path)
    return [lay for lay in r.layers if lay.op == "MaxPool"][-1]


@pytest.mark.parametrize(
    ("name", "rf"),
    [
        # AlexNet (Caffe): conv1 11/4, pool 3/2, conv2 5 pad 2, pool 3/2, conv3-5 3 pad 1,
        # pool 3/2: 1+10=11 (j4), +2*4=19 (j8), +4*8=51, +2*8=67 (j16), +3*2*16=163,
        # +2*16=195 (j32) -- the published 195/32
        ("light_bvlc_alexnet.onnx", 195),
        # VGG-19: VGG-16's published pool5 212 plus one more 3x3 conv in blocks 3, 4, 5
        # (jumps 4, 8, 16): 212 + 2*4 + 2*8 + 2*16 = 268
        ("light_vgg19.onnx", 268),
        # ZFNet-512: conv 7/2 (7, j2), pool 3/2 (11, j4), conv 5/2 (27, j8), pool 3/2 (43, j16),
        # three 3x3 convs (+96 = 139), pool 2/2 (+16 = 155, j32)
        ("light_zfnet512.onnx", 155),
    ],
)
def test_published_receptive_fields(name: str, rf: int) -> None:
    pool5 = _last_pool(zoo_dir() / name)
    assert pool5.rf == [rf, rf]
    assert pool5.jump == [32, 32]
