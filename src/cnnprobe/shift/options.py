"""The request of one shift test: every option of the command, validated, in one frozen object."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import UsageError

MODES = ("crop", "roll", "pad", "fourier")
FILLS = ("zero", "reflect", "edge")
SHIFT_SETS = ("sweep", "random", "grid")
NOISE_INPUTS = ("pink", "white")

#: Inferences a default run aims at (``--count`` not given, noise inputs): about 25 s for a
#: ResNet-50 at 224 px on two CPU cores, a few seconds on a workstation.
DEFAULT_BUDGET = 192
#: Fewest inputs a default run uses: the normalized sensitivity needs two different inputs.
MIN_AUTO_COUNT = 2
#: Most noise inputs a default run uses.
MAX_AUTO_COUNT = 128


@dataclass(frozen=True)
class ShiftOptions:
    """What to measure and how. Sizes are in input pixels; ``None`` means "from the model".

    ``inputs`` holds ``"pink"``, ``"white"`` or paths (image files, folders of images, one
    ``.npy`` file). ``layers`` holds layer or tensor names, or ``"all"``.
    """

    model: str
    mode: str = "crop"
    fill: str | None = None
    shifts: str = "sweep"
    max_shift: float | None = None
    step: float = 1.0
    pairs: int = 1
    inputs: tuple[str, ...] = ("pink",)
    count: int | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    seed: int = 0
    batch_size: int = 16
    provider: str | None = None
    input_name: str | None = None
    input_shape: tuple[int, ...] | None = None
    layout: str = "auto"
    target: str | None = None
    layers: tuple[str, ...] = ()
    stride: tuple[int, ...] | None = None

    @property
    def fill_mode(self) -> str | None:
        """The fill of ``pad`` mode (``zero`` unless given); ``None`` for the other modes."""
        return (self.fill or "zero") if self.mode == "pad" else None

    @property
    def circular(self) -> bool:
        """Shifts wrap around (``roll``, ``fourier``): feature maps can be compared everywhere."""
        return self.mode in ("roll", "fourier")

    @property
    def noise(self) -> str | None:
        return self.inputs[0] if len(self.inputs) == 1 and self.inputs[0] in NOISE_INPUTS else None

    def validate(self) -> ShiftOptions:
        """Raise :class:`UsageError` for contradictory or out-of-range options."""
        if self.mode not in MODES:
            raise UsageError(f"unknown --mode {self.mode!r} (use {', '.join(MODES)})")
        if self.shifts not in SHIFT_SETS:
            raise UsageError(f"unknown --shifts {self.shifts!r} (use {', '.join(SHIFT_SETS)})")
        if self.fill is not None:
            if self.fill not in FILLS:
                raise UsageError(f"unknown --fill {self.fill!r} (use {', '.join(FILLS)})")
            if self.mode != "pad":
                raise UsageError(f"--fill applies to --mode pad only (mode is {self.mode})")
        if not (math.isfinite(self.step) and self.step > 0):
            raise UsageError(f"--step must be a positive number (got {self.step})")
        if self.step != int(self.step) and self.mode != "fourier":
            raise UsageError(
                f"--step {self.step:g} is a sub-pixel shift: only --mode fourier shifts by "
                "fractions of a pixel"
            )
        if self.max_shift is not None and not (
            math.isfinite(self.max_shift) and self.max_shift >= self.step
        ):
            raise UsageError(f"--max-shift must be at least the step ({self.step:g})")
        if (
            self.max_shift is not None
            and self.mode != "fourier"
            and self.max_shift != int(self.max_shift)
        ):
            raise UsageError("--max-shift must be a whole number of pixels (or --mode fourier)")
        for name, value in (("--pairs", self.pairs), ("--batch-size", self.batch_size)):
            if value < 1:
                raise UsageError(f"{name} must be at least 1 (got {value})")
        if self.count is not None and self.count < 1:
            raise UsageError(f"--count must be at least 1 (got {self.count})")
        if self.stride is not None and any(s < 1 for s in self.stride):
            raise UsageError("--stride must be positive integers, e.g. 32 or 32x32")
        if not self.inputs:
            raise UsageError("--inputs is empty")
        if any(i in NOISE_INPUTS for i in self.inputs) and len(self.inputs) > 1:
            raise UsageError("--inputs pink/white cannot be combined with other inputs")
        for name, values in (("--mean", self.mean), ("--std", self.std)):
            if values is not None and (not values or not all(math.isfinite(v) for v in values)):
                raise UsageError(f"{name} needs finite numbers, e.g. 0.485,0.456,0.406")
        if self.std is not None and any(v == 0 for v in self.std):
            raise UsageError("--std values must be non-zero")
        return self


def parse_floats(text: str | None, option: str) -> tuple[float, ...] | None:
    """``"0.485,0.456,0.406"`` -> a tuple; ``None`` stays ``None``."""
    if text is None:
        return None
    try:
        values = tuple(float(p) for p in text.replace(" ", "").split(",") if p)
    except ValueError:
        raise UsageError(f"{option} {text!r}: expected numbers separated by commas") from None
    if not values:
        raise UsageError(f"{option} {text!r}: expected numbers separated by commas")
    return values


def parse_stride(text: str | None) -> tuple[int, ...] | None:
    """``"32"`` or ``"32x32"`` -> a tuple of ints."""
    if text is None:
        return None
    try:
        values = tuple(int(p) for p in text.lower().replace(",", "x").split("x"))
    except ValueError:
        raise UsageError(f"--stride {text!r}: expected integers such as 32 or 32x32") from None
    return values
