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


def test_convnext_tiny_with_its_own_layers() -> None:
    """ConvNeXt-T (Liu et al. 2022): stem 4x4/4 (r 4, j 4); stages of 3, 3, 9, 3 blocks, each
    with a 7x7 depthwise conv (+6j), 2x2/2 downsampling between stages (+j, then j doubles):
    4 + 3*24 = 76; +4 = 80, j 8; + 3*48 = 224; +8 = 232, j 16; + 9*96 = 1096; +16 = 1112, j 32;
    + 3*192 = 1688. Its LayerScale (x * gamma per channel) and StochasticDepth (the identity at
    inference) come from keras.applications' own module, which the file names."""
    r = analyze(DATA / "convnext_tiny")
    assert r.verdict.certain, [d.message for d in r.diagnostics]
    assert r.verdict.rf == (1688, 1688)
    assert r.verdict.jump == (32, 32)
    assert r.verdict.sees_full_input is True


@pytest.mark.parametrize("module", ["my_project.layers", None])
def test_a_layer_scale_of_another_module_stays_unknown(tmp_path: Path, module: str | None) -> None:
    import json

    text = (DATA / "convnext_tiny" / "config.json").read_text()
    config = json.loads(text)

    def rewrite(x: object) -> None:
        if isinstance(x, dict):
            if x.get("class_name") == "LayerScale":
                if module is None:
                    x.pop("module", None)
                else:
                    x["module"] = module
            for v in x.values():
                rewrite(v)
        elif isinstance(x, list):
            for v in x:
                rewrite(v)

    rewrite(config)
    folder = tmp_path / "convnext_custom"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "metadata.json").write_text((DATA / "convnext_tiny" / "metadata.json").read_text())
    r = analyze(folder)
    assert not r.verdict.certain
    assert [d.code for d in r.diagnostics] == ["unknown-op"]
    assert "LayerScale" in r.diagnostics[0].message
