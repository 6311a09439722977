"""``cnnprobe summary``: per-layer geometry and the verdict."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .common import Format, Layout, emit, guarded


def summary(
    model: Annotated[Path, typer.Argument(help="Model file (.onnx).", show_default=False)],
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.table,
    show_all: Annotated[
        bool, typer.Option("--all", help="List every layer, not only those changing geometry.")
    ] = False,
    input_name: Annotated[
        str | None, typer.Option("--input", help="Name of the image input (if several).")
    ] = None,
    input_shape: Annotated[
        str | None,
        typer.Option(
            "--input-shape",
            help="Full input shape, e.g. 1x3x224x224 (fixes symbolic or missing dims).",
        ),
    ] = None,
    layout: Annotated[
        Layout,
        typer.Option(
            "--layout", help="Input layout; auto detects NHWC inputs that are transposed first."
        ),
    ] = Layout.auto,
    assume_pointwise: Annotated[
        list[str] | None,
        typer.Option(
            "--assume-pointwise",
            help="Custom op(s) to treat as pointwise (comma-separated, repeatable).",
            metavar="OP[,OP]",
        ),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the report to this file.")
    ] = None,
) -> None:
    """Per-layer receptive field, jump, start and input coverage, then a plain-words verdict."""
    from ..api import analyze, no_gc, parse_shape
    from ..report import get_reporter

    path = str(model)
    ops = [op.strip() for item in assume_pointwise or [] for op in item.split(",") if op.strip()]

    def run() -> str:
        shape = parse_shape(input_shape) if input_shape else None
        with no_gc():  # the report allocates as much as the analysis
            result = analyze(
                path,
                input_name=input_name,
                input_shape=shape,
                layout=layout.value,
                assume_pointwise=ops,
            )
            return get_reporter(fmt.value)(result, show_all)

    text = guarded(path, run)
    emit(text, output)
