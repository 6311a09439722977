"""``cnnprobe shift-test``: run a model for real and measure how much its outputs and feature maps
change when the input shifts.

Modules, in the order a run uses them:

- ``options``   the request (:class:`ShiftOptions`), frozen and validated
- ``geometry``  total stride, equivariance period and feature-map jumps, from the summary engine
- ``inputs``    1/f ("pink") noise, white noise, images (Pillow) or a ``.npy`` batch
- ``protocol``  shift sets (sweep, random pairs, grid) and shift modes (roll, crop, pad, Fourier)
- ``runners``   onnxruntime and Keras, batched
- ``measures``  classifier measures, equivariance error, confidence intervals
- ``engine``    streams views through a runner in batches and accumulates the measures
- ``results``   frozen result objects; ``report/`` formats them; ``plot`` draws them

Only the command imports this package, inside its function: numpy loads here, onnxruntime and
Keras only inside their runners, matplotlib only for ``--plot``.
"""

from __future__ import annotations

from .engine import run_shift_test
from .options import ShiftOptions
from .results import ShiftTestResult

__all__ = ["ShiftOptions", "ShiftTestResult", "run_shift_test"]
