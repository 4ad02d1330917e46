"""Two renders compared: which resources are added, removed, changed or replaced, with the input paths that
changed; Helm chart version bumps and value changes; changes to the profile's accepted exceptions."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from mlcluster.review.replacements import covered, is_stateful, replaces

HELM = "kubernetes:helm.sh/v3:Release"
GROUPS = {"aws": "AWS", "command": "Commands on hosts", "random": "Generated secrets"}
Action = Literal["add", "remove", "change", "replace"]
MISSING = object()


@dataclass(frozen=True)
class PathChange:
    path: str
    old: Any
    new: Any
    replaces: bool = False


@dataclass(frozen=True)
class Change:
    urn: str
    type: str
    name: str
    action: Action
    paths: tuple[PathChange, ...] = ()
    stateful: bool = False
    protected: bool = False

    @property
    def loud(self) -> bool:
        """Data at risk: a stateful or protected resource replaced or removed."""
        return self.action in ("replace", "remove") and (self.stateful or self.protected)

    @property
    def group(self) -> str:
        if self.type == HELM:
            return "Helm releases"
        if self.type.startswith("kubernetes:"):
            return "Kubernetes objects"
        return GROUPS.get(self.type.split(":")[0], "Other")


@dataclass(frozen=True)
class ChartBump:
    release: str
    chart: str
    old: str
    new: str


@dataclass
class Diff:
    base: str
    head: str
    changes: list[Change] = field(default_factory=list)
    chart_bumps: list[ChartBump] = field(default_factory=list)
    policy: list[PathChange] = field(default_factory=list)  # profile overrides (accepted exceptions)

    @property
    def empty(self) -> bool:
        return not self.changes and not self.policy

    def by_action(self, action: Action) -> list[Change]:
        return [c for c in self.changes if c.action == action]

    @property
    def loud(self) -> list[Change]:
        return [c for c in self.changes if c.loud]


def flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Leaves of a JSON-like value as (dotted path, value); list items as [i]; empty containers as leaves."""
    if isinstance(value, dict) and value:
        for key in sorted(value):
            yield from flatten(value[key], f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list) and value:
        for i, item in enumerate(value):
            yield from flatten(item, f"{prefix}[{i}]")
    else:
        yield prefix, value


def changed_paths(old: dict[str, Any], new: dict[str, Any], type_: str, replace_on_changes: tuple[str, ...] = (),
                  ignore_changes: tuple[str, ...] = ()) -> list[PathChange]:
    """Leaves that differ, except those the resource tells Pulumi to ignore (they change nothing on deploy)."""
    before, after = dict(flatten(old)), dict(flatten(new))
    return [PathChange(path, before.get(path, MISSING), after.get(path, MISSING),
                       replaces(type_, path, replace_on_changes))
            for path in sorted(set(before) | set(after))
            if before.get(path, MISSING) != after.get(path, MISSING) and not covered(path, ignore_changes)]


def compare(base: dict[str, Any], head: dict[str, Any], base_label: str, head_label: str) -> Diff:
    """`base`/`head`: two resources.json documents."""
    old = {r["urn"]: r for r in base["resources"]}
    new = {r["urn"]: r for r in head["resources"]}
    diff = Diff(base_label, head_label)
    for urn in sorted(set(old) | set(new)):
        before, after = old.get(urn), new.get(urn)
        record = after or before
        assert record is not None
        common = {"urn": urn, "type": record["type"], "name": record["name"], "stateful": is_stateful(record["type"])}
        if before is None:
            diff.changes.append(Change(action="add", **common))
        elif after is None:
            diff.changes.append(Change(action="remove", protected=before["options"]["protect"], **common))
        else:
            replace_on = tuple(after["options"].get("replaceOnChanges") or ())
            ignored = tuple(after["options"].get("ignoreChanges") or ())
            paths = changed_paths(before["inputs"], after["inputs"], record["type"], replace_on, ignored)
            if before["options"] != after["options"]:
                paths += changed_paths({"options": before["options"]}, {"options": after["options"]}, "")
            if paths:
                action: Action = "replace" if any(p.replaces for p in paths) else "change"
                diff.changes.append(Change(action=action, paths=tuple(paths),
                                           protected=before["options"]["protect"], **common))
                if record["type"] == HELM and before["inputs"].get("version") != after["inputs"].get("version"):
                    chart = str(after["inputs"]["chart"]).rsplit("/", 1)[-1]  # OCI charts carry their registry
                    diff.chart_bumps.append(ChartBump(after["inputs"].get("name", record["name"]),
                                                      chart, before["inputs"].get("version", ""),
                                                      after["inputs"].get("version", "")))
    diff.policy = changed_paths({"policy": base.get("policy") or {}}, {"policy": head.get("policy") or {}}, "")
    return diff
