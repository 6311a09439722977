"""Command-line interface: wires options to :func:`cnnprobe.analyze` and a reporter.

Exit codes: 0 success, 2 usage or input error (one line on stderr, no traceback).
Heavy modules (onnx, numpy) load inside the commands, so ``cnnprobe --help`` stays fast.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from . import __version__

app = typer.Typer(
    name="cnnprobe",
    help="What does your convolutional network actually see? Receptive fields, downsampling and "
    "full-input coverage of ONNX models.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

T = TypeVar("T")


class Format(str, Enum):
    table = "table"
    json = "json"
    markdown = "markdown"


class Layout(str, Enum):
    auto = "auto"
    nchw = "nchw"
    nhwc = "nhwc"


def fail(message: str) -> typer.Exit:
    """Print one line on stderr and return the exit to raise (code 2)."""
    typer.echo(f"cnnprobe: error: {message}", err=True)
    return typer.Exit(2)


def guarded(path: str, fn: Callable[[], T]) -> T:
    """Run ``fn``; the project's errors and any unexpected failure become one line + exit 2."""
    from .errors import CnnprobeError

    try:
        return fn()
    except CnnprobeError as exc:
        raise fail(str(exc) if exc.path else f"{path}: {exc}") from None
    except typer.Exit:
        raise
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:
        if os.environ.get("CNNPROBE_DEBUG"):
            raise
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise fail(
            f"{path}: cannot analyse ({type(exc).__name__}: {first}); "
            "set CNNPROBE_DEBUG=1 for a traceback"
        ) from None


def _version(value: bool) -> None:
    if value:
        typer.echo(f"cnnprobe {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """cnnprobe: receptive fields, downsampling and full-input coverage of CNNs."""


@app.command()
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
    from .api import analyze, parse_shape
    from .report import get_reporter

    path = str(model)
    ops = [op.strip() for item in assume_pointwise or [] for op in item.split(",") if op.strip()]

    def run() -> str:
        shape = parse_shape(input_shape) if input_shape else None
        result = analyze(
            path,
            input_name=input_name,
            input_shape=shape,
            layout=layout.value,
            assume_pointwise=ops,
        )
        return get_reporter(fmt.value)(result, show_all)

    text = guarded(path, run)
    if output is not None:
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise fail(f"{output}: cannot write report ({exc.strerror})") from None
    else:
        sys.stdout.write(text)


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
