"""``cnnprobe shift-test``: run the model on shifted inputs and measure what changes."""

from __future__ import annotations

import gc
import sys
import time
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from .common import Format, Layout, emit, guarded


class Mode(str, Enum):
    crop = "crop"
    roll = "roll"
    pad = "pad"
    fourier = "fourier"


class Fill(str, Enum):
    zero = "zero"
    reflect = "reflect"
    edge = "edge"


class ShiftSet(str, Enum):
    sweep = "sweep"
    random = "random"
    grid = "grid"


class _Progress:
    """A one-line progress bar on stderr (only on a terminal)."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.shown = False

    def __call__(self, done: int, total: int) -> None:
        width = 30
        filled = width * done // max(total, 1)
        elapsed = time.perf_counter() - self.start
        sys.stderr.write(
            f"\rshift-test [{'#' * filled}{'.' * (width - filled)}] {done}/{total} inferences "
            f"{elapsed:5.1f} s"
        )
        sys.stderr.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def shift_test(
    model: Annotated[
        Path, typer.Argument(help="Model file (.onnx, .keras, .h5).", show_default=False)
    ],
    mode: Annotated[
        Mode,
        typer.Option(
            "--mode", help="How views are shifted: crop (as Zhang 2019), roll, pad, fourier."
        ),
    ] = Mode.crop,
    fill: Annotated[
        Fill | None, typer.Option("--fill", help="Fill of --mode pad [default: zero].")
    ] = None,
    shifts: Annotated[
        ShiftSet,
        typer.Option("--shifts", help="sweep along axes and diagonal, random pairs, or 2-D grid."),
    ] = ShiftSet.sweep,
    max_shift: Annotated[
        float | None,
        typer.Option("--max-shift", help="Largest shift M in px [default: the period P]."),
    ] = None,
    step: Annotated[
        float, typer.Option("--step", help="Shift step in px (fractions need --mode fourier).")
    ] = 1.0,
    pairs: Annotated[int, typer.Option("--pairs", help="Random pairs per input.")] = 1,
    inputs: Annotated[
        list[str] | None,
        typer.Option(
            "--inputs",
            help="pink (1/f noise, default), white, image files/folders, or one .npy (repeatable).",
            metavar="pink|white|PATH",
        ),
    ] = None,
    count: Annotated[
        int | None,
        typer.Option("--count", "-n", help="Number of inputs [default: noise fits ~192 runs]."),
    ] = None,
    mean: Annotated[
        str | None, typer.Option("--mean", help="Per-channel mean, e.g. 0.485,0.456,0.406.")
    ] = None,
    std: Annotated[
        str | None, typer.Option("--std", help="Per-channel std, e.g. 0.229,0.224,0.225.")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of noise and random pairs.")] = 0,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Views per inference.")] = 16,
    provider: Annotated[
        str | None,
        typer.Option("--provider", help="onnxruntime execution provider [default: CPU]."),
    ] = None,
    target: Annotated[
        str | None, typer.Option("--target", help="Output tensor to measure [default: first].")
    ] = None,
    layers: Annotated[
        str | None,
        typer.Option(
            "--layers",
            help="Feature maps to check for equivariance: all, or names (comma-separated).",
            metavar="all|NAME[,NAME]",
        ),
    ] = None,
    stride: Annotated[
        str | None,
        typer.Option("--stride", help="Override the period P, e.g. 32 or 32x32."),
    ] = None,
    input_name: Annotated[
        str | None, typer.Option("--input", help="Name of the image input (if several).")
    ] = None,
    input_shape: Annotated[
        str | None,
        typer.Option("--input-shape", help="Full input shape, e.g. 1x3x224x224."),
    ] = None,
    layout: Annotated[Layout, typer.Option("--layout", help="Input layout.")] = Layout.auto,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.table,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the report to this file.")
    ] = None,
    plot: Annotated[
        Path | None,
        typer.Option("--plot", help="Also draw sensitivity against shift into a PNG (matplotlib)."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Run the model on shifted inputs: output sensitivity and feature-map equivariance."""
    # a long run through a framework (Keras models build cyclic structures): the console script
    # pauses the cyclic garbage collector for its short commands, not for this one
    gc.enable()
    path = str(model)
    progress = _Progress() if not quiet and sys.stderr.isatty() else None

    def run() -> str:
        from ..api import parse_shape
        from ..shift import ShiftOptions, run_shift_test
        from ..shift.options import parse_floats, parse_stride
        from ..shift.report import get_reporter

        opts = ShiftOptions(
            model=path,
            mode=mode.value,
            fill=fill.value if fill is not None else None,
            shifts=shifts.value,
            max_shift=max_shift,
            step=step,
            pairs=pairs,
            inputs=tuple(inputs) if inputs else ("pink",),
            count=count,
            mean=parse_floats(mean, "--mean"),
            std=parse_floats(std, "--std"),
            seed=seed,
            batch_size=batch_size,
            provider=provider,
            input_name=input_name,
            input_shape=parse_shape(input_shape) if input_shape else None,
            layout=layout.value,
            target=target,
            layers=tuple(p.strip() for p in (layers or "").split(",") if p.strip()),
            stride=parse_stride(stride),
        )
        try:
            result = run_shift_test(opts, progress)
        finally:
            if progress is not None:
                progress.close()
        if plot is not None:
            from ..shift.plot import save_plot

            save_plot(result, str(plot))
        return get_reporter(fmt.value)(result)

    text = guarded(path, run)
    emit(text, output)
