"""``cnnprobe check``: architecture rules for CI (exit 0 all passed, 1 a rule failed, 2 error)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from .common import Layout, emit, fail, guarded


class CheckFormat(str, Enum):
    text = "text"
    json = "json"
    junit = "junit"
    sarif = "sarif"
    github = "github"
    markdown = "markdown"


def check(
    models: Annotated[
        list[str] | None,
        typer.Argument(
            help="Model files or glob patterns (quote them: 'models/**/*.onnx').",
            show_default=False,
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="Configuration file (default: the nearest cnnprobe.toml, "
            "or pyproject.toml with [tool.cnnprobe]).",
        ),
    ] = None,
    fmt: Annotated[CheckFormat, typer.Option("--format", "-f", help="Output format.")] = (
        CheckFormat.text
    ),
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the report to this file.")
    ] = None,
    jobs: Annotated[
        int, typer.Option("--jobs", "-j", min=1, help="Models checked in parallel.")
    ] = 1,
    rule: Annotated[
        list[str] | None,
        typer.Option(
            "--rule",
            help="Set a rule, overriding files: ID=VALUE (TOML value, e.g. "
            "max-stride=16, 'min-rf=[64,128]', full-input=false).",
            metavar="ID=VALUE",
        ),
    ] = None,
    disable: Annotated[
        list[str] | None, typer.Option("--disable", help="Turn a rule off.", metavar="ID")
    ] = None,
    input_name: Annotated[str | None, typer.Option("--input", help="Image input name.")] = None,
    input_shape: Annotated[
        str | None, typer.Option("--input-shape", help="Full input shape, e.g. 1x3x224x224.")
    ] = None,
    layout: Annotated[Layout | None, typer.Option("--layout", help="Input layout.")] = None,
    assume_pointwise: Annotated[
        list[str] | None,
        typer.Option(
            "--assume-pointwise", help="Custom op(s) to treat as pointwise.", metavar="OP[,OP]"
        ),
    ] = None,
    list_rules: Annotated[
        bool, typer.Option("--list-rules", help="Describe every rule and exit.")
    ] = False,
) -> None:
    """Check architecture rules on one or many models, for CI."""
    if list_rules:
        from ..check.rules import REGISTRY

        for rid, r in REGISTRY.items():
            on = "on by default" if r.default is not None else "off unless configured"
            typer.echo(f"{rid}  ({on})\n    {r.summary}")
            doc = " ".join((type(r).__doc__ or "").split())
            typer.echo(f"    {doc}\n")
        return
    if not models:
        raise fail("give at least one model file or glob pattern")

    def run() -> tuple[str, int]:
        from ..check.config import (
            find_config,
            load_config,
            parse_cli_rule,
            parse_option,
            parse_rule,
        )
        from ..check.formatters import FORMATTERS
        from ..check.runner import expand_models, run_check

        source = config if config is not None else find_config(Path.cwd())
        cfg = load_config(source)
        for item in rule or []:
            rid, value = parse_cli_rule(item)
            cfg.cli.rules[rid] = parse_rule(rid, value, f"--rule {rid}")
        for rid in disable or []:
            parse_rule(rid, False, f"--disable {rid}")
            cfg.cli.rules[rid] = None
        if input_name is not None:
            cfg.cli.options["input"] = parse_option("input", input_name, "--input")
        if input_shape is not None:
            cfg.cli.options["input-shape"] = parse_option(
                "input-shape", input_shape, "--input-shape"
            )
        if layout is not None:
            cfg.cli.options["layout"] = layout.value
        if assume_pointwise:
            cfg.cli.options["assume-pointwise"] = parse_option(
                "assume-pointwise", ",".join(assume_pointwise), "--assume-pointwise"
            )
        report = run_check(expand_models(models or []), cfg, jobs)
        return FORMATTERS[fmt.value](report), report.exit_code

    text, code = guarded("check", run)
    emit(text, output)
    if code:
        raise typer.Exit(code)
