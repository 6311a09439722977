"""Benchmark ``cnnprobe shift-test`` against raw onnxruntime on a ResNet-50-sized model.

Run ``python benchmarks/bench_shift.py`` (``--quick`` for one repetition, ``--size 112`` for a
smaller input). A ResNet-50 (bottleneck blocks 3-4-6-3, widths 64 to 2048, 1000 classes, about
25.6 M float32 weights, random He-initialised, no batch norm) is generated with ``onnx.helper`` in
a temporary directory and removed afterwards; nothing is written to the repository.

Target (issue 4): the total time of a default ``cnnprobe shift-test`` is at most 1.2x the time raw
onnxruntime needs for the same inferences in the same batches. Both sides run in fresh processes
and are timed from process start to exit:

- shift-test: ``cnnprobe shift-test MODEL --quiet --format json`` (defaults: crop mode, sweep along
  x, y and the diagonal from 0 to the period P = 32, pink noise, batches of 16); the number of
  inferences and the batch size are read from its JSON;
- raw: a Python process that imports numpy and onnxruntime, creates a CPU session for the file
  and runs the same number of inferences in the same batch sizes on pre-generated float32 arrays.

The two run back to back, ``--runs`` times (5; 1 with ``--quick``); the target is judged on the
median of the per-run ratios, which is robust to load that drifts over the minutes of the run.
The script prints both timings (median and minimum), the ratios, the inference-only time of the
raw side, and shift-test's in-process time; the exit status is 1 when the target fails.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RATIO_LIMIT = 1.2

RAW_CODE = """\
import sys, time, json
t0 = time.perf_counter()
import numpy as np, onnxruntime as ort
path, total, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
opts = ort.SessionOptions(); opts.log_severity_level = 3
sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
name = sess.get_inputs()[0].name
shape = [int(d) for d in sys.argv[4].split("x")]
rng = np.random.default_rng(0)
full = rng.random((batch, *shape[1:]), dtype=np.float32)
t1 = time.perf_counter()
done = 0
while done < total:
    k = min(batch, total - done)
    sess.run(None, {name: full[:k]})
    done += k
t2 = time.perf_counter()
print(json.dumps({"setup_s": t1 - t0, "inference_s": t2 - t1}))
"""


def make_resnet50(path: Path, size: int, classes: int = 1000, seed: int = 0) -> None:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    nodes: list[Any] = []
    inits: list[Any] = []

    def weight(name: str, shape: tuple[int, ...], fan_in: float) -> str:
        arr = rng.standard_normal(shape, dtype=np.float32) * np.float32(np.sqrt(2.0 / fan_in))
        inits.append(numpy_helper.from_array(arr, name))
        return name

    def bias(name: str, c: int) -> str:
        inits.append(numpy_helper.from_array(np.zeros(c, np.float32), name))
        return name

    def add(op: str, ins: list[str], name: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(op, ins, [name], name=name, **attrs))
        return name

    def conv(
        x: str,
        name: str,
        cin: int,
        cout: int,
        k: int,
        s: int = 1,
        relu: bool = True,
        gain: float = 1.0,
    ) -> str:
        w = weight(f"{name}.w", (cout, cin, k, k), cin * k * k / gain)
        y = add(
            "Conv",
            [x, w, bias(f"{name}.b", cout)],
            name,
            kernel_shape=[k, k],
            strides=[s, s],
            pads=[k // 2] * 4,
        )
        return add("Relu", [y], f"{name}.relu") if relu else y

    x = conv("input", "conv1", 3, 64, 7, 2)
    x = add("MaxPool", [x], "maxpool", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    cin = 64
    for si, (blocks, mid, stride) in enumerate(
        [(3, 64, 1), (4, 128, 2), (6, 256, 2), (3, 512, 2)], 1
    ):
        for b in range(blocks):
            p, st, cout = f"layer{si}.{b}", (stride if b == 0 else 1), mid * 4
            y = conv(x, f"{p}.conv1", cin, mid, 1)
            y = conv(y, f"{p}.conv2", mid, mid, 3, st)
            y = conv(y, f"{p}.conv3", mid, cout, 1, relu=False, gain=0.2)
            short = conv(x, f"{p}.down", cin, cout, 1, st, relu=False) if b == 0 else x
            x = add("Relu", [add("Add", [y, short], f"{p}.add")], f"{p}.relu")
            cin = cout
    x = add("Flatten", [add("GlobalAveragePool", [x], "avgpool")], "flatten")
    w = weight("fc.w", (classes, cin), cin)
    nodes.append(
        helper.make_node("Gemm", [x, w, bias("fc.b", classes)], ["logits"], name="fc", transB=1)
    )
    graph = helper.make_graph(
        nodes,
        "resnet50",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", classes])],
        initializer=inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="bench_shift"
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)


def cnnprobe_command() -> list[str]:
    exe = Path(sys.executable).with_name("cnnprobe")
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-m", "cnnprobe.cli"]


def timed(cmd: list[str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr}")
    return elapsed, proc.stdout


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one repetition")
    ap.add_argument("--runs", type=int, default=5, help="repetitions (default 5)")
    ap.add_argument("--size", type=int, default=224, help="input size (default 224)")
    ap.add_argument("--extra", default="", help="extra shift-test options, e.g. '--shifts random'")
    args = ap.parse_args(argv)
    runs = 1 if args.quick else max(1, args.runs)
    tmp = Path(tempfile.mkdtemp(prefix="bench_shift_"))
    try:
        path = tmp / "resnet50.onnx"
        print(f"generating a ResNet-50 at {args.size}px ...", file=sys.stderr)
        make_resnet50(path, args.size)
        print(
            f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
            f"python {platform.python_version()}"
        )
        print(
            f"model: {path.name}, {path.stat().st_size / 1e6:.1f} MB, input 1x3x{args.size}x"
            f"{args.size}"
        )
        cmd = [
            *cnnprobe_command(),
            "shift-test",
            str(path),
            "--quiet",
            "--format",
            "json",
            *args.extra.split(),
        ]
        shift_times: list[float] = []
        raw_times: list[float] = []
        raw_inference: list[float] = []
        in_process: list[float] = []
        doc: dict[str, Any] = {}
        for k in range(runs):
            print(f"run {k + 1}/{runs}: shift-test ...", file=sys.stderr)
            t, out = timed(cmd)
            shift_times.append(t)
            doc = json.loads(out)
            in_process.append(float(doc["elapsed_s"]))
            total = doc["protocol"]["inferences"]
            batch = doc["protocol"]["batch_size"]
            print(f"run {k + 1}/{runs}: raw onnxruntime ...", file=sys.stderr)
            t, out = timed(
                [
                    sys.executable,
                    "-c",
                    RAW_CODE,
                    str(path),
                    str(total),
                    str(batch),
                    f"1x3x{args.size}x{args.size}",
                ]
            )
            raw_times.append(t)
            raw_inference.append(json.loads(out)["inference_s"])
        p = doc["protocol"]
        print(
            f"shift-test protocol: mode {p['mode']}, {p['shift_set']} to "
            f"{p['max_shift']} px, {p['count']} inputs ({p['input_kind']}), "
            f"{p['inferences']} inferences in batches of {p['batch_size']}"
        )
        ns = next(m for m in doc["output"]["measures"] if m["key"] == "ns")["all"]["value"]
        print(f"shift-test result: period {doc['geometry']['period']}, NS {ns:.4f}")
        med_s, med_r = statistics.median(shift_times), statistics.median(raw_times)
        print(f"shift-test (fresh process): median {med_s:.2f} s, min {min(shift_times):.2f} s")
        print(
            f"raw onnxruntime (fresh process): median {med_r:.2f} s, min {min(raw_times):.2f} s"
            f" (of which inference {statistics.median(raw_inference):.2f} s)"
        )
        print(
            "shift-test in-process (analysis, session, views, inference, measures): median "
            f"{statistics.median(in_process):.2f} s"
        )
        ratios = [s / r for s, r in zip(shift_times, raw_times)]
        ratio = statistics.median(ratios)
        ratio_inf = med_s / statistics.median(raw_inference)
        ok = ratio <= RATIO_LIMIT
        print(f"per-run ratios shift-test / raw: {', '.join(f'{x:.3f}' for x in ratios)}")
        print(
            f"ratio shift-test / raw (median of per-run ratios): {ratio:.3f} "
            f"(limit {RATIO_LIMIT}) {'PASS' if ok else 'FAIL'}"
        )
        print(
            f"ratio of the fastest runs (least disturbed by other load): "
            f"{min(shift_times) / min(raw_times):.3f} (for information)"
        )
        print(f"ratio shift-test / raw inference only: {ratio_inf:.3f} (for information)")
        return 0 if ok else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
