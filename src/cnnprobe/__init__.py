"""cnnprobe: what a convolutional network actually sees.

``analyze(path)`` reads an ONNX model and returns per-layer receptive fields, jumps and coverage
of the input, plus a verdict on the whole model. Heavy modules load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["AnalysisResult", "CnnprobeError", "__version__", "analyze"]

if TYPE_CHECKING:
    from .api import analyze
    from .errors import CnnprobeError
    from .results import AnalysisResult


def __getattr__(name: str) -> Any:
    if name == "analyze":
        from .api import analyze

        return analyze
    if name == "AnalysisResult":
        from .results import AnalysisResult

        return AnalysisResult
    if name == "CnnprobeError":
        from .errors import CnnprobeError

        return CnnprobeError
    raise AttributeError(name)
