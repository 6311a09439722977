"""`cnnprobe design`: the spec language, figures by hand, and suggestions that really work."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from cnnprobe.cli import app
from cnnprobe.design import design
from cnnprobe.errors import UsageError
from cnnprobe.frontends.spec import parse_spec

runner = CliRunner()


def test_seed_example() -> None:
    d = design("conv3,conv3,conv3", "28x28")
    v = d.result.verdict
    assert v.rf == (7, 7)  # 1 + 2 + 2 + 2
    assert v.sees_full_input is False
    assert d.suggestions


@pytest.mark.parametrize(
    ("spec", "size", "rf", "jump"),
    [
        # conv3, pool2 (s2): 3+1=4 j2, conv3: 4+2*2=8, pool2: 8+2=10 j4, conv3: 10+2*4=18
        ("conv3,maxpool2,conv3,maxpool2,conv3", "28x28", (18, 18), (4, 4)),
        # non-square kernels: 3x1 twice -> (5, 1)
        ("conv3x1*2", "10x10", (5, 1), (1, 1)),
        # dilated 1-D: 1 + 2 + 4 + 8 = 15
        ("conv3,conv3d2,conv3d4", "64", (15,), (1,)),
        # strided stem with padding: conv7s2p3 -> 7 (j2); maxpool3s2p1 -> 7+2*2=11 (j4)
        ("conv7s2p3,maxpool3s2p1", "224x224", (11, 11), (4, 4)),
        # 3-D
        ("conv3x3x3,maxpool2", "8x8x8", (4, 4, 4), (2, 2, 2)),
        # upsampling by 2 halves the jump: conv3s2 (3, j2) then up2 -> j 1
        ("conv3s2,up2", "16x16", (3, 3), (1, 1)),
        # causal 1-D conv: same RF as valid, start moves left by 2
        ("conv3causal", "10", (3,), (1,)),
    ],
)
def test_spec_figures(spec: str, size: str, rf: tuple[int, ...], jump: tuple[int, ...]) -> None:
    v = design(spec, size, with_suggestions=False).result.verdict
    assert v.rf == rf
    assert v.jump == jump


def test_causal_start() -> None:
    lay = design("conv3causal", "10", with_suggestions=False).result.layers[0]
    assert lay.start == [-2] and lay.axes[0].size == 10


def _closed_form_full(spec: str, n: int) -> bool:
    """Independent check of a plain chain (no padding): r = 1 + sum (k_eff-1) * prod(s), unit
    i covers [i*j, i*j + r - 1]; every unit sees [0, n-1] iff r >= n and the last unit starts
    at 0 (one unit) -- valid padding only."""
    r, j, size = 1, 1, n
    for layer in parse_spec(spec, 2):
        k = layer.kernel[0]
        s = layer.stride if layer.stride is not None else (k if "pool" in layer.kind else 1)
        k_eff = layer.dilation * (k - 1) + 1
        r += (k_eff - 1) * j
        j *= s
        size = (size - k_eff) // s + 1
    return size >= 1 and r >= n and (size - 1) * j + r - 1 <= r - 1 + 0 and r >= n


def test_suggestions_are_verified_independently() -> None:
    d = design("conv3,conv3,conv3", "28x28")
    assert 1 <= len(d.suggestions) <= 3
    for s in d.suggestions:
        assert s.edits
        again = design(s.spec, "28x28", with_suggestions=False).result.verdict
        assert again.sees_full_input is True
        assert _closed_form_full(s.spec, 28)


def test_no_suggestions_when_already_full() -> None:
    # 18 -> conv3 16 -> pool 8 -> conv3 6 -> pool 3 -> conv3 1 unit with r = 18: [0, 17]
    d = design("conv3,maxpool2,conv3,maxpool2,conv3", "18x18")
    assert d.result.verdict.sees_full_input is True
    assert d.suggestions == ()


@pytest.mark.parametrize(
    ("spec", "size", "needle"),
    [
        ("", "28x28", "empty"),
        ("conv", "28x28", "needs a size"),
        ("conv3x3", "64", "2 kernel sizes for 1 axes"),
        ("blob3", "28x28", "cannot read layer"),
        ("conv3p1same", "28x28", "not both"),
        ("conv3causal", "28x28", "1-D"),
        ("conv3", "0x28", "positive"),
    ],
)
def test_spec_errors(spec: str, size: str, needle: str) -> None:
    with pytest.raises(UsageError) as err:
        design(spec, size)
    assert needle in str(err.value)


def test_cli_design() -> None:
    res = runner.invoke(app, ["design", "conv3,conv3,conv3", "--input", "28x28"])
    assert res.exit_code == 0, res.stderr
    assert "7×7 of the 28×28 input" in res.stdout
    assert "Suggestions" in res.stdout
    js = runner.invoke(app, ["design", "conv3*3", "--input", "28x28", "-f", "json"])
    doc = json.loads(js.stdout)
    assert doc["verdict"]["rf"] == [7, 7] and doc["suggestions"]
    bad = runner.invoke(app, ["design", "conv3,x", "--input", "28x28"])
    assert bad.exit_code == 2 and len(bad.stderr.strip().splitlines()) == 1
