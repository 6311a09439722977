"""Command-line interface: the typer app and its commands (one module each, in ``commands/``).

Exit codes: 0 success, 1 a ``check`` rule failed, 2 usage or input error (one line on stderr, no
traceback). Heavy modules (onnx, numpy, onnxruntime) load inside the commands, so
``cnnprobe --help`` stays fast.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from importlib import import_module
from typing import Annotated, Any

import typer

from . import __version__

#: Command name -> the module in ``commands/`` and the function typer turns into the command.
COMMANDS = {
    "summary": ("summary", "summary"),
    "shift-test": ("shift_test", "shift_test"),
    "check": ("check", "check"),
    "design": ("design", "design"),
}


def _command(name: str) -> Callable[..., None]:
    module, function = COMMANDS[name]
    fn: Callable[..., None] = getattr(import_module(f"{__package__}.commands.{module}"), function)
    return fn


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
    for name in COMMANDS:
        if only is None or name == only:
            new.command(name)(_command(name))
    return new


app: typer.Typer  # built on first use, by __getattr__
_app: typer.Typer | None = None


def __getattr__(name: str) -> Any:
    """``app``, the app with every command, is built on first use (the console script builds only
    the command it runs)."""
    global _app
    if name == "app":
        if _app is None:
            _app = make_app()
        return _app
    raise AttributeError(name)


# re-exported for tests and other commands
from .commands.common import Format, Layout, fail, guarded  # noqa: E402

__all__ = ["Format", "Layout", "app", "fail", "guarded", "main", "run"]


def run(args: Sequence[str]) -> int:
    """Run the command line ``args`` (without the program name); the exit status."""
    target = make_app(args[0]) if args and args[0] in COMMANDS else make_app()
    try:
        target(list(args), prog_name="cnnprobe")
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)
        return 1
    return 0


def main() -> None:
    """The console script (see :mod:`cnnprobe.console`)."""
    from .console import main as console_main

    console_main()


if __name__ == "__main__":  # pragma: no cover
    main()
