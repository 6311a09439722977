"""`cnnprobe check` end to end: exit codes, configuration files, every output format."""

from __future__ import annotations

import json
import re
from pathlib import Path
from xml.etree import ElementTree as ET

import jsonschema
import pytest
from typer.testing import CliRunner

from cnnprobe.check.formatters import FORMATTERS
from cnnprobe.cli import app
from cnnprobe.commands.check import CheckFormat
from paths import SAMPLES

runner = CliRunner()
SARIF_SCHEMA = json.loads((Path(__file__).parent / "data" / "sarif-schema-2.1.0.json").read_text())
POOLED = str(SAMPLES / "mnist_pooled.onnx")
PLAIN = str(SAMPLES / "mnist_convnet.onnx")


def run(*args: str, cwd: Path | None = None):  # type: ignore[no-untyped-def]
    import os

    old = os.getcwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        return runner.invoke(app, ["check", *args])
    finally:
        os.chdir(old)


@pytest.fixture
def empty_dir(tmp_path: Path) -> Path:
    """A folder without configuration, so the repository's own files are not picked up."""
    (tmp_path / "cnnprobe.toml").write_text("[check]\n")
    return tmp_path


def test_exit_0_when_every_rule_passes(empty_dir: Path) -> None:
    res = run(
        POOLED, "--rule", 'min-rf={value = 26, layer = "dense"}', "--rule", "max-stride=4",
        "--rule", "full-input=false", cwd=empty_dir
    )
    assert res.exit_code == 0, res.stdout
    assert "PASS" in res.stdout and "FAIL" not in res.stdout


def test_exit_1_when_a_rule_fails(empty_dir: Path) -> None:
    res = run(PLAIN, cwd=empty_dir)
    assert res.exit_code == 1
    assert "full-input" in res.stdout and "7×7 of 28×28" in res.stdout


def test_exit_2_for_unreadable_model(empty_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"garbage")
    res = run(PLAIN, str(bad), cwd=empty_dir)
    assert res.exit_code == 2
    assert "bad.onnx" in res.stdout  # reported per model, the others still checked
    assert "relu3" in res.stdout


def test_exit_2_for_bad_usage(empty_dir: Path) -> None:
    assert run(cwd=empty_dir).exit_code == 2
    res = run(PLAIN, "--rule", "max-stride=abc", cwd=empty_dir)
    assert res.exit_code == 2
    assert "--rule max-stride" in res.stderr and "integer" in res.stderr
    assert run("no/such/*.onnx", cwd=empty_dir).exit_code == 2


def test_globs_and_parallel_jobs(empty_dir: Path) -> None:
    res = run(str(SAMPLES / "mnist_*.onnx"), "--jobs", "2", "-f", "json", cwd=empty_dir)
    doc = json.loads(res.stdout)
    paths = [Path(m["path"]).name for m in doc["models"]]
    assert paths == ["mnist_convnet.onnx", "mnist_pooled.onnx"]
    assert doc["exit_code"] == res.exit_code == 1


def test_pyproject_config_with_overrides(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    for name in ("mnist_convnet.onnx", "mnist_pooled.onnx"):
        (models / name).write_bytes((SAMPLES / name).read_bytes())
    (tmp_path / "pyproject.toml").write_text(
        "[tool.cnnprobe.check.rules]\n"
        "full-input = false\n"
        "max-stride = 2\n"
        "[[tool.cnnprobe.check.overrides]]\n"
        'models = ["models/mnist_pooled.onnx"]\n'
        "rules = { max-stride = 4 }\n"
    )
    res = run("models/*.onnx", "-f", "json", cwd=tmp_path)
    doc = json.loads(res.stdout)
    assert res.exit_code == 0, res.stdout
    assert doc["config"].endswith("pyproject.toml")
    by_model = {Path(m["path"]).name: {r["rule"]: r for r in m["results"]} for m in doc["models"]}
    assert "full-input" not in by_model["mnist_convnet.onnx"]
    assert by_model["mnist_pooled.onnx"]["max-stride"]["details"]["limit"] == [4, 4]
    # command line beats the file
    res = run("models/*.onnx", "--rule", "max-stride=1", cwd=tmp_path)
    assert res.exit_code == 1


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[check]\nbogus = 1\n", "check.bogus: unknown key"),
        ("[check.rules]\nmax-stride = -3\n", "check.rules.max-stride: expected positive"),
        ("[check.rules]\nno-such = true\n", "check.rules.no-such: unknown rule"),
        ('[check]\ninput-shape = "1xAx3"\n', "check.input-shape"),
        ("[[check.overrides]]\nrules = {}\n", "check.overrides[0].models"),
        ("[check\n", "invalid TOML"),
    ],
)
def test_invalid_configuration(tmp_path: Path, text: str, needle: str) -> None:
    (tmp_path / "cnnprobe.toml").write_text(text)
    res = run(PLAIN, cwd=tmp_path)
    assert res.exit_code == 2
    assert needle in res.stderr
    assert "cnnprobe.toml" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_every_format_has_a_formatter() -> None:
    assert {f.value for f in CheckFormat} == set(FORMATTERS)


def _output(fmt: str, empty_dir: Path) -> str:
    res = run(PLAIN, POOLED, "--rule", "max-stride=2", "-f", fmt, cwd=empty_dir)
    assert res.exit_code == 1
    return str(res.stdout)


def test_junit_parses(empty_dir: Path) -> None:
    root = ET.fromstring(_output("junit", empty_dir))
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert len(suites) == 2
    assert int(root.get("failures", "0")) == sum(int(s.get("failures", "0")) for s in suites)
    failing = [c for c in root.iter("testcase") if c.find("failure") is not None]
    assert {c.get("name") for c in failing} >= {"full-input", "max-stride"}


def test_sarif_validates_against_the_schema(empty_dir: Path) -> None:
    doc = json.loads(_output("sarif", empty_dir))
    jsonschema.validate(doc, SARIF_SCHEMA, cls=jsonschema.Draft7Validator)
    run0 = doc["runs"][0]
    ids = [r["id"] for r in run0["tool"]["driver"]["rules"]]
    for result in run0["results"]:
        assert ids[result["ruleIndex"]] == result["ruleId"]
        assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].endswith(
            ".onnx"
        )


def test_sarif_for_an_unreadable_model_validates(empty_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"x")
    res = run(str(bad), "-f", "sarif", cwd=empty_dir)
    doc = json.loads(res.stdout)
    jsonschema.validate(doc, SARIF_SCHEMA, cls=jsonschema.Draft7Validator)
    assert doc["runs"][0]["results"][0]["ruleId"] == "model"


ANNOTATION = re.compile(r"^::error file=[^,:]+,title=[^:]+::.+$")


def test_github_annotations_syntax(empty_dir: Path) -> None:
    lines = _output("github", empty_dir).strip().splitlines()
    annotations = [line for line in lines if line.startswith("::")]
    assert len(annotations) == 3  # full-input on both models, max-stride on the pooled one
    for line in annotations:
        assert ANNOTATION.match(line), line


def test_github_escaping() -> None:
    from cnnprobe.check.formatters import github
    from cnnprobe.check.outcome import CheckReport, ModelReport, RuleResult

    report = CheckReport((ModelReport("a,b:c.onnx", (RuleResult("r", "fail", "50%\nbad"),)),))
    line = github(report).splitlines()[0]
    assert line == "::error file=a%2Cb%3Ac.onnx,title=cnnprobe r::50%25%0Abad"


def test_markdown_summary(empty_dir: Path) -> None:
    md = _output("markdown", empty_dir)
    assert md.startswith("### cnnprobe check")
    assert "| model | rule | result | details |" in md
    assert "❌ fail" in md and "✅ pass" in md


def test_list_rules() -> None:
    res = runner.invoke(app, ["check", "--list-rules"])
    assert res.exit_code == 0
    for rid in (
        "full-input",
        "min-rf",
        "max-rf",
        "max-stride",
        "min-resolution",
        "no-misaligned-merge",
        "no-off-centre-merge",
        "no-unknown-ops",
        "max-shift-sensitivity",
    ):
        assert rid in res.stdout
