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
          "residual_net.onnx", "mnist_pooled.onnx", "dilated_1d.onnx"]


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
