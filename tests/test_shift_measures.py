"""shift-test measures and shift modes on hand-worked examples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cnnprobe.shift import measures as M
from cnnprobe.shift.inputs import Layout, normalize, pink_noise
from cnnprobe.shift.protocol import ShiftPlan, fourier_shift, make_view


def test_wilson_matches_published_intervals() -> None:
    # 0/10: [0, z^2/(n+z^2)] = 3.8415/13.8415; 5/10: [0.2366, 0.7634] (Newcombe 1998, table I)
    zero = M.wilson(0, 10)
    assert zero.value == 0 and zero.low == 0
    assert zero.high == pytest.approx(0.2775, abs=1e-4)
    half = M.wilson(5, 10)
    assert (half.low, half.high) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert M.wilson(0, 0).value is None


def test_mean_interval() -> None:
    e = M.mean_interval([1.0, 2.0, 3.0, float("nan")])
    # mean 2, sd 1, n 3: 2 +- 1.96/sqrt(3)
    assert e.value == 2.0 and e.n == 3
    assert e.high == pytest.approx(2 + 1.959964 / math.sqrt(3), abs=1e-6)


def test_classifier_measures_by_hand() -> None:
    # logits [0, ln 3] -> p = [1/4, 3/4]; logits [ln 3, 0] -> p = [3/4, 1/4]
    z0 = np.array([[0.0, math.log(3)]])
    z1 = np.array([[math.log(3), 0.0]])
    d = M.classifier_delta(z0, z1, probabilities=False)
    assert not d.agree[0]
    assert d.mac[0] == pytest.approx(0.5)  # |3/4 - 1/4| for the top class of p
    assert d.tv[0] == pytest.approx(0.5)
    # JS with m = [1/2, 1/2]: KL(p||m) = 1/4 ln(1/2) + 3/4 ln(3/2)
    kl = 0.25 * math.log(0.5) + 0.75 * math.log(1.5)
    assert d.js[0] == pytest.approx(kl)
    assert d.distance[0] == pytest.approx(math.sqrt(2) * math.log(3))
    # disjoint probabilities: TV 1, JS ln 2
    p = M.classifier_delta(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]]), probabilities=True)
    assert p.tv[0] == pytest.approx(1.0) and p.js[0] == pytest.approx(math.log(2))
    assert p.mac[0] == pytest.approx(1.0)


def test_probability_detection() -> None:
    assert M.looks_like_probabilities(np.array([[0.2, 0.8], [0.5, 0.5]]))
    assert not M.looks_like_probabilities(np.array([[2.0, -1.0]]))
    assert not M.looks_like_probabilities(np.array([[0.2, 0.3]]))  # sigmoid-like: not a softmax


def test_mean_pairwise_distance_by_hand() -> None:
    a = np.array([[0.0, 0.0]])
    b = np.array([[3.0, 4.0], [0.0, 0.0]])
    # pairs (a0, b0) = 5, (a0, b1) = 0 -> mean 2.5; pairs inside one input do not count
    assert M.mean_pairwise_distance([a, b]) == pytest.approx(2.5)
    assert M.mean_pairwise_distance([b]) is None


def test_equivariance_error_by_hand() -> None:
    ref = np.array([[1.0, 2.0, 3.0, 4.0]])
    # exact roll: 0
    assert M.equivariance_error(ref, np.roll(ref, 1, axis=1), [1], [1], circular=True) == 0
    # unchanged output read as a roll by 1: (9 + 1 + 1 + 1) / 30
    assert M.equivariance_error(ref, ref, [1], [1], circular=True) == pytest.approx(12 / 30)
    # linear: overlap other[1:] = [2, 3, 4] against ref[:3] = [1, 2, 3]: 3 / 14
    assert M.equivariance_error(ref, ref, [1], [1], circular=False) == pytest.approx(3 / 14)
    assert M.equivariance_error(ref, ref, [-1], [1], circular=False) == pytest.approx(3 / 29)
    # sub-unit shifts need a circular shift
    assert M.equivariance_error(ref, ref, [0.5], [1], circular=False) is None


def test_fourier_shift_is_roll_for_whole_pixels_and_exact_for_band_limited_signals() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 8, 10))
    assert np.allclose(fourier_shift(x, [2, -3], [1, 2]), np.roll(x, (2, -3), axis=(1, 2)))
    n = np.arange(16)
    wave = np.cos(2 * np.pi * 3 * n / 16)
    shifted = fourier_shift(wave, [0.5], [0])
    assert np.allclose(shifted, np.cos(2 * np.pi * 3 * (n - 0.5) / 16))
    assert fourier_shift(wave, [0.37], [0]).mean() == pytest.approx(0, abs=1e-12)


def test_pad_modes_by_hand() -> None:
    x = np.array([[1.0, 2.0, 3.0, 4.0]])
    kw = {"axes": [1], "size": [4], "margin": [0]}
    assert make_view(x, (2.0,), "pad", "zero", **kw).tolist() == [[0, 0, 1, 2]]
    assert make_view(x, (2.0,), "pad", "edge", **kw).tolist() == [[1, 1, 1, 2]]
    assert make_view(x, (2.0,), "pad", "reflect", **kw).tolist() == [[3, 2, 1, 2]]
    assert make_view(x, (1.0,), "roll", None, **kw).tolist() == [[4, 1, 2, 3]]


def test_crop_views_move_content_by_the_offset() -> None:
    canvas = np.arange(10.0)[None]  # one channel, margin 4, size 6
    base = make_view(canvas, (0.0,), "crop", None, [1], [6], [4])
    assert base.tolist() == [[4, 5, 6, 7, 8, 9]]
    view = make_view(canvas, (3.0,), "crop", None, [1], [6], [4])
    assert view[0, 3:].tolist() == base[0, :3].tolist()  # view[i] = base[i - 3]


def test_sweep_and_grid_plans() -> None:
    plan = ShiftPlan("sweep", (4.0, 4.0), 1.0, 1, 0, 2)
    assert [d for d, _ in plan.directions] == ["x", "y", "diagonal"]
    assert plan.per_input == 1 + 3 * 4
    assert plan.margin == (4, 4)
    grid = ShiftPlan("grid", (4.0, 2.0), 1.0, 1, 0, 2)
    assert grid.per_input == 8 and grid.margin == (3, 1)
    (group,) = list(grid.groups(1))
    assert {m.shift for m in group.members} == {
        (float(a), float(b)) for a in range(4) for b in range(2)
    } - {(0.0, 0.0)}
    rnd = ShiftPlan("random", (32.0, 32.0), 1.0, 3, 7, 2)
    groups = list(rnd.groups(2))
    assert len(groups) == 6 and rnd.per_input == 6
    for g in groups:
        (m,) = g.members
        assert all(0 <= v < 32 for v in g.reference.offset + m.view.offset)
        assert m.shift == tuple(b - a for a, b in zip(g.reference.offset, m.view.offset))
    assert [g.reference for g in groups] == [g.reference for g in rnd.groups(2)]  # seeded


def test_pink_noise_has_a_one_over_f_spectrum() -> None:
    rng = np.random.default_rng(0)
    img = pink_noise(rng, Layout(1, (128, 128), True))[0].astype(np.float64)
    assert img.min() >= 0 and img.max() <= 1
    assert 0.3 - 0.05 <= img.mean() <= 0.7 + 0.05
    amp = np.abs(np.fft.fft2(img - img.mean()))
    fy, fx = np.meshgrid(np.fft.fftfreq(128), np.fft.fftfreq(128), indexing="ij")
    r = np.sqrt(fx**2 + fy**2)
    bands = [(0.02, 0.04), (0.08, 0.16)]  # a factor of 4 in frequency
    low, high = (amp[(r >= a) & (r < b)].mean() for a, b in bands)
    assert low / high == pytest.approx(4.0, rel=0.25)  # amplitude ~ 1/f


def test_normalize_per_channel() -> None:
    x = np.ones((2, 1, 1))
    out = normalize(x, (0.5, 0.0), (0.5, 2.0), channel_axis=0)
    assert out.ravel().tolist() == [1.0, 0.5]
