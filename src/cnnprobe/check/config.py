"""Configuration of ``cnnprobe check``.

Read from ``cnnprobe.toml`` (section ``[check]``) or ``pyproject.toml`` (section
``[tool.cnnprobe.check]``), found in the current directory or its parents (``--config`` names one
explicitly). Keys::

    [tool.cnnprobe.check]
    input-shape = "1x3x224x224"     # like --input-shape; also: input, layout, assume-pointwise
    [tool.cnnprobe.check.rules]
    full-input = true               # true: defaults; false: off; number/list/table: settings
    max-stride = 32
    [[tool.cnnprobe.check.overrides]]
    models = ["models/seg_*.onnx"]  # globs, relative to the config file's folder
    rules = { max-stride = 8, full-input = false }

Command-line options override files; overrides apply in order, later ones win.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from .rules import REGISTRY, ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

SECTION_KEYS = ("rules", "input", "input-shape", "layout", "assume-pointwise", "overrides")
OVERRIDE_KEYS = ("models", "rules", "input", "input-shape", "layout", "assume-pointwise")
LAYOUTS = ("auto", "nchw", "nhwc")


@dataclass(frozen=True)
class Settings:
    """Effective settings for one model."""

    rules: dict[str, dict[str, Any]]
    input_name: str | None = None
    input_shape: tuple[int, ...] | None = None
    layout: str = "auto"
    assume_pointwise: tuple[str, ...] = ()


@dataclass
class Layer:
    """One level of settings (file section, override, command line): only what it sets."""

    rules: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class CheckConfig:
    source: str | None = None
    base_dir: Path = field(default_factory=Path.cwd)
    base: Layer = field(default_factory=Layer)
    overrides: list[tuple[tuple[str, ...], Layer]] = field(default_factory=list)
    cli: Layer = field(default_factory=Layer)

    def settings_for(self, model: str) -> Settings:
        rules: dict[str, dict[str, Any]] = {
            rid: {} for rid, rule in REGISTRY.items() if rule.default is not None
        }
        options: dict[str, Any] = {}
        layers = [self.base]
        rel = _relative(Path(model), self.base_dir)
        layers += [lay for pats, lay in self.overrides if any(fnmatch(rel, p) for p in pats)]
        layers.append(self.cli)
        for lay in layers:
            for rid, params in lay.rules.items():
                if params is None:
                    rules.pop(rid, None)
                else:
                    rules[rid] = params
            options.update(lay.options)
        return Settings(
            rules={rid: rules[rid] for rid in REGISTRY if rid in rules},
            input_name=options.get("input"),
            input_shape=options.get("input-shape"),
            layout=options.get("layout", "auto"),
            assume_pointwise=tuple(options.get("assume-pointwise", ())),
        )


def _relative(path: Path, base: Path) -> str:
    try:
        return path.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def parse_rule(rid: str, value: Any, key: str) -> dict[str, Any] | None:
    rule = REGISTRY.get(rid)
    if rule is None:
        known = ", ".join(REGISTRY)
        raise ConfigError(key, f"unknown rule (known: {known})")
    if value is False:
        return None
    if not isinstance(value, (bool, int, float, str, list, dict)):
        raise ConfigError(key, f"unsupported value {value!r}")
    return rule.parse(value, key)


def _layer(table: dict[str, Any], prefix: str, allowed: tuple[str, ...]) -> Layer:
    for k in table:
        if k not in allowed:
            raise ConfigError(f"{prefix}.{k}", f"unknown key (allowed: {', '.join(allowed)})")
    lay = Layer()
    rules = table.get("rules", {})
    if not isinstance(rules, dict):
        raise ConfigError(f"{prefix}.rules", "expected a table of rule = setting")
    for rid, value in rules.items():
        lay.rules[rid] = parse_rule(rid, value, f"{prefix}.rules.{rid}")
    for k in ("input", "input-shape", "layout", "assume-pointwise"):
        if k in table:
            lay.options[k] = parse_option(k, table[k], f"{prefix}.{k}")
    return lay


def parse_option(name: str, value: Any, key: str) -> Any:
    if name == "input":
        if not isinstance(value, str) or not value:
            raise ConfigError(key, "expected the name of the model input")
        return value
    if name == "input-shape":
        from ..api import parse_shape
        from ..errors import UsageError

        if isinstance(value, list) and all(isinstance(d, int) and d > 0 for d in value):
            return tuple(value)
        if not isinstance(value, str):
            raise ConfigError(key, f'expected a shape like "1x3x224x224", got {value!r}')
        try:
            return parse_shape(value)
        except UsageError as exc:
            raise ConfigError(key, exc.message.split(": ", 1)[-1]) from None
    if name == "layout":
        if value not in LAYOUTS:
            raise ConfigError(key, f"expected one of {', '.join(LAYOUTS)}, got {value!r}")
        return value
    if name == "assume-pointwise":
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(key, "expected a list of operator names")
        return tuple(value)
    raise ConfigError(key, "unknown option")  # pragma: no cover


def find_config(start: Path) -> Path | None:
    """``cnnprobe.toml`` or a ``pyproject.toml`` with ``[tool.cnnprobe]``, nearest first."""
    for folder in (start.resolve(), *start.resolve().parents):
        own = folder / "cnnprobe.toml"
        if own.is_file():
            return own
        py = folder / "pyproject.toml"
        if py.is_file():
            try:
                data = tomllib.loads(py.read_text("utf-8"))
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
                continue
            if isinstance(data.get("tool"), dict) and "cnnprobe" in data["tool"]:
                return py
    return None


def load_config(path: Path | None) -> CheckConfig:
    """Parse and validate a configuration file (``None``: defaults only)."""
    if path is None:
        return CheckConfig()
    source = str(path)
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        raise ConfigError("config", "no such file", source) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("config", f"cannot read ({exc})", source) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("config", f"invalid TOML ({exc})", source) from None
    if path.name == "pyproject.toml":
        prefix = "tool.cnnprobe.check"
        section = data.get("tool", {}).get("cnnprobe", {})
        if not isinstance(section, dict):
            raise ConfigError("tool.cnnprobe", "expected a table", source)
        unknown = [k for k in section if k != "check"]
        if unknown:
            raise ConfigError(
                f"tool.cnnprobe.{unknown[0]}", "unknown section (allowed: check)", source
            )
        section = section.get("check", {})
    else:
        prefix = "check"
        unknown = [k for k in data if k != "check"]
        if unknown:
            raise ConfigError(unknown[0], "unknown section (allowed: check)", source)
        section = data.get("check", {})
    if not isinstance(section, dict):
        raise ConfigError(prefix, "expected a table", source)
    try:
        cfg = CheckConfig(source=source, base_dir=path.parent)
        cfg.base = _layer(section, prefix, SECTION_KEYS)
        overrides = section.get("overrides", [])
        if not isinstance(overrides, list):
            raise ConfigError(f"{prefix}.overrides", "expected an array of tables [[...]]")
        for k, item in enumerate(overrides):
            key = f"{prefix}.overrides[{k}]"
            if not isinstance(item, dict):
                raise ConfigError(key, "expected a table")
            models = item.get("models")
            if isinstance(models, str):
                models = [models]
            if (
                not isinstance(models, list)
                or not models
                or not all(isinstance(m, str) for m in models)
            ):
                raise ConfigError(f"{key}.models", "expected a list of glob patterns")
            cfg.overrides.append((tuple(models), _layer(item, key, OVERRIDE_KEYS)))
    except ConfigError as exc:
        raise ConfigError(exc.key, exc.reason, source) from None
    return cfg


def parse_cli_rule(text: str) -> tuple[str, Any]:
    """``ID=VALUE`` from ``--rule``; the value is read as TOML (``8``, ``[8, 16]``, ``false``,
    ``{ max = 0.1 }``); a bare word is taken as a string."""
    if "=" not in text:
        return text.strip(), True
    rid, raw = (part.strip() for part in text.split("=", 1))
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return rid, value
