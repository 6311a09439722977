"""Patterns of timm's architectures that the analysis got wrong or could not follow (found by a
sweep of 40 timm models exported with torch.onnx): ResNeSt/SKNet split attention, standardised
convolution weights computed in the graph (BiT, NFNet), TensorFlow-style 'same' padding computed
from constants (tf_efficientnet, NFNet). Each checked against onnxruntime or by hand."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import cnnprobe
from cnnprobe.frontends.onnx_frontend import Array, _fold_op
from oracle import measure_intervals

rng = np.random.default_rng(11)


def _init(name: str, value: object, dtype: object = np.float32) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value, dtype=dtype), name)


def _save(
    tmp_path: Path, nodes: list[onnx.NodeProto], inits: list[onnx.TensorProto], out: str,
    shape: tuple[int, ...] = (1, 1, 8, 8), opset: int = 17,
) -> Path:
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)],
        inits,
    )
    path = tmp_path / "model.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]), path)
    return path


def test_split_attention_gate(tmp_path: Path) -> None:
    """ResNeSt: a conv's map split in 2 (radix) as [1, 2, 2, 8, 8], a gate from its pooled sum
    ([1, 2, 2, 1, 1], global) multiplied onto it, summed back, pooled 2x2. Every unit of the
    pool sees the whole input through the gate; its local window is the conv's 3 plus the
    pool's 1 (rf 4, jump 2, start -1). The gate's height and width, reduced to one unit, used to
    shadow the map's (sizes 1, and the pool after it uncertain)."""
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["y"], name="conv", pads=[1] * 4),
        helper.make_node("Reshape", ["y", "s5"], ["y5"], name="split"),
        helper.make_node("ReduceSum", ["y5", "ax1"], ["s"], name="sum", keepdims=0),
        helper.make_node("ReduceMean", ["s"], ["m"], name="gap", axes=[2, 3], keepdims=1),
        helper.make_node("Conv", ["m", "wg"], ["g"], name="fc"),
        helper.make_node("Reshape", ["g", "g5shape"], ["g5"], name="gate"),
        helper.make_node("Mul", ["y5", "g5"], ["z5"], name="mul"),
        helper.make_node("ReduceSum", ["z5", "ax1"], ["z"], name="merge", keepdims=0),
        helper.make_node("AveragePool", ["z"], ["p"], name="pool", kernel_shape=[2, 2],
                         strides=[2, 2]),
    ]
    inits = [
        _init("w", rng.standard_normal((4, 1, 3, 3))),
        _init("wg", rng.standard_normal((4, 2, 1, 1))),
        _init("s5", [1, 2, 2, 8, 8], np.int64),
        _init("g5shape", [1, 2, 2, 1, 1], np.int64),
        _init("ax1", [1], np.int64),
    ]
    path = _save(tmp_path, nodes, inits, "p")
    r = cnnprobe.analyze(path)
    assert r.verdict.certain, [d.message for d in r.diagnostics]
    z, p = r.tensor("z"), r.tensor("p")
    assert [a.size for a in z.axes] == [8, 8] and z.is_spatial
    assert (p.rf, p.jump, p.start) == ([4, 4], [2, 2], [-1, -1])
    assert p.is_global and [a.reach for a in p.axes] == [(0, 7), (0, 7)]
    measured = measure_intervals(onnx.load(path), "x", ["p"], spatial_axes_in=(2, 3))["p"]
    assert measured == [[(0, 7)] * 4, [(0, 7)] * 4]


def test_standardised_conv_weight(tmp_path: Path) -> None:
    """BiT/NFNet's standardised convolutions: the weight is computed in the graph (a constant
    normalised by BatchNormalization, reshaped through an Identity of its shape). Its shape, and
    so the conv's 4 output channels, follow; the GroupNorm-style reshape to [1, 2, -1] after it
    then does too (it was left uncertain)."""
    nodes = [
        helper.make_node(
            "BatchNormalization", ["wflat", "gam", "bet", "mu", "var"], ["wn"], name="std"
        ),
        helper.make_node("Identity", ["wshape"], ["wshape2"], name="same"),
        helper.make_node("Reshape", ["wn", "wshape2"], ["w"], name="weight"),
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1] * 4),
        helper.make_node("Reshape", ["c", "groups"], ["gr"], name="groups"),
        helper.make_node("Softmax", ["gr"], ["y"], name="norm", axis=2),
    ]
    inits = [
        _init("wflat", rng.standard_normal((1, 4, 9))),
        *(_init(n, np.ones(4)) for n in ("gam", "bet", "mu", "var")),
        _init("wshape", [4, 1, 3, 3], np.int64),
        _init("groups", [1, 2, -1], np.int64),
    ]
    r = cnnprobe.analyze(_save(tmp_path, nodes, inits, "y"))
    assert r.verdict.certain, [d.message for d in r.diagnostics]
    assert r.tensor("c").output_shape == (1, 4, 8, 8)
    assert r.tensor("gr").output_shape == (1, 2, 128)


def test_tf_same_padding_from_constants(tmp_path: Path) -> None:
    """TensorFlow-style 'same' padding as timm writes it, amounts computed from constants with
    Ceil and Clip: ceil([2.5, 0.5]) = [3, 1], clipped to [0, 2] = [2, 1], so 2 before and 1
    after on both axes; a 3x3 conv after it starts at -2 (it read as computed at run time)."""
    nodes = [
        helper.make_node("Ceil", ["amounts"], ["up"], name="ceil"),
        helper.make_node("Clip", ["up", "lo", "hi"], ["clipped"], name="clip"),
        helper.make_node("Cast", ["clipped"], ["pads2"], name="cast", to=TensorProto.INT64),
        helper.make_node("Slice", ["pads2", "s0", "s1"], ["before"], name="before"),
        helper.make_node("Slice", ["pads2", "s1", "s2"], ["after"], name="after"),
        helper.make_node(
            "Concat", ["zero2", "before", "before", "zero2", "after", "after"], ["pads"],
            name="pads", axis=0,
        ),
        helper.make_node("Pad", ["x", "pads"], ["xp"], name="pad"),
        helper.make_node("Conv", ["xp", "w"], ["y"], name="conv"),
    ]
    inits = [
        _init("amounts", [2.5, 0.5]),
        _init("lo", 0.0),
        _init("hi", 2.0),
        _init("s0", [0], np.int64),
        _init("s1", [1], np.int64),
        _init("s2", [2], np.int64),
        _init("zero2", [0, 0], np.int64),
        _init("w", rng.standard_normal((2, 1, 3, 3))),
    ]
    r = cnnprobe.analyze(_save(tmp_path, nodes, inits, "y"))
    assert r.verdict.certain, [d.message for d in r.diagnostics]
    y = r.tensor("y")
    assert y.output_shape == (1, 2, 9, 9)  # 8 + 2 + 1 - 2
    assert (y.rf, y.jump, y.start) == ([3, 3], [1, 1], [-2, -2])


@pytest.mark.parametrize("op", ["Ceil", "Floor", "Clip", "Max", "Min"])
def test_new_folds_agree_with_numpy(op: str) -> None:
    """The constant folder's Ceil, Floor, Clip, Max and Min against numpy on random float32
    operands (with infinities, NaN for Max/Min) and, for Clip, every bound combination."""
    gen = random.Random(op)
    for _ in range(200):
        n = gen.randint(1, 6)
        x = np.array([gen.choice([gen.uniform(-9, 9), 0.5, -0.5, 2.0, np.inf, -np.inf])
                      for _ in range(n)], dtype=np.float32)
        a = Array((n,), x.tolist(), "f4")
        if op in ("Ceil", "Floor"):
            got = _fold_op(op, {}, [a], 17)
            want = np.ceil(x) if op == "Ceil" else np.floor(x)
        elif op == "Clip":
            lo = gen.choice([None, float(np.float32(gen.uniform(-5, 0)))])
            hi = gen.choice([None, float(np.float32(gen.uniform(0, 5)))])
            bounds = [None if b is None else Array((), [b], "f4") for b in (lo, hi)]
            got = _fold_op(op, {}, [a, *bounds], 17)  # type: ignore[list-item]
            want = np.clip(x, -np.inf if lo is None else lo, np.inf if hi is None else hi)
        else:
            y = np.array([gen.choice([gen.uniform(-9, 9), np.nan]) for _ in range(n)],
                         dtype=np.float32)
            got = _fold_op(op, {}, [a, Array((n,), y.tolist(), "f4")], 17)
            want = np.maximum(x, y) if op == "Max" else np.minimum(x, y)
        assert got is not None and got.dtype == "f4"
        np.testing.assert_array_equal(np.array(got.data, dtype=np.float32), want)


def test_scores_of_queries_and_keys_on_different_grids(tmp_path: Path) -> None:
    """Attention-like scores from queries on one grid (a 1x1 conv of stride 2: query i reads
    pixel 2i) and keys on another (a 1x1 conv over pixels 2..15), summed over the keys: query 0
    reads pixels 0..15, the others only 2..15 (onnxruntime). What every unit reads is not
    tracked there, so no unit is claimed to see the whole input (a short-lived version claimed
    it of all of them)."""
    nodes = [
        helper.make_node("Conv", ["x", "wq"], ["q"], name="q", kernel_shape=[1], strides=[2]),
        helper.make_node("Slice", ["x", "s0", "s1", "sa"], ["xs"], name="crop"),
        helper.make_node("Conv", ["xs", "wk"], ["k"], name="k", kernel_shape=[1]),
        helper.make_node("Transpose", ["q"], ["qt"], name="qt", perm=[0, 2, 1]),
        helper.make_node("MatMul", ["qt", "k"], ["s"], name="scores"),
        helper.make_node("ReduceSum", ["s", "ax"], ["o"], name="o", keepdims=1),
    ]
    inits = [
        _init("wq", rng.standard_normal((4, 4, 1))),
        _init("wk", rng.standard_normal((4, 4, 1))),
        _init("s0", [2], np.int64),
        _init("s1", [16], np.int64),
        _init("sa", [2], np.int64),
        _init("ax", [2], np.int64),
    ]
    path = _save(tmp_path, nodes, inits, "o", shape=(1, 4, 16), opset=13)
    measured = measure_intervals(
        onnx.load(path), "x", ["o"], spatial_axes_in=(2,), tensor_axes={"o": (0, (1,))}
    )["o"]
    assert measured == [[(0, 15)] + [(2, 15)] * 7]
    o = cnnprobe.analyze(path).tensor("o")
    assert o.axes[0].full is not True and o.sees_full_input is not True


def test_scores_between_the_positions_of_two_maps(tmp_path: Path) -> None:
    """q = conv3 (x), k = conv3 (x), scores = q^T k ([1, 16, 16]: query position t, key position
    s). Along the query positions, unit t reads q's pixels t-1..t+1 and every key position: the
    whole input (onnxruntime). It read as q's window only (k's positions, on the other axis,
    were taken for the same units)."""
    nodes = [
        helper.make_node("Conv", ["x", "wq"], ["q"], name="q", kernel_shape=[3], pads=[1, 1]),
        helper.make_node("Conv", ["x", "wk"], ["k"], name="k", kernel_shape=[3], pads=[1, 1]),
        helper.make_node("Transpose", ["q"], ["qt"], name="qt", perm=[0, 2, 1]),
        helper.make_node("MatMul", ["qt", "k"], ["s"], name="scores"),
    ]
    inits = [
        _init("wq", rng.standard_normal((4, 4, 3))),
        _init("wk", rng.standard_normal((4, 4, 3))),
    ]
    path = _save(tmp_path, nodes, inits, "s", shape=(1, 4, 16), opset=13)
    measured = measure_intervals(
        onnx.load(path), "x", ["s"], spatial_axes_in=(2,), tensor_axes={"s": (0, (1,))}
    )["s"]
    assert measured == [[(0, 15)] * 16]
    sc = cnnprobe.analyze(path).tensor("s")
    a = sc.axes[0]
    assert sc.status == "ok" and a.is_global and a.reach == (0, 15) and a.full
    assert (a.rf, a.start) == (3, -1)  # (q's own window, the local part)
