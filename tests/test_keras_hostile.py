"""Hostile and broken Keras files: a one-line ModelError naming the problem, exit code 2 from the
CLI with nothing on stdout and no traceback, and nothing executed or decoded. Every file is built
here with zipfile, h5py and json."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import h5py
import pytest
from typer.testing import CliRunner

from cnnprobe import analyze
from cnnprobe.cli import app
from cnnprobe.errors import ModelError
from cnnprobe.frontends import keras_io
from paths import SAMPLES

runner = CliRunner()


def expect_error(path: Path | str, needle: str) -> None:
    with pytest.raises(ModelError) as info:
        analyze(str(path))
    msg = str(info.value)
    assert "\n" not in msg
    assert needle in msg, msg
    res = runner.invoke(app, ["summary", str(path)])
    assert res.exit_code == 2, res.stdout
    assert res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert "Traceback" not in res.stderr
    assert needle in lines[0] and str(path) in lines[0], lines[0]


def conv(name: str, inbound: Any = None, **cfg: Any) -> dict[str, Any]:
    config = {
        "name": name,
        "filters": 2,
        "kernel_size": [3, 3],
        "strides": [1, 1],
        "padding": "valid",
        "trainable": True,
    }
    config.update(cfg)
    layer: dict[str, Any] = {
        "module": "keras.layers",
        "class_name": "Conv2D",
        "config": config,
        "name": name,
    }
    if inbound is not None:
        layer["inbound_nodes"] = inbound
    return layer


def ref(name: str, node: int = 0, tensor: int = 0) -> dict[str, Any]:
    return {
        "args": [
            {
                "class_name": "__keras_tensor__",
                "config": {"shape": None, "keras_history": [name, node, tensor]},
            }
        ],
        "kwargs": {},
    }


def functional(layers: list[Any], outputs: Any, inputs: Any = None) -> dict[str, Any]:
    inp = {
        "module": "keras.layers",
        "class_name": "InputLayer",
        "name": "x",
        "config": {"name": "x", "batch_shape": [None, 16, 16, 1]},
        "inbound_nodes": [],
    }
    return {
        "module": "keras.src.models.functional",
        "class_name": "Functional",
        "config": {
            "name": "m",
            "layers": [inp, *layers],
            "input_layers": inputs if inputs is not None else [["x", 0, 0]],
            "output_layers": outputs,
        },
    }


def write_keras(path: Path, config: Any, raw: bytes | None = None, **members: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        zf.writestr("config.json", raw if raw is not None else json.dumps(config))
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_zip_bomb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keras_io, "MAX_JSON_BYTES", 100_000)
    p = tmp_path / "bomb.keras"
    with zipfile.ZipFile(p, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("config.json", b" " * 5_000_000)
    assert p.stat().st_size < 50_000
    expect_error(p, "member 'config.json' is 5000000 bytes, over the")


def test_zip_bomb_with_lying_header(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keras_io, "MAX_JSON_BYTES", 100_000)
    p = tmp_path / "liar.keras"
    with zipfile.ZipFile(p, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("config.json", b" " * 5_000_000)
    data = bytearray(p.read_bytes())
    # patch the declared uncompressed size (local header and central directory) to 10 bytes
    for sig, off in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        pos = data.find(sig)
        data[pos + off : pos + off + 4] = (10).to_bytes(4, "little")
    p.write_bytes(bytes(data))
    expect_error(p, "config.json")


def test_too_many_members(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keras_io, "MAX_ZIP_MEMBERS", 50)
    p = tmp_path / "many.keras"
    with zipfile.ZipFile(p, "w") as zf:
        for k in range(60):
            zf.writestr(f"assets/{k}", b"")
    expect_error(p, "the archive lists 60 members")


def test_path_like_member_names(tmp_path: Path) -> None:
    for bad in ("../config.json", "/etc/passwd", "assets/../../x", "C:/evil"):
        p = tmp_path / "paths.keras"
        with zipfile.ZipFile(p, "w") as zf:
            zf.writestr("config.json", "{}")
            zf.writestr(bad, b"x")
        expect_error(p, "path-like member name")


def test_duplicate_config_members(tmp_path: Path) -> None:
    p = tmp_path / "dup.keras"
    with zipfile.ZipFile(p, "w") as zf, pytest.warns(UserWarning):
        zf.writestr("config.json", "{}")
        zf.writestr("config.json", "{}")
    expect_error(p, "2 members named 'config.json'")


def test_not_a_zip_and_truncated_zip(tmp_path: Path) -> None:
    p = tmp_path / "text.keras"
    p.write_text("hello, I am not a zip archive")
    expect_error(p, "not a .keras archive")
    q = tmp_path / "cut.keras"
    q.write_bytes((SAMPLES / "keras_se_net.keras").read_bytes()[:3000])
    expect_error(q, "no zip end record")
    e = tmp_path / "empty.keras"
    e.write_bytes(b"")
    expect_error(e, "empty file")


def test_archive_without_config(tmp_path: Path) -> None:
    p = tmp_path / "weights.keras"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("model.weights.h5", b"")
    expect_error(p, "no config.json")


def test_deep_json(tmp_path: Path) -> None:
    expect_error(
        write_keras(tmp_path / "deep.keras", None, raw=b"[" * 200_000), "nested too deeply"
    )


def test_huge_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keras_io, "MAX_JSON_BYTES", 10_000)
    cfg = functional([conv(f"c{k}", [ref("x")]) for k in range(100)], [["c0", 0, 0]])
    expect_error(write_keras(tmp_path / "huge.keras", cfg), "over the")


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        (
            b'{"class_name": "Functional", "config": {"layers": [], "x": 1' + b"0" * 400 + b"}}",
            "integer with",
        ),
        (b'{"class_name": "Functional", "config": NaN}', "non-finite number NaN"),
        (b'{"class_name": "Functional", "config": {', "not valid JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b"[1, 2]", "not a model object"),
    ],
)
def test_bad_json(tmp_path: Path, raw: bytes, needle: str) -> None:
    expect_error(write_keras(tmp_path / "bad.keras", None, raw=raw), needle)


CASES: list[tuple[str, Any, str]] = [
    ("no-config", {"class_name": "Functional"}, "is not a Sequential or Functional model"),
    ("subclassed", {"class_name": "MyModel", "config": {"units": 3}}, "subclassed model"),
    ("layers-not-list", {"class_name": "Functional", "config": {"layers": {}}}, "layer list"),
    (
        "missing-ref",
        functional([conv("c", [ref("nope")])], [["c", 0, 0]]),
        "refers to layer 'nope', which does not exist",
    ),
    (
        "index-range",
        functional([conv("c", [ref("x")]), conv("d", [ref("c", 3)])], [["d", 0, 0]]),
        "node index out of range",
    ),
    ("output-range", functional([conv("c", [ref("x")])], [["c", 5, 0]]), "node index out of range"),
    (
        "tensor-range",
        functional([conv("c", [ref("x")]), conv("d", [ref("c", 0, 2)])], [["d", 0, 0]]),
        "reads output 2 of layer 'c'",
    ),
    (
        "cycle",
        functional([conv("a", [ref("b")]), conv("b", [ref("a")])], [["b", 0, 0]]),
        "has a cycle",
    ),
    ("self-loop", functional([conv("a", [ref("a")])], [["a", 0, 0]]), "has a cycle"),
    (
        "kernel-type",
        functional([conv("c", [ref("x")], kernel_size="big")], [["c", 0, 0]]),
        "'kernel_size' must be an integer or a list of integers",
    ),
    (
        "kernel-zero",
        functional([conv("c", [ref("x")], kernel_size=[0, 3])], [["c", 0, 0]]),
        "'kernel_size' value 0 is not positive",
    ),
    (
        "stride-neg",
        functional([conv("c", [ref("x")], strides=-2)], [["c", 0, 0]]),
        "'strides' value -2 is not positive",
    ),
    (
        "kernel-huge",
        functional([conv("c", [ref("x")], kernel_size=[1 << 40, 3])], [["c", 0, 0]]),
        "absurdly large",
    ),
    (
        "padding",
        functional([conv("c", [ref("x")], padding="reflect")], [["c", 0, 0]]),
        "'padding' is 'reflect'",
    ),
    (
        "missing-kernel",
        functional([conv("c", [ref("x")], kernel_size=None)], [["c", 0, 0]]),
        "missing 'kernel_size'",
    ),
    (
        "dup-names",
        functional([conv("c", [ref("x")]), conv("c", [ref("x")])], [["c", 0, 0]]),
        "two layers named 'c'",
    ),
    ("no-name", functional([{"class_name": "ReLU", "config": {}}], [["x", 0, 0]]), "has no name"),
    ("bad-node", functional([conv("c", ["x", "y"])], [["c", 0, 0]]), "malformed inbound node"),
    (
        "bad-history",
        functional(
            [
                conv(
                    "c",
                    [
                        {
                            "args": [
                                {"class_name": "__keras_tensor__", "config": {"keras_history": "x"}}
                            ]
                        }
                    ],
                )
            ],
            [["c", 0, 0]],
        ),
        "malformed tensor reference",
    ),
    ("no-outputs", functional([conv("c", [ref("x")])], []), "has no outputs"),
    (
        "output-type",
        functional([conv("c", [ref("x")])], [["c", 0, 0], 7]),
        "holds a int where a layer reference belongs",
    ),
    (
        "input-not-input",
        functional([conv("c", [ref("x")])], [["c", 0, 0]], [["c", 0, 0]]),
        "which is not an InputLayer",
    ),
    (
        "absurd-input",
        {
            "class_name": "Sequential",
            "config": {
                "layers": [
                    {
                        "class_name": "InputLayer",
                        "config": {"name": "i", "batch_shape": [None, 10**12, 4, 1]},
                    },
                    conv("c"),
                ]
            },
        },
        "absurd dimension",
    ),
    (
        "no-input-shape",
        {"class_name": "Sequential", "config": {"layers": [conv("c")]}},
        "has no recorded shape (the model was never built): give --input-shape",
    ),
    (
        "unknown-spatial",
        {
            "class_name": "Sequential",
            "config": {
                "layers": [
                    {
                        "class_name": "InputLayer",
                        "config": {"name": "i", "batch_shape": [None, None, None, 3]},
                    },
                    conv("c"),
                ]
            },
        },
        "spatial size of input 'i' is unknown ([?, ?, ?, 3]): give --input-shape",
    ),
    (
        "no-spatial",
        {
            "class_name": "Sequential",
            "config": {
                "layers": [
                    {
                        "class_name": "InputLayer",
                        "config": {"name": "i", "batch_shape": [None, 10]},
                    },
                    {"class_name": "Dense", "config": {"name": "d", "units": 3}},
                ]
            },
        },
        "no spatial axes",
    ),
]


@pytest.mark.parametrize(("label", "config", "needle"), CASES, ids=[c[0] for c in CASES])
def test_broken_configs(tmp_path: Path, label: str, config: Any, needle: str) -> None:
    expect_error(write_keras(tmp_path / f"{label}.keras", config), needle)


def test_nesting_too_deep(tmp_path: Path) -> None:
    inner: dict[str, Any] = {
        "class_name": "Sequential",
        "config": {"name": "s0", "layers": [{"class_name": "ReLU", "config": {"name": "r"}}]},
    }
    for k in range(1, 40):
        inner = {"class_name": "Sequential", "config": {"name": f"s{k}", "layers": [inner]}}
    top = {
        "class_name": "Sequential",
        "config": {
            "layers": [
                {
                    "class_name": "InputLayer",
                    "config": {"name": "i", "batch_shape": [None, 8, 8, 1]},
                },
                inner,
            ]
        },
    }
    expect_error(write_keras(tmp_path / "nest.keras", top), "models nested more than 32 deep")


def test_too_many_calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cnnprobe.frontends import keras_frontend

    monkeypatch.setattr(keras_frontend, "MAX_CALLS", 10)
    layers = [conv(f"c{k}", [ref("x")]) for k in range(20)]
    expect_error(
        write_keras(tmp_path / "calls.keras", functional(layers, [["c0", 0, 0]])),
        "more than 10 layer calls",
    )


# --- HDF5 ---------------------------------------------------------------------------------------


def test_weights_only_h5(tmp_path: Path) -> None:
    p = tmp_path / "weights.h5"
    with h5py.File(p, "w") as f:
        f.attrs["layer_names"] = [b"conv1"]
        f.create_dataset("conv1/kernel", data=[1.0, 2.0])
    expect_error(p, "a weights-only HDF5 file (no 'model_config' attribute)")


def test_h5_without_config(tmp_path: Path) -> None:
    p = tmp_path / "data.h5"
    with h5py.File(p, "w") as f:
        f.create_dataset("x", data=[1.0])
    expect_error(p, "not a Keras HDF5 model")


def test_truncated_h5(tmp_path: Path) -> None:
    data = (SAMPLES / "keras_mnist_convnet.h5").read_bytes()
    p = tmp_path / "cut.h5"
    p.write_bytes(data[:1500])
    expect_error(p, "cannot read the HDF5 file")


def test_h5_config_not_a_string(tmp_path: Path) -> None:
    p = tmp_path / "num.h5"
    with h5py.File(p, "w") as f:
        f.attrs["model_config"] = 42
    expect_error(p, "'model_config' attribute is not a string")


def test_h5_bad_json(tmp_path: Path) -> None:
    p = tmp_path / "bad.h5"
    with h5py.File(p, "w") as f:
        f.attrs["model_config"] = '{"class_name": "Sequential", "config": {"layers": [' + "[" * 5000
    expect_error(p, "the 'model_config' attribute is")


def test_not_hdf5(tmp_path: Path) -> None:
    p = tmp_path / "fake.h5"
    p.write_text("plain text")
    expect_error(p, "not an HDF5 file")


def test_h5_reads_only_the_root_attribute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Datasets (weights) are never opened: reading one fails the test."""
    opened: list[str] = []
    real_getitem = h5py.Group.__getitem__

    def spy(self: h5py.Group, name: Any) -> Any:
        if str(name) != "/":  # h5py itself opens the root group
            opened.append(str(name))
        return real_getitem(self, name)

    monkeypatch.setattr(h5py.Group, "__getitem__", spy)
    analyze(SAMPLES / "keras_mnist_pooled.h5")
    assert opened == []


# --- SavedModel ---------------------------------------------------------------------------------


def test_savedmodel_without_metadata(tmp_path: Path) -> None:
    d = tmp_path / "sm"
    d.mkdir()
    (d / "saved_model.pb").write_bytes(b"\x08\x01")
    expect_error(d, "a SavedModel without keras_metadata.pb")


def test_savedmodel_truncated(tmp_path: Path) -> None:
    d = tmp_path / "sm"
    d.mkdir()
    data = (SAMPLES / "tf_keras_nested_savedmodel" / "keras_metadata.pb").read_bytes()
    (d / "keras_metadata.pb").write_bytes(data[:500])
    expect_error(d, "keras_metadata.pb is truncated")


def test_savedmodel_garbage(tmp_path: Path) -> None:
    d = tmp_path / "sm"
    d.mkdir()
    (d / "keras_metadata.pb").write_bytes(b"\x0f\xff\xff\xff")
    expect_error(d, "keras_metadata.pb is")
    (d / "keras_metadata.pb").write_bytes(b"")
    expect_error(d, "no root object")


def test_directory_without_model(tmp_path: Path) -> None:
    d = tmp_path / "folder"
    d.mkdir()
    expect_error(d, "is a directory without a Keras config.json")
