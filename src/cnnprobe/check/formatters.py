"""One formatter per output format of ``cnnprobe check``, each fed the frozen report."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from xml.etree import ElementTree as ET

from .. import __version__
from .outcome import ERROR, FAIL, PASS, CheckReport, ModelReport, RuleResult
from .rules import REGISTRY

SCHEMA_VERSION = "1.0"
INFO_URI = "https://pypi.org/project/cnnprobe/"


def _rows(report: CheckReport) -> list[tuple[ModelReport, RuleResult]]:
    rows: list[tuple[ModelReport, RuleResult]] = []
    for m in report.models:
        if m.error is not None:
            rows.append((m, RuleResult("model", ERROR, m.error)))
        rows.extend((m, r) for r in m.results)
    return rows


def _totals(report: CheckReport) -> str:
    n = len(report.models)
    errors = report.count(ERROR) + sum(1 for m in report.models if m.error)
    return (
        f"{n} model(s): {report.count(PASS)} passed, {report.count(FAIL)} failed, {errors} error(s)"
    )


def text(report: CheckReport) -> str:
    out: list[str] = []
    for m in report.models:
        out.append(f"{m.path}: {m.status.upper()}")
        if m.error is not None:
            out.append(f"  ERROR  {m.error}")
        for r in m.results:
            out.append(f"  {r.status.upper():5}  {r.rule}: {r.message}")
    out.append(_totals(report))
    return "\n".join(out) + "\n"


def to_dict(report: CheckReport) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "cnnprobe", "version": __version__},
        "config": report.config_source,
        "exit_code": report.exit_code,
        "summary": {
            "models": len(report.models),
            "passed": report.count(PASS),
            "failed": report.count(FAIL),
            "errors": report.count(ERROR) + sum(1 for m in report.models if m.error),
        },
        "models": [
            {
                "path": m.path,
                "status": m.status,
                "error": m.error,
                "results": [
                    {
                        "rule": r.rule,
                        "status": r.status,
                        "message": r.message,
                        "layer": r.layer,
                        "details": r.details,
                    }
                    for r in m.results
                ],
            }
            for m in report.models
        ],
    }


def json_format(report: CheckReport) -> str:
    return json.dumps(to_dict(report), indent=2, default=str) + "\n"


def junit(report: CheckReport) -> str:
    """JUnit XML: a test suite per model, a test case per rule."""
    suites = ET.Element("testsuites", name="cnnprobe check")
    total = {"tests": 0, "failures": 0, "errors": 0}
    for m in report.models:
        results = list(m.results)
        suite = ET.SubElement(suites, "testsuite", name=m.path)
        counts = {"tests": 0, "failures": 0, "errors": 0}
        if m.error is not None:
            results = [RuleResult("model", ERROR, m.error)]
        for r in results:
            counts["tests"] += 1
            case = ET.SubElement(suite, "testcase", classname=m.path, name=r.rule)
            if r.status == FAIL:
                counts["failures"] += 1
                node = ET.SubElement(case, "failure", message=r.message, type=r.rule)
                node.text = r.message
            elif r.status == ERROR:
                counts["errors"] += 1
                node = ET.SubElement(case, "error", message=r.message, type=r.rule)
                node.text = r.message
            else:
                ET.SubElement(case, "system-out").text = r.message
        for k, v in counts.items():
            suite.set(k, str(v))
            total[k] += v
    for k, v in total.items():
        suites.set(k, str(v))
    body = ET.tostring(suites, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"


def sarif(report: CheckReport) -> str:
    """SARIF 2.1.0: one run, the rules as reporting descriptors, a result per failure/error."""
    ids = list(REGISTRY)
    rules = [
        {
            "id": rid,
            "name": "".join(p.capitalize() for p in rid.split("-")),
            "shortDescription": {"text": REGISTRY[rid].summary},
            "fullDescription": {"text": " ".join((REGISTRY[rid].__doc__ or "").split())},
            "defaultConfiguration": {"level": "error"},
        }
        for rid in ids
    ]
    rules.append(
        {
            "id": "model",
            "name": "Model",
            "shortDescription": {"text": "the model file can be read and analysed"},
            "defaultConfiguration": {"level": "error"},
        }
    )
    results = []
    for m, r in _rows(report):
        if r.status == PASS:
            continue
        location: dict[str, Any] = {
            "physicalLocation": {"artifactLocation": {"uri": m.path.replace("\\", "/")}}
        }
        if r.layer:
            location["logicalLocations"] = [{"name": r.layer, "kind": "member"}]
        results.append(
            {
                "ruleId": r.rule,
                "ruleIndex": ids.index(r.rule) if r.rule in ids else len(ids),
                "level": "error",
                "kind": "fail",
                "message": {"text": r.message},
                "locations": [location],
            }
        )
    doc = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "cnnprobe",
                        "version": __version__,
                        "informationUri": INFO_URI,
                        "rules": rules,
                    }
                },
                "results": results,
                "invocations": [{"executionSuccessful": report.exit_code != 2}],
            }
        ],
    }
    return json.dumps(doc, indent=2) + "\n"


def _esc_data(s: str) -> str:
    return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _esc_prop(s: str) -> str:
    return _esc_data(s).replace(":", "%3A").replace(",", "%2C")


def github(report: CheckReport) -> str:
    """GitHub workflow commands: ``::error file=...,title=...::message`` per failure."""
    out = []
    for m, r in _rows(report):
        if r.status == PASS:
            continue
        title = f"cnnprobe {r.rule}" + (f" ({r.layer})" if r.layer else "")
        out.append(
            f"::error file={_esc_prop(m.path)},title={_esc_prop(title)}::{_esc_data(r.message)}"
        )
    out.append(_esc_data(_totals(report)))
    return "\n".join(out) + "\n"


def _md(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def markdown(report: CheckReport) -> str:
    """A job summary: totals, then a table of every model and rule."""
    icon = {PASS: "✅ pass", FAIL: "❌ fail", ERROR: "⚠️ error"}
    out = [
        "### cnnprobe check",
        "",
        _totals(report),
        "",
        "| model | rule | result | details |",
        "|---|---|---|---|",
    ]
    for m, r in _rows(report):
        out.append(f"| `{_md(m.path)}` | `{r.rule}` | {icon[r.status]} | {_md(r.message)} |")
    return "\n".join(out) + "\n"


FORMATTERS: dict[str, Callable[[CheckReport], str]] = {
    "text": text,
    "json": json_format,
    "junit": junit,
    "sarif": sarif,
    "github": github,
    "markdown": markdown,
}
