"""What a subject may do, computed from the RBAC objects a render writes — the rules of the authorizer
(kubernetes pkg/registry/rbac/validation `RuleAllows`, plugin/pkg/auth/authorizer/rbac): a request is allowed when
some RoleBinding in its namespace, or some ClusterRoleBinding, binds the subject to a role with a rule matching the
verb, API group, resource (with subresource) and resource name; `*` matches all.

Built-in roles (`edit`, `admin`, `view`, `cluster-admin`) are aggregated at runtime from every installed chart's
ClusterRoles (External Secrets and cert-manager aggregate into `edit`), so a binding to one of them is treated as
allowing everything in its namespace: the evaluator never under-reports what such a binding grants.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

AGGREGATED_BUILTINS = {"edit", "admin", "view", "cluster-admin"}
EVERYTHING = [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]


@dataclass(frozen=True)
class Subject:
    kind: str  # User, Group or ServiceAccount
    name: str
    namespace: str | None = None  # ServiceAccounts
    groups: tuple[str, ...] = ()  # a user's groups (for Group subjects)

    def bound_by(self, subject: dict[str, Any]) -> bool:
        if subject["kind"] == "Group":
            return subject["name"] in self.groups or (self.kind == "Group" and subject["name"] == self.name)
        if subject["kind"] == "ServiceAccount":
            return self.kind == "ServiceAccount" and subject["name"] == self.name and \
                subject.get("namespace") == self.namespace
        return subject["kind"] == self.kind and subject["name"] == self.name


class Authorizer:
    def __init__(self, manifests: list[dict[str, Any]]) -> None:
        self.cluster_roles = {m["metadata"]["name"]: m.get("rules") or [] for m in manifests
                              if m.get("kind") == "ClusterRole"}
        self.roles = {(m["metadata"]["namespace"], m["metadata"]["name"]): m.get("rules") or [] for m in manifests
                      if m.get("kind") == "Role"}
        self.bindings = [m for m in manifests if m.get("kind") in ("RoleBinding", "ClusterRoleBinding")]

    def _rules(self, binding: dict[str, Any]) -> list[dict[str, Any]]:
        ref = binding["roleRef"]
        if ref["kind"] == "ClusterRole":
            if ref["name"] in AGGREGATED_BUILTINS:
                return EVERYTHING
            return self.cluster_roles.get(ref["name"], [])
        return self.roles.get((binding["metadata"].get("namespace"), ref["name"]), [])

    def rules_for(self, subject: Subject, namespace: str | None) -> list[dict[str, Any]]:
        found = []
        for binding in self.bindings:
            scope = binding["metadata"].get("namespace")
            if binding["kind"] == "RoleBinding" and scope != namespace:
                continue
            if any(subject.bound_by(s) for s in binding.get("subjects") or []):
                found += self._rules(binding)
        return found

    def allowed(self, subject: Subject, verb: str, group: str, resource: str, namespace: str | None,
                name: str | None = None) -> bool:
        for rule in self.rules_for(subject, namespace):
            if not _match(rule.get("verbs", []), verb) or not _match(rule.get("apiGroups", []), group):
                continue
            if not _match(rule.get("resources", []), resource):
                continue
            names = rule.get("resourceNames") or []
            if names and name not in names:
                continue
            return True
        return False


def _match(allowed: list[str], value: str) -> bool:
    return "*" in allowed or value in allowed
