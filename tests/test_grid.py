"""The summary's column writer lays text out as tabulate does (tabulate is the oracle)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tabulate import tabulate

from cnnprobe.report.grid import grid, width

# characters the summary writes: names, shapes, 3×3, 5/7, 100%, (stair), ...
CELL = st.text(
    alphabet="abcXY019_.:/-×%()?| ",
    max_size=12,
).map(str.strip)


@settings(max_examples=300, deadline=None)
@given(
    data=st.data(),
    ncols=st.integers(1, 6),
    nrows=st.integers(0, 7),
    style=st.sampled_from(["simple", "github"]),
)
def test_grid_lays_out_like_tabulate(
    data: st.DataObject, ncols: int, nrows: int, style: str
) -> None:
    headers = data.draw(st.lists(CELL, min_size=ncols, max_size=ncols))
    rows = data.draw(
        st.lists(st.lists(CELL, min_size=ncols, max_size=ncols), min_size=nrows, max_size=nrows)
    )
    expected = tabulate(rows, headers=headers, tablefmt=style, disable_numparse=True)
    assert grid(headers, rows, style) == expected


def test_wide_characters_take_two_columns() -> None:
    assert width("层3×3") == 2 + 3
    assert width("é") == 1  # precomposed
    assert width("e\u0301") == 1  # e + combining acute accent
    text = grid(["name", "k"], [["卷积", "3"], ["conv", "5"]])
    lines = text.splitlines()
    # the second column starts at the same terminal column on every line
    starts = {width(line[: line.rindex(" ") + 1]) for line in lines[2:]}
    assert len(starts) == 1


def test_unknown_style() -> None:
    with pytest.raises(ValueError, match="style"):
        grid(["a"], [["b"]], "fancy")
