"""Command-line interface: the typer app and its commands (one module each, in ``commands/``).

Exit codes: 0 success, 1 a ``check`` rule failed, 2 usage or input error (one line on stderr, no
traceback). Heavy modules (onnx, numpy, onnxruntime) load inside the commands, so
``cnnprobe --help`` stays fast.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from . import __version__
from .commands import check, design, shift_test, summary

app = typer.Typer(
    name="cnnprobe",
    help="What does your convolutional network actually see? Receptive fields, downsampling and "
    "full-input coverage of ONNX and Keras models.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


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


app.command("summary")(summary.summary)
app.command("shift-test")(shift_test.shift_test)
app.command("check")(check.check)
app.command("design")(design.design)

# re-exported for tests and other commands
from .commands.common import Format, Layout, fail, guarded  # noqa: E402

__all__ = ["Format", "Layout", "app", "fail", "guarded", "main"]


def main() -> None:
    """The console script: run the app, flush, and leave without tearing the interpreter down.

    Freeing the analysis's many small objects and every imported module at exit takes a tenth
    of the run on large models and changes nothing once the output is flushed (the same choice
    as mypy's hard exit). Exceptions other than ``SystemExit`` still leave the normal way.
    """
    try:
        app()
        code = 0
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):  # reader gone (| head), or stream closed
        pass
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
