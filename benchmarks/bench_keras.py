"""Keras frontend benchmark: prints the figures and PASS/FAIL against the issue's limits.

- a 1,000-layer Keras 3 functional config is summarised (read, analysed, table written) in at most
  0.5 s;
- reading a 500 MB ``.h5`` or ``.keras`` (a big dummy weights member) takes at most 0.5 s and adds
  less than 100 MB to peak memory: weights are never loaded.

Files are generated in a temporary directory. Each measurement runs in a fresh Python process so
that peak memory (``ru_maxrss``, measured after the imports) is that of the reads alone; the time
is the best of a few runs of read + analysis + table. Run: ``python benchmarks/bench_keras.py``
(``--size-mb N`` for a smaller big file).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_models"

CHILD = r"""
import json, resource, sys, time
import h5py, numpy  # imported before the baseline: only the read is measured
from cnnprobe import analyze
from cnnprobe.report import get_reporter
from cnnprobe.frontends import keras_frontend  # the lazily imported modules, loaded up front
from cnnprobe.analysis import receptive_field, verdict

def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

path = sys.argv[1]
base = rss_mb()
best = None
for _ in range(int(sys.argv[2])):
    t0 = time.perf_counter()
    r = analyze(path)
    text = get_reporter("table")(r, False)
    dt = time.perf_counter() - t0
    best = dt if best is None else min(best, dt)
print(json.dumps({"seconds": best, "peak_added_mb": rss_mb() - base, "layers": len(r.layers)}))
"""


def kt(layer: str, shape: list[object]) -> dict[str, object]:
    return {
        "class_name": "__keras_tensor__",
        "config": {"shape": shape, "dtype": "float32", "keras_history": [layer, 0, 0]},
    }


def big_config(n_layers: int) -> dict[str, object]:
    """A Keras 3 functional model: conv/BN/ReLU blocks with a residual Add every 3 blocks."""
    shape = [None, 64, 64, 16]
    layers: list[dict[str, object]] = [
        {
            "module": "keras.layers",
            "class_name": "InputLayer",
            "name": "image",
            "config": {"name": "image", "batch_shape": shape},
            "inbound_nodes": [],
        }
    ]
    prev, skip = "image", "image"
    k = 0
    while len(layers) < n_layers:
        k += 1
        for cls, cfg in (
            (
                "Conv2D",
                {
                    "filters": 16,
                    "kernel_size": [3, 3],
                    "strides": [1, 1],
                    "padding": "same",
                    "dilation_rate": [1, 1],
                },
            ),
            ("BatchNormalization", {"axis": -1}),
            ("ReLU", {}),
        ):
            name = f"{cls.lower()}_{k}"
            layers.append(
                {
                    "module": "keras.layers",
                    "class_name": cls,
                    "name": name,
                    "config": {"name": name, "trainable": True, **cfg},
                    "build_config": {"input_shape": shape},
                    "inbound_nodes": [{"args": [kt(prev, shape)], "kwargs": {}}],
                }
            )
            prev = name
        if k % 3 == 0:
            name = f"add_{k}"
            layers.append(
                {
                    "module": "keras.layers",
                    "class_name": "Add",
                    "name": name,
                    "config": {"name": name, "trainable": True},
                    "inbound_nodes": [{"args": [[kt(prev, shape), kt(skip, shape)]], "kwargs": {}}],
                }
            )
            prev = skip = name
    return {
        "module": "keras.src.models.functional",
        "class_name": "Functional",
        "config": {
            "name": "big",
            "layers": layers,
            "input_layers": [["image", 0, 0]],
            "output_layers": [[prev, 0, 0]],
        },
    }


def write_big_keras(path: Path, config: bytes, size_mb: int) -> None:
    chunk = os.urandom(1 << 20)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        zf.writestr("config.json", config)
        with zf.open("model.weights.h5", "w", force_zip64=True) as fh:
            for _ in range(size_mb):
                fh.write(chunk)


def write_big_h5(path: Path, config: str, size_mb: int) -> None:
    import h5py
    import numpy as np

    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = config
        f.attrs["keras_version"] = "3.15.1"
        ds = f.create_dataset("model_weights/big/kernel", shape=(size_mb, 1 << 18), dtype="f4")
        block = np.random.default_rng(0).standard_normal((16, 1 << 18)).astype("f4")
        for i in range(0, size_mb, 16):
            n = min(16, size_mb - i)
            ds[i : i + n] = block[:n]


def measure(path: Path, repeats: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), str(repeats)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=int, default=500)
    ap.add_argument("--layers", type=int, default=1000)
    args = ap.parse_args()
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        big = big_config(args.layers)
        cfg_text = json.dumps(big)
        n = len(big["config"]["layers"])  # type: ignore[index]

        p = d / "big_config.keras"
        write_big_keras(p, cfg_text.encode(), 0)
        m = measure(p, 5)
        passed = m["seconds"] <= 0.5
        ok &= passed
        print(
            f"{n}-layer config ({len(cfg_text) >> 10} KiB JSON): summarised in "
            f"{m['seconds'] * 1000:.0f} ms (limit 500 ms): {'PASS' if passed else 'FAIL'}"
        )

        with zipfile.ZipFile(SAMPLES / "keras_mnist_pooled.keras") as zf:
            mnist = zf.read("config.json")
        for kind in ("keras", "h5"):
            p = d / f"big.{kind}"
            if kind == "keras":
                write_big_keras(p, mnist, args.size_mb)
            else:
                write_big_h5(p, mnist.decode(), args.size_mb)
            size = p.stat().st_size / 1e6
            m = measure(p, 3)
            t_ok = m["seconds"] <= 0.5
            mem_ok = m["peak_added_mb"] < 100
            ok &= t_ok and mem_ok
            print(
                f"{size:.0f} MB .{kind}: read and summarised in {m['seconds'] * 1000:.0f} ms "
                f"(limit 500 ms): {'PASS' if t_ok else 'FAIL'}; peak memory +"
                f"{m['peak_added_mb']:.1f} MB (limit 100 MB): {'PASS' if mem_ok else 'FAIL'}"
            )
            p.unlink()
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
