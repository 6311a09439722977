"""Models exported by PyTorch (sample_models/make_torch_samples.py): dynamic batch, exporter node
names, Shape/Gather chains, SE gates, attention, ceil-mode pooling, transposed convs, resizes.
Every spatial layer's per-unit real intervals must equal what onnxruntime measures (perturb input
positions, see which units change), for every unit of every axis."""

from __future__ import annotations

import onnx
import pytest

from cnnprobe import analyze
from oracle import measure_intervals
from paths import SAMPLES

MODELS = ["torch_se_net.onnx", "torch_unet.onnx", "torch_attention.onnx", "unet_like.onnx",
          "residual_net.onnx", "mnist_pooled.onnx", "dilated_1d.onnx", "torch_vit.onnx"]


def _clip(iv: tuple[int, int] | None, n: int) -> tuple[int, int] | None:
    if iv is None:
        return None
    lo, hi = max(iv[0], 0), min(iv[1], n - 1)
    return (lo, hi) if lo <= hi else None


def contains(outer: tuple[int, int] | None, inner: tuple[int, int]) -> bool:
    return outer is not None and outer[0] <= inner[0] and inner[1] <= outer[1]


@pytest.mark.parametrize("name", MODELS)
def test_intervals_match_onnxruntime(name: str) -> None:
    path = SAMPLES / name
    result = analyze(path)
    assert result.verdict.certain, [d.message for d in result.diagnostics]
    spatial = result.model.input.spatial_axes
    sizes = result.model.input.spatial_size
    local = [lay for lay in result.layers if lay.is_spatial and not any(
        a.is_global for a in lay.axes) and len(lay.output_shape) == len(result.model.input.shape)]
    assert local
    model = onnx.load(str(path))
    shape = tuple(1 if d is None else d for d in result.model.input.shape)
    measured = measure_intervals(
        model, result.model.input.name, [lay.output for lay in local],
        spatial_axes_in=spatial, input_shape=shape,
    )
    for lay in local:
        for a, n in enumerate(sizes):
            assert n is not None
            units = measured[lay.output][a]
            assert len(units) == lay.axes[a].size, lay.name
            for k, seen in enumerate(units):
                mine = lay.real_interval(a, k)
                assert mine == seen, f"{name} {lay.name} axis {a} unit {k}: {mine} vs {seen}"
                # the textbook interval (into padding) contains the real one
                assert seen is None or contains(_clip(lay.unit_interval(a, k), n), seen)


@pytest.mark.parametrize("name", ["torch_se_net.onnx", "torch_attention.onnx"])
def test_global_layers_really_see_everything(name: str) -> None:
    """Where the engine says 'global', onnxruntime shows every unit depending on every pixel."""
    path = SAMPLES / name
    result = analyze(path)
    glob = [lay for lay in result.layers if lay.is_spatial and lay.is_global and
            len(lay.output_shape) == len(result.model.input.shape)]
    assert glob
    shape = tuple(1 if d is None else d for d in result.model.input.shape)
    measured = measure_intervals(
        onnx.load(str(path)), result.model.input.name, [lay.output for lay in glob],
        spatial_axes_in=result.model.input.spatial_axes, input_shape=shape,
    )
    for lay in glob:
        for a, n in enumerate(result.model.input.spatial_size):
            assert all(u == (0, (n or 0) - 1) for u in measured[lay.output][a]), lay.name


def test_se_net_verdict() -> None:
    r = analyze(SAMPLES / "torch_se_net.onnx")
    v = r.verdict
    assert v.global_while_spatial == "/se/Mul"
    assert v.sees_full_input is True
    # stem 3x3 s2 p1: r 3 (j 2, start -1); conv 3x3 s2 p1: 3+2*2 = 7 (j 4, start -3);
    # conv 5x5 p2: 7+4*4 = 23 (start -3-2*4 = -11); maxpool 3 s2 p1: 23+2*4 = 31 (j 8, -15)
    assert v.rf == (31, 31) and v.jump == (8, 8) and v.start == (-15, -15)
    # ceil_mode: 16 + 2 - 3 = 15, ceil(15/2) + 1 = 9 units
    assert [a.size for a in r.layer(v.last_spatial_layer).axes] == [9, 9]


def _hyperplane_changes(model: onnx.ModelProto, inp: str, tensor: str, shape: tuple[int, ...],
                        axes: tuple[int, ...], magnitudes: tuple[float, ...]):  # type: ignore[no-untyped-def]
    """Per axis in ``axes`` and input position along it: the elements of ``tensor`` that change
    (onnxruntime) when that whole hyperplane of the input is shifted by each magnitude in turn
    (the union over the magnitudes)."""
    import numpy as np

    from oracle import _session, _with_outputs

    sess = _session(_with_outputs(model, [tensor]))
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    base = sess.run(None, {inp: x})[0]
    out = []
    for t in axes:
        row = []
        for pos in range(shape[t]):
            changed = np.zeros(base.shape, dtype=bool)
            for magnitude in magnitudes:
                y = x.copy()
                index: list[object] = [slice(None)] * len(shape)
                index[t] = pos
                y[tuple(index)] += magnitude
                changed |= sess.run(None, {inp: y})[0] != base
            row.append(changed)
        out.append(row)
    return out


def _global_reach_measured(model: onnx.ModelProto, inp: str, tensor: str, shape: tuple[int, ...],
                           axes: tuple[int, ...]) -> list[tuple[int, int] | None]:
    """Per spatial axis: the first and last input position whose hyperplane, perturbed, changes
    ``tensor`` at all (onnxruntime)."""
    out: list[tuple[int, int] | None] = []
    for row in _hyperplane_changes(model, inp, tensor, shape, axes, (1e4, -1e4)):
        hits = [pos for pos, changed in enumerate(row) if changed.any()]
        out.append((min(hits), max(hits)) if hits else None)
    return out


@pytest.mark.parametrize(
    "name",
    ["mnist_pooled.onnx", "keras_mnist_pooled.onnx", "residual_net.onnx", "torch_se_net.onnx",
     "torch_attention.onnx", "keras_se_net.onnx", "torch_vit.onnx"],
)
def test_global_reach_matches_onnxruntime(name: str) -> None:
    """The input pixels the first global layer depends on (all of them, or fewer when a strided
    op before it never reads the last ones, as mnist_pooled's pool2 does): as measured."""
    path = SAMPLES / name
    r = analyze(path)
    lay = r.layer(r.verdict.first_global_layer)
    inp = r.model.input
    shape = tuple(1 if d is None else d for d in inp.shape)
    measured = _global_reach_measured(onnx.load(str(path)), inp.name, lay.output, shape,
                                      inp.spatial_axes)
    assert [a.reach for a in lay.axes] == measured
    assert [a.full for a in lay.axes] == [m == (0, n - 1) for m, n in zip(
        measured, (shape[t] for t in inp.spatial_axes))]


@pytest.mark.parametrize("gate", [False, True])
def test_global_op_after_a_strided_valid_conv(tmp_path, gate: bool) -> None:  # type: ignore[no-untyped-def]
    """conv 3x3/2 without padding on 8 pixels: 3 units reading 0..2, 2..4, 4..6; pixel 7 is never
    read. GlobalAveragePool over them reaches pixels 0..6 (7 of 8: 87.5%), and so does a
    squeeze-excitation gate multiplied back onto the conv's map; no layer sees the whole input."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((4, 1, 3, 3))
                                .astype(np.float32), "w")
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv", kernel_shape=[3, 3],
                         strides=[2, 2]),
        helper.make_node("GlobalAveragePool", ["c"], ["g"], name="gap"),
    ]
    last = "g"
    if gate:
        nodes += [helper.make_node("Sigmoid", ["g"], ["s"], name="sig"),
                  helper.make_node("Mul", ["c", "s"], ["y"], name="excite")]
        last = "y"
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])],
        [helper.make_tensor_value_info(last, TensorProto.FLOAT, None)], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    r = analyze(path)
    lay = r.layer("excite" if gate else "gap")
    assert [a.is_global for a in lay.axes] == [True, True]
    assert [a.reach for a in lay.axes] == [(0, 6), (0, 6)]
    assert [a.full for a in lay.axes] == [False, False]
    assert r.verdict.first_full_coverage_layer is None
    if gate:  # each unit: its own window (inside 0..6) and the gate's 0..6
        assert [a.coverage_centre for a in lay.axes] == [7 / 8, 7 / 8]
    measured = _global_reach_measured(model, "x", "g", (1, 1, 8, 8), (2, 3))
    assert measured == [(0, 6), (0, 6)]


def _every_element_changes(path, tensor: str, shape: tuple[int, ...]) -> list[list[bool]]:  # type: ignore[no-untyped-def]
    """Per spatial axis (2, 3) and position: whether perturbing that input row/column changes
    every element of ``tensor`` (onnxruntime)."""
    rows = _hyperplane_changes(onnx.load(str(path)), "input", tensor, shape, (2, 3), (1e3,))
    return [[bool(changed.all()) for changed in row] for row in rows]


def test_vision_transformer_goes_global_at_its_attention() -> None:
    """torch_vit.onnx: 4x4 patches, a class token concatenated before the 16 patch tokens,
    torch's MultiheadAttention. After the concat the token axis is no longer a grid (token 0
    reads nothing, token k reads patch k-1), so per-token windows are not tracked; the attention
    scores Q.K^T still depend on two tokens each (not global), the softmax over keys on all of
    them (global, and the patches cover every pixel). onnxruntime agrees on both."""
    path = SAMPLES / "torch_vit.onnx"
    r = analyze(path)
    v = r.verdict
    assert v.certain, [d.message for d in r.diagnostics]
    assert v.last_spatial_layer == "/patch/Conv"
    assert v.rf == (4, 4) and v.jump == (4, 4) and v.sees_full_input is False
    assert v.first_global_layer == "/attn/Softmax"
    assert v.first_full_coverage_layer == "/attn/Softmax"
    scores, weights = r.layer("/attn/MatMul_1"), r.layer("/attn/Softmax")
    assert not any(a.is_global for a in scores.axes)
    assert all(a.is_global and a.reach == (0, 15) and a.full for a in weights.axes)
    shape = (1, 3, 16, 16)
    assert all(all(row) for row in _every_element_changes(path, weights.output, shape))
    assert not any(any(row) for row in _every_element_changes(path, scores.output, shape))
