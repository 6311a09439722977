"""The ``max-shift-sensitivity`` rule of ``cnnprobe check``: one shift test, one number.

``measure_for_check(ctx, params)`` runs the test with the rule's protocol and returns the measure
over all comparisons and a one-line description of the protocol. It fails closed: a measure that
does not apply (a dense output, a degenerate argmax for ``flip_rate``) is an error, not a pass.
"""

from __future__ import annotations

from typing import Any

from ..errors import UsageError
from .engine import run_shift_test
from .options import ShiftOptions

#: rule measure name -> key of the shift-test measure
MEASURES = {
    "normalized_sensitivity": "ns",
    "flip_rate": "flip_rate",
    "mac": "mac",
    "tv": "tv",
    "jsd": "js",
    "equivariance_error": "equivariance_error",
}
SHIFT_SETS = {"sweep": "sweep", "pairs": "random", "random": "random", "grid": "grid"}


def measure_for_check(ctx: Any, params: dict[str, Any]) -> tuple[float, str]:
    """``ctx`` has ``path``, ``input_name``, ``input_shape`` and ``layout``; ``params`` the rule's
    ``measure``, ``mode``, ``shifts``, ``max-shift``, ``inputs`` (count), ``seed`` and ``fill``."""
    name = str(params.get("measure", "normalized_sensitivity"))
    key = MEASURES.get(name)
    if key is None:
        raise UsageError(f"unknown measure {name!r} (use {', '.join(MEASURES)})")
    shifts = str(params.get("shifts", "sweep"))
    if shifts not in SHIFT_SETS:
        raise UsageError(f"unknown shifts {shifts!r} (use sweep, pairs or grid)")
    max_shift = params.get("max-shift")
    opts = ShiftOptions(
        model=ctx.path,
        mode=str(params.get("mode", "crop")),
        fill=params.get("fill"),
        shifts=SHIFT_SETS[shifts],
        max_shift=float(max_shift) if max_shift else None,
        count=params.get("inputs") or None,
        seed=int(params.get("seed", 0)),
        input_name=ctx.input_name,
        input_shape=ctx.input_shape,
        layout=ctx.layout,
    )
    r = run_shift_test(opts)
    measure = r.output.measure(key)
    if measure is None or measure.all.value is None:
        kind = r.output.kind
        raise UsageError(
            f"measure {name} does not apply to this model's output ({kind}"
            + ("; use equivariance_error" if kind == "dense" else "")
            + ")"
        )
    if key in ("flip_rate",) and r.output.degenerate_class is not None:
        raise UsageError(
            f"every input gets class {r.output.degenerate_class}: flip_rate is 0 by construction; "
            "use normalized_sensitivity"
        )
    p = r.protocol
    top = "x".join(f"{m:g}" for m in p.max_shift)
    fill = f" {p.fill}" if p.fill else ""
    protocol = (
        f"{p.mode}{fill}, {p.shift_set} to {top} px, {p.count} {p.input_kind} inputs, "
        f"{p.comparisons} comparisons, seed {p.seed}"
    )
    return float(measure.all.value), protocol
