"""keras.applications architectures (config.json only, written by
sample_models/make_keras_app_configs.py) against the published TF-Slim receptive-field anchors
(see ../shared/notes/receptive-field.md): resnet_v1_50 block4 483/32, vgg_16 pool5 212/32,
inception_v3 Mixed_7c 1311/32. Keras' ResNet50 puts the stride in the first 1x1 conv of a
stage, as TF-Slim's resnet_v1 does (torchvision's 427 comes from the stride in the 3x3)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnnprobe import analyze

DATA = Path(__file__).parent / "data" / "keras_apps"


@pytest.mark.parametrize(
    ("name", "layer", "rf"),
    [
        ("resnet50", "conv5_block3_out", 483),
        ("vgg16", "block5_pool", 212),
        ("inception_v3", "mixed10", 1311),
    ],
)
def test_published_anchors(name: str, layer: str, rf: int) -> None:
    r = analyze(DATA / name)
    assert r.verdict.certain
    assert r.verdict.last_spatial_layer == layer
    assert r.verdict.rf == (rf, rf)
    assert r.verdict.jump == (32, 32)
