"""The guardrails' shared shapes: a resource as a rule sees it, a rule, and a finding.

One rule implementation, two runners: `mlcluster check` evaluates rules on a render (resources.json) offline;
the CrossGuard pack in `policies/` evaluates the very same rules during `pulumi preview/up`. Both hand the
rules a `Resource`: its type token, URN, logical name, input properties (wire names: camelCase) and the
options that guard data.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

Severity = Literal["high", "medium", "low"]
SEVERITIES: tuple[Severity, ...] = ("high", "medium", "low")


@dataclass(frozen=True)
class Resource:
    type: str
    urn: str
    name: str
    props: dict[str, Any]
    protect: bool = False
    ignore_changes: tuple[str, ...] = ()
    dependencies: tuple[str, ...] = ()  # URNs this resource waits for

    def prop(self, *path: str | int, default: Any = None) -> Any:
        """A nested input, or `default` when any step is missing (or not yet known at preview)."""
        node: Any = self.props
        for step in path:
            in_list = isinstance(step, int) and isinstance(node, list) and -len(node) <= step < len(node)
            in_map = isinstance(step, str) and isinstance(node, dict) and step in node
            if in_list or in_map:
                node = node[step]
            else:
                return default
        return node

    @property
    def kind(self) -> str | None:
        """For Kubernetes objects: their `kind` (`Namespace`, `NetworkPolicy`…)."""
        return self.props.get("kind") if self.type.startswith("kubernetes:") else None

    @property
    def k8s_name(self) -> str | None:
        return self.prop("metadata", "name")

    @property
    def namespace(self) -> str | None:
        return self.prop("metadata", "namespace")


ResourceCheck = Callable[[Resource], Iterable[str]]
StackCheck = Callable[[list[Resource]], Iterable[tuple[Resource, str]]]


@dataclass(frozen=True)
class Rule:
    """One guardrail. `checks` names ../shared/checks.md's item and the public checks it mirrors."""

    id: str  # kebab-case; also the CrossGuard policy name
    title: str
    severity: Severity
    rationale: str  # one line: why it matters
    checks: tuple[str, ...]  # e.g. ("checks.md#1", "CKV_AWS_58", "AVD-AWS-0039", "CIS 5.3.1")
    types: tuple[str, ...] = ()  # resource types (or `kubernetes:<Kind>`) a resource rule looks at
    resource_check: ResourceCheck | None = None
    stack_check: StackCheck | None = None

    def applies_to(self, resource: Resource) -> bool:
        return any(t == resource.type or (t.startswith("kubernetes:") and t[11:] == resource.kind)
                   for t in self.types)

    def evaluate(self, resources: list[Resource]) -> Iterator[tuple[Resource, str]]:
        if self.resource_check is not None:
            for resource in resources:
                if self.applies_to(resource):
                    for message in self.resource_check(resource):
                        yield resource, message
        if self.stack_check is not None:
            yield from self.stack_check(resources)


@dataclass(frozen=True)
class Override:
    """An accepted exception, written in the profile with its reason (`policy.overrides`)."""

    rule: str
    reason: str
    resources: tuple[str, ...] = ()  # glob patterns of resource names; empty: every resource

    def covers(self, rule: str, resource: Resource) -> bool:
        return rule == self.rule and (not self.resources or any(
            fnmatch.fnmatchcase(resource.name, pattern) for pattern in self.resources))


@dataclass(frozen=True)
class Finding:
    rule: Rule
    resource: Resource
    message: str
    override: Override | None = None

    @property
    def severity(self) -> Severity:
        return self.rule.severity


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    evaluated: int = 0

    def open(self, at_least: Severity = "low") -> list[Finding]:
        """Findings not overridden, at `at_least` severity or worse."""
        cutoff = SEVERITIES.index(at_least)
        return [f for f in self.findings if f.override is None and SEVERITIES.index(f.severity) <= cutoff]

    def overridden(self) -> list[Finding]:
        return [f for f in self.findings if f.override is not None]
