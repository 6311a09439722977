"""What every command shares: option types and the one place where errors become exit code 2."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import TypeVar

import typer

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
    from ..errors import CnnprobeError

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


def emit(text: str, output: Path | None) -> None:
    """Write a report to ``output``, or to standard output."""
    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise fail(f"{output}: cannot write report ({exc.strerror})") from None
