"""``--plot FILE.png``: sensitivity against shift, and the 2-D heatmap (grid shift set) or the
per-layer error (``--layers``). Needs matplotlib (``pip install 'cnnprobe[plot]'``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import UsageError
from .report.common import sensitivity_name
from .results import ShiftTestResult


def save_plot(r: ShiftTestResult, path: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UsageError("--plot needs matplotlib: pip install 'cnnprobe[plot]'") from None
    panels = ["curve"]
    if r.protocol.shift_set == "grid" and len(r.period) == 2:
        panels.append("heatmap")
    if r.layers:
        panels.append("layers")
    fig, axs = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.2), squeeze=False)
    for ax, panel in zip(axs[0], panels):
        {"curve": _curve, "heatmap": _heatmap, "layers": _layers}[panel](ax, r)
    fig.suptitle(f"cnnprobe shift-test: {r.path} ({r.protocol.mode}, {r.protocol.shift_set})")
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=110)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot write the plot ({exc})", path) from None
    finally:
        plt.close(fig)


def _curve(ax: Any, r: ShiftTestResult) -> None:
    label = sensitivity_name(r)
    pts = [p for p in r.points if p.sensitivity is not None]
    if r.protocol.shift_set == "sweep":
        for d in r.protocol.directions:
            line = sorted((max(p.shift), p.sensitivity) for p in pts if p.direction == d)
            xs = [0.0] + [x for x, _ in line]
            ys = [0.0] + [float(y or 0.0) for _, y in line]
            ax.plot(xs, ys, marker="o", ms=3, label=d)
        ax.set_xlabel("shift (px)")
    else:
        # distance of the shift on its period grid: 0 = multiple of P
        xs = [float(np.max(np.abs(np.asarray(p.shift)))) for p in pts]
        ax.scatter(xs, [p.sensitivity for p in pts], s=10, alpha=0.6, label="comparisons")
        ax.set_xlabel("largest shift component (px)")
    top = max(r.protocol.max_shift)
    period = max(r.period)
    k = period
    while k <= top + 1e-9:
        ax.axvline(k, color="grey", lw=0.8, ls=":")
        k += period
    ax.set_ylabel(label)
    ax.set_title(f"{label} against shift (dotted: multiples of P)")
    ax.legend(fontsize=8)


def _heatmap(ax: Any, r: ShiftTestResult) -> None:
    size = [int(np.ceil(m / r.protocol.step)) for m in r.protocol.max_shift]
    grid = np.full(size, np.nan)
    grid[0, 0] = 0.0
    for p in r.points:
        i, j = (round(s / r.protocol.step) for s in p.shift)
        if 0 <= i < size[0] and 0 <= j < size[1] and p.sensitivity is not None:
            grid[i, j] = p.sensitivity
    extent = (-0.5 * r.protocol.step, (size[1] - 0.5) * r.protocol.step) + (
        (size[0] - 0.5) * r.protocol.step,
        -0.5 * r.protocol.step,
    )
    im = ax.imshow(grid, cmap="viridis", extent=extent)
    ax.set_xlabel("shift x (px)")
    ax.set_ylabel("shift y (px)")
    ax.set_title(f"{sensitivity_name(r)} per 2-D offset")
    ax.figure.colorbar(im, ax=ax, shrink=0.8)


def _layers(ax: Any, r: ShiftTestResult) -> None:
    names = [la.name for la in r.layers]
    series = {
        "×P": [la.period.value for la in r.layers],
        "×jump": [la.jump_multiple.value for la in r.layers],
        "sub-unit": [la.sub_unit.value for la in r.layers],
    }
    x = np.arange(len(names))
    for label, values in series.items():
        ys = [np.nan if v is None else max(v, 1e-12) for v in values]
        if not all(np.isnan(ys)):
            ax.plot(x, ys, marker="o", ms=3, label=label)
    ax.set_yscale("log")
    ax.set_xticks(x)
    ax.set_xticklabels(names, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("relative equivariance error")
    ax.set_title("feature maps, by kind of shift")
    ax.legend(fontsize=8)
