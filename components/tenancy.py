"""Team namespaces: a fenced space per team, created without a ticket.

Each team gets a namespace with Pod Security labels (enforce baseline, warn/audit restricted), a
ResourceQuota that caps CPU, memory, GPUs and storage, a LimitRange with defaults, NetworkPolicies that deny
both ways except the team itself, the platform components that must reach it on their ports and the platform's
front doors (`Reach`), RoleBindings only inside the namespace, and service accounts that do not mount API tokens
unless a pod asks.

The manifests are built by plain functions (`team_manifests`) so tests can check isolation by construction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mlcluster.components import k8s as objects
from mlcluster.components import quantity
from mlcluster.components.aws.iam import ServiceAccountRole, bucket_prefix_role
from mlcluster.components.cluster import EFA_RESOURCE, ClusterHandle
from mlcluster.components.team_roles import LEAD_ROLE, MEMBER_ROLE
from mlcluster.deferred import Component, pulumi
from mlcluster.profiles.model import Team, Tenancy, Tier

WORKLOAD_SERVICE_ACCOUNT = "workload"

TEAM_LABEL = "mlcluster.io/team"
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"  # set by Kubernetes on every namespace

# What a container gets when it asks for nothing: small, so forgotten requests don't eat the quota.
DEFAULT_REQUEST = {"cpu": "250m", "memory": "512Mi", "ephemeral-storage": "1Gi"}
DEFAULT_LIMIT = {"cpu": "2", "memory": "4Gi", "ephemeral-storage": "20Gi"}
# Object counts no team needs more of; LoadBalancer and NodePort Services are off: traffic enters through the
# platform's gateway, never a team's own address (public load balancers on eks, MetalLB pool exhaustion on-prem).
OBJECT_COUNTS = {"secrets": "500", "configmaps": "500", "services": "50", "services.loadbalancers": "0",
                 "services.nodeports": "0"}
SYSTEM_PRIORITY_CLASSES = ["system-cluster-critical", "system-node-critical"]


def team_namespace(team: Team, tenancy: Tenancy) -> str:
    return f"{tenancy.namespace_prefix}{team.name}"


def _namespace_selector(names: list[str]) -> dict[str, Any]:
    return {"namespaceSelector": {"matchExpressions": [
        {"key": NAMESPACE_NAME_LABEL, "operator": "In", "values": sorted(names)}]}}


def _policy(name: str, ns: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": objects.metadata(name, ns), "spec": {"podSelector": {}, **spec}}


@dataclass(frozen=True)
class Reach:
    """Who may talk to team pods, and whom team pods may call, besides their own namespace."""

    reaching: tuple[tuple[tuple[str, ...], tuple[int | str, ...]], ...] = ()  # (platform namespaces, team ports)
    front_doors: tuple[tuple[str, tuple[int | str, ...]], ...] = ()  # (platform namespace, its ports)
    private_cidrs: tuple[str, ...] = ()  # the cluster's own addresses: never reached around a front door
    extra_egress: tuple[dict[str, Any], ...] = ()  # substrate needs (e.g. the EKS Pod Identity agent)


def _ports(ports: Sequence[int | str]) -> list[dict[str, Any]]:
    return [{"protocol": "TCP", "port": p} for p in ports]


def network_policies(ns: str, tenancy: Tenancy, reach: Reach) -> list[dict[str, Any]]:
    """Default deny both ways. In: the team itself, and each platform namespace that must reach team pods on
    exactly its ports (Prometheus the named `metrics` ports, the JupyterHub proxy the notebooks…). Out: DNS, the
    team itself, the platform's front doors on their ports (MLflow's API, the hub API), and beyond the cluster:
    anywhere but the cluster's own addresses (`egress: open`) or only `egress_cidrs` (`restricted`). Other
    teams, platform data stores and node ports are out of reach either way."""
    ingress: list[dict[str, Any]] = [{"from": [{"podSelector": {}}]}]
    ingress += [{"from": [_namespace_selector(list(names))], **({"ports": _ports(ports)} if ports else {})}
                for names, ports in reach.reaching]
    egress: list[dict[str, Any]] = [
        {"to": [{"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: "kube-system"}},
                 "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
         "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]},
        {"to": [{"podSelector": {}}]},
        *[{"to": [_namespace_selector([name])], "ports": _ports(ports)} for name, ports in reach.front_doors],
        *reach.extra_egress,
    ]
    if tenancy.egress == "open":
        egress.append({"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": sorted(reach.private_cidrs)}}]})
    elif tenancy.egress_cidrs:
        egress.append({"to": [{"ipBlock": {"cidr": cidr}} for cidr in tenancy.egress_cidrs]})
    return [
        _policy("default-deny", ns, {"policyTypes": ["Ingress", "Egress"]}),
        _policy("allow-ingress", ns, {"policyTypes": ["Ingress"], "ingress": ingress}),
        _policy("allow-egress", ns, {"policyTypes": ["Egress"], "egress": egress}),
    ]


def _binding(name: str, ns: str, role: str, subjects: list[dict[str, str]]) -> dict[str, Any]:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": objects.metadata(name, ns),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": subjects}


def role_bindings(team: Team, ns: str) -> list[dict[str, Any]]:
    """Members and groups get the team-member role, leads the team-lead role (components/team_roles.py) — within
    the namespace only (RoleBinding, never Cluster), and never the built-in `edit`/`admin`."""
    rbac = "rbac.authorization.k8s.io"
    members = [{"apiGroup": rbac, "kind": "User", "name": u} for u in team.members]
    members += [{"apiGroup": rbac, "kind": "Group", "name": g} for g in team.groups]
    leads = [{"apiGroup": rbac, "kind": "User", "name": u} for u in team.leads]
    out = []
    if members:
        out.append(_binding("team-members", ns, MEMBER_ROLE, members))
    if leads:
        out.append(_binding("team-leads", ns, LEAD_ROLE, leads))
    return out


def allowed_tiers(team: Team, tiers: list[Tier]) -> list[Tier]:
    return [t for t in tiers if team.tiers is None or t.name in team.tiers]


MIN_REQUEST = {"cpu": "10m", "memory": "16Mi"}


def container_limits(team: Team, tiers: list[Tier]) -> dict[str, Any]:
    """The LimitRange for containers: small CPU/memory defaults for containers that state nothing, and a
    ceiling at the team's largest tier, so the tiers bound what a single container can take.

    GPUs are deliberately absent. The API server turns a `max` without a `default` into a default
    (`SetDefaults_LimitRangeItem`), which would give every container that asks for no GPU the maximum; and any
    GPU default would make Kueue count a limits-only GPU job at that default instead of its limit
    (`mlcluster.semantics.limits`). GPUs per workload are bounded by the team's queue and quota instead."""
    # `min`: no container below a floor, so the pods quota, not a flood of near-zero requests, bounds how densely
    # a team packs nodes.
    limits: dict[str, Any] = {"type": "Container", "defaultRequest": dict(DEFAULT_REQUEST),
                              "default": dict(DEFAULT_LIMIT), "min": dict(MIN_REQUEST)}
    usable = allowed_tiers(team, tiers)
    if usable:
        limits["max"] = {"cpu": quantity.largest([t.cpu for t in usable]),
                         "memory": quantity.largest([t.memory for t in usable])}
        for key, cap in (("cpu", limits["max"]["cpu"]), ("memory", limits["max"]["memory"])):
            if quantity.value(limits["default"][key]) > quantity.value(cap):
                limits["default"][key] = cap
            if quantity.value(limits["defaultRequest"][key]) > quantity.value(limits["default"][key]):
                limits["defaultRequest"][key] = limits["default"][key]
    return limits


def resource_quota(team: Team, ns: str, gpu_reach: dict[str, int], efa: int = 0) -> dict[str, Any]:
    """The namespace's hard caps. CPU, memory and GPUs are exactly what the team's queue can admit
    (profiles/quotas.py): Kueue decides, and the quota never refuses a pod Kueue admitted. The rest bounds what
    Kueue does not count (storage, scratch space, object counts)."""
    quota = team.quota
    hard = {"requests.cpu": quota.cpu, "requests.memory": quota.memory,
            **{f"requests.{resource}": str(units) for resource, units in sorted(gpu_reach.items())},
            "requests.storage": quota.storage, "persistentvolumeclaims": str(quota.pvcs),
            "requests.ephemeral-storage": quota.ephemeral_storage, "pods": str(quota.pods),
            "count/jobs.batch": str(quota.jobs), **OBJECT_COUNTS,
            # Extended resources are quota'd by requests only (kubernetes.io/docs/concepts/policy/resource-quotas
            # "Resource quota for extended resources"); 0 where the team reaches no EFA node.
            f"requests.{EFA_RESOURCE}": str(efa)}
    return {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": objects.metadata("team-quota", ns),
            "spec": {"hard": hard}}


def system_priority_quota(ns: str) -> dict[str, Any]:
    """No pod of a team may run at a system priority (it would preempt platform and other teams' pods, and skip
    the queue's order): a quota of zero pods scoped to those PriorityClasses."""
    return {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": objects.metadata("no-system-priority", ns),
            "spec": {"hard": {"pods": "0"}, "scopeSelector": {"matchExpressions": [
                {"scopeName": "PriorityClass", "operator": "In", "values": SYSTEM_PRIORITY_CLASSES}]}}}


def team_manifests(team: Team, tenancy: Tenancy, kubernetes_version: str, reach: Reach,
                   tiers: list[Tier] | None = None, gpu_reach: dict[str, int] | None = None, efa: int = 0
                   ) -> list[dict[str, Any]]:
    """Every object of one team's space, namespace first."""
    ns = team_namespace(team, tenancy)
    return [
        objects.namespace_manifest(ns, kubernetes_version, "baseline", {TEAM_LABEL: team.name}),
        resource_quota(team, ns, gpu_reach or {}, efa),
        system_priority_quota(ns),
        {"apiVersion": "v1", "kind": "LimitRange", "metadata": objects.metadata("team-defaults", ns),
         "spec": {"limits": [container_limits(team, tiers or [])]}},
        *network_policies(ns, tenancy, reach),
        *role_bindings(team, ns),
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": objects.metadata(WORKLOAD_SERVICE_ACCOUNT, ns),
         "automountServiceAccountToken": False},
    ]


def default_service_account_patch(ns: str) -> dict[str, Any]:
    """Turn off token automount on the namespace's `default` SA (Kubernetes creates it; we patch it)."""
    return {"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": "default", "namespace": ns}, "automountServiceAccountToken": False}


class TeamSpace(Component):
    """One team's namespace and everything that fences it."""

    def __init__(self, team: Team, tenancy: Tenancy, cluster: ClusterHandle, reach: Reach,
                 tiers: list[Tier], local_queue: bool = False, gpu_reach: dict[str, int] | None = None,
                 extras: Sequence[tuple[pulumi.Resource, str, dict[str, Any]]] = (), efa: int = 0,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        """`extras`: (add-on, logical name, manifest) objects add-ons need in this namespace (e.g. the hub's
        spawner Role); created here after the namespace, aliased to where they were before (the add-on)."""
        super().__init__("mlcluster:tenancy:Team", team.name, None, opts)
        self.namespace = team_namespace(team, tenancy)
        manifests = team_manifests(team, tenancy, cluster.kubernetes_version, reach, tiers, gpu_reach, efa)
        ns_manifest, rest = manifests[0], manifests[1:]
        ns = objects.apply(f"{team.name}-namespace", ns_manifest, cluster.provider, cluster.opts(self))
        after_ns = cluster.opts(self, depends_on=[ns])
        for manifest in rest:
            name = manifest["metadata"]["name"]
            objects.apply(f"{team.name}-{manifest['kind'].lower()}-{name}", manifest, cluster.provider, after_ns)
        objects.apply(f"{team.name}-serviceaccount-default", default_service_account_patch(self.namespace),
                      cluster.provider, after_ns, patch=True)
        if local_queue:
            from mlcluster.addons.ml.kueue import local_queue_manifests

            for manifest in local_queue_manifests(team, self.namespace):
                suffix = "" if manifest["metadata"]["name"] == team.name else f"-{manifest['metadata']['name']}"
                objects.apply(f"{team.name}-localqueue{suffix}", manifest, cluster.provider, after_ns)
        for owner, name, manifest in extras:
            objects.apply(f"{owner.key}-{name}", manifest, cluster.provider,  # type: ignore[attr-defined]
                          cluster.opts(self, depends_on=[ns], aliases=[pulumi.Alias(parent=owner)]))
        outputs: dict[str, Any] = {"namespace": self.namespace}
        if tenancy.bucket_access and cluster.aws is not None and cluster.aws.artifacts_bucket is not None:
            outputs["roleArn"] = self._bucket_role(team, cluster).role.arn
        self.register_outputs(outputs)

    def _bucket_role(self, team: Team, cluster: ClusterHandle) -> ServiceAccountRole:
        """The team's `workload` SA may read and write `teams/<team>/` of the artifacts bucket, nothing else."""
        assert cluster.aws is not None
        return bucket_prefix_role(f"team-{team.name}", cluster.aws, f"teams/{team.name}/", self.namespace,
                                  WORKLOAD_SERVICE_ACCOUNT, self)
