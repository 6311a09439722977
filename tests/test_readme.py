"""The README's console examples are real output: each ``$ cnnprobe summary|check|design ...``
block is run again here (from the repository root, as a user would) and must print exactly what
the README shows. A block that starts with ``...`` shows the end of the output; a block with the
command alone is followed by its Markdown output, rendered, up to the next heading.
``shift-test`` blocks are left out: they name the installed onnxruntime."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cnnprobe.cli import app

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"```console\n\$ (cnnprobe (?:summary|check|design) [^\n]*)\n(.*?)```", re.S)


def _examples() -> list[tuple[str, str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    out = []
    for m in BLOCK.finditer(text):
        cmd, shown = m.group(1), m.group(2)
        if not shown:  # rendered Markdown follows: its first heading, then up to the next one
            rest = text[m.end() :].lstrip("\n")
            first, _, body = rest.partition("\n")
            shown = first + "\n" + body.split("\n### ", 1)[0].rstrip("\n") + "\n"
        out.append((cmd, shown))
    return out


def test_there_are_examples() -> None:
    assert len(_examples()) >= 6


@pytest.mark.parametrize(("command", "expected"), _examples(), ids=lambda x: x[:60])
def test_readme_output_is_real(command: str, expected: str) -> None:
    args = shlex.split(command)[1:]
    old = os.getcwd()
    os.chdir(ROOT)
    try:
        res = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    finally:
        os.chdir(old)
    if expected.startswith("...\n"):
        assert res.stdout.endswith(expected[4:]), f"README block for {command!r} is stale"
    else:
        assert res.stdout == expected, f"README block for {command!r} is stale"
