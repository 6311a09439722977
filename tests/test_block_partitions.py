"""Spatial axes split into blocks by a reshape: a space-to-depth written as Reshape + Transpose +
Reshape (TResNet, PyTorch's pixel_unshuffle), window attention over the tokens of each block
(Swin without its shift, ViTDet, SAM's image encoder), attention over the blocks at one offset
(grid attention), blocks merged back in order, and in another order (not followed). Each case
checked unit by unit against onnxruntime and against figures worked out by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import cnnprobe
from oracle import measure_intervals

rng = np.random.default_rng(5)
N = 16  # input height and width


def _init(name: str, value: object, dtype: object = np.float32) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value, dtype=dtype), name)


def _shape(name: str, dims: list[int]) -> onnx.TensorProto:
    return _init(name, dims, np.int64)


def _save(tmp_path: Path, nodes: list[onnx.NodeProto], inits: list[onnx.TensorProto]) -> Path:
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, N, N])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)],
        inits,
    )
    path = tmp_path / "model.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def _seen(lay: cnnprobe.LayerResult, a: int, n: int) -> list[tuple[int, int] | None]:
    return [lay.real_interval(a, i) for i in range(n)]


def _stem() -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """A 2x2 stride-2 conv (4 channels: unit i reads pixels 2i, 2i+1), then channels last."""
    nodes = [
        helper.make_node("Conv", ["x", "w0"], ["c0"], name="stem", strides=[2, 2]),
        helper.make_node("Transpose", ["c0"], ["t0"], name="to_nhwc", perm=[0, 2, 3, 1]),
    ]
    return nodes, [_init("w0", rng.standard_normal((4, 1, 2, 2)))]


def _attention(x: str, prefix: str) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """Single-head attention over axis 1 of ``x`` [windows, tokens, 4]."""
    p = prefix
    nodes = [
        helper.make_node("MatMul", [x, f"{p}wq"], [f"{p}q"], name=f"{p}q"),
        helper.make_node("MatMul", [x, f"{p}wk"], [f"{p}k"], name=f"{p}k"),
        helper.make_node("MatMul", [x, f"{p}wv"], [f"{p}v"], name=f"{p}v"),
        helper.make_node("Transpose", [f"{p}k"], [f"{p}kt"], name=f"{p}kt", perm=[0, 2, 1]),
        helper.make_node("MatMul", [f"{p}q", f"{p}kt"], [f"{p}s"], name=f"{p}scores"),
        helper.make_node("Softmax", [f"{p}s"], [f"{p}a"], name=f"{p}softmax", axis=-1),
        helper.make_node("MatMul", [f"{p}a", f"{p}v"], [f"{p}o"], name=f"{p}mix"),
    ]
    inits = [_init(f"{p}w{c}", rng.standard_normal((4, 4)) * 0.5) for c in "qkv"]
    return nodes, inits


def window_attention_model(tmp_path: Path, grid: bool = False) -> Path:
    """Stem to [1, 8, 8, 4] (NHWC), split into 2x2 windows of 4x4 tokens, attention over the
    16 tokens of each window (``grid``: over the 4 windows, at each of the 16 offsets), merged
    back, a residual add, channels first again, then a 3x3 conv (pad 1)."""
    nodes, inits = _stem()
    if grid:  # [1, 2, 4, 2, 4, 4] -> [1, 4, 4, 2, 2, 4]: offsets first, then the blocks
        perm, back = [0, 2, 4, 1, 3, 5], [0, 3, 1, 4, 2, 5]
        groups, mid = [16, 4, 4], [1, 4, 4, 2, 2, 4]
    else:  # [1, 2, 4, 2, 4, 4] -> [1, 2, 2, 4, 4, 4]: blocks first, then the offsets
        perm, back = [0, 1, 3, 2, 4, 5], [0, 1, 3, 2, 4, 5]
        groups, mid = [4, 16, 4], [1, 2, 2, 4, 4, 4]
    nodes += [
        helper.make_node("Reshape", ["t0", "split"], ["b6"], name="partition"),
        helper.make_node("Transpose", ["b6"], ["b6t"], name="partition_t", perm=perm),
        helper.make_node("Reshape", ["b6t", "groups"], ["win"], name="windows"),
    ]
    att, att_inits = _attention("win", "a_")
    nodes += att
    nodes += [
        helper.make_node("Reshape", ["a_o", "mid"], ["r6"], name="unpartition"),
        helper.make_node("Transpose", ["r6"], ["r6t"], name="unpartition_t", perm=back),
        helper.make_node("Reshape", ["r6t", "nhwc"], ["merged"], name="merge_back"),
        helper.make_node("Add", ["merged", "t0"], ["res"], name="residual"),
        helper.make_node("Transpose", ["res"], ["res_nchw"], name="to_nchw", perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["res_nchw", "w1"], ["out"], name="conv", pads=[1] * 4),
    ]
    inits += att_inits + [
        _shape("split", [1, 2, 4, 2, 4, 4]),
        _shape("groups", groups),
        _shape("mid", mid),
        _shape("nhwc", [1, 8, 8, 4]),
        _init("w1", rng.standard_normal((3, 4, 3, 3))),
    ]
    return _save(tmp_path, nodes, inits)


NHWC_AXES = (0, (1, 2))


def test_window_attention_reads_its_window(tmp_path: Path) -> None:
    """Each token reads the 4x4 tokens of its window: stem pixels 8*(h//4) .. 8*(h//4)+7 (the
    residual's own 2 pixels are inside). The conv then reads three neighbours' windows."""
    path = window_attention_model(tmp_path)
    r = cnnprobe.analyze(path)
    assert r.verdict.certain, [d.message for d in r.diagnostics]
    merged, out = r.tensor("merged"), r.tensor("out")
    block = [(8 * (h // 4), 8 * (h // 4) + 7) for h in range(8)]
    conv = [(8 * (max(o - 1, 0) // 4), min(8 * ((o + 1) // 4) + 7, N - 1)) for o in range(8)]
    for a in (0, 1):
        assert _seen(merged, a, 8) == block
        assert _seen(out, a, 8) == conv
    assert merged.is_spatial and out.is_spatial
    assert not merged.is_global and not out.is_global
    assert out.rf == [16, 16]  # every unit reads two windows of 8 pixels (or one and padding)
    measured = measure_intervals(
        onnx.load(path),
        "x",
        ["merged", "out"],
        spatial_axes_in=(2, 3),
        tensor_axes={"merged": NHWC_AXES},
    )
    assert measured["merged"] == [block, block]
    assert measured["out"] == [conv, conv]
    # the windows [4, 16, 4] are not a feature map: the verdict's last spatial layer is the conv
    assert not r.tensor("win").is_spatial
    assert r.verdict.last_spatial_layer == "conv"
    assert r.verdict.sees_full_input is False


def test_grid_attention_is_not_followed_unit_by_unit(tmp_path: Path) -> None:
    """Attention over the blocks at one offset (grid attention): a token reads the same offset
    in every window, so its pixels are scattered over the axis. Not followed unit by unit (no
    window is claimed), and not global either (no unit reads every pixel)."""
    path = window_attention_model(tmp_path, grid=True)
    r = cnnprobe.analyze(path)
    merged = r.tensor("merged")
    assert merged.rf == [None, None] and not merged.is_global
    assert r.verdict.sees_full_input is not True
    measured = measure_intervals(
        onnx.load(path), "x", ["merged"], spatial_axes_in=(2, 3), tensor_axes={"merged": NHWC_AXES}
    )
    # what onnxruntime sees: offset h % 4 in both windows (pixels of units h%4 and 4 + h%4)
    hand = [(2 * (h % 4), 2 * (4 + h % 4) + 1) for h in range(8)]
    assert measured["merged"] == [hand, hand]
    assert all(ax.reach == (0, N - 1) for ax in merged.axes)  # what they read together


def space_to_depth_model(tmp_path: Path, as_op: bool) -> Path:
    """A 3x3 conv (pad 1, 2 channels) on 16x16, space-to-depth by 2 (as PyTorch writes
    pixel_unshuffle: [1, 2, 8, 2, 8, 2] -> [1, 2, 2, 2, 8, 8] -> [1, 8, 8, 8], or the ONNX
    op), then a 3x3 conv (pad 1)."""
    nodes = [helper.make_node("Conv", ["x", "w0"], ["c0"], name="conv0", pads=[1] * 4)]
    inits = [
        _init("w0", rng.standard_normal((2, 1, 3, 3))),
        _init("w1", rng.standard_normal((3, 8, 3, 3))),
    ]
    if as_op:
        nodes.append(helper.make_node("SpaceToDepth", ["c0"], ["s2d"], name="s2d", blocksize=2))
    else:
        nodes += [
            helper.make_node("Reshape", ["c0", "six"], ["c6"], name="split"),
            helper.make_node("Transpose", ["c6"], ["c6t"], name="shuffle", perm=[0, 1, 3, 5, 2, 4]),
            helper.make_node("Reshape", ["c6t", "four"], ["s2d"], name="s2d"),
        ]
        inits += [_shape("six", [1, 2, 8, 2, 8, 2]), _shape("four", [1, 8, 8, 8])]
    nodes.append(helper.make_node("Conv", ["s2d", "w1"], ["out"], name="conv1", pads=[1] * 4))
    return _save(tmp_path, nodes, inits)


def test_space_to_depth_as_a_reshape(tmp_path: Path) -> None:
    """Unit u of the space-to-depth reads conv0 units 2u, 2u+1, i.e. pixels 2u-1 .. 2u+2 (rf 4,
    jump 2, start -1); conv1's unit o reads pixels 2o-3 .. 2o+4 (rf 8). The same figures as
    the ONNX SpaceToDepth op, and as onnxruntime measures."""
    path = space_to_depth_model(tmp_path, as_op=False)
    r = cnnprobe.analyze(path)
    assert r.verdict.certain, [d.message for d in r.diagnostics]
    s2d, out = r.tensor("s2d"), r.tensor("out")
    assert (s2d.rf, s2d.jump, s2d.start) == ([4, 4], [2, 2], [-1, -1])
    assert (out.rf, out.jump, out.start) == ([8, 8], [2, 2], [-3, -3])
    assert s2d.is_spatial and [a.size for a in s2d.axes] == [8, 8]
    hand = [(max(2 * o - 3, 0), min(2 * o + 4, N - 1)) for o in range(8)]
    assert _seen(out, 0, 8) == hand
    measured = measure_intervals(onnx.load(path), "x", ["s2d", "out"], spatial_axes_in=(2, 3))
    assert measured["out"] == [hand, hand]
    assert measured["s2d"][0] == [(max(2 * u - 1, 0), min(2 * u + 2, N - 1)) for u in range(8)]
    op = cnnprobe.analyze(space_to_depth_model(tmp_path, as_op=True))
    for name in ("s2d", "out"):
        a, b = r.tensor(name), op.tensor(name)
        assert (a.rf, a.jump, a.start) == (b.rf, b.jump, b.start)
        assert _seen(a, 1, 8) == _seen(b, 1, 8)


def _split_back_model(tmp_path: Path, order: list[int]) -> Path:
    """The height of a [1, 8, 8, 4] NHWC map split into 2 blocks of 4, a ReLU, then merged back
    with the blocks and offsets in ``order`` ([1, 2] as they were; [2, 1] swapped), then a
    1x3 (height) conv, channels first."""
    nodes, inits = _stem()
    nodes += [
        helper.make_node("Reshape", ["t0", "five"], ["h5"], name="split"),
        helper.make_node("Relu", ["h5"], ["h5r"], name="relu"),
        helper.make_node("Transpose", ["h5r"], ["h5t"], name="order", perm=[0, *order, 3, 4]),
        helper.make_node("Reshape", ["h5t", "nhwc"], ["back"], name="back"),
        helper.make_node("Transpose", ["back"], ["nchw"], name="to_nchw", perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["nchw", "w1"], ["out"], name="conv", pads=[1, 0, 1, 0]),
    ]
    inits += [
        _shape("five", [1, 2, 4, 8, 4]),
        _shape("nhwc", [1, 8, 8, 4]),
        _init("w1", rng.standard_normal((2, 4, 3, 1))),
    ]
    return _save(tmp_path, nodes, inits)


def test_blocks_merged_back_in_order_are_the_axis_again(tmp_path: Path) -> None:
    """Nothing mixes the positions of a block: every unit keeps its own window (the stem's 2
    pixels), and the conv after reads 3 units (rf 6, jump 2, start -2), exactly."""
    path = _split_back_model(tmp_path, [1, 2])
    r = cnnprobe.analyze(path)
    assert r.verdict.certain, [d.message for d in r.diagnostics]
    back, out = r.tensor("back"), r.tensor("out")
    assert (back.rf, back.jump, back.start) == ([2, 2], [2, 2], [0, 0])
    assert (out.rf, out.jump, out.start) == ([6, 2], [2, 2], [-2, 0])
    measured = measure_intervals(onnx.load(path), "x", ["out"], spatial_axes_in=(2, 3))
    assert measured["out"][0] == [(max(2 * o - 2, 0), min(2 * o + 3, N - 1)) for o in range(8)]
    assert _seen(out, 0, 8) == measured["out"][0]


def test_offsets_merged_before_their_blocks_are_not_followed(tmp_path: Path) -> None:
    """Offsets then blocks on one axis reorder the positions (h = offset * 2 + block): not
    followed, said, and everything after it uncertain."""
    r = cnnprobe.analyze(_split_back_model(tmp_path, [2, 1]))
    assert not r.verdict.certain
    assert any(d.code == "reshape-untracked" for d in r.diagnostics)
    assert r.tensor("out").status != "ok"


@pytest.mark.parametrize("grid", [False, True])
def test_window_attention_summary_cli(tmp_path: Path, grid: bool) -> None:
    """The table and JSON reports take tensors whose axes are split into blocks (sizes unknown
    per input axis there, figures by position)."""
    from typer.testing import CliRunner

    from cnnprobe.cli import app

    path = window_attention_model(tmp_path, grid=grid)
    for fmt in ("table", "json", "markdown"):
        res = CliRunner().invoke(app, ["summary", str(path), "--all", "--format", fmt])
        assert res.exit_code == 0, res.output


def _conv_then(tmp_path: Path, nodes: list[onnx.NodeProto], inits: list[onnx.TensorProto]) -> Path:
    head = [helper.make_node("Conv", ["x", "w0"], ["c0"], name="conv0", pads=[1] * 4)]
    return _save(tmp_path, head + nodes, [_init("w0", rng.standard_normal((2, 1, 3, 3))), *inits])


def test_other_axes_folded_with_a_part_are_read_in_full(tmp_path: Path) -> None:
    """The offsets of the height folded with the width (Flatten), a softmax over that axis:
    every unit reads the whole width (the height: its block). Found in review: the width was
    left with the conv's 3 pixels."""
    path = _conv_then(
        tmp_path,
        [
            helper.make_node("Reshape", ["c0", "s5"], ["r"], name="split"),
            helper.make_node("Flatten", ["r"], ["fl"], name="fold", axis=3),
            helper.make_node("Softmax", ["fl"], ["sm"], name="softmax", axis=1),
            helper.make_node("Reshape", ["sm", "s4"], ["out"], name="back"),
        ],
        [_shape("s5", [1, 2, 4, 4, 16]), _shape("s4", [1, 2, 16, 16])],
    )
    r = cnnprobe.analyze(path)
    out = r.tensor("out")
    measured = measure_intervals(onnx.load(path), "x", ["out"], spatial_axes_in=(2, 3))["out"]
    assert measured[1] == [(0, N - 1)] * N
    assert out.axes[1].is_global and out.axes[1].full
    # the height: the block of 4 rows (each with the conv's 3), clipped to the image
    hand = [(max(4 * (h // 4) - 1, 0), min(4 * (h // 4) + 4, N - 1)) for h in range(N)]
    assert measured[0] == hand and _seen(out, 0, N) == hand


def test_split_then_flatten_and_dense_is_global(tmp_path: Path) -> None:
    path = _conv_then(
        tmp_path,
        [
            helper.make_node("Reshape", ["c0", "s5"], ["r"], name="split"),
            helper.make_node("Flatten", ["r"], ["fl"], name="flatten", axis=1),
            helper.make_node("Gemm", ["fl", "gw"], ["out"], name="dense", transB=1),
        ],
        [_shape("s5", [1, 2, 4, 4, 16]), _init("gw", rng.standard_normal((3, 512)))],
    )
    r = cnnprobe.analyze(path)
    out = r.tensor("out")
    assert out.is_global and out.sees_full_input
    assert r.verdict.first_full_coverage_layer == "dense"
    measured = measure_intervals(
        onnx.load(path), "x", ["out"], spatial_axes_in=(2, 3),
        tensor_axes={"out": (0, (None, None))},
    )["out"]
    assert measured == [[(0, N - 1)], [(0, N - 1)]]
