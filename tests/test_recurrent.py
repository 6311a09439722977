"""Running and recurrent ops: ONNX CumSum, LSTM, GRU and RNN (every direction, both layouts,
absent outputs), checked unit by unit against onnxruntime and against figures worked out by hand.

The models put a 3x3 convolution (padding 1) on a 1x1x4x12 image, so conv unit ``w`` reads
pixels ``w-1..w+1`` (clipped to ``0..11``) along the width. The recurrent models then make the
width their sequence axis and fold channels and height into the features, which the input
weights contract: every step depends on the whole height, and along the width step ``t`` has read
conv units ``0..t`` (forward), ``t..11`` (reverse) or all of them (bidirectional, final states).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import cnnprobe
from oracle import measure_intervals
from paths import SAMPLES

H, W = 4, 12
GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
HIDDEN = 3


def _conv_nodes(rng: np.random.Generator) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    w = numpy_helper.from_array(rng.standard_normal((2, 1, 3, 3)).astype(np.float32), "cw")
    conv = helper.make_node("Conv", ["x", "cw"], ["c"], name="conv", pads=[1, 1, 1, 1])
    return [conv], [w]


def _save(
    tmp_path: Path,
    nodes: list[onnx.NodeProto],
    inits: list[onnx.TensorProto],
    outputs: list[str],
    opset: int = 14,
) -> Path:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, H, W])
    outs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs]
    graph = helper.make_graph(nodes, "g", [x], outs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model = onnx.shape_inference.infer_shapes(model)
    onnx.checker.check_model(model)
    path = tmp_path / "model.onnx"
    onnx.save(model, path)
    return path


def recurrent_model(
    tmp_path: Path,
    op: str,
    direction: str,
    outputs: tuple[str, ...] = ("y", "yh"),
    layout: int = 0,
    hidden_size_attr: bool = True,
) -> Path:
    """conv -> width as the sequence (``[W, 1, 8]``; layout 1: ``[1, W, 8]``) -> ``op``.
    ``outputs``: the op's output names by position ("" = absent)."""
    rng = np.random.default_rng(1)
    nodes, inits = _conv_nodes(rng)
    d = 2 if direction == "bidirectional" else 1
    g = GATES[op]
    perm = [0, 3, 1, 2] if layout else [3, 0, 1, 2]
    seq_shape = [1, W, 2 * H] if layout else [W, 1, 2 * H]
    # small weights and gates biased towards remembering: a change at the first step still
    # shows at the last one (saturated or forgetting gates would hide it from the oracle)
    bias = np.zeros((d, 2 * g * HIDDEN), dtype=np.float32)
    keep = {"LSTM": 2, "GRU": 0}.get(op)  # the forget gate (LSTM iofc), the update gate (GRU zrh)
    if keep is not None:
        bias[:, keep * HIDDEN : (keep + 1) * HIDDEN] = 2.0
    recurrence = 0.5 * rng.standard_normal((d, g * HIDDEN, HIDDEN))
    if op == "RNN":  # no gates: a recurrent weight of gain ~1 keeps old steps alive
        recurrence = np.stack([0.95 * np.eye(HIDDEN)] * d)
    inits += [
        numpy_helper.from_array(np.array(seq_shape, dtype=np.int64), "seq_shape"),
        numpy_helper.from_array(
            0.3 * rng.standard_normal((d, g * HIDDEN, 2 * H)).astype(np.float32), "W"
        ),
        numpy_helper.from_array(recurrence.astype(np.float32), "R"),
        numpy_helper.from_array(bias, "B"),
    ]
    attrs: dict[str, object] = {"direction": direction}
    if hidden_size_attr:
        attrs["hidden_size"] = HIDDEN
    if layout:
        attrs["layout"] = 1
    nodes += [
        helper.make_node("Transpose", ["c"], ["t"], name="to_seq", perm=perm),
        helper.make_node("Reshape", ["t", "seq_shape"], ["s"], name="fold"),
        helper.make_node(op, ["s", "W", "R", "B"], list(outputs), name="rnn", **attrs),
    ]
    return _save(tmp_path, nodes, inits, [o for o in outputs if o])


def conv_window(t: int, n: int = W) -> tuple[int, int]:
    """Pixels conv unit ``t`` reads along an axis of ``n`` (3 taps, padding 1)."""
    return max(0, t - 1), min(n - 1, t + 1)


def running(direction: str, t: int) -> tuple[int, int]:
    """Width pixels step ``t`` of the sequence output depends on (hand-worked)."""
    if direction == "forward":
        return 0, conv_window(t)[1]
    if direction == "reverse":
        return conv_window(t)[0], W - 1
    return 0, W - 1


#: (batch axis, tensor axis of the height, of the width) of each output, by layout: Y is
#: [W, D, 1, hidden] ([1, W, D, hidden]), Y_h/Y_c [D, 1, hidden] ([1, D, hidden])
SEQ_AXES = {0: (2, (None, 0)), 1: (0, (None, 1))}
FINAL_AXES = {0: (1, (None, None)), 1: (0, (None, None))}


def layer(result: cnnprobe.AnalysisResult, name: str) -> cnnprobe.LayerResult:
    return result.tensor(name)


def seen(lay: cnnprobe.LayerResult, a: int, t: int) -> tuple[int, int] | None:
    """The real pixels unit ``t`` depends on along input axis ``a``: its local ones, and, when
    the axis is global, every pixel the global path reaches."""
    local = lay.real_interval(a, t)
    ax = lay.axes[a]
    if not ax.is_global:
        return local
    assert ax.reach is not None
    if local is None:
        return ax.reach
    return min(local[0], ax.reach[0]), max(local[1], ax.reach[1])


@pytest.mark.parametrize("op", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
def test_recurrent_ops_match_onnxruntime(tmp_path: Path, op: str, direction: str) -> None:
    outs = ("y", "yh", "yc") if op == "LSTM" else ("y", "yh")
    path = recurrent_model(tmp_path, op, direction, outs)
    r = cnnprobe.analyze(path)
    d = 2 if direction == "bidirectional" else 1
    y = layer(r, "y")
    assert y.status == "ok"
    assert y.output_shape == (W, d, 1, HIDDEN)
    measured = measure_intervals(
        onnx.load(path),
        "x",
        list(outs),
        spatial_axes_in=(2, 3),
        magnitude=10.0,
        tensor_axes={"y": SEQ_AXES[0], **{o: FINAL_AXES[0] for o in outs[1:]}},
    )
    # along the width, unit by unit: the hand-worked figures, and what onnxruntime measures
    hand = [running(direction, t) for t in range(W)]
    assert measured["y"][1] == hand
    assert [seen(y, 1, t) for t in range(W)] == hand
    # every step has read the whole height (the features are contracted)
    assert measured["y"][0] == [(0, H - 1)]
    assert y.axes[0].is_global and y.axes[0].reach == (0, H - 1) and y.axes[0].full
    for o in outs[1:]:
        final = layer(r, o)
        assert final.status == "ok"
        assert final.output_shape == (d, 1, HIDDEN)
        assert measured[o] == [[(0, H - 1)], [(0, W - 1)]]
        assert final.is_global and final.sees_full_input
        assert [a.reach for a in final.axes] == [(0, H - 1), (0, W - 1)]


def test_forward_sequence_figures_by_hand(tmp_path: Path) -> None:
    """Windows (into padding) along the width: conv unit t reads t-1..t+1, so step t of a
    forward LSTM reads -1..t+1: the narrowest is step 0 (3 pixels), the widest step 11 (14),
    all starting at -1; the ends move at different rates, so there is no single jump."""
    r = cnnprobe.analyze(recurrent_model(tmp_path, "LSTM", "forward"))
    a = layer(r, "y").axes[1]
    figures = (a.rf, a.rf_min, a.start, a.jump, a.running, a.misaligned)
    assert figures == (14, 3, -1, None, True, False)
    assert not a.is_global and a.full is False
    assert a.coverage_centre == 7 / W  # step 5 reads pixels 0..6
    assert a.coverage_min == 2 / W  # step 0 reads pixels 0..1
    rev = layer(cnnprobe.analyze(recurrent_model(tmp_path, "LSTM", "reverse")), "y").axes[1]
    # step t reads t-1..12: the widest is step 0 (-1..12), the narrowest step 11 (10..12)
    assert (rev.rf, rev.rf_min, rev.start, rev.jump, rev.running) == (14, 3, -1, None, True)


def test_bidirectional_sequence_read_whole_or_by_direction(tmp_path: Path) -> None:
    """Y of a bidirectional GRU ([W, 2, 1, hidden]): at step t the forward direction has read
    columns 0..t+1, the backward one t-1..11: together every column (global, exact), and so has
    a layer over both (PyTorch's reshape to [W, 1, 2*hidden] and a linear layer). Taking one
    direction (Gather on the directions axis) is not mistaken for both: uncertain."""
    path = recurrent_model(tmp_path, "GRU", "bidirectional")
    model = onnx.load(path)
    rng = np.random.default_rng(7)
    model.graph.initializer.extend(
        [
            numpy_helper.from_array(np.array([W, 1, 2 * HIDDEN], dtype=np.int64), "both"),
            numpy_helper.from_array(rng.standard_normal((2 * HIDDEN, 4)).astype(np.float32), "fc"),
            numpy_helper.from_array(np.array(0, dtype=np.int64), "first"),
        ]
    )
    model.graph.node.extend(
        [
            helper.make_node("Transpose", ["y"], ["yt"], name="yt", perm=[0, 2, 1, 3]),
            helper.make_node("Reshape", ["yt", "both"], ["yr"], name="yr"),
            helper.make_node("MatMul", ["yr", "fc"], ["logits"], name="logits"),
            helper.make_node("Gather", ["y", "first"], ["fwd"], name="fwd", axis=1),
        ]
    )
    del model.graph.output[:]
    model.graph.output.extend(
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("logits", "fwd")]
    )
    onnx.save(model, path)
    r = cnnprobe.analyze(path)
    logits = layer(r, "logits")
    assert logits.status == "ok" and logits.is_global and logits.sees_full_input
    measured = measure_intervals(
        onnx.load(path), "x", ["logits", "fwd"], spatial_axes_in=(2, 3), magnitude=10.0,
        tensor_axes={"logits": (1, (None, 0)), "fwd": (1, (None, 0))},
    )
    assert measured["logits"][1] == [(0, W - 1)] * W
    assert [seen(logits, 1, t) for t in range(W)] == measured["logits"][1]
    # the forward direction alone: step t has read 0..t+1, not everything
    assert measured["fwd"][1] == [running("forward", t) for t in range(W)]
    assert layer(r, "fwd").status == "uncertain"
    y = layer(r, "y")
    assert y.is_global and y.sees_full_input and y.axes[1].rf == 3  # (the conv's, kept)
    assert r.verdict.first_full_coverage_layer == "rnn"
    assert r.verdict.global_kind == "recurrent layer over positions"


def test_absent_outputs_and_hidden_size_from_the_weights(tmp_path: Path) -> None:
    path = recurrent_model(
        tmp_path, "LSTM", "forward", outputs=("", "", "yc"), hidden_size_attr=False
    )
    r = cnnprobe.analyze(path)
    assert [lay.output for lay in r.layers if lay.name.startswith("rnn")] == ["yc"]
    yc = layer(r, "yc")
    assert yc.output_shape == (1, 1, HIDDEN) and yc.status == "ok" and yc.is_global


def test_batchwise_layout(tmp_path: Path) -> None:
    """``layout`` 1 (onnxruntime does not run it): the same figures as layout 0, on the axes
    the operator's definition gives ([batch, seq, directions, hidden], [batch, directions,
    hidden]); shapes as ONNX shape inference records them."""
    path = recurrent_model(tmp_path, "LSTM", "bidirectional", ("y", "yh", "yc"), layout=1)
    r = cnnprobe.analyze(path)
    assert layer(r, "y").output_shape == (1, W, 2, HIDDEN)
    assert layer(r, "yh").output_shape == (1, 2, HIDDEN)
    assert not [d for d in r.diagnostics if d.severity != "info"]
    fwd = cnnprobe.analyze(recurrent_model(tmp_path, "RNN", "forward", layout=1))
    assert [layer(fwd, "y").real_interval(1, t) for t in range(W)] == [
        running("forward", t) for t in range(W)
    ]


def cumsum_model(tmp_path: Path, axis: int, **attrs: int) -> Path:
    rng = np.random.default_rng(2)
    nodes, inits = _conv_nodes(rng)
    inits.append(numpy_helper.from_array(np.array(axis, dtype=np.int64), "axis"))
    nodes.append(helper.make_node("CumSum", ["c", "axis"], ["y"], name="cumsum", **attrs))
    return _save(tmp_path, nodes, inits, ["y"])


@pytest.mark.parametrize("reverse", [0, 1])
@pytest.mark.parametrize("axis", [3, -2, 1])
def test_cumsum_matches_onnxruntime(tmp_path: Path, axis: int, reverse: int) -> None:
    path = cumsum_model(tmp_path, axis, reverse=reverse)
    r = cnnprobe.analyze(path)
    y = layer(r, "y")
    assert y.status == "ok"
    measured = measure_intervals(onnx.load(path), "x", ["y"], spatial_axes_in=(2, 3))["y"]
    along = {3: 1, -2: 0, 1: None}[axis]  # the input axis the sum runs along
    for a, n in enumerate((H, W)):
        if a == along:
            hand = [
                (max(0, t - 1), n - 1) if reverse else (0, min(n - 1, t + 1)) for t in range(n)
            ]
        else:
            hand = [(max(0, t - 1), min(n - 1, t + 1)) for t in range(n)]
        assert measured[a] == hand
        assert [y.real_interval(a, t) for t in range(n)] == hand
        assert y.axes[a].running == (a == along)


def test_exclusive_cumsum_is_not_guessed(tmp_path: Path) -> None:
    """Its first unit reads no input at all: no window describes it, so the figures along that
    axis are withheld (uncertain, with a diagnostic), never guessed."""
    r = cnnprobe.analyze(cumsum_model(tmp_path, 3, exclusive=1))
    y = layer(r, "y")
    assert y.status == "uncertain"
    assert "exclusive-scan" in {d.code for d in r.diagnostics}
    # along the channels it changes nothing
    assert layer(cnnprobe.analyze(cumsum_model(tmp_path, 1, exclusive=1)), "y").status == "ok"


def squeezed_conv1d_model(tmp_path: Path) -> Path:
    """conv 3x3 -> max pool over the whole height (4x1) -> Squeeze the height -> Conv1d k3 p1:
    the height, reduced to one unit, rides along the width, which the 1-D conv slides over."""
    rng = np.random.default_rng(3)
    nodes, inits = _conv_nodes(rng)
    inits += [
        numpy_helper.from_array(np.array([2], dtype=np.int64), "h_axis"),
        numpy_helper.from_array(rng.standard_normal((2, 2, 3)).astype(np.float32), "w1"),
    ]
    nodes += [
        helper.make_node("MaxPool", ["c"], ["p"], name="pool", kernel_shape=[H, 1]),
        helper.make_node("Squeeze", ["p", "h_axis"], ["s"], name="squeeze"),
        helper.make_node("Conv", ["s", "w1"], ["y"], name="conv1d", pads=[1, 1]),
    ]
    return _save(tmp_path, nodes, inits, ["y"])


def test_conv1d_after_squeezing_a_spatial_axis(tmp_path: Path) -> None:
    """(Was uncertain: the squeezed height riding along the width looked like a folded axis.)
    Width: conv unit t reads t-1..t+1, the 1-D conv t-2..t+2 (rf 5, jump 1, start -2); height:
    the pool's single unit (kernel 4, stride 1) reads all 4 rows (rf 3 + 3 = 6, start -1)."""
    path = squeezed_conv1d_model(tmp_path)
    r = cnnprobe.analyze(path)
    y = layer(r, "y")
    assert y.status == "ok"
    assert [(a.rf, a.jump, a.start) for a in y.axes] == [(6, 1, -1), (5, 1, -2)]
    assert y.axes[0].size == 1 and y.axes[0].full and y.axes[0].coverage_centre == 1.0
    measured = measure_intervals(
        onnx.load(path), "x", ["y", "s"], spatial_axes_in=(2, 3),
        tensor_axes={"y": (0, (None, 2)), "s": (0, (None, 2))},
    )
    for name, k in (("y", 2), ("s", 1)):
        hand = [(max(0, t - k), min(W - 1, t + k)) for t in range(W)]
        assert measured[name] == [[(0, H - 1)], hand]
        lay = layer(r, name)
        assert [lay.real_interval(1, t) for t in range(W)] == hand
        assert lay.real_interval(0, 0) == (0, H - 1)


# ---------------------------------------------------------------------------------------------
# Keras: the committed CRNN sample (sample_models/make_keras_samples.py), whose ONNX twin Keras
# exported with the recurrences unrolled


def test_keras_crnn_by_hand() -> None:
    """8x24 line image: conv 3x3 'same' (column w reads w-1..w+1), max pool 8x1 (one row of
    units reading all 8 rows: rf 3 + 7 = 10, start -1), columns as a sequence. LSTM step t has read
    columns -1..t+1 (rf from 3 to 26, start -1, no single jump); its final state has read
    everything, so has every step of the bidirectional GRU."""
    for ext in ("keras", "h5"):
        r = cnnprobe.analyze(SAMPLES / f"keras_crnn.{ext}")
        assert r.verdict.certain and not r.diagnostics
        lstm = r.layer("lstm")
        assert lstm.op == "LSTM" and lstm.output_shape == (None, 24, 5)
        w = lstm.axes[1]
        assert (w.rf, w.rf_min, w.start, w.jump, w.running) == (26, 3, -1, None, True)
        # the height, one row of units after the pooling, rides along the columns
        assert lstm.is_spatial and lstm.axes[0].size == 1 and lstm.real_interval(0, 0) == (0, 7)
        state = r.layer("lstm:1")
        assert state.output_shape == (None, 5) and state.is_global and state.sees_full_input
        bigru = r.layer("bigru")
        assert bigru.op == "Bidirectional" and bigru.output_shape == (None, 24, 6)
        assert bigru.is_global and bigru.sees_full_input
        assert r.layer("classes").is_global and r.layer("classes").sees_full_input
        # the per-step classifier is the last feature map (along the columns): it sees it all
        assert r.verdict.last_spatial_layer == "classes" and r.verdict.sees_full_input
        assert r.verdict.first_full_coverage_layer == "lstm:1"
        assert r.verdict.global_kind == "recurrent layer over positions"


def test_keras_crnn_units_match_onnxruntime() -> None:
    """Step by step, the columns the LSTM's outputs have read, measured on the ONNX twin (outputs:
    classes [1, 24, 6], the LSTM's sequence [1, 24, 5] and its final state [1, 5])."""
    r = cnnprobe.analyze(SAMPLES / "keras_crnn.keras")
    twin = onnx.load(str(SAMPLES / "keras_crnn.onnx"))
    _, seq_name, state_name = (o.name for o in twin.graph.output)
    measured = measure_intervals(
        twin,
        twin.graph.input[0].name,
        [seq_name, state_name],
        spatial_axes_in=(1, 2),
        layout="NXC",
        tensor_axes={seq_name: (0, (None, 1)), state_name: (0, (None, None))},
    )
    lstm = r.layer("lstm")
    assert measured[seq_name][0] == [(0, 7)]
    assert measured[seq_name][1] == [(0, min(23, t + 1)) for t in range(24)]
    assert [seen(lstm, 1, t) for t in range(24)] == measured[seq_name][1]
    assert measured[state_name] == [[(0, 7)], [(0, 23)]]
    assert [a.reach for a in r.layer("lstm:1").axes] == [(0, 7), (0, 23)]


# Keras 2 functional configs around a sequence of 12 positions (a 1-D input, 2 channels): a
# Conv1D of 3 'same' (unit t reads t-1..t+1), then recurrent layers


def _rnn(cls: str, **cfg: object) -> dict[str, object]:
    return {"class_name": cls, "config": {"name": f"inner_{cls.lower()}", **cfg}}


def keras_sequence_model(
    tmp_path: Path, *layers: dict[str, object], outputs: list[list[object]]
) -> Path:
    from test_keras_configs import k2_functional, k2_input, k2_layer, save_dir

    conv = k2_layer(
        "Conv1D", "conv", [[["seq", 0, 0, {}]]], filters=4, kernel_size=[3], strides=[1],
        padding="same", dilation_rate=[1], data_format="channels_last",
    )
    layers_all = [k2_input("seq", [None, W, 2]), conv, *layers]
    return save_dir(tmp_path, k2_functional(layers_all, outputs))


def test_keras_recurrent_variants(tmp_path: Path) -> None:
    from test_keras_configs import k2_layer

    on_conv = [[["conv", 0, 0, {}]]]
    path = keras_sequence_model(
        tmp_path,
        k2_layer("LSTM", "fwd", on_conv, units=3, return_sequences=True, go_backwards=False),
        k2_layer("GRU", "back_last", on_conv, units=3, return_sequences=False, go_backwards=True),
        k2_layer("SimpleRNN", "states", on_conv, units=2, return_sequences=True,
                 return_state=True),
        k2_layer("Bidirectional", "bi_sum", on_conv, merge_mode="sum",
                 layer=_rnn("LSTM", units=2, return_sequences=True)),
        k2_layer("Bidirectional", "bi_split", on_conv, merge_mode=None,
                 layer=_rnn("GRU", units=2, return_sequences=True, return_state=True)),
        outputs=[["fwd", 0, 0], ["back_last", 0, 0], ["states", 0, 0], ["states", 0, 1],
                 ["bi_sum", 0, 0], ["bi_split", 0, 0], ["bi_split", 0, 1], ["bi_split", 0, 3]],
    )
    r = cnnprobe.analyze(path)
    assert r.verdict.certain and not r.diagnostics
    hand = {d: [running(d, t) for t in range(W)] for d in ("forward", "reverse")}
    assert r.layer("fwd").output_shape == (None, W, 3)
    assert [seen(r.layer("fwd"), 0, t) for t in range(W)] == hand["forward"]
    # the last step of a backwards pass has read every step
    last = r.layer("back_last")
    assert last.output_shape == (None, 3) and last.is_global and last.sees_full_input
    assert r.layer("states").output_shape == (None, W, 2)
    assert r.layer("states:1").output_shape == (None, 2) and r.layer("states:1").is_global
    bi = r.layer("bi_sum")
    assert bi.output_shape == (None, W, 2) and bi.is_global and bi.sees_full_input
    # merge_mode None: the forward and the backward outputs (the latter in input order), then
    # the forward state and the backward state
    fwd, bwd = r.layer("bi_split"), r.layer("bi_split:1")
    assert fwd.output_shape == bwd.output_shape == (None, W, 2)
    assert [seen(fwd, 0, t) for t in range(W)] == hand["forward"]
    assert [seen(bwd, 0, t) for t in range(W)] == hand["reverse"]
    assert r.layer("bi_split:3").output_shape == (None, 2)
    assert r.layer("bi_split:3").is_global


@pytest.mark.parametrize(
    "layer_cfg, reason",
    [
        ({"class_name": "LSTM", "units": 3, "return_sequences": True, "go_backwards": True},
         "go_backwards returns the steps in reverse order"),
        ({"class_name": "GRU", "units": 3, "time_major": True}, "time-major inputs"),
        ({"class_name": "Bidirectional", "merge_mode": "concat",
          "layer": _rnn("ConvLSTM1D", filters=2, kernel_size=[3])},
         "the wrapped ConvLSTM1D is not followed"),
    ],
)
def test_keras_recurrent_layers_not_followed(
    tmp_path: Path, layer_cfg: dict[str, object], reason: str
) -> None:
    from test_keras_configs import k2_layer

    cfg = dict(layer_cfg)
    cls = str(cfg.pop("class_name"))
    path = keras_sequence_model(
        tmp_path, k2_layer(cls, "rnn", [[["conv", 0, 0, {}]]], **cfg), outputs=[["rnn", 0, 0]]
    )
    r = cnnprobe.analyze(path)
    assert r.layer("rnn").status == "unknown"
    assert reason in " ".join(d.message for d in r.diagnostics)


def test_gate_from_a_flattened_pool_through_a_1x1_conv(tmp_path: Path) -> None:
    """Squeeze-excitation as Keras's EfficientNet writes it: pooled to [N, C] (height and width,
    reduced to one unit each, ride along the channels), reshaped to [N, C, 1, 1], a 1x1 conv
    that resizes the channels, then multiplied onto the map. The conv lets the riders go, so the
    merge meets no crossed axes (regression: keeping them there made the gate uncertain)."""
    rng = np.random.default_rng(4)
    nodes, inits = _conv_nodes(rng)
    inits += [
        numpy_helper.from_array(np.array([1, 2, 1, 1], dtype=np.int64), "gate_shape"),
        numpy_helper.from_array(rng.standard_normal((3, 2, 1, 1)).astype(np.float32), "w_r"),
        numpy_helper.from_array(rng.standard_normal((2, 3, 1, 1)).astype(np.float32), "w_e"),
    ]
    nodes += [
        helper.make_node("ReduceMean", ["c"], ["m"], name="squeeze", axes=[2, 3], keepdims=0),
        helper.make_node("Reshape", ["m", "gate_shape"], ["g"], name="reshape"),
        helper.make_node("Conv", ["g", "w_r"], ["r"], name="reduce"),
        helper.make_node("Conv", ["r", "w_e"], ["e"], name="expand"),
        helper.make_node("Mul", ["c", "e"], ["y"], name="excite"),
    ]
    r = cnnprobe.analyze(_save(tmp_path, nodes, inits, ["y"], opset=13))
    assert r.verdict.certain and not r.diagnostics
    y = layer(r, "y")
    assert y.is_global and y.is_spatial and y.rf == [3, 3]
    assert r.verdict.global_while_spatial == "excite"


def gather_model(tmp_path: Path, indices: object, axis: int = 3) -> Path:
    rng = np.random.default_rng(5)
    nodes, inits = _conv_nodes(rng)
    inits.append(numpy_helper.from_array(np.array(indices, dtype=np.int64), "idx"))
    nodes.append(helper.make_node("Gather", ["c", "idx"], ["y"], name="pick", axis=axis))
    return _save(tmp_path, nodes, inits, ["y"], opset=13)


def test_gather_one_position_of_a_map(tmp_path: Path) -> None:
    """The last column (index -1) of the conv's map: it reads pixels 10..11 of the width (the
    window 10..12 reaches into padding); the width axis is gone, each row keeps its window."""
    path = gather_model(tmp_path, -1)
    r = cnnprobe.analyze(path)
    y = layer(r, "y")
    assert y.status == "ok" and y.output_shape == (1, 2, H)
    measured = measure_intervals(
        onnx.load(path), "x", ["y"], spatial_axes_in=(2, 3), tensor_axes={"y": (0, (2, None))}
    )["y"]
    assert measured == [[conv_window(h, H) for h in range(H)], [(10, 11)]]
    assert [y.real_interval(0, h) for h in range(H)] == measured[0]
    assert y.real_interval(1, 0) == (10, 11)
    assert (y.axes[1].size, y.axes[1].rf, y.axes[1].start) == (1, 3, 10)


@pytest.mark.parametrize("indices", [[1, 5, 9], [-11, -7, -3], [4]])
def test_gather_evenly_spaced_positions(tmp_path: Path, indices: list[int]) -> None:
    """Columns 1, 5, 9 (a strided slice): unit i reads conv unit 1 + 4i, pixels 4i..4i+2."""
    path = gather_model(tmp_path, indices)
    r = cnnprobe.analyze(path)
    y = layer(r, "y")
    first = indices[0] % W
    n = len(indices)
    assert y.status == "ok" and y.output_shape == (1, 2, H, n)
    hand = [conv_window(first + 4 * i) for i in range(n)]
    measured = measure_intervals(onnx.load(path), "x", ["y"], spatial_axes_in=(2, 3))["y"]
    assert measured[1] == hand
    assert [y.real_interval(1, i) for i in range(n)] == hand
    if n > 1:
        assert (y.axes[1].rf, y.axes[1].jump, y.axes[1].start) == (3, 4, first - 1)


def test_gather_of_scattered_positions_is_not_guessed(tmp_path: Path) -> None:
    r = cnnprobe.analyze(gather_model(tmp_path, [0, 3, 4]))
    assert layer(r, "y").status == "uncertain"
    assert "gather-on-spatial-axis" in {d.code for d in r.diagnostics}


def test_last_step_of_a_forward_lstm(tmp_path: Path) -> None:
    """``lstm_out[-1]`` (PyTorch's usual many-to-one read): the last step has read every column."""
    path = recurrent_model(tmp_path, "LSTM", "forward", ("y",))
    model = onnx.load(path)
    model.graph.initializer.append(numpy_helper.from_array(np.array(-1, dtype=np.int64), "last"))
    model.graph.node.append(helper.make_node("Gather", ["y", "last"], ["z"], name="last_step"))
    del model.graph.output[:]
    model.graph.output.append(helper.make_tensor_value_info("z", TensorProto.FLOAT, None))
    onnx.save(model, path)
    r = cnnprobe.analyze(path)
    z = layer(r, "z")
    assert z.status == "ok" and z.output_shape == (1, 1, HIDDEN)
    assert seen(z, 1, 0) == (0, W - 1) and z.sees_full_input
    measured = measure_intervals(
        onnx.load(path), "x", ["z"], spatial_axes_in=(2, 3), magnitude=10.0,
        tensor_axes={"z": (1, (None, None))},
    )["z"]
    assert measured == [[(0, H - 1)], [(0, W - 1)]]


@pytest.mark.parametrize("kernel, ok", [(1, True), (3, False)])
def test_conv_over_concatenated_positions(tmp_path: Path, kernel: int, ok: bool) -> None:
    """YOLOv8's head: two scales flattened and concatenated along the positions ([1, 2, 48] and
    [1, 2, 12] -> [1, 2, 60]), then a 1x1 conv over them (its DFL): unit i reads unit i, exact
    whatever the axis holds (it was 'untracked-positions'). A 3-wide conv there really slides
    across the seam between the scales: not followed."""
    rng = np.random.default_rng(6)
    nodes, inits = _conv_nodes(rng)
    inits += [
        numpy_helper.from_array(np.array([1, 2, -1], dtype=np.int64), "flat"),
        numpy_helper.from_array(np.array([1, 2, 1, 60], dtype=np.int64), "row"),
        numpy_helper.from_array(
            rng.standard_normal((3, 2, 1, kernel)).astype(np.float32), "w_dfl"
        ),
    ]
    nodes += [
        helper.make_node("MaxPool", ["c"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Reshape", ["c", "flat"], ["fa"], name="flat_a"),
        helper.make_node("Reshape", ["p", "flat"], ["fb"], name="flat_b"),
        helper.make_node("Concat", ["fa", "fb"], ["cat"], name="cat", axis=2),
        helper.make_node("Reshape", ["cat", "row"], ["r"], name="to_row"),
        helper.make_node("Conv", ["r", "w_dfl"], ["y"], name="dfl"),
    ]
    r = cnnprobe.analyze(_save(tmp_path, nodes, inits, ["y"], opset=13))
    y = layer(r, "y")
    codes = {d.code for d in r.diagnostics}
    if ok:
        assert y.status == "ok" and y.output_shape == (1, 3, 1, 60) and r.verdict.certain
        assert "untracked-positions" not in codes
    else:
        assert y.status == "uncertain" and "untracked-positions" in codes


def test_crnn_verdict_after_squeezing_the_height() -> None:
    """The CRNN's columns ([N, 24, 4] after the 8x1 pooling: one row of units, squeezed) are still
    a feature map."""
    r = cnnprobe.analyze(SAMPLES / "keras_crnn.keras")
    cols = r.layer("columns")
    assert cols.is_spatial and [a.size for a in cols.axes] == [1, 24]
    assert cols.rf == [10, 3] and [a.jump for a in cols.axes] == [8, 1]


def test_running_verdict_words(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cnnprobe.cli import app

    path = cumsum_model(tmp_path, 3)
    r = cnnprobe.analyze(path)
    assert r.verdict.last_spatial_layer == "cumsum" and r.verdict.jump[1] is None
    text = CliRunner().invoke(app, ["summary", str(path)]).stdout
    assert "the units see more and more of the input along that axis" in text
    assert "RF" in text and "3×14 (running)" in text


def test_running_both_ways_is_global(tmp_path: Path) -> None:
    """A cumulative sum, then one in reverse: every unit has read every column (global along the
    width); it used to read as a window that no longer moves (jump 0), and shift-test crashed
    dividing by it."""
    from cnnprobe.shift import ShiftOptions, run_shift_test

    rng = np.random.default_rng(8)
    nodes, inits = _conv_nodes(rng)
    inits.append(numpy_helper.from_array(np.array(3, dtype=np.int64), "axis"))
    nodes += [
        helper.make_node("CumSum", ["c", "axis"], ["s1"], name="forward"),
        helper.make_node("CumSum", ["s1", "axis"], ["s2"], name="backward", reverse=1),
        helper.make_node(
            "MaxPool", ["s2"], ["y"], name="pool", kernel_shape=[2, 2], strides=[2, 2]
        ),
    ]
    path = _save(tmp_path, nodes, inits, ["y"])
    r = cnnprobe.analyze(path)
    s2 = layer(r, "s2")
    assert s2.axes[1].is_global and s2.axes[1].full and not s2.axes[0].is_global
    # (the local window is the forward sum's, kept: running, no single jump)
    assert s2.axes[1].running and s2.axes[1].jump is None
    measured = measure_intervals(onnx.load(path), "x", ["s2"], spatial_axes_in=(2, 3))["s2"]
    assert measured[1] == [(0, W - 1)] * W
    assert [seen(s2, 1, t) for t in range(W)] == measured[1]
    assert r.verdict.total_stride == (2, None)
    shift = run_shift_test(ShiftOptions(str(path), count=2, max_shift=2, stride=(2,)))
    assert shift.period == (2, 2)


def test_sequence_lengths_that_may_end_sequences_early(tmp_path: Path) -> None:
    """sequence_lens [5] on 12 steps: steps 5.. read nothing and the final state only columns
    0..5: not followed (it used to report the whole sequence). Lengths equal to the sequence
    change nothing."""
    for lens, status in (([5], "unknown"), ([W], "ok")):
        path = recurrent_model(tmp_path, "LSTM", "forward", ("y", "yh"))
        model = onnx.load(path)
        model.graph.initializer.append(
            numpy_helper.from_array(np.array(lens, dtype=np.int32), "lens")
        )
        rnn = next(n for n in model.graph.node if n.op_type == "LSTM")
        rnn.input.extend(["lens"])
        onnx.save(model, path)
        r = cnnprobe.analyze(path)
        assert layer(r, "y").status == status and layer(r, "yh").status == status
        if status == "unknown":
            assert "sequence_lens may end sequences early" in r.diagnostics[0].message


@pytest.mark.parametrize("value", ["abc", 2.5, -3])
def test_malformed_hidden_size(tmp_path: Path, value: object) -> None:
    from typer.testing import CliRunner

    from cnnprobe.cli import app

    path = recurrent_model(tmp_path, "GRU", "forward", hidden_size_attr=False)
    model = onnx.load(path)
    rnn = next(n for n in model.graph.node if n.op_type == "GRU")
    rnn.attribute.append(helper.make_attribute("hidden_size", value))
    onnx.save(model, path)
    res = CliRunner().invoke(app, ["summary", str(path), "--format", "json"])
    assert res.exit_code == 2 and res.stdout == ""
    assert "hidden_size" in res.stderr and "not a positive integer" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_keras_bidirectional_with_its_own_backward_layer(tmp_path: Path) -> None:
    """Bidirectional(LSTM(3), backward_layer=GRU(2)), concatenated: 3 + 2 features (Keras
    gives (None, 12, 5)); with return_state: LSTM's two states, then the GRU's one."""
    from test_keras_configs import k2_layer

    bi = k2_layer(
        "Bidirectional", "bi", [[["conv", 0, 0, {}]]], merge_mode="concat",
        layer=_rnn("LSTM", units=3, return_sequences=True, return_state=True),
        backward_layer=_rnn("GRU", units=2, return_sequences=True, return_state=True,
                            go_backwards=True),
    )
    path = keras_sequence_model(
        tmp_path, bi, outputs=[["bi", 0, 0], ["bi", 0, 1], ["bi", 0, 2], ["bi", 0, 3]]
    )
    r = cnnprobe.analyze(path)
    assert r.verdict.certain
    assert [r.layer(n).output_shape for n in ("bi", "bi:1", "bi:2", "bi:3")] == [
        (None, W, 5), (None, 3), (None, 3), (None, 2)
    ]


def _bidirectional_tail(tmp_path: Path, tail: str) -> cnnprobe.AnalysisResult:
    """A bidirectional LSTM's Y [W, 2, 1, hidden], then ``tail`` (a PyTorch-style use of it)."""
    path = recurrent_model(tmp_path, "LSTM", "bidirectional", ("y",))
    model = onnx.load(path)
    h = HIDDEN
    consts = {
        "flat": [W, 1, 2 * h], "zero": [0], "h": [h], "h2": [2 * h], "last": [2], "one": [1],
        "two": [W, 1, 2, h],
    }
    model.graph.initializer.extend(
        numpy_helper.from_array(np.array(v, dtype=np.int64), k) for k, v in consts.items()
    )
    t = helper.make_node("Transpose", ["y"], ["yt"], name="yt", perm=[0, 2, 1, 3])
    r = helper.make_node("Reshape", ["yt", "flat"], ["yr"], name="yr")  # [W, 1, 2h]
    nodes = {
        # out[:, :, :H] (the forward half of the features)
        "half": [t, r, helper.make_node("Slice", ["yr", "zero", "h", "last"], ["o"], name="o")],
        # out.chunk(2, -1)[1] through Split
        "split": [t, r, helper.make_node("Split", ["yr"], ["f", "o"], name="o", axis=2)],
        # out.view(W, 1, 2, H)[:, :, 0]
        "view": [t, r, helper.make_node("Reshape", ["yr", "two"], ["v"], name="v"),
                 helper.make_node("Gather", ["v", "zero"], ["o"], name="o", axis=2)],
        # Y concatenated with itself along the directions, then direction 0
        "concat": [helper.make_node("Concat", ["y", "y"], ["yy"], name="yy", axis=1),
                   helper.make_node("Gather", ["yy", "zero"], ["o"], name="o", axis=1)],
        # Y + Y, then direction 0
        "add": [helper.make_node("Add", ["y", "y"], ["a"], name="a"),
                helper.make_node("Gather", ["a", "zero"], ["o"], name="o", axis=1)],
        # step 2, then its forward direction (it has read columns 0..3 only)
        "step": [helper.make_node("Gather", ["y", "last"], ["st"], name="st", axis=0),
                 helper.make_node("Gather", ["st", "zero"], ["o"], name="o", axis=1)],
        # both directions summed: exact
        "sum": [helper.make_node("ReduceSum", ["y", "one"], ["o"], name="o", keepdims=0)],
        # a linear layer over both directions' features: exact
        "linear": [t, r, helper.make_node("ReduceMean", ["yr", "last"], ["o"], name="o")],
    }[tail]
    model.graph.node.extend(nodes)
    del model.graph.output[:]
    model.graph.output.append(helper.make_tensor_value_info("o", TensorProto.FLOAT, None))
    onnx.save(model, path)
    return cnnprobe.analyze(path)


@pytest.mark.parametrize("tail", ["half", "split", "view", "concat", "add", "step"])
def test_one_direction_taken_in_any_way_is_uncertain(tmp_path: Path, tail: str) -> None:
    """However one direction (or half of the features) is taken, after a reshape, a concat or a
    merge, it is not reported as reading the whole sequence (onnxruntime: the forward half's
    step t reads columns 0..t+1 only)."""
    r = _bidirectional_tail(tmp_path, tail)
    assert layer(r, "o").status == "uncertain"
    assert "blended-positions" in {d.code for d in r.diagnostics}


@pytest.mark.parametrize("tail", ["sum", "linear"])
def test_both_directions_together_are_exact(tmp_path: Path, tail: str) -> None:
    r = _bidirectional_tail(tmp_path, tail)
    o = layer(r, "o")
    assert o.status == "ok" and o.is_global and o.sees_full_input and r.verdict.certain


def _topk_head(tmp_path: Path, constant_indices: bool) -> Path:
    """A detector's end-to-end head: per-position scores (the conv's 2 channels, their max), the
    3 best positions (TopK over the 64 folded positions), and the data of those positions
    (GatherElements). With ``constant_indices`` the positions are fixed instead."""
    rng = np.random.default_rng(9)
    nodes, inits = _conv_nodes(rng)
    inits += [
        numpy_helper.from_array(np.array([1, 2, H * W], dtype=np.int64), "flat"),
        numpy_helper.from_array(np.array([3], dtype=np.int64), "k"),
        numpy_helper.from_array(np.array([1, 2, 3], dtype=np.int64), "rows"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "one"),
    ]
    nodes += [
        helper.make_node("Reshape", ["c", "flat"], ["f"], name="flat"),
        helper.make_node("ReduceMax", ["f"], ["score"], name="score", axes=[1], keepdims=0),
        helper.make_node("TopK", ["score", "k"], ["best", "where"], name="topk", axis=1),
    ]
    if constant_indices:
        inits.append(numpy_helper.from_array(np.array([[[0, 5, 9]] * 2]), "fixed"))
        idx = "fixed"
    else:
        nodes += [
            helper.make_node("Unsqueeze", ["where", "one"], ["w1"], name="w1"),
            helper.make_node("Expand", ["w1", "rows"], ["w2"], name="w2"),
        ]
        idx = "w2"
    nodes.append(helper.make_node("GatherElements", ["f", idx], ["picked"], name="pick", axis=2))
    return _save(tmp_path, nodes, inits, ["picked", "best"], opset=13)


def test_top_k_positions_and_their_data(tmp_path: Path) -> None:
    """Which positions are picked depends on every position's score: every value picked, and
    the scores, depend on the whole input (onnxruntime agrees); exact, not unknown."""
    path = _topk_head(tmp_path, False)
    r = cnnprobe.analyze(path)
    assert r.verdict.certain and not [d for d in r.diagnostics if d.severity != "info"]
    measured = measure_intervals(
        onnx.load(path), "x", ["picked", "best"], spatial_axes_in=(2, 3),
        tensor_axes={"picked": (0, (None, None)), "best": (0, (None, None))},
    )
    for name in ("picked", "best"):
        lay = layer(r, name)
        assert measured[name] == [[(0, H - 1)], [(0, W - 1)]]
        assert lay.is_global and [a.reach for a in lay.axes] == [(0, H - 1), (0, W - 1)]
    assert layer(r, "picked").output_shape == (1, 2, 3)
    assert r.verdict.global_kind == "a top-k selection over positions"


@pytest.mark.parametrize("first, status", [(W, "ok"), (5, "uncertain")])
def test_positions_picked_among_fewer_than_the_data_holds(
    tmp_path: Path, first: int, status: str
) -> None:
    """Per row, the 2 best of the first ``first`` columns (TopK along the width of a slice of the
    scores), then the conv's data there, from all 12 columns. Over every column: exact (every
    pick depends on all of them). Over the first 5 only, an index never reaches the others,
    which the data would add: not followed (it read as every column)."""
    rng = np.random.default_rng(10)
    nodes, inits = _conv_nodes(rng)
    ints = {"s0": [0], "s1": [first], "ax": [3], "k": [2], "shape": [1, 2, H, 2]}
    inits += [numpy_helper.from_array(np.array(v, dtype=np.int64), n) for n, v in ints.items()]
    nodes += [
        helper.make_node("ReduceMax", ["c"], ["score"], name="score", axes=[1], keepdims=1),
        helper.make_node("Slice", ["score", "s0", "s1", "ax"], ["part"], name="part"),
        helper.make_node("TopK", ["part", "k"], ["best", "where"], name="topk", axis=3),
        helper.make_node("Expand", ["where", "shape"], ["w2"], name="w2"),
        helper.make_node("GatherElements", ["c", "w2"], ["picked"], name="pick", axis=3),
    ]
    r = cnnprobe.analyze(_save(tmp_path, nodes, inits, ["picked"], opset=13))
    picked = layer(r, "picked")
    assert picked.status == status
    if status == "ok":
        assert picked.axes[1].is_global and picked.axes[1].reach == (0, W - 1)
    else:
        assert "picked-positions" in {d.code for d in r.diagnostics}


def test_fixed_positions_picked_are_not_guessed(tmp_path: Path) -> None:
    r = cnnprobe.analyze(_topk_head(tmp_path, True))
    assert layer(r, "picked").status == "uncertain"
    assert "picked-positions" in {d.code for d in r.diagnostics}
