"""shift-test runs Keras files through the user's Keras (here with the torch backend)."""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cnnprobe.cli import app
from cnnprobe.shift import ShiftOptions, run_shift_test
from paths import SAMPLES

os.environ.setdefault("KERAS_BACKEND", "torch")


def _keras():  # type: ignore[no-untyped-def]
    return pytest.importorskip("keras")


@pytest.fixture(scope="module")
def gap_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Conv 1x1 (pointwise, linear), global average pooling, dense: the output depends only on
    the channel means of the input, so rolls cannot change it."""
    keras = _keras()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        inp = keras.Input((12, 12, 3), name="image")
        x = keras.layers.Conv2D(4, 1, name="pointwise")(inp)
        x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
        out = keras.layers.Dense(5, name="logits")(x)
        model = keras.Model(inp, out)
        weights = np.random.default_rng(0).standard_normal((4, 5)).astype("float32")
        model.layers[-1].set_weights([weights, np.zeros(5, "float32")])
        path = tmp_path_factory.mktemp("keras") / "gap.keras"
        model.save(path)
    return str(path)


def test_keras_gap_model_is_roll_invariant(gap_model: str) -> None:
    r = run_shift_test(ShiftOptions(gap_model, mode="roll", count=3, max_shift=5))
    assert r.format == "keras" and r.runner.startswith("keras ")
    assert r.layout == "NHWC"
    ns = r.output.measure("ns")
    assert ns is not None and ns.all.value is not None and ns.all.value < 1e-5
    assert r.output.measure("agreement").all.value == 1.0  # type: ignore[union-attr]


def test_keras_sample_matches_its_onnx_twin() -> None:
    _keras()
    keras_file = SAMPLES / "keras_mnist_pooled.keras"
    onnx_file = SAMPLES / "keras_mnist_pooled.onnx"
    if not (keras_file.exists() and onnx_file.exists()):
        pytest.skip("Keras sample models not generated")
    # same weights, two runtimes: the same views must give the same measures
    a = run_shift_test(ShiftOptions(str(keras_file), count=2))
    b = run_shift_test(ShiftOptions(str(onnx_file), count=2))
    assert a.period == b.period == (4, 4)
    assert [m.key for m in a.output.measures] == [m.key for m in b.output.measures]
    for ma, mb in zip(a.output.measures, b.output.measures):
        assert ma.all.value == pytest.approx(mb.all.value, rel=1e-3, abs=1e-7), ma.key
    # Keras layers by name
    c = run_shift_test(ShiftOptions(str(keras_file), count=2, mode="crop", layers=("pool2",)))
    (pool2,) = c.layers
    assert pool2.jump == (4, 4)
    assert pool2.period.value is not None and pool2.period.value < 1e-10


def test_missing_keras_is_one_clear_line(gap_model: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "keras", None)  # import keras -> ImportError
    res = CliRunner().invoke(app, ["shift-test", gap_model])
    assert res.exit_code == 2 and res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "needs Keras" in lines[0] and gap_model in lines[0]


def test_keras_file_that_cannot_load(tmp_path: Path) -> None:
    _keras()
    bad = tmp_path / "broken.keras"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    res = CliRunner().invoke(app, ["shift-test", str(bad)])
    assert res.exit_code == 2
    assert len(res.stderr.strip().splitlines()) == 1 and str(bad) in res.stderr


def test_keras_layer_fallback_geometry() -> None:
    # used when the analysis cannot read a Keras file: strides from the layers' configurations
    _keras()
    from cnnprobe.shift.runners import keras_geometry, load_keras

    path = str(SAMPLES / "keras_mnist_pooled.keras")
    if not Path(path).exists():
        pytest.skip("Keras sample models not generated")
    _, model = load_keras(path)
    geo = keras_geometry(path, model, None, "auto", None)
    assert geo.layout == "NHWC" and geo.spatial_axes == (1, 2)
    assert geo.period == (4, 4) and geo.period_source == "keras layers"
    jumps = {m.name: int(m.jump[0]) for m in geo.feature_maps}
    assert jumps == {"conv1": 1, "pool1": 2, "conv2": 2, "pool2": 4, "conv3": 4}
    assert keras_geometry(path, model, None, "auto", (8,)).period == (8, 8)
