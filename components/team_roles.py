"""What a team's people may do in their namespace: roles written out rule by rule, never the built-in `edit` /
`admin`: those grow with every chart that aggregates into them (External Secrets' SecretStores, cert-manager's
Certificates, …), and they write the objects that fence a namespace (`edit`: NetworkPolicies; `admin` also
RoleBindings), so a team member could undo default-deny and restricted egress.

- `mlcluster-team-member`: run and manage work (pods, Jobs, TrainJobs, JobSets, Ray, InferenceServices, Argo
  Workflows, Deployments/StatefulSets for serving), its config and data (ConfigMaps, Secrets, PVCs, Services);
  read the namespace's fences (quota, limits, policies, queues, workloads). No exec/attach/port-forward unless the
  profile opts in (`tenancy.member_exec`): RBAC cannot tell a member's own pods from a colleague's notebook.
- `mlcluster-team-lead`: the member role plus reading RoleBindings. Membership lives in the profile, reviewed in a
  pull request, so no one in a team can grant access.
"""

from __future__ import annotations

from typing import Any

from mlcluster.components import k8s as objects

MEMBER_ROLE = "mlcluster-team-member"
LEAD_ROLE = "mlcluster-team-lead"
READ = ["get", "list", "watch"]
WRITE = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]

# (api group, resources, verbs): what the docs ask data scientists to create, and what they need to see.
_MEMBER: list[tuple[str, list[str], list[str]]] = [
    ("", ["pods"], ["get", "list", "watch", "create", "delete", "deletecollection"]),
    ("", ["pods/log"], ["get", "list", "watch"]),
    ("", ["configmaps", "secrets", "persistentvolumeclaims", "services"], WRITE),
    ("", ["events", "resourcequotas", "limitranges", "serviceaccounts", "endpoints"], READ),
    ("batch", ["jobs", "cronjobs"], WRITE),
    ("apps", ["deployments", "statefulsets"], WRITE),
    ("apps", ["replicasets"], READ),
    ("autoscaling", ["horizontalpodautoscalers"], WRITE),
    ("policy", ["poddisruptionbudgets"], READ),
    ("networking.k8s.io", ["networkpolicies"], READ),
    ("kueue.x-k8s.io", ["workloads", "localqueues"], READ),
    ("trainer.kubeflow.org", ["trainjobs"], WRITE),
    ("trainer.kubeflow.org", ["trainingruntimes"], READ),
    ("jobset.x-k8s.io", ["jobsets"], WRITE),
    ("ray.io", ["rayjobs", "rayclusters", "rayservices"], WRITE),
    ("serving.kserve.io", ["inferenceservices"], WRITE),
    ("argoproj.io", ["workflows", "workflowtemplates", "cronworkflows"], WRITE),
    ("metrics.k8s.io", ["pods"], READ),
]
_EXEC = ("", ["pods/exec", "pods/attach", "pods/portforward"], ["get", "create"])


def rules(extra: list[tuple[str, list[str], list[str]]]) -> list[dict[str, Any]]:
    return [{"apiGroups": [group], "resources": resources, "verbs": verbs} for group, resources, verbs in extra]


def member_rules(member_exec: bool) -> list[dict[str, Any]]:
    return rules([*_MEMBER, *([_EXEC] if member_exec else [])])


def lead_rules(member_exec: bool) -> list[dict[str, Any]]:
    return [*member_rules(member_exec), *rules([("rbac.authorization.k8s.io", ["rolebindings", "roles"], READ)])]


def role_manifests(member_exec: bool) -> list[dict[str, Any]]:
    """The two ClusterRoles (definitions only; they take effect through each team namespace's RoleBindings)."""
    return [{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": objects.metadata(name),
             "rules": made} for name, made in ((MEMBER_ROLE, member_rules(member_exec)),
                                               (LEAD_ROLE, lead_rules(member_exec)))]
