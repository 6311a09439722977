"""The shortcuts taken for speed give exactly what the general code gives.

Each shortcut (pass-through nodes, 1x1 windows, affine window unions and compositions, reals
through strided windows by slicing) is compared with the general computation it replaces: on
random inputs where it is a function, and on whole models by running the analysis with the
shortcuts switched off.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnprobe import analyze
from cnnprobe.analysis import receptive_field
from cnnprobe.geometry import rules
from cnnprobe.geometry.qamap import QAMap, envelope
from cnnprobe.geometry.real import EMPTY_HI, EMPTY_LO, Real, strided, through_strided
from cnnprobe.geometry.state import Window
from paths import SAMPLES, zoo_dir

# --------------------------------------------------------------------------------------------
# functions


@st.composite
def reals(draw: st.DrawFn, n: int) -> Real:
    kind = draw(st.sampled_from(["identity", "sorted", "any"]))
    if kind == "identity":
        return Real.identity(n)
    if kind == "sorted":
        lo = sorted(draw(st.lists(st.integers(0, 40), min_size=n, max_size=n)))
        hi = sorted(x + draw(st.integers(0, 4)) for x in lo)
        return Real.make(lo, hi)
    units = draw(
        st.lists(
            st.one_of(st.none(), st.tuples(st.integers(0, 40), st.integers(0, 5))),
            min_size=n,
            max_size=n,
        )
    )
    lo = [EMPTY_LO if u is None else u[0] for u in units]
    hi = [EMPTY_HI if u is None else u[0] + u[1] for u in units]
    return Real.make(lo, hi)


@settings(max_examples=400, deadline=None)
@given(
    data=st.data(),
    n_in=st.integers(1, 24),
    n_out=st.integers(0, 16),
    first=st.integers(-9, 4),
    s=st.integers(1, 4),
    d=st.integers(1, 3),
    k=st.integers(1, 5),
)
def test_reals_through_strided_windows(
    data: st.DataObject, n_in: int, n_out: int, first: int, s: int, d: int, k: int
) -> None:
    real = data.draw(reals(n_in))
    expected = real.through(strided(n_in, n_out, first, s, d, k))
    assert through_strided(real, n_in, n_out, first, s, d, k) == expected


maps = st.builds(
    lambda period, step, table: QAMap(period, step, tuple(sorted(table))[:period]),
    st.integers(1, 3),
    st.integers(0, 4),
    st.lists(st.integers(-20, 20), min_size=3, max_size=3),
)
affine = st.builds(QAMap.affine, st.integers(-30, 30), st.integers(0, 4))


def windows(side: st.SearchStrategy[QAMap]) -> st.SearchStrategy[Window]:
    return st.builds(lambda lo, hi: Window((lo,), (hi,)), side, side)


@settings(max_examples=400, deadline=None)
@given(a=windows(st.one_of(affine, maps)), b=windows(st.one_of(affine, maps)))
def test_window_union(a: Window, b: Window) -> None:
    general = Window(envelope(a.lo + b.lo, min), envelope(a.hi + b.hi, max))
    assert a.union(b) == general


@settings(max_examples=400, deadline=None)
@given(w=windows(st.one_of(affine, maps)), lo_idx=affine, hi_idx=affine)
def test_window_through(w: Window, lo_idx: QAMap, hi_idx: QAMap) -> None:
    general = Window(
        envelope(tuple(m.compose(lo_idx) for m in w.lo), min),
        envelope(tuple(m.compose(hi_idx) for m in w.hi), max),
    )
    assert w.through(lo_idx, hi_idx) == general


# --------------------------------------------------------------------------------------------
# whole models

MODELS = [
    *sorted(SAMPLES.glob("*.onnx")),
    *sorted(SAMPLES.glob("*.keras")),
    *(zoo_dir() / f"light_{m}.onnx" for m in ("resnet50", "inception_v2", "shufflenet")),
]


def _general_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(receptive_field, "_hand_on", lambda *a: False)
    monkeypatch.setattr(rules, "_passes_through", lambda *a: False)
    monkeypatch.setattr(rules, "_spatial_of", lambda *a: None)


@pytest.mark.parametrize("path", MODELS, ids=lambda p: Path(p).name)
def test_shortcuts_change_no_figure(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fast = analyze(path)
    _general_only(monkeypatch)
    general = analyze(path)
    assert fast.verdict == general.verdict
    assert fast.diagnostics == general.diagnostics
    assert len(fast.layers) == len(general.layers)
    for a, b in zip(fast.layers, general.layers):
        assert a == b, a.name
        assert a.windows == b.windows, a.name
        assert a.reals == b.reals, a.name
