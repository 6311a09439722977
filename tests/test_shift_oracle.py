"""Exact oracles for shift-test: models whose shift behaviour follows from theory.

- Circular padding (ONNX ``Pad`` mode ``wrap``) + strided convolutions + global average pooling:
  a roll by a multiple of the total stride S permutes every feature map circularly, so the output
  is unchanged (to float rounding); other rolls are not.
- A global-average-pooled *linear* model depends only on the per-channel mean, which rolls and
  Fourier shifts (any fraction of a pixel) keep: it is invariant to all of them.
- The same linear model under ``pad`` mode with zero fill: the change of the output is
  ``A @ (change of the channel means)``, computed here with numpy from the model's weights.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from cnnprobe.shift import ShiftOptions, run_shift_test
from cnnprobe.shift.results import ShiftTestResult

OPSET = 19  # Pad mode "wrap" needs opset 19


def _save(model: onnx.ModelProto, path: Path) -> str:
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return str(path)


def wrap_net(path: Path, size: int = 16, channels: int = 2, seed: int = 0) -> str:
    """Pad(wrap)-Conv3x3 s1-Relu, Pad(wrap)-Conv3x3 s2-Relu, Pad(wrap)-Conv3x3 s2-Relu, GAP,
    Flatten, Gemm to 5 classes. Total stride 4; every map is circular."""
    rng = np.random.default_rng(seed)
    nodes, inits = [], [numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1]), "pads")]
    x, cin = "input", channels
    for k, (cout, stride) in enumerate([(6, 1), (8, 2), (8, 2)], start=1):
        w = (rng.standard_normal((cout, cin, 3, 3)) / np.sqrt(9 * cin)).astype(np.float32)
        b = (rng.standard_normal(cout) * 0.1).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"w{k}"), numpy_helper.from_array(b, f"b{k}")]
        nodes.append(helper.make_node("Pad", [x, "pads"], [f"pad{k}"], name=f"pad{k}", mode="wrap"))
        nodes.append(
            helper.make_node(
                "Conv",
                [f"pad{k}", f"w{k}", f"b{k}"],
                [f"conv{k}"],
                name=f"conv{k}",
                kernel_shape=[3, 3],
                strides=[stride, stride],
            )
        )
        nodes.append(helper.make_node("Relu", [f"conv{k}"], [f"relu{k}"], name=f"relu{k}"))
        x, cin = f"relu{k}", cout
    fc = rng.standard_normal((cin, 5)).astype(np.float32)
    inits += [
        numpy_helper.from_array(fc, "fc_w"),
        numpy_helper.from_array(np.zeros(5, np.float32), "fc_b"),
    ]
    nodes += [
        helper.make_node("GlobalAveragePool", [x], ["gap"], name="gap"),
        helper.make_node("Flatten", ["gap"], ["flat"], name="flat"),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], name="fc"),
    ]
    graph = helper.make_graph(
        nodes,
        "wrap_net",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, channels, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 5])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 9
    return _save(model, path)


def gap_linear_net(
    path: Path, size: int = 12, channels: int = 3, classes: int = 4
) -> tuple[str, np.ndarray, np.ndarray]:
    """Identity 1x1 conv, global average pool, Gemm: z = mean(x) @ A + b. Returns (path, A, b)."""
    rng = np.random.default_rng(3)
    eye = np.eye(channels, dtype=np.float32).reshape(channels, channels, 1, 1)
    a = rng.standard_normal((channels, classes)).astype(np.float32)
    b = rng.standard_normal(classes).astype(np.float32)
    inits = [
        numpy_helper.from_array(eye, "eye"),
        numpy_helper.from_array(a, "A"),
        numpy_helper.from_array(b, "b"),
    ]
    nodes = [
        helper.make_node("Conv", ["input", "eye"], ["conv"], name="conv", kernel_shape=[1, 1]),
        helper.make_node("GlobalAveragePool", ["conv"], ["gap"], name="gap"),
        helper.make_node("Flatten", ["gap"], ["flat"], name="flat"),
        helper.make_node("Gemm", ["flat", "A", "b"], ["logits"], name="fc"),
    ]
    graph = helper.make_graph(
        nodes,
        "gap_linear",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", channels, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", classes])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return _save(model, path), a, b


def measure(r: ShiftTestResult, key: str):  # type: ignore[no-untyped-def]
    m = r.output.measure(key)
    assert m is not None, key
    return m


@pytest.fixture(scope="module")
def wrap_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    return wrap_net(tmp_path_factory.mktemp("wrap") / "wrap_net.onnx")


@pytest.fixture(scope="module")
def wrap_roll(wrap_model: str) -> ShiftTestResult:
    return run_shift_test(
        ShiftOptions(wrap_model, mode="roll", count=3, layers=("all",), max_shift=8)
    )


def test_wrap_net_period_is_the_total_stride(wrap_roll: ShiftTestResult) -> None:
    assert wrap_roll.period == (4, 4)
    assert tuple(int(s) for s in wrap_roll.total_stride if s is not None) == (4, 4)


def test_rolls_by_multiples_of_s_leave_the_output_unchanged(wrap_roll: ShiftTestResult) -> None:
    ns = measure(wrap_roll, "ns")
    assert ns.on_grid.n == 3 * 3 * 2  # shifts 4 and 8 along x, y, diagonal, for 3 inputs
    assert ns.on_grid.value is not None and ns.on_grid.value < 1e-5
    assert ns.off_grid.value is not None and ns.off_grid.value > 1e-3
    assert measure(wrap_roll, "agreement").on_grid.value == 1.0
    for p in wrap_roll.points:
        assert p.sensitivity is not None
        if p.on_grid:
            assert p.sensitivity < 1e-5, p
        else:
            assert p.sensitivity > 1e-4, p


def test_feature_maps_are_exactly_equivariant_on_their_own_grid(wrap_roll: ShiftTestResult) -> None:
    by = {la.name: la for la in wrap_roll.layers}
    assert {"conv1", "conv2", "conv3"} <= set(by)
    for la in wrap_roll.layers:
        assert la.period.value is not None and la.period.value < 1e-10, la.name
        if la.jump_multiple.n:
            assert la.jump_multiple.value is not None and la.jump_multiple.value < 1e-10, la.name
    # jump 1: every whole-pixel shift is on the map's grid; no sub-unit comparison
    assert by["conv1"].sub_unit.n == 0
    # jump 2 and 4: shifts by a fraction of the jump are not equivariant (aliasing)
    for name in ("conv2", "conv3"):
        assert by[name].sub_unit.value is not None and by[name].sub_unit.value > 1e-4, name
    assert by["conv3"].jump_multiple.n == 0  # jump 4 = P: its grid multiples are multiples of P


def test_crop_mode_brings_new_content_so_not_even_on_grid_is_invariant(wrap_model: str) -> None:
    r = run_shift_test(ShiftOptions(wrap_model, mode="crop", count=2))
    assert measure(r, "ns").on_grid.value > 1e-4  # type: ignore[operator]


def test_fourier_mode_equals_roll_for_whole_pixels(
    wrap_model: str, wrap_roll: ShiftTestResult
) -> None:
    r = run_shift_test(ShiftOptions(wrap_model, mode="fourier", count=3, max_shift=8))
    a = {(p.direction, p.shift): p.sensitivity for p in r.points}
    b = {(p.direction, p.shift): p.sensitivity for p in wrap_roll.points}
    assert a.keys() == b.keys()
    for key, value in a.items():
        assert value == pytest.approx(b[key], rel=1e-3, abs=1e-5)


def test_grid_shift_set_covers_every_offset(wrap_model: str) -> None:
    r = run_shift_test(ShiftOptions(wrap_model, mode="roll", shifts="grid", count=2))
    shifts = {p.shift for p in r.points}
    assert shifts == {(float(a), float(b)) for a in range(4) for b in range(4)} - {(0.0, 0.0)}
    assert r.protocol.inferences == 2 * 16
    # only (0, 0) is on the grid in [0, 4)^2, and it is the reference
    assert all(not p.on_grid and (p.sensitivity or 0) > 1e-4 for p in r.points)


def test_results_do_not_depend_on_the_batch_size(
    wrap_model: str, wrap_roll: ShiftTestResult
) -> None:
    r = run_shift_test(
        ShiftOptions(wrap_model, mode="roll", count=3, layers=("all",), max_shift=8, batch_size=5)
    )
    for a, b in zip(r.points, wrap_roll.points):
        assert a.shift == b.shift
        assert a.sensitivity == pytest.approx(b.sensitivity, rel=1e-4, abs=1e-6)


def test_global_average_pooled_linear_model_is_invariant_to_any_circular_shift(
    tmp_path: Path,
) -> None:
    path, _, _ = gap_linear_net(tmp_path / "gap.onnx")
    r = run_shift_test(ShiftOptions(path, mode="fourier", step=0.5, max_shift=5, count=3))
    assert r.period == (1, 1)
    assert any(not p.on_grid for p in r.points)  # half-pixel shifts are off the grid
    assert all(p.sensitivity is not None and p.sensitivity < 1e-5 for p in r.points)
    assert measure(r, "agreement").all.value == 1.0


def test_pad_mode_changes_the_output_by_the_lost_columns(tmp_path: Path) -> None:
    path, a, _ = gap_linear_net(tmp_path / "gap.onnx")
    rng = np.random.default_rng(5)
    batch = rng.random((3, 3, 12, 12)).astype(np.float32)
    npy = tmp_path / "inputs.npy"
    np.save(npy, batch)
    r = run_shift_test(ShiftOptions(path, mode="pad", fill="zero", inputs=(str(npy),), max_shift=3))
    expected = []
    for x in batch.astype(np.float64):
        for dy, dx in [(0, 1), (1, 0), (1, 1)]:  # x, y, diagonal
            for k in (1, 2, 3):
                shifted = np.zeros_like(x)
                shifted[:, k * dy :, k * dx :] = x[:, : 12 - k * dy, : 12 - k * dx]
                change = (shifted.mean(axis=(1, 2)) - x.mean(axis=(1, 2))) @ a
                expected.append(np.abs(change).mean())
    got = measure(r, "abs_change").all
    assert got.n == len(expected) == 27
    assert got.value == pytest.approx(float(np.mean(expected)), rel=1e-4)
