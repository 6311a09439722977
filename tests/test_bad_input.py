"""Bad input: one line on stderr naming the file and the problem, exit 2, no partial output."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper
from typer.testing import CliRunner

from cnnprobe.cli import app
from paths import SAMPLES

runner = CliRunner()


def check_error(path: Path | str, needle: str, *extra: str) -> None:
    res = runner.invoke(app, ["summary", str(path), *extra])
    assert res.exit_code == 2, res.stdout
    assert res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert str(path) in lines[0]
    assert needle in lines[0], lines[0]


def _save(model: onnx.ModelProto, path: Path) -> Path:
    path.write_bytes(model.SerializeToString())
    return path


def _conv_model(inp_dims: list[object], node_inputs: list[str] | None = None) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, inp_dims)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    w = helper.make_tensor("w", TensorProto.FLOAT, [1, 1, 3, 3], [0.1] * 9)
    node = helper.make_node("Conv", node_inputs or ["x", "w"], ["y"], kernel_shape=[3, 3])
    graph = helper.make_graph([node], "g", [x], [y], [w])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_directory(tmp_path: Path) -> None:
    d = tmp_path / "model.onnx"
    d.mkdir()
    check_error(d, "is a directory")


def test_not_onnx(tmp_path: Path) -> None:
    p = tmp_path / "notes.onnx"
    p.write_text("this is not a protobuf at all \x00\xff" * 10)
    check_error(p, "not a")


def test_empty_file(tmp_path: Path) -> None:
    p = tmp_path / "empty.onnx"
    p.write_bytes(b"")
    check_error(p, "empty file")


def test_truncated_protobuf(tmp_path: Path) -> None:
    data = (SAMPLES / "mnist_pooled.onnx").read_bytes()
    p = tmp_path / "truncated.onnx"
    p.write_bytes(data[: len(data) // 3])
    check_error(p, "not a valid ONNX model")


def test_random_bytes(tmp_path: Path) -> None:
    import random

    rng = random.Random(1)
    p = tmp_path / "noise.onnx"
    p.write_bytes(bytes(rng.randrange(256) for _ in range(4096)))
    check_error(p, "")


def test_wrong_extension(tmp_path: Path) -> None:
    p = tmp_path / "model.txt"
    p.write_text("hello")
    check_error(p, "unsupported file type '.txt'")


def test_no_spatial_input(tmp_path: Path) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 10])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    check_error(_save(model, tmp_path / "flat.onnx"), "no spatial axes")


def test_unknown_spatial_dims_ask_for_input_shape(tmp_path: Path) -> None:
    path = _save(_conv_model([1, 1, "height", "width"]), tmp_path / "dyn.onnx")
    check_error(path, "--input-shape")
    ok = runner.invoke(app, ["summary", str(path), "--input-shape", "1x1x9x9"])
    assert ok.exit_code == 0, ok.stderr
    assert "7×7" in ok.stdout  # 9 - 3 + 1 output units


def test_dangling_input(tmp_path: Path) -> None:
    model = _conv_model([1, 1, 8, 8], ["x", "missing_weight"])
    check_error(
        _save(model, tmp_path / "dangling.onnx"), "'missing_weight', which nothing produces"
    )


def test_cycle(tmp_path: Path) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])
    y = helper.make_tensor_value_info("b", TensorProto.FLOAT, None)
    nodes = [
        helper.make_node("Add", ["x", "b"], ["a"], name="first"),
        helper.make_node("Relu", ["a"], ["b"], name="second"),
    ]
    graph = helper.make_graph(nodes, "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    check_error(_save(model, tmp_path / "cycle.onnx"), "cycle")


def test_kernel_larger_than_input_is_reported_not_crashed(tmp_path: Path) -> None:
    path = _save(_conv_model([1, 1, 2, 2]), tmp_path / "small.onnx")
    res = runner.invoke(app, ["summary", str(path), "-f", "json"])
    assert res.exit_code == 0
    assert '"bad-op"' in res.stdout
    assert '"certain": false' in res.stdout


@pytest.mark.parametrize("name", ["mnist_convnet.onnx"])
def test_api_raises_project_error(name: str, tmp_path: Path) -> None:
    from cnnprobe import analyze
    from cnnprobe.errors import CnnprobeError

    with pytest.raises(CnnprobeError):
        analyze(tmp_path / name)


def test_tensor_produced_twice(tmp_path: Path) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])
    y = helper.make_tensor_value_info("a", TensorProto.FLOAT, None)
    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="first"),
        helper.make_node("Sigmoid", ["x"], ["a"], name="second"),
    ]
    graph = helper.make_graph(nodes, "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    check_error(_save(model, tmp_path / "twice.onnx"), "tensor 'a' is produced by two nodes")


def test_unnamed_optional_outputs_are_not_one_tensor(tmp_path: Path) -> None:
    """ONNX leaves an unused optional output's name empty: several nodes may do so (here the
    indices of two MaxPools); onnxruntime runs such a model."""
    import numpy as np
    import onnxruntime as ort

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])
    y = helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, 1, 2, 2])
    nodes = [
        helper.make_node("MaxPool", ["x"], ["a", ""], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("MaxPool", ["a"], ["b", ""], kernel_shape=[2, 2], strides=[2, 2]),
    ]
    graph = helper.make_graph(nodes, "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = _save(model, tmp_path / "unnamed.onnx")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = sess.run(None, {"x": np.arange(64, dtype=np.float32).reshape(1, 1, 8, 8)})[0]
    assert out.shape == (1, 1, 2, 2)
    res = runner.invoke(app, ["summary", str(path), "-f", "json"])
    assert res.exit_code == 0, res.stderr
    import json

    verdict = json.loads(res.stdout)["verdict"]
    assert verdict["rf"] == [4, 4] and verdict["jump"] == [4, 4]  # two 2x2/2 pools
