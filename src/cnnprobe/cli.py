"""Command-line interface: the typer app and its commands (one module each, in ``commands/``).

Exit codes: 0 success, 1 a ``check`` rule failed, 2 usage or input error (one line on stderr, no
traceback). Heavy modules (onnx, numpy, onnxruntime) load inside the commands, so
``cnnprobe --help`` stays fast.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Annotated

import typer

from . import __version__
from .commands import check, design, shift_test, summary

#: Command name -> the function typer turns into it.
COMMANDS: dict[str, Callable[..., None]] = {
    "summary": summary.summary,
    "shift-test": shift_test.shift_test,
    "check": check.check,
    "design": design.design,
}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"cnnprobe {__version__}")
        raise typer.Exit()


def root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """cnnprobe: receptive fields, downsampling and full-input coverage of CNNs."""


def make_app(only: str | None = None) -> typer.Typer:
    """The app with every command, or with command ``only`` alone (typer builds the parser of
    every registered command on each call: the console script builds just the one it runs)."""
    new = typer.Typer(
        name="cnnprobe",
        help="What does your convolutional network actually see? Receptive fields, downsampling "
        "and full-input coverage of ONNX and Keras models.",
        add_completion=False,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
    )
    new.callback()(root)
    for name, fn in COMMANDS.items():
        if only is None or name == only:
            new.command(name)(fn)
    return new


app = make_app()

# re-exported for tests and other commands
from .commands.common import Format, Layout, fail, guarded  # noqa: E402

__all__ = ["Format", "Layout", "app", "fail", "guarded", "main"]


def main() -> None:
    """The console script: run the app, flush, and leave without tearing the interpreter down.

    Freeing the analysis's many small objects and every imported module at exit takes a tenth
    of the run on large models and changes nothing once the output is flushed (the same choice
    as mypy's hard exit). Exceptions other than ``SystemExit`` still leave the normal way.
    """
    args = sys.argv[1:]
    try:
        (make_app(args[0]) if args and args[0] in COMMANDS else app)()
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
