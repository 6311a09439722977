"""Every check rule has passing and failing cases, given as data. Expected statuses follow from
figures worked out by hand for the samples (see test_samples.py): mnist_convnet: last layer relu3,
22x22 units, RF 7, jump 1; mnist_pooled: relu3 3x3 units, RF 18, jump 4, dense is global;
residual_net: block_relu2 16x16, RF 9, jump 2; unet_like: off-centre merges, head_conv 64x64."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cnnprobe import analyze
from cnnprobe.check.config import parse_rule
from cnnprobe.check.rules import REGISTRY, ConfigError, Context
from paths import SAMPLES

CASES: list[tuple[str, str, Any, str]] = [
    # (sample, rule, configuration value, expected status)
    ("mnist_convnet.onnx", "full-input", True, "fail"),
    # dense is global, but pool2 drops the only path from pixels 26, 27 (see test_samples.py)
    ("mnist_pooled.onnx", "full-input", {"layer": "dense"}, "fail"),
    ("residual_net.onnx", "full-input", {"layer": "gap"}, "pass"),
    ("residual_net.onnx", "full-input", {"layer": "gap"}, "pass"),
    ("residual_net.onnx", "full-input", {"layer": "nope"}, "error"),
    ("custom_op.onnx", "full-input", True, "fail"),  # cannot be verified: fail closed
    ("mnist_convnet.onnx", "min-rf", 7, "pass"),
    ("mnist_convnet.onnx", "min-rf", 8, "fail"),
    ("mnist_convnet.onnx", "min-rf", [7, 8], "fail"),
    ("mnist_pooled.onnx", "min-rf", {"value": 26, "layer": "dense"}, "pass"),  # pixels 0..25
    ("mnist_pooled.onnx", "min-rf", {"value": 27, "layer": "dense"}, "fail"),
    ("mnist_pooled.onnx", "max-rf", 18, "pass"),
    ("mnist_pooled.onnx", "max-rf", 17, "fail"),
    ("mnist_pooled.onnx", "max-stride", 4, "pass"),
    ("mnist_pooled.onnx", "max-stride", [4, 2], "fail"),
    ("residual_net.onnx", "max-stride", 1, "fail"),
    ("mnist_convnet.onnx", "min-resolution", 22, "pass"),
    ("mnist_pooled.onnx", "min-resolution", 4, "fail"),
    ("mnist_pooled.onnx", "min-resolution", [1, 2, 3], "error"),  # 3 values for 2 axes
    ("residual_net.onnx", "no-misaligned-merge", True, "pass"),
    ("unet_like.onnx", "no-off-centre-merge", True, "fail"),
    ("residual_net.onnx", "no-off-centre-merge", True, "pass"),
    ("custom_op.onnx", "no-unknown-ops", True, "fail"),
    ("mnist_convnet.onnx", "no-unknown-ops", True, "pass"),
]


@pytest.mark.parametrize(("sample", "rule", "value", "expected"), CASES)
def test_rule_cases(sample: str, rule: str, value: Any, expected: str) -> None:
    params = parse_rule(rule, value, f"rules.{rule}")
    assert params is not None
    path = SAMPLES / sample
    result = analyze(path)
    outcome = REGISTRY[rule].evaluate(result, params, Context(str(path)))
    assert outcome.status == expected, outcome.message
    assert outcome.rule == rule
    assert outcome.message


def test_every_rule_has_cases_and_documentation() -> None:
    covered = {c[1] for c in CASES} | {"max-shift-sensitivity"}
    assert covered == set(REGISTRY)
    for rid, rule in REGISTRY.items():
        assert rule.summary and (type(rule).__doc__ or "").strip(), rid


@pytest.mark.parametrize(
    ("rule", "value", "needle"),
    [
        ("max-stride", "abc", "expected an integer"),
        ("max-stride", 0, "positive"),
        ("max-stride", True, "needs a threshold"),
        ("min-rf", {"value": 3, "bogus": 1}, "unknown parameter"),
        ("full-input", 5, "expected true, false or a table"),
        ("full-input", {"layer": 3}, "layer name"),
        ("max-shift-sensitivity", {"max": -1}, "non-negative"),
        ("max-shift-sensitivity", {"max": 0.1, "measure": "nope"}, "expected one of"),
        ("no-such-rule", True, "unknown rule"),
    ],
)
def test_invalid_rule_configuration(rule: str, value: Any, needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_rule(rule, value, f"rules.{rule}")
    assert needle in str(err.value)
    assert f"rules.{rule}" in str(err.value)


def test_false_disables() -> None:
    assert parse_rule("full-input", False, "rules.full-input") is None


def _wrap_gap_model(path: Path) -> Path:
    """Circular padding + conv + global average pooling + dense: exactly invariant to rolls
    (Chaman & Dokmanic): every roll permutes the conv outputs, and the mean ignores the order."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 16, 16])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])
    inits = [
        numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "pads"),
        numpy_helper.from_array(rng.standard_normal((4, 1, 3, 3)).astype(np.float32), "w"),
        numpy_helper.from_array(rng.standard_normal((4, 10)).astype(np.float32), "fc"),
    ]
    nodes = [
        helper.make_node("Pad", ["x", "pads"], ["p"], mode="wrap"),
        helper.make_node("Conv", ["p", "w"], ["c"], kernel_shape=[3, 3]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("MatMul", ["f", "fc"], ["y"]),
    ]
    graph = helper.make_graph(nodes, "wrap", [x], [y], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    model.ir_version = 9  # what opset 19 needs; onnxruntime lags behind onnx's newest
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize(
    ("model", "limit", "expected"),
    [("wrap", 1e-4, "pass"), ("mnist_pooled.onnx", 0.01, "fail")],
)
def test_max_shift_sensitivity_rule(
    tmp_path: Path, model: str, limit: float, expected: str
) -> None:
    from cnnprobe.check.runner import _shift_runner

    path = _wrap_gap_model(tmp_path / "wrap.onnx") if model == "wrap" else SAMPLES / model
    params = parse_rule(
        "max-shift-sensitivity", {"max": limit, "mode": "roll", "inputs": 4, "seed": 0}, "r"
    )
    assert params is not None
    ctx = Context(str(path), runner=_shift_runner)
    outcome = REGISTRY["max-shift-sensitivity"].evaluate(analyze(path), params, ctx)
    assert outcome.status == expected, outcome.message
    assert "roll" in outcome.message  # the protocol is stated


@pytest.mark.parametrize(
    ("limit", "message"),
    [
        # the LSTM's steps see more and more columns: no single jump along the width; the
        # height's jump (8, after the 8x1 pooling) is known and alone breaks a limit of 4
        (4, "total stride of lstm is 8×?; must be <= 4×4 (axis 0)"),
        (8, "cannot verify: the total stride of lstm is 8×?"),
    ],
)
def test_threshold_with_an_axis_of_unknown_figure(limit: int, message: str) -> None:
    params = parse_rule("max-stride", {"value": limit, "layer": "lstm"}, "rules.max-stride")
    assert params is not None
    path = SAMPLES / "keras_crnn.keras"
    outcome = REGISTRY["max-stride"].evaluate(analyze(path), params, Context(str(path)))
    assert outcome.status == "fail" and outcome.message == message
