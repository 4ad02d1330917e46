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


def forbidden_for_members(own: str, other: str, exec_allowed: bool = False) -> list[tuple[str, str, str, str | None]]:
    """Requests (verb, API group, resource, namespace) a team's people must never be allowed: writing the objects
    that fence their namespace, identities and issuers that act with the platform's rights, priority classes,
    cluster bindings, and anything in another team's namespace. Checked offline on every render (tests/security,
    the `team-roles-confined` guardrail) and by the real API server in the e2e loop (SubjectAccessReviews)."""
    fences = [(verb, group, resource, own)
              for verb in ("create", "update", "patch", "delete")
              for group, resource in (("networking.k8s.io", "networkpolicies"), ("", "resourcequotas"),
                                      ("", "limitranges"), ("rbac.authorization.k8s.io", "rolebindings"),
                                      ("rbac.authorization.k8s.io", "roles"),
                                      ("kueue.x-k8s.io", "localqueues"))]
    escalation = [("create", "external-secrets.io", "secretstores", own),
                  ("create", "cert-manager.io", "certificates", own), ("create", "cert-manager.io", "issuers", own),
                  ("create", "cert-manager.io", "certificaterequests", own),
                  ("create", "", "serviceaccounts/token", own), ("create", "", "serviceaccounts", own),
                  ("create", "scheduling.k8s.io", "priorityclasses", None),
                  ("create", "rbac.authorization.k8s.io", "clusterrolebindings", None),
                  ("create", "admissionregistration.k8s.io", "validatingadmissionpolicybindings", None)]
    if not exec_allowed:
        escalation.append(("create", "", "pods/exec", own))
    other_team = [("get", "", "secrets", other), ("list", "", "pods", other), ("create", "", "pods", other),
                  ("create", "batch", "jobs", other), ("get", "", "pods/log", other)]
    return fences + escalation + other_team


def team_people(bindings: list[dict[str, Any]], namespace: str) -> list[Subject]:
    """The users and groups a namespace's RoleBindings name (service accounts are checked on their own)."""
    found: dict[tuple[str, str], Subject] = {}
    for binding in bindings:
        if binding.get("kind") != "RoleBinding" or binding["metadata"].get("namespace") != namespace:
            continue
        for s in binding.get("subjects") or []:
            if s["kind"] == "User":
                found[("User", s["name"])] = Subject("User", s["name"], groups=("system:authenticated",))
            elif s["kind"] == "Group":
                found[("Group", s["name"])] = Subject("User", f"someone-in-{s['name']}",
                                                      groups=(s["name"], "system:authenticated"))
    return list(found.values())
