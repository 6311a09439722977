"""Evaluate the configured rules on many models, in parallel when asked."""

from __future__ import annotations

import glob
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from ..errors import CnnprobeError, UsageError
from .config import CheckConfig, Settings
from .outcome import ERROR, CheckReport, ModelReport, RuleResult
from .rules import REGISTRY, Context

MODEL_SUFFIXES = (".onnx", ".keras", ".h5", ".hdf5")


def expand_models(items: Iterable[str]) -> list[str]:
    """Paths and glob patterns (``**`` recursive) -> model paths, in order, without repeats."""
    out: list[str] = []
    for item in items:
        if glob.has_magic(item):
            hits = sorted(glob.glob(item, recursive=True))
            hits = [h for h in hits if os.path.isdir(h) or h.lower().endswith(MODEL_SUFFIXES)]
            if not hits:
                raise UsageError(f"no model matches {item!r}")
            out.extend(hits)
        else:
            out.append(item)
    return list(dict.fromkeys(out))


def check_model(path: str, settings: Settings, runner: Callable[..., Any] | None) -> ModelReport:
    """Analyse one model and evaluate every enabled rule; never raises for a bad model."""
    from ..api import analyze

    try:
        result = analyze(
            path,
            input_name=settings.input_name,
            input_shape=settings.input_shape,
            layout=settings.layout,
            assume_pointwise=settings.assume_pointwise,
        )
    except CnnprobeError as exc:
        return ModelReport(path, (), str(exc) if exc.path else f"{path}: {exc}")
    except Exception as exc:  # an unexpected failure is reported for this model, not raised
        return ModelReport(path, (), f"{path}: cannot analyse ({type(exc).__name__}: {exc})")
    ctx = Context(path, settings.input_name, settings.input_shape, settings.layout, runner)
    results = []
    for rid, params in settings.rules.items():
        try:
            results.append(REGISTRY[rid].evaluate(result, params, ctx))
        except CnnprobeError as exc:
            results.append(RuleResult(rid, ERROR, exc.message))
    return ModelReport(path, tuple(results))


def _shift_runner(ctx: Context, params: dict[str, Any]) -> tuple[float, str]:
    from ..shift.check_bridge import measure_for_check

    return measure_for_check(ctx, params)


def _job(args: tuple[str, Settings]) -> ModelReport:
    path, settings = args
    return check_model(path, settings, _shift_runner)


def run_check(models: list[str], config: CheckConfig, jobs: int = 1) -> CheckReport:
    tasks = [(path, config.settings_for(path)) for path in models]
    if jobs <= 1 or len(tasks) <= 1:
        reports = [_job(t) for t in tasks]
    else:
        with ProcessPoolExecutor(max_workers=min(jobs, len(tasks))) as pool:
            reports = list(pool.map(_job, tasks))
    return CheckReport(tuple(reports), config.source)
