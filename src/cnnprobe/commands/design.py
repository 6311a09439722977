"""``cnnprobe design``: receptive fields of a planned network, without a model file."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from .common import Format, guarded


def design(
    spec: Annotated[
        str,
        typer.Argument(
            help='Layers, e.g. "conv3,conv3,maxpool2,conv3" (kinds: conv, maxpool, '
            "avgpool, deconv, up, pad, gap, dense; options sN dN pN same valid "
            "causal; *N repeats).",
            show_default=False,
        ),
    ],
    input_sizes: Annotated[
        str, typer.Option("--input", help="Spatial input size: 28x28, 64 (1-D) or 16x64x64.")
    ],
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.table,
    show_all: Annotated[bool, typer.Option("--all", help="List every layer.")] = False,
    suggest: Annotated[
        bool,
        typer.Option(
            "--suggest/--no-suggest",
            help="Suggest the smallest changes that "
            "make the last spatial layer see the full input.",
        ),
    ] = True,
) -> None:
    """Same table and verdict as `summary`, for a network described in a small spec language."""
    from ..design import design as run_design
    from ..report import get_reporter

    def run() -> str:
        d = run_design(spec, input_sizes, with_suggestions=suggest)
        if fmt == Format.json:
            from ..report.json_report import to_dict

            doc = to_dict(d.result)
            doc["suggestions"] = [
                {
                    "edits": list(s.edits),
                    "spec": s.spec,
                    "rf": list(s.rf),
                    "size": list(s.size),
                    "total_stride": s.total_stride,
                }
                for s in d.suggestions
            ]
            return json.dumps(doc, indent=2) + "\n"
        text = get_reporter(fmt.value)(d.result, show_all)
        if not d.suggestions:
            return text
        bullet = "- " if fmt == Format.markdown else "  "
        lines = [
            "",
            "**Suggestions**" if fmt == Format.markdown else "Suggestions",
            "" if fmt == Format.markdown else "-----------",
            "Smallest changes found that make every unit of the last spatial layer see the "
            "full input (each one checked with the engine):",
        ]
        for k, s in enumerate(d.suggestions, 1):
            size = "×".join("?" if n is None else str(n) for n in s.size)
            rf = "×".join("?" if n is None else str(n) for n in s.rf)
            lines.append(f"{bullet}{k}. {'; '.join(s.edits)}")
            lines.append(
                f"{bullet}   -> {s.spec}  (RF {rf}, {size} units, total stride {s.total_stride})"
            )
        return text + "\n".join(lines) + "\n"

    sys.stdout.write(guarded("design", run))
