"""The JSON report validates against the shipped JSON Schema for every sample model."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from cnnprobe import analyze
from cnnprobe.report.json_report import layer_dict, render, to_dict
from paths import SAMPLES, zoo_dir

SCHEMA = json.loads(
    resources.files("cnnprobe").joinpath("schema/summary.schema.json").read_text("utf-8")
)
MODELS = sorted(SAMPLES.glob("*.onnx")) + [zoo_dir() / "light_inception_v1.onnx"]


@pytest.mark.parametrize("path", MODELS, ids=lambda p: Path(p).name)
def test_report_matches_schema(path: Path) -> None:
    doc = json.loads(json.dumps(to_dict(analyze(path))))
    jsonschema.validate(doc, SCHEMA, cls=jsonschema.Draft202012Validator)
    assert doc["schema_version"] == "1.1"
    assert len(doc["layers"]) > 0


KERAS = sorted(SAMPLES.glob("*.keras"))


@pytest.mark.parametrize("path", MODELS + KERAS, ids=lambda p: Path(p).name)
def test_rendered_text_is_the_document(path: Path) -> None:
    """``render`` writes layer lines itself (for speed): it must be exactly ``to_dict``, in the
    same key order, and each layer on one line."""
    result = analyze(path)
    text = render(result)
    assert json.loads(text) == json.loads(json.dumps(to_dict(result)))
    assert list(json.loads(text)) == list(to_dict(result))
    lines = text.splitlines()
    start = lines.index('  "layers": [')
    layer_lines = lines[start + 1 : start + 1 + len(result.layers)]
    for line, layer in zip(layer_lines, result.layers):
        assert json.loads(line.strip().rstrip(",")) == json.loads(json.dumps(layer_dict(layer)))


def test_rendered_text_escapes_names(tmp_path: Path) -> None:
    """Names with quotes, backslashes and non-ASCII characters survive the hand-written lines."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("in\\put", TensorProto.FLOAT, [1, 1, 8, 8])
    y = helper.make_tensor_value_info('y"1', TensorProto.FLOAT, [1, 1, 6, 6])
    node = helper.make_node(
        "MaxPool", ["in\\put"], ['y"1'], name='卷积 "pool"\n', kernel_shape=[3, 3]
    )
    model = helper.make_model(helper.make_graph([node], "g", [x], [y]))
    path = tmp_path / "names.onnx"
    onnx.save(model, path)
    result = analyze(path)
    doc = json.loads(render(result))
    assert doc["layers"][0]["name"] == '卷积 "pool"\n'
    assert doc["layers"][0]["output"] == 'y"1'
    assert doc == json.loads(json.dumps(to_dict(result)))
