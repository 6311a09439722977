"""The JSON report validates against the shipped JSON Schema for every sample model."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from cnnprobe import analyze
from cnnprobe.report.json_report import to_dict
from paths import SAMPLES, zoo_dir

SCHEMA = json.loads(
    resources.files("cnnprobe").joinpath("schema/summary.schema.json").read_text("utf-8")
)
MODELS = sorted(SAMPLES.glob("*.onnx")) + [zoo_dir() / "light_inception_v1.onnx"]


@pytest.mark.parametrize("path", MODELS, ids=lambda p: Path(p).name)
def test_report_matches_schema(path: Path) -> None:
    doc = json.loads(json.dumps(to_dict(analyze(path))))
    jsonschema.validate(doc, SCHEMA, cls=jsonschema.Draft202012Validator)
    assert doc["schema_version"] == "1.0"
    assert len(doc["layers"]) > 0
