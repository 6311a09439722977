"""CLI through typer's runner (exit codes, stdout and stderr kept apart, every format), and the
console script in fresh processes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cnnprobe.cli import app
from cnnprobe.report import FORMATS, get_reporter
from paths import SAMPLES

runner = CliRunner()
MNIST = str(SAMPLES / "mnist_convnet.onnx")


def run(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args))


def test_summary_table_states_the_seed_example() -> None:
    res = run("summary", MNIST)
    assert res.exit_code == 0, res.stderr
    assert res.stderr == ""
    out = res.stdout
    assert "conv3" in out
    assert "7×7 of the 28×28 input" in out
    assert "does NOT see the full input" in out


def test_summary_all_lists_every_layer() -> None:
    short = run("summary", MNIST).stdout
    full = run("summary", MNIST, "--all").stdout
    assert "relu1" not in short and "relu1" in full


def test_json_format_is_machine_readable() -> None:
    res = run("summary", MNIST, "--format", "json")
    assert res.exit_code == 0
    doc = json.loads(res.stdout)
    assert doc["schema_version"].startswith("1.")
    assert doc["verdict"]["rf"] == [7, 7]
    assert doc["verdict"]["sees_full_input"] is False
    assert doc["model"]["input"]["spatial_axes"] == [2, 3]


def test_markdown_format() -> None:
    res = run("summary", str(SAMPLES / "mnist_pooled.onnx"), "-f", "markdown")
    assert res.exit_code == 0
    assert res.stdout.startswith("### cnnprobe summary")
    assert "| pool2" in res.stdout
    assert "**Verdict**" in res.stdout


def test_every_format_choice_has_a_reporter() -> None:
    from cnnprobe.cli import Format

    assert {f.value for f in Format} == set(FORMATS)
    for fmt in FORMATS:
        assert callable(get_reporter(fmt))


def test_output_file(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    res = run("summary", MNIST, "-f", "json", "-o", str(target))
    assert res.exit_code == 0 and res.stdout == ""
    assert json.loads(target.read_text())["verdict"]["last_spatial_layer"] == "relu3"


def test_version_and_help() -> None:
    assert run("--version").stdout.startswith("cnnprobe ")
    res = run("--help")
    assert res.exit_code == 0 and "summary" in res.stdout


def test_assume_pointwise_makes_custom_op_certain() -> None:
    path = str(SAMPLES / "custom_op.onnx")
    plain = json.loads(run("summary", path, "-f", "json").stdout)
    assert plain["verdict"]["certain"] is False
    assert any(d["code"] == "unknown-op" for d in plain["diagnostics"])
    fixed = json.loads(
        run("summary", path, "-f", "json", "--assume-pointwise", "MyCustomBlur").stdout
    )
    assert fixed["verdict"]["certain"] is True
    # conv 3x3 -> pointwise -> conv 3x3 -> global pooling: conv2 sees 5x5
    conv2 = next(lay for lay in fixed["layers"] if lay["name"] == "conv2")
    assert conv2["rf"] == [5, 5]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("summary", "does-not-exist.onnx"), "does-not-exist.onnx: no such file"),
        (("summary", MNIST, "--input-shape", "1x1xAx28"), "--input-shape"),
        (("summary", MNIST, "--input-shape", "1x1x28"), "--input-shape has 3 dims"),
        (("summary", MNIST, "--input", "nope"), "no input named 'nope'"),
    ],
)
def test_usage_errors_exit_2_with_one_line(args: tuple[str, ...], needle: str) -> None:
    res = run(*args)
    assert res.exit_code == 2
    assert res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert needle in lines[0]
    assert "Traceback" not in res.stderr


def test_unknown_format_is_a_usage_error() -> None:
    res = run("summary", MNIST, "--format", "xml")
    assert res.exit_code == 2


# --------------------------------------------------------------------------------------------
# the console script itself, in fresh processes: it leaves through os._exit after flushing, so
# the whole output must arrive, and exit codes must survive


def _console(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cnnprobe", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
    )


def test_console_script_writes_everything(tmp_path: Path) -> None:
    model = str(SAMPLES / "torch_unet.onnx")
    res = _console("summary", model, "--format", "json", "--all")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)  # complete: the last byte arrived
    assert doc["model"]["path"] == model and doc["layers"]
    out = tmp_path / "report.md"
    res = _console("summary", model, "--format", "markdown", "-o", str(out))
    assert res.returncode == 0 and res.stdout == ""
    assert out.read_text("utf-8").startswith("### cnnprobe summary")
    assert out.read_text("utf-8").endswith("\n")


def test_console_script_exit_codes(tmp_path: Path) -> None:
    res = _console("summary", str(tmp_path / "missing.onnx"))
    assert res.returncode == 2 and res.stdout == ""
    assert len(res.stderr.strip().splitlines()) == 1 and "missing.onnx" in res.stderr
    assert _console("no-such-command").returncode == 2
    res = _console("--version")
    assert res.returncode == 0 and res.stdout.startswith("cnnprobe ")
    res = _console("--help")
    assert res.returncode == 0 and "summary" in res.stdout and "shift-test" in res.stdout


def test_analysis_leaves_the_collector_as_it_found_it() -> None:
    """``analyze`` pauses the cyclic garbage collector and restores it, and keeps a caller's own
    frozen objects frozen."""
    import gc

    from cnnprobe import analyze

    assert gc.isenabled()
    analyze(MNIST)
    assert gc.isenabled()
    gc.disable()
    try:
        analyze(MNIST)
        assert not gc.isenabled()
    finally:
        gc.enable()
    keep = [object() for _ in range(3)]
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        analyze(MNIST)
        assert gc.get_freeze_count() == frozen and gc.isenabled()
    finally:
        gc.unfreeze()
    del keep
