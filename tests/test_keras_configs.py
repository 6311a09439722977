"""Hand-built Keras configs: Keras 2 node encodings (tf_keras-style ``inbound_nodes`` lists,
unwrapped TFOpLambda calls, tensors in kwargs, ``_CONSTANT_VALUE``), 1-based node indices of nested
models, Sequential variants, channels_first, custom and Lambda layers, and transposed convolutions
and resizes pinned to what real Keras computed (unit-impulse runs with Keras 3.15 on the TensorFlow
and torch backends, which agree)."""

from __future__ import annotations

import base64
import json
import marshal
import pickle
import zipfile
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cnnprobe import analyze
from cnnprobe.cli import app
from cnnprobe.errors import UsageError
from cnnprobe.frontends.keras_layers import transpose_pads


def save_dir(tmp_path: Path, config: Any, name: str = "model") -> Path:
    d = tmp_path / name
    d.mkdir()
    (d / "config.json").write_text(json.dumps(config))
    return d


def save_zip(tmp_path: Path, config: Any, name: str = "model.keras") -> Path:
    p = tmp_path / name
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("config.json", json.dumps(config))
    return p


def k2_input(name: str, shape: list[Any]) -> dict[str, Any]:
    return {
        "class_name": "InputLayer",
        "name": name,
        "inbound_nodes": [],
        "config": {"name": name, "batch_input_shape": shape, "dtype": "float32"},
    }


def k2_layer(cls: str, name: str, inbound: list[Any], **cfg: Any) -> dict[str, Any]:
    return {
        "class_name": cls,
        "name": name,
        "inbound_nodes": inbound,
        "config": {"name": name, "trainable": True, **cfg},
    }


def k2_functional(
    layers: list[dict[str, Any]], outputs: list[list[Any]], inputs: list[list[Any]] | None = None
) -> dict[str, Any]:
    """A Keras 2 Functional config whose first layer is its input (unless ``inputs`` says)."""
    return {
        "class_name": "Functional",
        "config": {
            "name": "m",
            "layers": layers,
            "input_layers": inputs or [[layers[0]["name"], 0, 0]],
            "output_layers": outputs,
        },
    }


def k2_conv(name: str, inbound: list[Any], **cfg: Any) -> dict[str, Any]:
    base = {
        "filters": 4,
        "kernel_size": [3, 3],
        "strides": [1, 1],
        "padding": "same",
        "dilation_rate": [1, 1],
        "data_format": "channels_last",
    }
    base.update(cfg)
    return k2_layer("Conv2D", name, inbound, **base)


def test_keras2_nested_functional_is_one_based(tmp_path: Path) -> None:
    """tf_keras: a nested Functional's built-in node is node 0, so its calls are nodes 1, 2."""
    block = {
        "class_name": "Functional",
        "name": "block",
        "config": {
            "name": "block",
            "layers": [
                k2_input("block_in", [None, None, None, 4]),
                k2_conv("inner", [[["block_in", 0, 0, {}]]]),
            ],
            "input_layers": [["block_in", 0, 0]],
            "output_layers": [["inner", 0, 0]],
        },
        "inbound_nodes": [[["stem", 0, 0, {}]], [["block", 1, 0, {}]]],
    }
    model = {
        "class_name": "Functional",
        "config": {
            "name": "outer",
            "layers": [
                k2_input("img", [None, 16, 16, 3]),
                k2_conv("stem", [[["img", 0, 0, {}]]]),
                block,
                # an unwrapped TFOpLambda call, with a tensor in kwargs
                k2_layer(
                    "TFOpLambda",
                    "tf.math.multiply",
                    [["block", 2, 0, {"y": ["stem", 0, 0], "name": None}]],
                    function="math.multiply",
                ),
                # a constant first argument
                k2_layer(
                    "TFOpLambda",
                    "tf.__operators__.add",
                    [["_CONSTANT_VALUE", -1, 1.0, {"y": ["tf.math.multiply", 0, 0]}]],
                    function="__operators__.add",
                ),
                k2_layer(
                    "TFOpLambda",
                    "tf.concat",
                    [[["tf.__operators__.add", 0, 0, {"axis": -1}], ["stem", 0, 0, {"axis": -1}]]],
                    function="concat",
                ),
                k2_layer(
                    "SlicingOpLambda",
                    "tf.__operators__.getitem",
                    [
                        [
                            "tf.concat",
                            0,
                            0,
                            {
                                "slice_spec": [
                                    {"start": None, "stop": None, "step": None},
                                    {"start": 2, "stop": None, "step": 2},
                                    {"start": None, "stop": None, "step": None},
                                ]
                            },
                        ]
                    ],
                    function="__operators__.getitem",
                ),
            ],
            "input_layers": [["img", 0, 0]],
            "output_layers": [["tf.__operators__.getitem", 0, 0], ["block", 1, 0]],
        },
    }
    for path in (save_dir(tmp_path, model), save_zip(tmp_path, model)):
        r = analyze(path)
        assert r.model.meta["node_encoding"] == "Keras 2"
        assert [lay.name for lay in r.layers] == [
            "stem",
            "block/inner",
            "block[1]/inner",
            "tf.math.multiply",
            "tf.__operators__.add",
            "tf.concat",
            "tf.__operators__.getitem",
        ]
        assert r.layer("block[1]/inner").rf == [7, 7]
        mul = r.layer("tf.math.multiply")
        assert mul.op == "tf.math.multiply" and mul.rf == [7, 7] and mul.start == [-3, -3]
        cat = r.layer("tf.concat")
        assert cat.output_shape == (None, 16, 16, 8)
        sl = r.layer("tf.__operators__.getitem")
        assert sl.output_shape == (None, 7, 16, 8) and sl.jump == [2, 1] and sl.start == [-1, -3]
        assert r.verdict.certain


def test_keras3_output_layers_of_nested_model_are_one_based(tmp_path: Path) -> None:
    def kt(layer: str, node: int, shape: list[Any]) -> dict[str, Any]:
        return {
            "class_name": "__keras_tensor__",
            "config": {"shape": shape, "dtype": "float32", "keras_history": [layer, node, 0]},
        }

    block = {
        "module": "keras.src.models.functional",
        "class_name": "Functional",
        "name": "block",
        "config": {
            "name": "block",
            "layers": [
                {
                    "module": "keras.layers",
                    "class_name": "InputLayer",
                    "name": "bi",
                    "config": {"name": "bi", "batch_shape": [None, None, None, 2]},
                    "inbound_nodes": [],
                },
                {
                    "module": "keras.layers",
                    "class_name": "MaxPooling2D",
                    "name": "p",
                    "config": {
                        "name": "p",
                        "pool_size": [2, 2],
                        "strides": [2, 2],
                        "padding": "valid",
                        "trainable": True,
                    },
                    "inbound_nodes": [{"args": [kt("bi", 0, [None, None, None, 2])], "kwargs": {}}],
                },
            ],
            "input_layers": [["bi", 0, 0]],
            "output_layers": [["p", 0, 0]],
        },
        # inbound references to the block are 0-based ...
        "inbound_nodes": [
            {"args": [kt("x", 0, [None, 16, 16, 2])], "kwargs": {}},
            {"args": [kt("block", 0, [None, 8, 8, 2])], "kwargs": {}},
        ],
    }
    model = {
        "module": "keras.src.models.functional",
        "class_name": "Functional",
        "config": {
            "name": "m",
            "layers": [
                {
                    "module": "keras.layers",
                    "class_name": "InputLayer",
                    "name": "x",
                    "config": {"name": "x", "batch_shape": [None, 16, 16, 2]},
                    "inbound_nodes": [],
                },
                block,
            ],
            "input_layers": [["x", 0, 0]],
            # ... but output_layers counts the block's built-in node: its second call is 2
            "output_layers": [["block", 2, 0]],
        },
    }
    r = analyze(save_dir(tmp_path, model))
    assert [lay.name for lay in r.layers] == ["block/p", "block[1]/p"]
    assert r.verdict.last_spatial_layer == "block[1]/p"
    assert r.verdict.jump == (4, 4) and r.verdict.rf == (4, 4)
    assert not [d for d in r.diagnostics if d.code == "shape-mismatch"]


def test_keras2_sequential_without_input_layer(tmp_path: Path) -> None:
    model = {
        "class_name": "Sequential",
        "config": {
            "name": "s",
            "layers": [
                {
                    "class_name": "Conv2D",
                    "config": {
                        "name": "c1",
                        "filters": 2,
                        "kernel_size": [5, 5],
                        "strides": [2, 2],
                        "padding": "valid",
                        "batch_input_shape": [None, 20, 20, 1],
                    },
                },
                {
                    "class_name": "AveragePooling2D",
                    "config": {
                        "name": "p",
                        "pool_size": [2, 2],
                        "strides": None,
                        "padding": "valid",
                    },
                },
                {"class_name": "Flatten", "config": {"name": "f"}},
                {"class_name": "Dense", "config": {"name": "d", "units": 3}},
            ],
        },
    }
    r = analyze(save_dir(tmp_path, model))
    assert r.model.input.shape == (None, 20, 20, 1)
    assert r.layer("c1").rf == [5, 5] and r.layer("c1").output_shape == (None, 8, 8, 2)
    assert r.layer("p").rf == [7, 7] and r.layer("p").jump == [4, 4]
    assert r.layer("d").is_global


def test_channels_first(tmp_path: Path) -> None:
    model = {
        "class_name": "Sequential",
        "config": {
            "name": "s",
            "layers": [
                {
                    "class_name": "InputLayer",
                    "config": {"name": "x", "batch_shape": [None, 3, 10, 12]},
                },
                {
                    "class_name": "Conv2D",
                    "config": {
                        "name": "c",
                        "filters": 4,
                        "kernel_size": [3, 5],
                        "padding": "valid",
                        "data_format": "channels_first",
                    },
                },
                {
                    "class_name": "ZeroPadding2D",
                    "config": {
                        "name": "z",
                        "padding": [[1, 2], [0, 1]],
                        "data_format": "channels_first",
                    },
                },
                {
                    "class_name": "GlobalMaxPooling2D",
                    "config": {"name": "g", "data_format": "channels_first"},
                },
            ],
        },
    }
    r = analyze(save_dir(tmp_path, model))
    assert r.model.input.layout == "NCHW" and r.model.input.spatial_axes == (2, 3)
    assert r.layer("c").output_shape == (None, 4, 8, 8) and r.layer("c").rf == [3, 5]
    assert r.layer("z").output_shape == (None, 4, 11, 9) and r.layer("z").start == [-1, 0]
    assert r.layer("g").output_shape == (None, 4) and r.layer("g").is_global


def test_causal_dilated_conv1d(tmp_path: Path) -> None:
    convs = [
        {
            "class_name": "Conv1D",
            "config": {
                "name": f"c{d}",
                "filters": 2,
                "kernel_size": 3,
                "padding": "causal",
                "dilation_rate": d,
            },
        }
        for d in (1, 2, 4)
    ]
    model = {
        "class_name": "Sequential",
        "config": {
            "name": "s",
            "layers": [
                {"class_name": "InputLayer", "config": {"name": "x", "batch_shape": [None, 32, 1]}},
                *convs,
            ],
        },
    }
    r = analyze(save_dir(tmp_path, model))
    # all padding before: unit i sees [i - 14, i]
    assert r.layer("c4").rf == [15] and r.layer("c4").start == [-14]
    assert r.layer("c4").output_shape == (None, 32, 2)


def test_custom_and_unknown_layers(tmp_path: Path) -> None:
    model = {
        "class_name": "Sequential",
        "config": {
            "name": "s",
            "layers": [
                {
                    "class_name": "InputLayer",
                    "config": {"name": "x", "batch_shape": [None, 8, 8, 3]},
                },
                {"class_name": "Conv2D", "config": {"name": "c", "filters": 3, "kernel_size": 3}},
                {
                    "module": "my_pkg.layers",
                    "class_name": "LayerScale",
                    "registered_name": "my_pkg>LayerScale",
                    "config": {"name": "scale"},
                },
                {"class_name": "Conv2D", "config": {"name": "c2", "filters": 3, "kernel_size": 3}},
            ],
        },
    }
    path = save_dir(tmp_path, model)
    r = analyze(path)
    assert r.layer("scale").status == "unknown" and r.layer("scale").op == "LayerScale"
    assert r.layer("c2").status == "uncertain" and not r.verdict.certain
    assert [d.code for d in r.diagnostics if d.severity == "error"] == ["unknown-op"]
    r = analyze(path, assume_pointwise=["LayerScale"])
    assert r.layer("c2").status == "ok" and r.layer("c2").rf == [5, 5]
    res = CliRunner().invoke(app, ["summary", str(path), "--assume-pointwise", "LayerScale"])
    assert res.exit_code == 0 and "c2" in res.stdout


def test_lambda_payload_is_never_decoded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code = compile("open('/tmp/cnnprobe-pwned', 'w').write('x')", "<lambda>", "exec")
    payload = base64.b64encode(marshal.dumps(code)).decode("ascii")
    model = {
        "class_name": "Sequential",
        "config": {
            "name": "s",
            "layers": [
                {
                    "class_name": "InputLayer",
                    "config": {"name": "x", "batch_shape": [None, 8, 8, 3]},
                },
                {
                    "class_name": "Lambda",
                    "config": {
                        "name": "evil",
                        "function": [payload, None, None],
                        "function_type": "lambda",
                        "module": "os",
                    },
                },
                {
                    "module": "keras.layers",
                    "class_name": "Lambda",
                    "config": {
                        "name": "evil3",
                        "function": {"class_name": "__lambda__", "config": {"value": payload}},
                    },
                },
            ],
        },
    }

    def boom(*args: object, **kwargs: object) -> object:
        raise AssertionError("a payload was decoded")

    for mod, attr in (
        (marshal, "loads"),
        (pickle, "loads"),
        (base64, "b64decode"),
        (base64, "decodebytes"),
        (base64, "urlsafe_b64decode"),
    ):
        monkeypatch.setattr(mod, attr, boom)
    monkeypatch.setattr("builtins.exec", boom)
    monkeypatch.setattr("builtins.eval", boom)
    monkeypatch.setattr("importlib.import_module", boom)
    r = analyze(save_zip(tmp_path, model))
    assert r.layer("evil").status == "unknown" and r.layer("evil").op == "Lambda"
    assert r.layer("evil3").status == "unknown"
    assert not Path("/tmp/cnnprobe-pwned").exists()


def test_input_shape_from_the_user(tmp_path: Path) -> None:
    model = {
        "class_name": "Sequential",
        "config": {
            "name": "s",
            "layers": [
                {
                    "class_name": "InputLayer",
                    "config": {"name": "x", "batch_shape": [None, None, None, 3]},
                },
                {
                    "class_name": "Conv2D",
                    "config": {
                        "name": "c",
                        "filters": 3,
                        "kernel_size": 3,
                        "strides": 2,
                        "padding": "same",
                    },
                },
            ],
        },
    }
    path = save_dir(tmp_path, model)
    r = analyze(path, input_shape="1x15x16x3")
    assert r.layer("c").output_shape == (1, 8, 8, 3)
    assert [a.pad_lo for a in r.layer("c").axes] == [1, 0]  # odd 15: total 2; even 16: total 1
    with pytest.raises(UsageError, match="--input-shape has 3 dims but input 'x' has 4"):
        analyze(path, input_shape="1x15x16")


def test_several_inputs(tmp_path: Path) -> None:
    model = {
        "class_name": "Functional",
        "config": {
            "name": "m",
            "layers": [
                k2_input("a", [None, 8, 8, 3]),
                k2_input("b", [None, 8, 8, 3]),
                k2_layer("Add", "add", [[["a", 0, 0, {}], ["b", 0, 0, {}]]]),
                k2_conv("c", [[["add", 0, 0, {}]]]),
            ],
            "input_layers": [["a", 0, 0], ["b", 0, 0]],
            "output_layers": [["c", 0, 0]],
        },
    }
    path = save_dir(tmp_path, model)
    with pytest.raises(UsageError, match="several candidate image inputs"):
        analyze(path)
    r = analyze(path, input_name="b")
    assert r.model.input.name == "b" and r.layer("c").rf == [3, 3]


def test_attention_over_positions_is_global(tmp_path: Path) -> None:
    model = {
        "class_name": "Functional",
        "config": {
            "name": "m",
            "layers": [
                k2_input("x", [None, 8, 8, 4]),
                k2_conv("c", [[["x", 0, 0, {}]]]),
                k2_layer("Reshape", "seq", [[["c", 0, 0, {}]]], target_shape=[64, 4]),
                k2_layer(
                    "MultiHeadAttention",
                    "mha",
                    [[["seq", 0, 0, {"value": ["seq", 0, 0]}]]],
                    num_heads=2,
                    key_dim=2,
                    attention_axes=None,
                ),
                k2_layer("Reshape", "back", [[["mha", 0, 0, {}]]], target_shape=[8, 8, 4]),
            ],
            "input_layers": [["x", 0, 0]],
            "output_layers": [["back", 0, 0]],
        },
    }
    r = analyze(save_dir(tmp_path, model))
    back = r.layer("back")
    assert back.is_spatial and back.is_global and back.status == "ok"
    assert r.verdict.global_while_spatial == "back"


# --- transposed convolutions and resizes, pinned to real Keras outputs --------------------------

# name: (n_in, n_out, first input pixel per output unit, last input pixel per output unit),
# measured by feeding unit impulses through real Keras 3.15 layers (TensorFlow and torch
# backends give the same); None: the unit reads no input pixel (only the bias)
REAL_KERAS: dict[str, tuple[int, int, list[int | None], list[int | None]]] = {
    "ct_k3_s2_same_opNone": (5, 10, [0, 0, 0, 1, 1, 2, 2, 3, 3, 4], [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]),
    "ct_k4_s2_same_opNone": (
        6,
        12,
        [0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5],
        [0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 5],
    ),
    "ct_k3_s2_valid_opNone": (
        5,
        11,
        [0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4],
        [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 4],
    ),
    "ct_k2_s3_valid_opNone": (
        5,
        15,
        [0, 0, None, 1, 1, None, 2, 2, None, 3, 3, None, 4, 4, None],
        [0, 0, None, 1, 1, None, 2, 2, None, 3, 3, None, 4, 4, None],
    ),
    "ct_k5_s2_same_op1": (5, 10, [0, 0, 0, 0, 1, 1, 2, 2, 3, 3], [0, 1, 1, 2, 2, 3, 3, 4, 4, 4]),
    "ct_k3_s3_same_op2": (
        5,
        15,
        [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4],
        [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4],
    ),
    "ct_k1_s2_same_opNone": (
        5,
        10,
        [0, None, 1, None, 2, None, 3, None, 4, None],
        [0, None, 1, None, 2, None, 3, None, 4, None],
    ),
    "up_bilinear_f2": (5, 10, [0, 0, 0, 1, 1, 2, 2, 3, 3, 4], [0, 1, 1, 2, 2, 3, 3, 4, 4, 4]),
    "up_nearest_f3": (
        4,
        12,
        [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3],
        [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3],
    ),
    "rs_nearest_12": (
        5,
        12,
        [0, 0, 1, 1, 1, 2, 2, 3, 3, 3, 4, 4],
        [0, 0, 1, 1, 1, 2, 2, 3, 3, 3, 4, 4],
    ),
    "rs_bilinear_3": (8, 3, [0, 3, 6], [1, 4, 7]),
    "rs_bicubic_7": (4, 7, [0, 0, 0, 0, 1, 1, 2], [1, 2, 2, 3, 3, 3, 3]),
    "rs_nearest_4": (6, 4, [0, 2, 3, 5], [0, 2, 3, 5]),
    "pool_same_k2_s2": (7, 4, [0, 2, 4, 6], [1, 3, 5, 6]),
    "conv_same_k3_s2": (6, 3, [0, 2, 4], [2, 4, 5]),
}


def _layer_for(case: str) -> dict[str, Any]:
    parts = case.split("_")
    if case.startswith("ct_"):
        k, s = int(parts[1][1:]), int(parts[2][1:])
        op = None if parts[4] == "opNone" else [int(parts[4][2:]), 0]
        return {
            "class_name": "Conv2DTranspose",
            "config": {
                "name": "layer",
                "filters": 1,
                "kernel_size": [k, 1],
                "strides": [s, 1],
                "padding": parts[3],
                "output_padding": op,
                "dilation_rate": [1, 1],
            },
        }
    if case.startswith("up_"):
        return {
            "class_name": "UpSampling2D",
            "config": {"name": "layer", "size": [int(parts[2][1:]), 1], "interpolation": parts[1]},
        }
    if case.startswith("rs_"):
        return {
            "class_name": "Resizing",
            "config": {
                "name": "layer",
                "height": int(parts[2]),
                "width": 1,
                "interpolation": parts[1],
            },
        }
    k, s = int(parts[2][1:]), int(parts[3][1:])
    cls = "MaxPooling2D" if case.startswith("pool") else "Conv2D"
    key = "pool_size" if cls == "MaxPooling2D" else "kernel_size"
    return {
        "class_name": cls,
        "config": {
            "name": "layer",
            key: [k, 1],
            "strides": [s, 1],
            "padding": "same",
            "filters": 1,
        },
    }


@pytest.mark.parametrize("case", sorted(REAL_KERAS))
def test_matches_real_keras(tmp_path: Path, case: str) -> None:
    n, m, los, his = REAL_KERAS[case]
    model = {
        "class_name": "Sequential",
        "config": {
            "name": "s",
            "layers": [
                {
                    "class_name": "InputLayer",
                    "config": {"name": "x", "batch_shape": [None, n, 1, 1]},
                },
                _layer_for(case),
            ],
        },
    }
    r = analyze(save_dir(tmp_path, model))
    lay = r.layer("layer")
    assert lay.status == "ok"
    assert lay.axes[0].size == m
    for i, (lo, hi) in enumerate(zip(los, his)):
        if lo is None:
            continue
        iv = lay.unit_interval(0, i)
        assert iv is not None
        assert (max(iv[0], 0), min(iv[1], n - 1)) == (lo, hi), (case, i)


def test_transpose_pad_rule() -> None:
    # 'valid': no padding; output n*s + max(k - s, 0) via output padding when k < s
    assert transpose_pads(3, 2, 1, "valid", None) == (0, 0, 0)
    assert transpose_pads(2, 3, 1, "valid", None) == (0, 0, 1)
    # 'same': total k - s, the smaller half first (TF: the forward conv pads at the end)
    assert transpose_pads(3, 2, 1, "same", None) == (0, 1, 0)
    assert transpose_pads(4, 2, 1, "same", None) == (1, 1, 0)
    assert transpose_pads(5, 2, 1, "same", None) == (1, 2, 0)
    assert transpose_pads(1, 2, 1, "same", None) == (0, 0, 1)
    # 'same' with output_padding: size (n-1)*s + k - 2*(k//2) + op
    assert transpose_pads(3, 2, 1, "same", 1) == (0, 1, 0)
    assert transpose_pads(3, 3, 1, "same", 2) == (0, 0, 0)
    assert transpose_pads(5, 2, 1, "same", 1) == (1, 2, 0)


def k2_sequential(name: str, shape: list[Any], *layers: dict[str, Any]) -> dict[str, Any]:
    """A Keras 2 Sequential config whose first layer is an InputLayer of ``shape``."""
    first = {"class_name": "InputLayer", "config": {"name": name, "batch_input_shape": shape}}
    return {"class_name": "Sequential", "config": {"name": "s", "layers": [first, *layers]}}


def test_time_distributed_frames_then_pooling_over_time(tmp_path: Path) -> None:
    """Clips of 8 frames of 12x12x1 (a Keras 2 Sequential config). Per frame: conv 3x3 valid
    (10x10, r 3), zero padding 1 (12x12, start -1), max pooling 2 (6x6, r 4, jump 2), flatten
    and dense: each frame's vector sees that whole frame and no other (global over H and W, r 1
    in time). Then a Conv1D of 3 over the frames (8 -> 6: 3 frames) and a global average over
    time: every unit then sees every frame."""

    def td(inner_cls: str, **cfg: Any) -> dict[str, Any]:
        return {
            "class_name": "TimeDistributed",
            "config": {"name": f"td_{cfg['name']}",
                       "layer": {"class_name": inner_cls, "config": cfg}},
        }

    model = k2_sequential(
        "clip",
        [None, 8, 12, 12, 1],
        td("Conv2D", name="conv", filters=2, kernel_size=[3, 3], strides=[1, 1],
           padding="valid", data_format="channels_last"),
        td("ZeroPadding2D", name="pad", padding=[[1, 1], [1, 1]], data_format="channels_last"),
        td("MaxPooling2D", name="pool", pool_size=[2, 2], strides=None, padding="valid"),
        td("Flatten", name="flat"),
        td("Dense", name="dense", units=5),
        {"class_name": "Conv1D",
         "config": {"name": "temporal", "filters": 4, "kernel_size": [3],
                    "strides": [1], "padding": "valid", "dilation_rate": [1]}},
        {"class_name": "GlobalAveragePooling1D", "config": {"name": "over_time"}},
    )
    r = analyze(save_dir(tmp_path, model))
    assert r.verdict.certain, [d.message for d in r.diagnostics]
    conv = r.layer("td_conv")
    assert conv.output_shape == (None, 8, 10, 10, 2) and conv.rf == [1, 3, 3]
    assert r.layer("td_pad").output_shape == (None, 8, 12, 12, 2)
    pool = r.layer("td_pool")
    assert pool.output_shape == (None, 8, 6, 6, 2)
    assert pool.rf == [1, 4, 4] and pool.jump == [1, 2, 2] and pool.start == [0, -1, -1]
    assert r.layer("td_flat").output_shape == (None, 8, 72)
    dense = r.layer("td_dense")
    assert dense.output_shape == (None, 8, 5)
    assert [a.is_global for a in dense.axes] == [False, True, True]
    assert dense.rf[0] == 1
    temporal = r.layer("temporal")
    assert temporal.output_shape == (None, 6, 4) and temporal.rf[0] == 3
    last = r.layer("over_time")
    assert last.output_shape == (None, 4) and last.is_global
    assert r.verdict.first_full_coverage_layer == "over_time"


@pytest.mark.parametrize("antialias", [False, True])
def test_resizing_antialias(tmp_path: Path, antialias: bool) -> None:
    """Resizing 12x12 -> 4x4 bilinear (half-pixel centres): x(i) = 3i + 1 falls on a pixel, so
    without antialias unit i reads pixel 3i + 1 only; with antialias the triangle kernel is
    stretched to 3 pixels each side and reads 3i - 1 .. 3i + 3 (3i - 2 and 3i + 4 are exactly 3
    away: weight 0), clipped to the image. (Checked while writing this test, neither needed to
    run it: torch's antialiased resize reads the same pixels for every size tried; TF's too,
    except where a kernel end falls exactly on a pixel, to which its float32 arithmetic leaves a
    weight of ~1e-7, e.g. 9 -> 5.)"""
    model = k2_sequential(
        "img",
        [None, 12, 12, 3],
        {"class_name": "Resizing",
         "config": {"name": "resize", "height": 4, "width": 4,
                    "interpolation": "bilinear", "antialias": antialias}},
    )
    r = analyze(save_dir(tmp_path, model))
    lay = r.layer("resize")
    assert r.verdict.certain and lay.output_shape == (None, 4, 4, 3)
    want = ([(0, 3), (2, 6), (5, 9), (8, 11)] if antialias
            else [(1, 1), (4, 4), (7, 7), (10, 10)])
    assert [lay.real_interval(0, k) for k in range(4)] == want


def test_depthwise_channels_without_recorded_shapes(tmp_path: Path) -> None:
    """tf_keras .h5 files record no layer shapes: a depthwise conv's channels (input channels x
    depth_multiplier: 8 x 2) are then worked out by the analysis, and the squeeze-excitation
    reshape to (1, 1, 16) after it is followed (it used to stop there, 'reshape-untracked')."""
    conv_in = [[["img", 0, 0, {}]]]
    model = k2_functional(
        [
            k2_input("img", [None, 16, 16, 3]),
            k2_conv("c0", conv_in, filters=8, kernel_size=[1, 1]),
            k2_layer(
                "DepthwiseConv2D", "dw", [[["c0", 0, 0, {}]]], kernel_size=[3, 3],
                strides=[1, 1], padding="same", depth_multiplier=2, dilation_rate=[1, 1],
                data_format="channels_last",
            ),
            k2_layer("GlobalAveragePooling2D", "sq", [[["dw", 0, 0, {}]]]),
            k2_layer("Reshape", "rs", [[["sq", 0, 0, {}]]], target_shape=[1, 1, 16]),
            k2_layer("Multiply", "mul", [[["dw", 0, 0, {}], ["rs", 0, 0, {}]]]),
        ],
        [["mul", 0, 0]],
    )
    r = analyze(save_dir(tmp_path, model))
    assert r.verdict.certain, [d.message for d in r.diagnostics]
    assert r.layer("dw").output_shape == (None, 16, 16, 16)
    mul = r.layer("mul")
    assert mul.output_shape == (None, 16, 16, 16) and mul.rf == [3, 3] and mul.is_global


def test_inception_resnet_scaled_residual(tmp_path: Path) -> None:
    """InceptionResNetV2's ``CustomScaleLayer`` (x + scale * branch), named by its keras
    module: a merge of both inputs (a 1x1 path, r 1, and a 3x3 one, r 3 -> r 3)."""
    conv_in = [[["img", 0, 0, {}]]]
    scale = k2_layer("CustomScaleLayer", "scaled", [[["a", 0, 0, {}], ["b", 0, 0, {}]]], scale=0.17)
    scale["module"] = "keras.src.applications.inception_resnet_v2"
    model = k2_functional(
        [
            k2_input("img", [None, 16, 16, 3]),
            k2_conv("a", conv_in, kernel_size=[1, 1]),
            k2_conv("b", conv_in),
            scale,
        ],
        [["scaled", 0, 0]],
    )
    r = analyze(save_dir(tmp_path, model))
    assert r.verdict.certain and r.layer("scaled").rf == [3, 3]
    del scale["module"]  # a user's class of that name is not guessed at
    assert analyze(save_dir(tmp_path, model, "m2")).layer("scaled").status == "unknown"


@pytest.mark.parametrize(
    ("axes", "shape", "global_positions"),
    [
        # (N, 12, 4) . (N, 12, 4) over the features: (N, 12, 12) scores between positions:
        # along the first positions, unit t reads a's window t and every position of b
        (2, (None, 12, 12), True),
        # over the positions: (N, 4, 4), every value reads every position of both
        (1, (None, 4, 4), True),
    ],
)
def test_dot_of_two_sequences(
    tmp_path: Path, axes: int, shape: tuple[int | None, ...], global_positions: bool
) -> None:
    conv = {"filters": 4, "kernel_size": [3], "strides": [1], "padding": "same",
            "dilation_rate": [1], "data_format": "channels_last"}
    model = k2_functional(
        [
            k2_input("seq", [None, 12, 2]),
            k2_layer("Conv1D", "a", [[["seq", 0, 0, {}]]], **conv),
            k2_layer("Conv1D", "b", [[["seq", 0, 0, {}]]], **conv),
            k2_layer("Dot", "dot", [[["a", 0, 0, {}], ["b", 0, 0, {}]]], axes=axes),
        ],
        [["dot", 0, 0]],
    )
    r = analyze(save_dir(tmp_path, model))
    dot = r.layer("dot")
    assert dot.output_shape == shape and dot.status == "ok"
    assert dot.is_global == global_positions
    if global_positions:
        assert dot.sees_full_input and r.verdict.certain


def test_dot_of_two_vectors_keeps_a_column(tmp_path: Path) -> None:
    model = k2_functional(
        [
            k2_input("seq", [None, 12, 2]),
            k2_layer("Flatten", "fa", [[["seq", 0, 0, {}]]]),
            k2_layer("Flatten", "fb", [[["seq", 0, 0, {}]]]),
            k2_layer("Dot", "dot", [[["fa", 0, 0, {}], ["fb", 0, 0, {}]]], axes=1),
        ],
        [["dot", 0, 0]],
    )
    r = analyze(save_dir(tmp_path, model))
    assert r.layer("dot").output_shape == (None, 1) and r.layer("dot").is_global
