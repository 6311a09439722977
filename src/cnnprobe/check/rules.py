"""The rule registry. Each rule is a small class: an id, a one-line summary, a docstring (its
documentation, shown by ``cnnprobe check --list-rules``), a parser for its configuration value and
an evaluation over an :class:`~cnnprobe.results.AnalysisResult`.

Configuration values: ``true`` enables a rule with its defaults, ``false`` disables it, a number or
a per-axis list sets its threshold, and a table sets named parameters (``value``, ``layer``, ...).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, ClassVar

from ..errors import CnnprobeError
from ..results import OK, AnalysisResult, LayerResult
from .outcome import ERROR, FAIL, PASS, RuleResult


class ConfigError(CnnprobeError):
    """Invalid configuration: names the key and the reason."""

    def __init__(self, key: str, reason: str, source: str | None = None) -> None:
        super().__init__(f"{key}: {reason}", source)
        self.key = key
        self.reason = reason


@dataclass(frozen=True)
class Context:
    """What a rule may need besides the analysis (the shift-sensitivity rule runs the model)."""

    path: str
    input_name: str | None = None
    input_shape: tuple[int, ...] | None = None
    layout: str = "auto"
    runner: Callable[..., Any] | None = field(default=None, compare=False)


class Rule:
    id: ClassVar[str]
    summary: ClassVar[str]
    #: configuration used when the user says nothing (``None``: off unless configured)
    default: ClassVar[Any] = None
    #: the named parameters a table may hold
    keys: ClassVar[tuple[str, ...]] = ("layer",)

    def parse(self, value: Any, key: str) -> dict[str, Any]:
        if value is True:
            return self.check_params({}, key)
        if isinstance(value, dict):
            unknown = sorted(set(value) - set(self.keys))
            if unknown:
                allowed = ", ".join(self.keys) or "none"
                raise ConfigError(f"{key}.{unknown[0]}", f"unknown parameter (allowed: {allowed})")
            params = dict(value)
            if "layer" in params and not isinstance(params["layer"], str):
                raise ConfigError(f"{key}.layer", "expected a layer name (a string)")
            return self.check_params(params, key)
        return self.check_params({"value": value}, key)

    def check_params(self, params: dict[str, Any], key: str) -> dict[str, Any]:
        if "value" in params:
            raise ConfigError(key, f"expected true, false or a table, got {params['value']!r}")
        return params

    def evaluate(self, result: AnalysisResult, params: dict[str, Any], ctx: Context) -> RuleResult:
        raise NotImplementedError


REGISTRY: dict[str, Rule] = {}


def register(cls: type[Rule]) -> type[Rule]:
    if cls.id in REGISTRY:
        raise RuntimeError(f"duplicate rule id {cls.id}")
    REGISTRY[cls.id] = cls()
    return cls


# ---------------------------------------------------------------------------------------------
# helpers


def _target(result: AnalysisResult, params: dict[str, Any]) -> LayerResult | str:
    """The layer a rule looks at, or an error message."""
    name = params.get("layer") or result.verdict.last_spatial_layer
    if name is None:
        return "the model has no spatial layer feeding its outputs"
    try:
        return result.layer(name)
    except KeyError:
        return f"no layer named {name!r}"


def _fmt(values: Sequence[object]) -> str:
    return "×".join("?" if v is None else str(v) for v in values)


def _per_axis(value: Any, key: str, *, positive: bool = True) -> list[int]:
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(v, int) and not isinstance(v, bool) for v in items):
        raise ConfigError(key, f"expected an integer or a list of integers, got {value!r}")
    if positive and any(v <= 0 for v in items):
        raise ConfigError(key, f"expected positive integers, got {value!r}")
    return list(items)


def _expand(limit: list[int], n: int) -> list[int] | None:
    if len(limit) == 1:
        return limit * n
    return limit if len(limit) == n else None


class ThresholdRule(Rule):
    """Shared parsing for rules with a per-axis integer threshold in ``value``."""

    keys = ("value", "layer")

    def check_params(self, params: dict[str, Any], key: str) -> dict[str, Any]:
        if "value" not in params:
            raise ConfigError(key, "needs a threshold: a number, a per-axis list or {value = ...}")
        params["value"] = _per_axis(params["value"], f"{key}.value" if len(params) > 1 else key)
        return params

    def compare(self, actual: int | Fraction, limit: int) -> bool:
        raise NotImplementedError

    def figures(self, layer: LayerResult) -> list[Any]:
        raise NotImplementedError

    what: ClassVar[str] = ""
    relation: ClassVar[str] = ""

    def evaluate(self, result: AnalysisResult, params: dict[str, Any], ctx: Context) -> RuleResult:
        layer = _target(result, params)
        if isinstance(layer, str):
            return RuleResult(self.id, ERROR, layer)
        limit = _expand(params["value"], len(layer.axes))
        if limit is None:
            return RuleResult(
                self.id,
                ERROR,
                f"{len(params['value'])} values for {len(layer.axes)} axes",
                layer.name,
            )
        actual = self.figures(layer)
        details = {"actual": [_json(a) for a in actual], "limit": limit}
        bad = [
            k
            for k, (a, lim) in enumerate(zip(actual, limit))
            if a is not None and not self.compare(a, lim)
        ]
        if layer.status != OK or (any(a is None for a in actual) and not bad):
            # (an axis known to break the limit fails the rule whatever the others are)
            known = _shown(actual)
            why = f" (status {layer.status})" if layer.status != OK else ""
            return RuleResult(
                self.id,
                FAIL,
                f"cannot verify: the {self.what} of {layer.name} is {known}{why}",
                layer.name,
                details,
            )
        text = f"{self.what} of {layer.name} is {_shown(actual)}"
        if bad:
            axes = ", ".join(str(k) for k in bad)
            return RuleResult(
                self.id,
                FAIL,
                f"{text}; must be {self.relation} {_fmt(limit)} (axis {axes})",
                layer.name,
                details,
            )
        return RuleResult(
            self.id, PASS, f"{text} ({self.relation} {_fmt(limit)})", layer.name, details
        )


def _json(x: Any) -> Any:
    if isinstance(x, Fraction):
        return x.numerator if x.denominator == 1 else float(x)
    return x


def _shown(values: Sequence[Any]) -> str:
    """Per-axis figures as ``32×?`` (unknown ones as ``?``)."""
    return _fmt([None if a is None else _str(a) for a in values])


def _str(x: Any) -> str:
    if isinstance(x, Fraction):
        return str(x.numerator) if x.denominator == 1 else f"{x.numerator}/{x.denominator}"
    return str(x)


# ---------------------------------------------------------------------------------------------
# the rules


@register
class FullInput(Rule):
    """Every unit of the last spatial layer (or of ``layer``) sees the whole input.

    A unit sees the whole input on an axis when its window contains every input pixel, or when it
    depends through a global op on a feature map that reads every pixel (global pooling, attention,
    a squeeze-excitation gate). Example: ``full-input = true`` or
    ``full-input = { layer = "stage4" }``.
    """

    id = "full-input"
    summary = "the last spatial layer (or a named layer) sees the full input"
    default = True

    def evaluate(self, result: AnalysisResult, params: dict[str, Any], ctx: Context) -> RuleResult:
        layer = _target(result, params)
        if isinstance(layer, str):
            return RuleResult(self.id, ERROR, layer)
        size = _fmt(result.verdict.input_size)
        sees = layer.sees_full_input
        unsure = not result.verdict.certain and not params.get("layer")
        if sees is None or (unsure and not sees):
            return RuleResult(
                self.id,
                FAIL,
                f"cannot verify: the geometry of {layer.name} or of later layers is uncertain",
                layer.name,
            )
        cov = [a.coverage_min for a in layer.axes]
        seen = _fmt(
            [
                None if c is None or n is None else round(c * n)
                for c, n in zip(cov, result.verdict.input_size)
            ]
        )
        details = {"coverage_min": cov, "input_size": list(result.verdict.input_size)}
        if sees:
            return RuleResult(
                self.id,
                PASS,
                f"every unit of {layer.name} sees the full {size} input",
                layer.name,
                details,
            )
        return RuleResult(
            self.id,
            FAIL,
            f"{layer.name} does not see the full input: its least-covering unit sees {seen} of "
            f"{size}",
            layer.name,
            details,
        )


@register
class MinRF(ThresholdRule):
    """The receptive field of the last spatial layer (or ``layer``) is at least ``value`` pixels
    per axis (one number for every axis, or a list). A global op counts as the input pixels it
    reaches (as a rule the whole input).
    Example: ``min-rf = 128`` or ``min-rf = { value = [64, 128], layer = "neck" }``."""

    id = "min-rf"
    summary = "minimum receptive field per axis"
    what = "receptive field"
    relation = ">="

    def figures(self, layer: LayerResult) -> list[Any]:
        return [a.effective_rf for a in layer.axes]

    def compare(self, actual: int | Fraction, limit: int) -> bool:
        return actual >= limit


@register
class MaxRF(ThresholdRule):
    """The receptive field of the last spatial layer (or ``layer``) is at most ``value`` pixels per
    axis: keeps a model local (a global op counts as the input pixels it reaches). Example:
    ``max-rf = 64``."""

    id = "max-rf"
    summary = "maximum receptive field per axis"
    what = "receptive field"
    relation = "<="

    def figures(self, layer: LayerResult) -> list[Any]:
        return [a.effective_rf for a in layer.axes]

    def compare(self, actual: int | Fraction, limit: int) -> bool:
        return actual <= limit


@register
class MaxStride(ThresholdRule):
    """The total stride (jump) of the last spatial layer (or ``layer``) is at most ``value`` input
    pixels per axis. Example: ``max-stride = 16`` for a segmentation backbone."""

    id = "max-stride"
    summary = "maximum total stride per axis"
    what = "total stride"
    relation = "<="

    def figures(self, layer: LayerResult) -> list[Any]:
        return [a.jump for a in layer.axes]

    def compare(self, actual: int | Fraction, limit: int) -> bool:
        return actual <= limit


@register
class MinResolution(ThresholdRule):
    """The last spatial layer (or ``layer``) has at least ``value`` units per axis.
    Example: ``min-resolution = 7``."""

    id = "min-resolution"
    summary = "minimum output resolution per axis"
    what = "resolution"
    relation = ">="

    def figures(self, layer: LayerResult) -> list[Any]:
        return [a.size for a in layer.axes]

    def compare(self, actual: int | Fraction, limit: int) -> bool:
        return actual >= limit


class DiagnosticRule(Rule):
    """A rule that fails when the analysis emitted diagnostics with some codes."""

    codes: ClassVar[tuple[str, ...]] = ()
    keys = ()
    nothing: ClassVar[str] = ""

    def evaluate(self, result: AnalysisResult, params: dict[str, Any], ctx: Context) -> RuleResult:
        found = [d for d in result.diagnostics if d.code in self.codes]
        if not found:
            return RuleResult(self.id, PASS, self.nothing)
        first = found[0]
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        return RuleResult(
            self.id,
            FAIL,
            f"{first.where}: {first.message}{more}",
            first.where or None,
            {"count": len(found), "where": [d.where for d in found]},
        )


@register
class NoMisalignedMerge(DiagnosticRule):
    """No merge (Add, Concat, Mul, ...) joins paths with different jumps: their units would not
    line up, so the merged features mix different input positions."""

    id = "no-misaligned-merge"
    summary = "no merge of paths with different jumps"
    default = True
    codes = ("misaligned-merge",)
    nothing = "every merge joins paths with the same jump"


@register
class NoOffCentreMerge(DiagnosticRule):
    """No merge joins paths whose windows are centred at different input positions (common with
    'same' padding at stride 2 on even sizes and with TF-style padding)."""

    id = "no-off-centre-merge"
    summary = "no merge of paths centred at different positions"
    codes = ("off-centre-merge",)
    nothing = "every merge joins paths with the same centre"


@register
class NoUnknownOps(DiagnosticRule):
    """Every operator has a geometry rule (declare custom pointwise ops with
    ``assume-pointwise``), so that no figure is uncertain."""

    id = "no-unknown-ops"
    summary = "every operator has a geometry rule"
    default = True
    codes = ("unknown-op", "bad-op")
    nothing = "every operator has a geometry rule"


@register
class MaxShiftSensitivity(Rule):
    """Runs ``cnnprobe shift-test`` with a stated protocol and fails when a measure exceeds
    ``max``. Parameters: ``max`` (required), ``measure`` (default ``normalized_sensitivity``;
    also ``flip_rate``, ``mac``, ``tv``, ``jsd``, ``equivariance_error`` for dense outputs),
    ``mode`` (``roll``, ``crop``, ``pad``),
    ``shifts`` (``sweep``, ``pairs``, ``grid``), ``max-shift``, ``inputs`` (count), ``seed``.
    Example: ``max-shift-sensitivity = { max = 0.1, mode = "crop", inputs = 16 }``."""

    id = "max-shift-sensitivity"
    summary = "maximum shift sensitivity (runs the model)"
    keys = ("max", "measure", "mode", "shifts", "max-shift", "inputs", "seed", "fill")
    measures = ("normalized_sensitivity", "flip_rate", "mac", "tv", "jsd", "equivariance_error")

    def check_params(self, params: dict[str, Any], key: str) -> dict[str, Any]:
        if "value" in params:
            params = {"max": params.pop("value")}
        limit = params.get("max")
        if not isinstance(limit, (int, float)) or isinstance(limit, bool) or limit < 0:
            raise ConfigError(f"{key}.max", f"expected a non-negative number, got {limit!r}")
        measure = params.setdefault("measure", "normalized_sensitivity")
        if measure not in self.measures:
            raise ConfigError(f"{key}.measure", f"expected one of {', '.join(self.measures)}")
        for name in ("inputs", "seed", "max-shift"):
            v = params.get(name)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
                raise ConfigError(f"{key}.{name}", f"expected a non-negative integer, got {v!r}")
        for name in ("mode", "shifts", "fill"):
            v = params.get(name)
            if v is not None and not isinstance(v, str):
                raise ConfigError(f"{key}.{name}", f"expected a string, got {v!r}")
        return params

    def evaluate(self, result: AnalysisResult, params: dict[str, Any], ctx: Context) -> RuleResult:
        if ctx.runner is None:
            return RuleResult(self.id, ERROR, "shift testing is not available")
        try:
            value, protocol = ctx.runner(ctx, params)
        except CnnprobeError as exc:
            return RuleResult(self.id, ERROR, f"shift-test failed: {exc.message}")
        limit = params["max"]
        details = {"measure": params["measure"], "value": value, "max": limit, "protocol": protocol}
        text = f"{params['measure']} = {value:.4g} ({protocol})"
        if value > limit:
            return RuleResult(self.id, FAIL, f"{text}; must be <= {limit}", None, details)
        return RuleResult(self.id, PASS, f"{text} <= {limit}", None, details)
