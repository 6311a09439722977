"""Reporters of a shift test: each turns a frozen ShiftTestResult into text."""

from __future__ import annotations

from collections.abc import Callable

from ..results import ShiftTestResult

Reporter = Callable[[ShiftTestResult], str]

FORMATS = ("table", "json", "markdown")


def get_reporter(fmt: str) -> Reporter:
    if fmt == "table":
        from .table import render
    elif fmt == "json":
        from .json_report import render
    elif fmt == "markdown":
        from .markdown import render
    else:
        raise ValueError(f"unknown format {fmt!r}")
    return render
