"""Frozen results of a check run, fed to the formatters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PASS = "pass"
FAIL = "fail"
ERROR = "error"  #: the model could not be analysed or the rule could not run


@dataclass(frozen=True)
class RuleResult:
    rule: str
    status: str
    message: str
    layer: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelReport:
    path: str
    results: tuple[RuleResult, ...]
    error: str | None = None  #: the model could not be read at all

    @property
    def status(self) -> str:
        if self.error is not None or any(r.status == ERROR for r in self.results):
            return ERROR
        return FAIL if any(r.status == FAIL for r in self.results) else PASS


@dataclass(frozen=True)
class CheckReport:
    models: tuple[ModelReport, ...]
    config_source: str | None = None

    def count(self, status: str) -> int:
        return sum(1 for m in self.models for r in m.results if r.status == status)

    @property
    def exit_code(self) -> int:
        """0 every rule passed, 1 a rule failed, 2 a model or rule could not be evaluated."""
        if any(m.status == ERROR for m in self.models):
            return 2
        return 1 if any(m.status == FAIL for m in self.models) else 0
