"""Guardrails (users read them in docs/guardrails.md), evaluated offline on a render (`mlcluster check`) and by
Pulumi CrossGuard during `pulumi preview` (`policies/`). One implementation, two runners."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from mlcluster.policy.model import Finding, Override, Report, Resource, Rule


@functools.cache
def rules() -> dict[str, Rule]:
    from mlcluster.policy import aws, kubernetes

    found: dict[str, Rule] = {}
    for rule in [*aws.RULES, *kubernetes.RULES]:
        assert rule.id not in found, rule.id
        found[rule.id] = rule
    return found


def evaluate(resources: list[Resource], overrides: Iterable[Override] = ()) -> Report:
    """Every rule on every resource; findings an override covers are kept, marked with its reason."""
    overrides = list(overrides)
    report = Report(evaluated=len(resources))
    for rule in rules().values():
        for resource, message in rule.evaluate(resources):
            override = next((o for o in overrides if o.covers(rule.id, resource)), None)
            report.findings.append(Finding(rule, resource, message, override))
    report.findings.sort(key=lambda f: (("high", "medium", "low").index(f.severity), f.rule.id, f.resource.urn))
    return report


def from_records(records: list[dict[str, Any]]) -> list[Resource]:
    """Resources of a render's resources.json (inputs as the engine saw them, secrets redacted)."""
    return [Resource(type=r["type"], urn=r["urn"], name=r["name"], props=r.get("inputs") or {},
                     protect=bool(r.get("options", {}).get("protect")),
                     ignore_changes=tuple(r.get("options", {}).get("ignoreChanges") or ()),
                     dependencies=tuple(r.get("dependencies") or ()))
            for r in records if r.get("custom")]


def overrides_of(render: dict[str, Any]) -> list[Override]:
    """The accepted exceptions a render recorded (resources.json `policy.overrides`)."""
    return [Override(o["rule"], o["reason"], tuple(o.get("resources") or ()))
            for o in (render.get("policy") or {}).get("overrides") or []]


__all__ = ["Finding", "Override", "Report", "Resource", "Rule", "evaluate", "from_records", "overrides_of", "rules"]
