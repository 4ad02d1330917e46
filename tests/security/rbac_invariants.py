"""Requests a team member must never be allowed (checked offline by tests/security and, in the e2e loop, by the
real API server's authorizer through SubjectAccessReviews)."""

from __future__ import annotations


def FORBIDDEN_FOR_MEMBERS(own: str, other: str) -> list[tuple[str, str, str, str | None]]:
    """(verb, API group, resource, namespace)."""
    fences = [(verb, group, resource, own)
              for verb in ("create", "update", "patch", "delete")
              for group, resource in (("networking.k8s.io", "networkpolicies"), ("", "resourcequotas"),
                                      ("", "limitranges"), ("rbac.authorization.k8s.io", "rolebindings"),
                                      ("rbac.authorization.k8s.io", "roles"))]
    escalation = [("create", "external-secrets.io", "secretstores", own),
                  ("create", "cert-manager.io", "certificates", own), ("create", "cert-manager.io", "issuers", own),
                  ("create", "cert-manager.io", "certificaterequests", own),
                  ("create", "", "pods/exec", own), ("create", "", "serviceaccounts/token", own),
                  ("create", "scheduling.k8s.io", "priorityclasses", None),
                  ("create", "rbac.authorization.k8s.io", "clusterrolebindings", None)]
    other_team = [("get", "", "secrets", other), ("list", "", "pods", other), ("create", "", "pods", other),
                  ("create", "batch", "jobs", other)]
    return fences + escalation + other_team
