"""shift-test through the CLI: formats, the printed protocol, inputs, plots, and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from typer.testing import CliRunner

from cnnprobe.cli import app
from paths import SAMPLES
from test_shift_oracle import wrap_net

runner = CliRunner()
POOLED = str(SAMPLES / "mnist_pooled.onnx")


def run(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["shift-test", *args])


def check_error(args: list[str], needle: str, path: str | None = None) -> None:
    res = run(*args)
    assert res.exit_code == 2, res.stdout
    assert res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("cnnprobe: error: ")
    assert needle in lines[0], lines[0]
    if path is not None:
        assert path in lines[0]


@pytest.fixture(scope="module")
def wrap_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    return wrap_net(tmp_path_factory.mktemp("cli") / "wrap.onnx")


def test_table_prints_the_protocol_and_the_measures(wrap_model: str) -> None:
    res = run(wrap_model, "--mode", "roll", "-n", "3", "--seed", "7")
    assert res.exit_code == 0, res.stderr
    assert res.stderr == ""  # no progress bar when stderr is not a terminal
    out = res.stdout
    for needle in (
        "mode roll (circular)",
        "sweep along x, y, diagonal, 0 to 4×4 px, step 1",
        "pink noise (1/f amplitude), 3 inputs",
        "36 comparisons, 39 inferences in batches of 16; seed 7",
        "equivariance period P = 4×4",
        "normalized sensitivity (NS)",
        "top-1 agreement",
        "Wilson",
        "4 *",
    ):
        assert needle in out, needle


def test_pad_fill_is_printed(wrap_model: str) -> None:
    res = run(wrap_model, "--mode", "pad", "--fill", "reflect", "-n", "2", "--shifts", "random")
    assert res.exit_code == 0, res.stderr
    assert "pad (linear; reflect fill)" in res.stdout
    assert "random pairs of offsets in [0, 4×4) px, 1 pair(s) per input" in res.stdout


def test_json_report(wrap_model: str) -> None:
    res = run(wrap_model, "--mode", "roll", "-n", "2", "-f", "json", "--layers", "conv2,conv3")
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["schema_version"].startswith("1.") and doc["kind"] == "shift-test"
    assert doc["geometry"]["period"] == [4, 4]
    p = doc["protocol"]
    assert (p["mode"], p["shift_set"], p["count"], p["seed"], p["fill"]) == (
        "roll",
        "sweep",
        2,
        0,
        None,
    )
    assert p["inferences"] == 2 * 13
    assert [la["name"] for la in doc["layers"]] == ["conv2", "conv3"]
    keys = {m["key"] for m in doc["output"]["measures"]}
    assert {"ns", "agreement", "flip_rate", "mac", "tv", "js"} <= keys
    on = [s for s in doc["per_shift"] if s["on_grid"]]
    assert on and all(s["sensitivity"] < 1e-5 for s in on)


SHIFT_SCHEMA = json.loads(
    __import__("importlib.resources").resources.files("cnnprobe")
    .joinpath("schema/shift-test.schema.json")
    .read_text("utf-8")
)


@pytest.mark.parametrize(
    "model, args",
    [
        pytest.param("wrap", ["--mode", "roll", "--layers", "all"], id="roll-layers"),
        pytest.param("wrap", ["--mode", "pad", "--fill", "reflect", "--shifts", "random"],
                     id="pad-random"),
        pytest.param("wrap", ["--mode", "fourier", "--step", "0.5", "--max-shift", "2"],
                     id="fourier-subpixel"),
        pytest.param("wrap", ["--shifts", "grid", "--max-shift", "2"], id="crop-grid"),
        pytest.param("pooled", [], id="classifier"),
        pytest.param("keras", ["--mode", "roll"], id="nhwc-keras-export"),
    ],
)
def test_json_report_follows_its_schema(wrap_model: str, model: str, args: list[str]) -> None:
    import jsonschema

    path = {
        "wrap": wrap_model,
        "pooled": POOLED,
        "keras": str(SAMPLES / "keras_mnist_pooled.onnx"),
    }[model]
    res = run(path, "-n", "2", "-f", "json", *args)
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    jsonschema.validate(doc, SHIFT_SCHEMA, cls=jsonschema.Draft202012Validator)
    if "--layers" in args:
        assert doc["layers"]


def test_same_seed_same_numbers_other_seed_other_numbers(wrap_model: str) -> None:
    def numbers(*extra: str) -> list[object]:
        doc = json.loads(run(wrap_model, "-n", "2", "-f", "json", *extra).stdout)
        return [m["all"]["value"] for m in doc["output"]["measures"]]

    assert numbers("--seed", "3") == numbers("--seed", "3")
    assert numbers("--seed", "3") != numbers("--seed", "4")


def test_markdown_report(wrap_model: str) -> None:
    res = run(wrap_model, "-n", "2", "-f", "markdown", "--layers", "all")
    assert res.exit_code == 0
    assert res.stdout.startswith("### cnnprobe shift-test")
    assert "| measure" in res.stdout and "**Feature maps" in res.stdout


def test_every_format_choice_has_a_reporter() -> None:
    from cnnprobe.commands.common import Format
    from cnnprobe.shift.report import FORMATS

    assert {f.value for f in Format} == set(FORMATS)


def test_output_file_and_plot(wrap_model: str, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    report, png = tmp_path / "r.md", tmp_path / "plot.png"
    res = run(
        wrap_model,
        "-n",
        "2",
        "--shifts",
        "grid",
        "--layers",
        "all",
        "-f",
        "markdown",
        "-o",
        str(report),
        "--plot",
        str(png),
    )
    assert res.exit_code == 0, res.stderr
    assert res.stdout == "" and report.read_text().startswith("### cnnprobe shift-test")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_image_folder_and_npy_inputs(tmp_path: Path) -> None:
    Image = pytest.importorskip("PIL.Image")
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for k in range(3):
        arr = (rng.random((40, 50, 3)) * 255).astype(np.uint8)
        Image.fromarray(arr).save(folder / f"img{k}.png")
    (folder / "notes.txt").write_text("not an image")
    res = run(POOLED, "--inputs", str(folder), "--mean", "0.5", "--std", "0.25", "-f", "json")
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["protocol"]["input_kind"] == "images" and doc["protocol"]["count"] == 3
    assert doc["protocol"]["mean"] == [0.5] and doc["protocol"]["canvas"] == [32, 32]
    npy = tmp_path / "x.npy"
    np.save(npy, rng.random((4, 1, 28, 28)).astype(np.float32))
    res = run(POOLED, "--inputs", str(npy), "--mode", "roll", "-n", "3", "-f", "json")
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["protocol"]["count"] == 3


def test_progress_bar_writes_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    from cnnprobe.commands.shift_test import _Progress

    bar = _Progress()
    bar(5, 10)
    bar.close()
    err = capsys.readouterr().err
    assert "5/10 inferences" in err and "#" * 15 in err


def test_the_command_module_loads_no_heavy_module() -> None:
    code = (
        "import sys, cnnprobe.commands.shift_test; "
        "print([m for m in ('numpy', 'onnxruntime', 'keras', 'matplotlib', 'PIL') "
        "if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------------------------------------
# bad input: one line, exit 2


def _conv(
    tmp_path: Path,
    name: str,
    dims: list[object],
    elem: int = TensorProto.FLOAT,
    second_input: bool = False,
) -> str:
    x = helper.make_tensor_value_info("x", elem, dims)
    inputs = [x]
    nodes = []
    src = "x"
    if elem != TensorProto.FLOAT:
        nodes.append(helper.make_node("Cast", ["x"], ["xf"], to=TensorProto.FLOAT))
        src = "xf"
    nodes.append(helper.make_node("Conv", [src, "w"], ["y"], kernel_shape=[3, 3]))
    if second_input:
        inputs.append(helper.make_tensor_value_info("x2", TensorProto.FLOAT, dims))
        nodes.append(helper.make_node("Conv", ["x2", "w"], ["y2"], kernel_shape=[3, 3]))
        nodes.append(helper.make_node("Add", ["y", "y2"], ["y3"]))
    out = helper.make_tensor_value_info("y3" if second_input else "y", TensorProto.FLOAT, None)
    w = numpy_helper.from_array(np.full((1, 1, 3, 3), 0.1, np.float32), "w")
    graph = helper.make_graph(nodes, "g", inputs, [out], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # what opset 17 needs; onnxruntime lags behind onnx's newest
    path = tmp_path / name
    path.write_bytes(model.SerializeToString())
    return str(path)


def test_unknown_spatial_dims_ask_for_input_shape(tmp_path: Path) -> None:
    path = _conv(tmp_path, "sym.onnx", ["N", 1, "H", "W"])
    check_error([path], "--input-shape", path)
    res = run(path, "--input-shape", "1x1x16x16", "-n", "2")
    assert res.exit_code == 0, res.stderr


def test_several_inputs_ask_for_input(tmp_path: Path) -> None:
    path = _conv(tmp_path, "two.onnx", [1, 1, 8, 8], second_input=True)
    check_error([path], "--input", path)
    check_error([path, "--input", "x"], "other inputs ('x2')", path)


def test_non_float_input(tmp_path: Path) -> None:
    path = _conv(tmp_path, "u8.onnx", [1, 1, 8, 8], elem=TensorProto.UINT8)
    check_error([path], "tensor(uint8)", path)


def test_unreadable_image(tmp_path: Path) -> None:
    pytest.importorskip("PIL")
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    check_error([POOLED, "--inputs", str(bad)], "cannot read image", str(bad))
    check_error([POOLED, "--inputs", str(tmp_path / "missing")], "no such input")
    empty = tmp_path / "empty"
    empty.mkdir()
    check_error([POOLED, "--inputs", str(empty)], "no image files")


def test_npy_of_the_wrong_shape(tmp_path: Path) -> None:
    npy = tmp_path / "x.npy"
    np.save(npy, np.zeros((2, 3, 28, 28), np.float32))
    check_error([POOLED, "--inputs", str(npy)], "channels", str(npy))
    np.save(npy, np.zeros((2, 1, 28, 28), np.float32))
    check_error([POOLED, "--inputs", str(npy)], "crop mode", str(npy))


def test_onnxruntime_failures(tmp_path: Path) -> None:
    # a custom operator: the analysis needs --stride, then onnxruntime cannot load it
    custom = str(SAMPLES / "custom_op.onnx")
    check_error([custom], "--stride", custom)
    check_error([custom, "--stride", "2"], "onnxruntime cannot load", custom)
    # a fixed input size that --input-shape contradicts: onnxruntime refuses to run
    fixed = _conv(tmp_path, "fixed.onnx", [1, 1, 8, 8])
    check_error([fixed, "--input-shape", "1x1x12x12"], "onnxruntime", fixed)
    check_error([fixed, "--provider", "NoSuchExecutionProvider"], "not available")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--fill", "zero"], "--fill applies to --mode pad"),
        (["--step", "0.5"], "only --mode fourier"),
        (["--max-shift", "0"], "--max-shift"),
        (["--mean", "0.1,0.2"], "--mean has 2 values"),
        (["--count", "0"], "--count"),
        (["--layers", "nosuch"], "no layer or tensor named 'nosuch'"),
        (["--layers", "softmax"], "not a spatial feature map"),
        (["--target", "nosuch"], "--target 'nosuch'"),
        (["--stride", "2x2x2"], "--stride has 3 values"),
        (["--inputs", "pink", "--inputs", "white"], "cannot be combined"),
    ],
)
def test_bad_options(args: list[str], needle: str) -> None:
    check_error([POOLED, *args], needle)


def test_missing_and_unsupported_files(tmp_path: Path) -> None:
    check_error([str(tmp_path / "nope.onnx")], "no such file")
    other = tmp_path / "model.pt"
    other.write_bytes(b"\x00" * 16)
    check_error([str(other)], "unsupported file type")


def test_check_rule_bridge(wrap_model: str) -> None:
    from types import SimpleNamespace

    from cnnprobe.errors import UsageError
    from cnnprobe.shift import ShiftOptions, run_shift_test
    from cnnprobe.shift.check_bridge import measure_for_check

    ctx = SimpleNamespace(path=wrap_model, input_name=None, input_shape=None, layout="auto")
    params = {"measure": "normalized_sensitivity", "mode": "roll", "inputs": 2, "seed": 1}
    value, protocol = measure_for_check(ctx, params)
    direct = run_shift_test(ShiftOptions(wrap_model, mode="roll", count=2, seed=1))
    assert value == direct.output.measure("ns").all.value  # type: ignore[union-attr]
    assert protocol.startswith("roll, sweep to 4x4 px, 2 pink inputs")
    dense = SimpleNamespace(
        path=str(SAMPLES / "mnist_convnet.onnx"), input_name=None, input_shape=None, layout="auto"
    )
    with pytest.raises(UsageError, match="equivariance_error"):
        measure_for_check(dense, {"measure": "normalized_sensitivity", "inputs": 2})
    value, _ = measure_for_check(dense, {"measure": "equivariance_error", "inputs": 2})
    assert value < 1e-12  # unpadded convolutions, crop mode: exact on the overlap
    with pytest.raises(UsageError, match="flip_rate is 0 by construction"):
        measure_for_check(
            SimpleNamespace(path=POOLED, input_name=None, input_shape=None, layout="auto"),
            {"measure": "flip_rate", "inputs": 2},
        )
