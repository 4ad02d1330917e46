"""What the Pulumi CLI does with `Pulumi.yaml`'s `config:` block and a stack file, before the program runs.

The mocks never read `Pulumi.yaml`, so a declared key no stack sets (the CLI refuses: "Stack 'dev' is missing
configuration value …") passed every test. This module applies the CLI's rules as pulumi v3.274.1 implements
them, so `mlcluster validate`, `render` and the tests see the stack exactly as `pulumi preview` would:

- the project file (`Project.Validate`, sdk/go/common/workspace/project.go): a key of the project's namespace
  may declare `type`/`default`/`secret`; a key of another namespace (`pulumi:…`, `aws:…`) only a `value`;
  never both `default` and `value`; an array type names its `items`; a default matches its type;
- merging (`mergeConfig`, pkg/workspace/config.go): a declared project key without `default`/`value` that the
  stack does not set is an error; otherwise the default (or value) is applied where the stack has none;
- validation (`validateStackConfigValue`, same file): for a typed key, `secret: true` demands an encrypted
  (`secure:`) stack value — defaults are applied before this check, so a secret key with a default always
  fails — and the value must match the type (`ValidateConfigValue`: integers and booleans may be strings
  that parse; objects are mappings; arrays check every item).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mlcluster.errors import ConfigError

TYPES = ("string", "integer", "boolean", "array", "object")


@dataclass(frozen=True)
class Declared:
    """One entry of `Pulumi.yaml`'s `config:` block."""

    key: str  # fully namespaced: `mlcluster:profile`
    type: str | None
    items: dict[str, Any] | None
    default: Any
    value: Any
    secret: bool
    has_default: bool
    has_value: bool


def _namespaced(project: str, key: str) -> str:
    return key if ":" in key else f"{project}:{key}"


def _matches(type_: str, items: dict[str, Any] | None, value: Any) -> bool:
    """`workspace.ValidateConfigValue`."""
    if type_ == "string":
        return isinstance(value, str)
    if type_ == "integer":
        if isinstance(value, bool):
            return False
        if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
            return True
        if isinstance(value, str):
            try:
                int(value)
            except ValueError:
                return False
            return True
        return False
    if type_ == "boolean":
        return isinstance(value, bool) or value in ("true", "false")
    if type_ == "object":
        return isinstance(value, dict)
    if not isinstance(value, list) or items is None:
        return False
    return all(_matches(items.get("type", ""), items.get("items"), item) for item in value)


def read_project(path: Path) -> tuple[str, list[Declared]]:
    """The project name and its declared config, checked as `Project.Validate` checks them."""
    shown = path.name
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError.one(shown, "", None, f"the project file cannot be read ({exc})", missing=True) from None
    name = doc.get("name")
    if not name:
        raise ConfigError.one(shown, "name", None, "project is missing a 'name' attribute", missing=True)
    declared: list[Declared] = []
    for raw_key, entry in (doc.get("config") or {}).items():
        if not isinstance(entry, dict):  # shorthand: a project key's default, another namespace's value
            ours = ":" not in raw_key or raw_key.startswith(f"{name}:")
            entry = {"default": entry} if ours else {"value": entry}
        key = _namespaced(name, raw_key)
        ours = key.startswith(f"{name}:")
        where = f"config.{raw_key}"
        type_ = entry.get("type")
        if "default" in entry and "value" in entry:
            raise ConfigError.one(shown, where, entry, "cannot have both a 'default' and 'value' attribute")
        if type_ is not None and type_ not in TYPES:
            raise ConfigError.one(shown, f"{where}.type", type_, f"allowed: {', '.join(TYPES)}")
        if ours:
            if type_ == "array" and entry.get("items") is None:
                raise ConfigError.one(shown, where, entry, "an array declares its item type with 'items'")
            if type_ is not None and "default" in entry and not _matches(type_, entry.get("items"), entry["default"]):
                raise ConfigError.one(shown, f"{where}.default", entry["default"], f"must be of type '{type_}'")
        else:
            if type_ is not None or "default" in entry:
                raise ConfigError.one(shown, where, entry, "a key of another namespace is not namespaced by the "
                                      "project: it takes only a 'value' (no type, no default)")
            if "value" not in entry:
                raise ConfigError.one(shown, where, entry, "a key of another namespace must provide 'value'")
        declared.append(Declared(key, type_, entry.get("items"), entry.get("default"), entry.get("value"),
                                 bool(entry.get("secret")), "default" in entry, "value" in entry))
    return name, declared


def stack_values(path: Path) -> dict[str, Any]:
    """The stack file's `config:` as the CLI holds it: key → value (a `{"secure": …}` mapping when encrypted)."""
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return dict((doc.get("config") or {}) if isinstance(doc, dict) else {})


def _secure(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"secure"}


def check_stack(project_file: Path, stack_file: Path) -> list[str]:
    """Everything `pulumi preview` would refuse about this stack's config, in the CLI's own words."""
    project, declared = read_project(project_file)
    stack = stack_file.name.removeprefix("Pulumi.").removesuffix(".yaml")
    values = {_namespaced(project, k): v for k, v in stack_values(stack_file).items()}
    problems: list[str] = []
    missing = sorted(d.key for d in declared if d.key.startswith(f"{project}:") and d.key not in values
                     and not d.has_default and not d.has_value)
    if missing:
        keys = " ".join(f"'{k}'" for k in missing)
        problems.append(f"Stack '{stack}' is missing configuration value{'s' if len(missing) > 1 else ''} {keys}")
        return problems
    for d in sorted(declared, key=lambda d: d.key):
        if d.type is None:
            continue
        if d.key in values:
            value = values[d.key]
        elif d.has_default or d.has_value:
            value = d.default if d.has_default else d.value  # applied by the CLI before validation
        else:
            continue
        if d.secret and not _secure(value):
            problems.append(f"Stack '{stack}' with configuration key '{d.key}' must be encrypted as it's secret")
            continue
        if _secure(value):
            continue  # its type is checked after decryption, which needs the stack's key
        if not _matches(d.type, d.items, value if isinstance(value, dict | list) else _as_text(value)):
            problems.append(f"Stack '{stack}' with configuration key '{d.key}' must be of type '{d.type}'")
    return problems


def _as_text(value: Any) -> Any:
    """A plain stack value reaches validation as the CLI stores it: a string (`3` → "3", `true` → "true")."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value) if value is not None else ""


def applied_defaults(project_file: Path, config: dict[str, str]) -> dict[str, str]:
    """`config` (wire format, `ns:key` → string) with the project's defaults and values added where the stack
    sets nothing, as the CLI hands them to the program."""
    _, declared = read_project(project_file)
    merged = dict(config)
    for d in declared:
        if d.key in merged or not (d.has_default or d.has_value):
            continue
        raw = d.default if d.has_default else d.value
        merged[d.key] = raw if isinstance(raw, str) else json.dumps(raw)
    return merged
