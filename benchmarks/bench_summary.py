"""Benchmark ``cnnprobe summary`` against the performance targets of the issue.

Run ``python benchmarks/bench_summary.py`` (``--quick`` for fewer repetitions). Models are
generated in a temporary directory with ``onnx.helper`` and removed afterwards; nothing is written
to the repository. The script prints a table with PASS/FAIL per target and exits 1 if any target
fails.

Targets:

1. ``cnnprobe summary FILE --format json`` of a ~1,700-node model, in a fresh process, takes at
   most 0.5 s (median wall time), and is not slower than a fresh process doing
   ``onnx.load`` + ``onnx.shape_inference.infer_shapes`` of the same file (ratio <= 1.0).
2. Linear cost: ``cnnprobe.analyze`` of a 20,000-node model takes at most 10x a 2,000-node one.
3. ``cnnprobe --help`` takes at most 0.3 s, and onnx, onnxruntime and numpy are not imported.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

# --------------------------------------------------------------------------------------------
# limits (from the issue)

E2E_LIMIT_S = 0.5
BASELINE_RATIO_LIMIT = 1.0
LINEAR_RATIO_LIMIT = 10.0
HELP_LIMIT_S = 0.3
HEAVY_MODULES = ("onnx", "onnxruntime", "numpy")
#: Also reported (not a target) when loaded by ``cnnprobe --help``.
OTHER_MODULES = ("google.protobuf", "h5py", "tabulate")

BASELINE_CODE = "import sys, onnx; m = onnx.load(sys.argv[1]); onnx.shape_inference.infer_shapes(m)"
HELP_MODULES_CODE = """\
import json, sys
sys.argv = ["cnnprobe", "--help"]
import cnnprobe.cli
try:
    cnnprobe.cli.main()
except SystemExit:
    pass
names = json.loads(sys.stdin.read())
print("@@MODULES@@" + json.dumps([n for n in names if n in sys.modules]))
"""


# --------------------------------------------------------------------------------------------
# model generator: a ResNet-152-like bottleneck network whose depth sets the node count

WIDTH = 16  # channels between blocks
MID = 4  # bottleneck channels
CLASSES = 10
POOL_EVERY = 64  # a stride-1 MaxPool after every POOL_EVERY-th block
STAGE_BLOCKS = (3, 4, 6, 3)  # ResNet-50 layout; extra depth goes into stage 3 (as ResNet-152)
STAGE_STRIDES = (1, 2, 2, 2)
FIXED_NODES = 4 + 2 * sum(s != 1 for s in STAGE_STRIDES) + 3  # stem, projections, head


def blocks_for(target_nodes: int) -> int:
    """Number of bottleneck blocks that gives about ``target_nodes`` nodes."""
    return max(sum(STAGE_BLOCKS), round((target_nodes - FIXED_NODES) / (10 + 1 / POOL_EVERY)))


def make_resnet(blocks: int, name: str) -> object:
    """A valid ResNet-like ONNX model (input 1x3x224x224) with ``blocks`` bottleneck blocks.

    Each block is Conv1x1-BN-Relu-Conv3x3-BN-Relu-Conv1x1-BN-Add-Relu (10 nodes); the first block
    of a strided stage has a Conv1x1+BN projection shortcut. Strides occur only in the first three
    stage transitions (224 -> 112 -> 56 -> 28 -> 14 -> 7), every other block is stride 1 with
    padding, so arbitrary depth stays valid. Weights are real-shaped float32 initializers with
    small channel counts, so the file stays a few MB even at 20,000 nodes.
    """
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []

    def weight(wname: str, shape: Sequence[int]) -> str:
        arr = rng.standard_normal(shape, dtype=np.float32) * 0.1
        inits.append(numpy_helper.from_array(arr, wname))
        return wname

    def conv(x: str, pfx: str, cin: int, cout: int, k: int, stride: int = 1) -> str:
        out = f"{pfx}/conv_out"
        w = weight(f"{pfx}.weight", (cout, cin, k, k))
        nodes.append(
            helper.make_node(
                "Conv",
                [x, w],
                [out],
                name=f"{pfx}/Conv",
                kernel_shape=[k, k],
                strides=[stride, stride],
                pads=[k // 2] * 4,
                dilations=[1, 1],
                group=1,
            )
        )
        return out

    def bn(x: str, pfx: str, c: int) -> str:
        out = f"{pfx}/bn_out"
        ins = [x] + [weight(f"{pfx}.{p}", (c,)) for p in ("scale", "bias", "mean", "var")]
        nodes.append(
            helper.make_node("BatchNormalization", ins, [out], name=f"{pfx}/BN", epsilon=1e-5)
        )
        return out

    def relu(x: str, pfx: str) -> str:
        out = f"{pfx}/relu_out"
        nodes.append(helper.make_node("Relu", [x], [out], name=f"{pfx}/Relu"))
        return out

    def maxpool(x: str, pfx: str, stride: int) -> str:
        out = f"{pfx}/pool_out"
        nodes.append(
            helper.make_node(
                "MaxPool",
                [x],
                [out],
                name=f"{pfx}/MaxPool",
                kernel_shape=[3, 3],
                strides=[stride, stride],
                pads=[1, 1, 1, 1],
            )
        )
        return out

    # stem: 224 -> 112 -> 56
    x = relu(bn(conv("input", "stem", 3, WIDTH, 7, 2), "stem.bn", WIDTH), "stem")
    x = maxpool(x, "stem", 2)

    counts = list(STAGE_BLOCKS)
    counts[2] += max(0, blocks - sum(STAGE_BLOCKS))
    k = 0
    for s, (count, stride) in enumerate(zip(counts, STAGE_STRIDES)):
        for b in range(count):
            pfx = f"layer{s + 1}.{b}"
            st = stride if b == 0 else 1
            y = relu(bn(conv(x, f"{pfx}.conv1", WIDTH, MID, 1), f"{pfx}.bn1", MID), f"{pfx}.a")
            y = conv(y, f"{pfx}.conv2", MID, MID, 3, st)
            y = relu(bn(y, f"{pfx}.bn2", MID), f"{pfx}.b")
            y = bn(conv(y, f"{pfx}.conv3", MID, WIDTH, 1), f"{pfx}.bn3", WIDTH)
            short = x
            if st != 1:
                short = bn(conv(x, f"{pfx}.down", WIDTH, WIDTH, 1, st), f"{pfx}.down.bn", WIDTH)
            nodes.append(helper.make_node("Add", [y, short], [f"{pfx}/add_out"], name=f"{pfx}/Add"))
            x = relu(f"{pfx}/add_out", f"{pfx}.c")
            k += 1
            if k % POOL_EVERY == 0:
                x = maxpool(x, pfx, 1)

    # head
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["gap_out"], name="head/GAP"))
    nodes.append(helper.make_node("Flatten", ["gap_out"], ["flat_out"], name="head/Flatten"))
    w = weight("fc.weight", (CLASSES, WIDTH))
    bias = weight("fc.bias", (CLASSES,))
    nodes.append(
        helper.make_node("Gemm", ["flat_out", w, bias], ["logits"], name="head/Gemm", transB=1)
    )

    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 224, 224])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, CLASSES])],
        initializer=inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="bench_summary"
    )
    model.ir_version = 8
    return model


def write_model(directory: Path, target_nodes: int) -> Path:
    """Generate, check and save a model of about ``target_nodes`` nodes; return its path."""
    import onnx

    model = make_resnet(blocks_for(target_nodes), f"resnet_{target_nodes}")
    assert isinstance(model, onnx.ModelProto)
    onnx.checker.check_model(model)
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    out_dims = [d.dim_value for d in inferred.graph.output[0].type.tensor_type.shape.dim]
    if out_dims != [1, CLASSES]:
        raise RuntimeError(f"generated model has output shape {out_dims}")
    path = directory / f"resnet_{len(model.graph.node)}.onnx"
    onnx.save(model, path)
    return path


def node_count(path: Path) -> int:
    import onnx

    return len(onnx.load(path, load_external_data=False).graph.node)


# --------------------------------------------------------------------------------------------
# timing


@dataclass
class Timing:
    times: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def low(self) -> float:
        return min(self.times)


class CommandFailed(RuntimeError):
    pass


def time_command(cmd: Sequence[str], runs: int, check_json: bool = False) -> Timing:
    """Median wall time of a fresh process (one untimed warm-up run first)."""
    times = []
    for k in range(runs + 1):
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        dt = time.perf_counter() - t0
        if proc.returncode != 0:
            first = (proc.stderr.strip().splitlines() or ["(no stderr)"])[-1]
            raise CommandFailed(f"{' '.join(cmd)} exited {proc.returncode}: {first}")
        if k == 0:
            if check_json:
                json.loads(proc.stdout)
            continue
        times.append(dt)
    return Timing(times)


def time_call(fn: Callable[[], object], runs: int) -> Timing:
    """Median time of an in-process call (one untimed warm-up call first)."""
    fn()
    times = []
    for _ in range(runs):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return Timing(times)


def cnnprobe_command() -> list[str]:
    """The console script next to this interpreter, else ``python -m cnnprobe.cli``."""
    script = Path(sys.executable).parent / ("cnnprobe.exe" if os.name == "nt" else "cnnprobe")
    if script.exists():
        return [str(script)]
    found = shutil.which("cnnprobe")
    return [found] if found else [sys.executable, "-m", "cnnprobe.cli"]


def modules_after_help(names: Sequence[str]) -> list[str]:
    """Which of ``names`` are in ``sys.modules`` after ``cnnprobe --help`` has run."""
    proc = subprocess.run(
        [sys.executable, "-c", HELP_MODULES_CODE],
        input=json.dumps(list(names)),
        capture_output=True,
        text=True,
        check=True,
    )
    line = next(x for x in proc.stdout.splitlines() if x.startswith("@@MODULES@@"))
    return list(json.loads(line.removeprefix("@@MODULES@@")))


def slowest_imports(module: str, top: int = 3) -> list[tuple[str, float]]:
    """The ``top`` slowest top-level imports (cumulative) of ``import module`` (-X importtime)."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = []
    for line in proc.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        name = parts[2].rstrip()
        depth = (len(name) - len(name.lstrip())) // 2
        if depth <= 1:
            rows.append((name.strip(), int(parts[1]) / 1e6))
    return sorted(rows, key=lambda r: -r[1])[:top]


# --------------------------------------------------------------------------------------------
# output


@dataclass
class Target:
    key: str
    what: str
    measured: float | None
    limit: float
    unit: str
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.measured is not None and self.measured <= self.limit


def fmt_value(value: float | None, unit: str) -> str:
    if value is None:
        return "error"
    if unit == "s":
        return f"{value * 1000:.0f} ms" if value < 10 else f"{value:.1f} s"
    if unit == "x":
        return f"{value:.2f}x"
    return f"{value:g}"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> str:
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        cells = [
            str(c).rjust(w) if i in right else str(c).ljust(w)
            for i, (c, w) in enumerate(zip(row, widths))
        ]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def section(title: str) -> None:
    print(f"\n{title}", flush=True)


# --------------------------------------------------------------------------------------------
# main


def zoo_models() -> list[Path]:
    import onnx

    light = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
    return sorted(light.glob("*.onnx"))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (3 and 2)")
    parser.add_argument("--keep", metavar="DIR", help="write the generated models to DIR")
    args = parser.parse_args(argv)
    proc_runs, call_runs = (3, 2) if args.quick else (9, 5)

    import onnx

    import cnnprobe

    print(
        f"cnnprobe {cnnprobe.__version__} benchmark: python {platform.python_version()}, "
        f"onnx {onnx.__version__}, {platform.machine()} x {os.cpu_count()} CPU(s); "
        f"median of {proc_runs} fresh processes / {call_runs} in-process calls"
    )
    cli = cnnprobe_command()
    targets: list[Target] = []
    timings: list[list[str]] = []

    def record(what: str, model: str, t: Timing | None, err: str = "") -> None:
        if t is None:
            timings.append([what, model, "error", "", err])
        else:
            timings.append([what, model, fmt_value(t.median, "s"), fmt_value(t.low, "s"), ""])

    def analyze_call(path: Path) -> Callable[[], object]:
        return lambda: cnnprobe.analyze(path)

    def baseline_call(path: Path) -> Callable[[], object]:
        return lambda: onnx.shape_inference.infer_shapes(onnx.load(path))

    with tempfile.TemporaryDirectory(prefix="cnnprobe-bench-") as tmp:
        directory = Path(args.keep) if args.keep else Path(tmp)
        directory.mkdir(parents=True, exist_ok=True)
        section("Generating models ...")
        models = {n: write_model(directory, n) for n in (1_700, 2_000, 20_000)}
        zoo = zoo_models()
        model_rows = [
            [p.name, f"{node_count(p):,}", f"{p.stat().st_size / 1e6:.2f} MB", "generated"]
            for p in models.values()
        ] + [
            [p.name, f"{node_count(p):,}", f"{p.stat().st_size / 1e6:.2f} MB", "onnx zoo"]
            for p in zoo
        ]
        print(table(["model", "nodes", "size", "source"], model_rows, {1, 2}))

        # --- target 1: end to end on ~1,700 nodes, against onnx.load + infer_shapes
        section("Target 1: summary of a ~1,700-node model ...")
        t1_models = [models[1_700]] + [p for p in zoo if p.name == "light_densenet121.onnx"]
        for k, path in enumerate(t1_models):
            label = f"{node_count(path):,} nodes ({path.name})"
            keys = ("1a", "1b") if k == 0 else ("1c", "1d")
            ours: Timing | None = None
            err = ""
            try:
                ours = time_command(
                    [*cli, "summary", str(path), "--format", "json"], proc_runs, check_json=True
                )
            except CommandFailed as exc:
                err = str(exc)
            base = time_command([sys.executable, "-c", BASELINE_CODE, str(path)], proc_runs)
            record("cnnprobe summary --format json (process)", path.name, ours, err)
            record("onnx.load + infer_shapes (process)", path.name, base)
            try:
                record(
                    "cnnprobe.analyze (in-process)",
                    path.name,
                    time_call(analyze_call(path), call_runs),
                )
            except Exception as exc:
                record("cnnprobe.analyze (in-process)", path.name, None, repr(exc))
            record(
                "onnx.load + infer_shapes (in-process)",
                path.name,
                time_call(baseline_call(path), call_runs),
            )
            targets.append(
                Target(
                    keys[0],
                    f"summary {label}, fresh process",
                    ours.median if ours else None,
                    E2E_LIMIT_S,
                    "s",
                    err,
                )
            )
            targets.append(
                Target(
                    keys[1],
                    "  ... ours / (onnx.load + infer_shapes), fresh process",
                    ours.median / base.median if ours else None,
                    BASELINE_RATIO_LIMIT,
                    "x",
                    f"baseline {fmt_value(base.median, 's')}",
                )
            )

        # --- target 2: linear cost
        section("Target 2: linear cost, 2,000 vs 20,000 nodes ...")
        small_path, big_path = models[2_000], models[20_000]
        small = time_call(analyze_call(small_path), call_runs)
        record("cnnprobe.analyze (in-process)", small_path.name, small)
        big = time_call(analyze_call(big_path), max(2, call_runs // 2))
        record("cnnprobe.analyze (in-process)", big_path.name, big)
        for path in (small_path, big_path):
            record(
                "onnx.load + infer_shapes (in-process)",
                path.name,
                time_call(baseline_call(path), max(2, call_runs // 2)),
            )
        n_small, n_big = node_count(small_path), node_count(big_path)
        targets.append(
            Target(
                "2",
                f"analyze {n_big:,} nodes / {n_small:,} nodes",
                big.median / small.median,
                LINEAR_RATIO_LIMIT,
                "x",
                f"{fmt_value(small.median, 's')} -> {fmt_value(big.median, 's')}, "
                f"node ratio {n_big / n_small:.1f}",
            )
        )

        # --- realistic models: the onnx zoo ("light" models shipped with the onnx package)
        section("ONNX zoo models ...")
        for path in zoo:
            try:
                record(
                    "cnnprobe.analyze (in-process)",
                    path.name,
                    time_call(analyze_call(path), call_runs),
                )
            except Exception as exc:
                record("cnnprobe.analyze (in-process)", path.name, None, repr(exc)[:60])

    # --- target 3: start-up
    section("Target 3: cnnprobe --help ...")
    help_t = time_command([*cli, "--help"], proc_runs)
    record("cnnprobe --help (process)", "-", help_t)
    loaded = modules_after_help(HEAVY_MODULES + OTHER_MODULES)
    heavy = [m for m in loaded if m in HEAVY_MODULES]
    targets.append(Target("3a", "cnnprobe --help, fresh process", help_t.median, HELP_LIMIT_S, "s"))
    targets.append(
        Target(
            "3b",
            f"heavy modules imported by --help ({', '.join(HEAVY_MODULES)})",
            float(len(heavy)),
            0,
            "n",
            "loaded: " + (", ".join(loaded) if loaded else "none"),
        )
    )
    slow = ", ".join(f"{n} {t * 1000:.0f} ms" for n, t in slowest_imports("cnnprobe.cli"))

    section("Timings")
    print(table(["what", "model", "median", "min", "note"], timings, {2, 3}))
    print(f"slowest imports of cnnprobe.cli (-X importtime, cumulative): {slow}")

    section("Targets")
    rows = [
        [
            t.key,
            t.what,
            fmt_value(t.measured, t.unit),
            f"<= {fmt_value(t.limit, t.unit)}",
            "PASS" if t.ok else "FAIL",
            t.note,
        ]
        for t in targets
    ]
    print(table(["#", "target", "measured", "limit", "result", "note"], rows, {2}))
    failed = [t.key for t in targets if not t.ok]
    print(
        f"\n{len(targets) - len(failed)}/{len(targets)} targets pass"
        + (f"; FAILED: {', '.join(failed)}" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
