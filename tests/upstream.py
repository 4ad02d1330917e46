"""Access to ../shared/upstream: pinned charts' default values/schemas and CRDs, copied from upstream tags.

The folder sits beside the project root (and in CI). Tests that need it skip with a clear reason where it
is absent (a user's checkout); nothing from it is ever copied into the project.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
UPSTREAM = ROOT.parent / "shared" / "upstream"


def require_upstream() -> Path:
    if not UPSTREAM.is_dir():
        pytest.skip(f"{UPSTREAM} is absent: upstream chart values and CRDs are only checked where it exists (CI)")
    return UPSTREAM


@functools.cache
def versions() -> dict[str, Any]:
    return yaml.safe_load((require_upstream() / "versions.yaml").read_text())


def chart_dir(chart: str) -> Path:
    path = require_upstream() / "charts" / chart
    if not path.is_dir():
        pytest.fail(f"chart {chart} has no upstream copy in {path}")
    return path


class _Defaults:
    """A chart's values.yaml as data plus, for each mapping, the keys documented only in comments."""

    def __init__(self, path: Path) -> None:
        text = path.read_text()
        self.data = yaml.safe_load(text) or {}
        self.lines = text.splitlines()
        self.node = yaml.compose(text)

    def _mapping_node(self, keys: list[str]) -> yaml.MappingNode | None:
        node = self.node
        for key in keys:
            if not isinstance(node, yaml.MappingNode):
                return None
            node = next((v for k, v in node.value if k.value == key), None)
            if node is None:
                return None
        return node if isinstance(node, yaml.MappingNode) else None

    def commented(self, parent: list[str], key: str) -> bool:
        """`# key:` inside the parent mapping's block (or at top level) counts as a documented key."""
        import re

        if parent:
            node = self._mapping_node(parent)
            if node is None:
                return False
            start, end = node.start_mark.line, node.end_mark.line + 1
            indent = node.start_mark.column
        else:
            start, end, indent = 0, len(self.lines), 0
        pattern = re.compile(rf"^\s{{{indent}}}#+\s*{re.escape(key)}\s*:")
        return any(pattern.match(line) for line in self.lines[max(start - 2, 0):end])


@functools.cache
def _defaults(path: Path) -> _Defaults:
    return _Defaults(path)


def _schema_has(schema: dict[str, Any], keys: list[str]) -> bool:
    node = schema
    for key in keys:
        props = node.get("properties", {})
        if key in props:
            node = props[key]
        else:
            # Known only if the schema leaves this object open (additional/pattern properties, or no properties).
            return (node.get("additionalProperties") not in (None, False) or bool(node.get("patternProperties"))
                    or "properties" not in node)
    return True


def _schema(chart: Path) -> dict[str, Any] | None:
    for name in ("values.schema.json", "values.schema.yaml"):
        path = chart / name
        if path.exists():
            return json.loads(path.read_text()) if name.endswith(".json") else yaml.safe_load(path.read_text())
    return None


def _overlay(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        return {**base, **{k: _overlay(base.get(k), v) for k, v in over.items()}}
    return over if over is not None else base


# Maps whose keys are the user's (Kubernetes labels, selectors, annotations), whatever the chart defaults to.
FREE_FORM = {"nodeSelector", "labels", "annotations", "podLabels", "podAnnotations", "additionalLabels",
             "additionalAnnotations", "commonLabels", "selectorLabels"}


def unknown_value_keys(chart: str, values: dict[str, Any]) -> list[str]:
    """Keys we set that the chart neither defaults, documents in comments, nor declares in its schema.

    Below a key whose default is an empty map or a list (nodeSelector, extraEnv, …) anything goes.
    Keys under a subchart's name are looked up in that subchart's values when the copy has it.
    """
    root = chart_dir(chart)
    schema = _schema(root)
    unknown: list[str] = []
    dependencies = _dependencies(root)

    def walk(values: Any, defaults_file: Path, default: Any, path: list[str], shown: list[str]) -> None:
        if not isinstance(values, dict):
            return
        for key, value in values.items():
            keys = [*path, key]
            sub_file = root / "charts" / key / "values.yaml"
            if not sub_file.exists() and key in dependencies:  # a dependency copied as its own chart
                sub_file = UPSTREAM / "charts" / dependencies[key] / "values.yaml"
            if not shown and sub_file.exists():
                # A subchart: its own defaults, overlaid with what the parent chart sets for it.
                merged = _overlay(_defaults(sub_file).data, default.get(key) if isinstance(default, dict) else None)
                walk(value, sub_file, merged, [], [key])
                continue
            if key in FREE_FORM:
                continue  # label/annotation/selector maps are the user's by design
            if path[-2:-1] == ["resources"] and path[-1] in ("limits", "requests"):
                continue  # resource names (cpu, memory, nvidia.com/gpu) inside requests/limits
            if isinstance(default, dict) and key in default:
                sub = default[key]
                if isinstance(sub, dict) and not sub:
                    continue  # empty map: free-form
                if isinstance(sub, list) or sub is None:
                    continue
                walk(value, defaults_file, sub, keys, [*shown, key])
                continue
            if _defaults(defaults_file).commented(path, key):
                continue
            if schema is not None and defaults_file == root / "values.yaml" and _schema_has(schema, keys):
                continue
            unknown.append(".".join([*shown, key]))

    walk(values, root / "values.yaml", _defaults(root / "values.yaml").data, [], [])
    return unknown


def _dependencies(root: Path) -> dict[str, str]:
    """Values key (alias or name) → chart name, for the chart's dependencies (Chart.yaml)."""
    meta = yaml.safe_load((root / "Chart.yaml").read_text()) or {}
    return {dep.get("alias") or dep["name"]: dep["name"] for dep in meta.get("dependencies") or []}


def schema_errors(chart: str, values: dict[str, Any]) -> list[str]:
    """What Helm would refuse at install: the chart's defaults merged with our values, against its values schema
    (none when the chart publishes no schema)."""
    import jsonschema

    root = chart_dir(chart)
    schema = _schema(root)
    if schema is None:
        return []
    merged = _overlay(_defaults(root / "values.yaml").data, values)
    validator = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)(schema)
    return sorted(f"{'.'.join(map(str, e.path)) or '(top)'}: {e.message}" for e in validator.iter_errors(merged))


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # CRDs are large; libyaml parses them ~10x faster


@functools.cache
def _crd_schemas(group: str) -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) → openAPIV3Schema for every served version of the group's CRD copies."""
    out = {}
    for path in sorted((require_upstream() / "crds" / group).glob("*.yaml")):
        for doc in yaml.load_all(path.read_text(), Loader=_LOADER):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = doc["spec"]["group"], doc["spec"]["names"]["kind"]
            for version in doc["spec"]["versions"]:
                if version.get("served", True):
                    out[(f"{group}/{version['name']}", kind)] = version["schema"]["openAPIV3Schema"]
    return out


def validate_custom_resource(manifest: dict[str, Any]) -> None:
    """Validate a custom resource against its upstream CRD schema (structural, unknown fields rejected)."""
    import jsonschema

    key = (manifest["apiVersion"], manifest["kind"])
    schema = _crd_schemas(key[0].split("/")[0]).get(key)
    if schema is None:
        pytest.fail(f"no upstream CRD for {key} in {UPSTREAM / 'crds'}")
    jsonschema.validate(manifest, _structural(schema))


def _python_regex(pattern: str) -> str:
    """CRD patterns are Go (RE2) regexes; Python wants inline flags such as `(?i)` first: `^(?i)x` → `(?i)^x`."""
    import re

    flags = re.match(r"^\^(\(\?[a-zA-Z]+\))", pattern)
    return f"{flags.group(1)}^{pattern[flags.end():]}" if flags else pattern


def _structural(schema: Any) -> Any:
    """Kubernetes prunes unknown fields; as a test, reject them instead (unless preserve-unknown-fields)."""
    if isinstance(schema, dict):
        out = {k: _structural(v) for k, v in schema.items()}
        if isinstance(out.get("pattern"), str):
            out["pattern"] = _python_regex(out["pattern"])
        if out.get("type") == "object" and "properties" in out and not out.get("x-kubernetes-preserve-unknown-fields"):
            out.setdefault("additionalProperties", False)
        return out
    if isinstance(schema, list):
        return [_structural(v) for v in schema]
    return schema
