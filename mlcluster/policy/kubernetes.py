"""Guardrails for what the toolkit writes into Kubernetes, and for data safety (checks.md items 35–51)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from mlcluster.policy.model import Resource, Rule

TEAM_LABEL = "mlcluster.io/team"
# Host agents only: the GPU/node agents, and Longhorn, which supports no namespace but its own.
PRIVILEGED_NAMESPACES = ("node-agents", "longhorn-system")
HELM = "kubernetes:helm.sh/v3:Release"
COMMAND = "command:remote:Command"
DATA_TYPES = ("aws:s3/bucket:Bucket", "aws:kms/key:Key", "aws:rds/instance:Instance", "aws:efs/fileSystem:FileSystem",
              "aws:rds/cluster:Cluster")
DATA_KINDS = ("Cluster", "PersistentVolumeClaim")  # CloudNativePG clusters and the volumes the toolkit creates
ESCALATING_VERBS = {"escalate", "bind", "impersonate", "*"}
SECRET_VALUE_KEYS = re.compile(r"^(password|adminPassword|rootPassword|secretKey|secretAccessKey|accessKey|token|"
                               r"clientSecret|cookieSecret|apiKey|secretToken|auth_token)$")


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [] if value is None else [value]


def _labels(r: Resource) -> dict[str, str]:
    return r.prop("metadata", "labels") or {}


def _team_namespaces(resources: list[Resource]) -> list[Resource]:
    return [r for r in resources if r.kind == "Namespace" and TEAM_LABEL in _labels(r)]


# --- namespaces, teams ---------------------------------------------------------------------------------------


def _pod_security(r: Resource) -> Iterator[str]:
    labels = _labels(r)
    enforce = labels.get("pod-security.kubernetes.io/enforce")
    if enforce is None:
        yield "namespace has no Pod Security `enforce` label"
    elif enforce == "privileged" and r.k8s_name not in PRIVILEGED_NAMESPACES:
        yield f"only {' and '.join(PRIVILEGED_NAMESPACES)} may be privileged"
    if TEAM_LABEL in labels and (enforce != "baseline" or labels.get("pod-security.kubernetes.io/warn") != "restricted"
                                 or labels.get("pod-security.kubernetes.io/audit") != "restricted"):
        yield "team namespaces enforce `baseline` and warn/audit `restricted`"


def _default_deny(resources: list[Resource]) -> Iterator[tuple[Resource, str]]:
    """Probe each team namespace from a pod of a namespace nobody opened to, and back (mlcluster.semantics.netpol:
    the NetworkPolicy API's rules), on a port no rule names."""
    from mlcluster.semantics.netpol import Network, Pod

    network = Network([{"kind": r.kind, **r.props} for r in resources if r.kind in ("NetworkPolicy", "Namespace")])
    stranger = Pod("mlcluster-probe-stranger", {"app": "probe"})
    for ns in _team_namespaces(resources):
        member = Pod(ns.k8s_name or "", {"app": "probe"})
        if network.can_connect(stranger, member, 1):
            yield ns, "team pods accept connections from any namespace (no default-deny ingress NetworkPolicy)"
        if network.can_connect(member, stranger, 1):
            yield ns, "team pods can connect to any namespace (no default-deny egress NetworkPolicy)"


def _roles_confined(resources: list[Resource]) -> Iterator[tuple[Resource, str]]:
    """What the people a team namespace's RoleBindings name may do, with the authorizer's rules
    (mlcluster.semantics.rbac): never write their fences, act with the platform's identities, or touch another
    team's namespace. (Exec is the profile's opt-in, `tenancy.member_exec`, and not judged here.)"""
    from mlcluster.semantics.rbac import Authorizer, forbidden_for_members, team_people

    manifests = [{"kind": r.kind, **r.props} for r in resources
                 if r.kind in ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")]
    auth = Authorizer(manifests)
    teams = [ns.k8s_name or "" for ns in _team_namespaces(resources)]
    for ns in _team_namespaces(resources):
        own = ns.k8s_name or ""
        other = next((t for t in teams if t != own), "kube-system")
        for person in team_people(manifests, own):
            allowed = [f"{verb} {group or 'core'}/{resource}" + (f" in {namespace}" if namespace else "")
                       for verb, group, resource, namespace in forbidden_for_members(own, other, exec_allowed=True)
                       if auth.allowed(person, verb, group, resource, namespace)]
            if allowed:
                yield ns, f"{person.name} may {', '.join(allowed[:4])}" + (" …" if len(allowed) > 4 else "")


def _quota_and_limits(resources: list[Resource]) -> Iterator[tuple[Resource, str]]:
    for ns in _team_namespaces(resources):
        quotas = [r for r in resources if r.kind == "ResourceQuota" and r.namespace == ns.k8s_name]
        if not any("requests.nvidia.com/gpu" in (q.prop("spec", "hard") or {}) for q in quotas):
            yield ns, "team namespace without a ResourceQuota capping requests.nvidia.com/gpu"
        if not any(r.kind == "LimitRange" and r.namespace == ns.k8s_name for r in resources):
            yield ns, "team namespace without a LimitRange (defaults for pods that ask for nothing)"


def _token_automount(resources: list[Resource]) -> Iterator[tuple[Resource, str]]:
    for ns in _team_namespaces(resources):
        patched = [r for r in resources if r.kind == "ServiceAccount" and r.namespace == ns.k8s_name
                   and r.k8s_name == "default" and r.prop("automountServiceAccountToken") is False]
        if not patched:
            yield ns, "the default service account still mounts an API token"


def _not_default_namespace(r: Resource) -> Iterator[str]:
    namespace = r.prop("namespace") if r.type == HELM else r.namespace
    if namespace == "default":
        yield "deployed into the `default` namespace"


# --- workloads and RBAC -------------------------------------------------------------------------------------


def _containers(r: Resource) -> list[dict[str, Any]]:
    return _list(r.prop("spec", "template", "spec", "containers"))


def _hardened(r: Resource) -> Iterator[str]:
    pod = r.prop("spec", "template", "spec", "securityContext") or {}
    for c in _containers(r):
        ctx = c.get("securityContext") or {}
        if not (ctx.get("runAsNonRoot") or pod.get("runAsNonRoot")):
            yield f"container {c.get('name')} may run as root"
        if ctx.get("allowPrivilegeEscalation") is not False:
            yield f"container {c.get('name')} allows privilege escalation"
        if "ALL" not in _list((ctx.get("capabilities") or {}).get("drop")):
            yield f"container {c.get('name')} keeps Linux capabilities"
        if ((ctx.get("seccompProfile") or pod.get("seccompProfile") or {}).get("type")) != "RuntimeDefault":
            yield f"container {c.get('name')} has no RuntimeDefault seccomp profile"


def _resources(r: Resource) -> Iterator[str]:
    for c in _containers(r):
        res = c.get("resources") or {}
        if not res.get("requests") or not res.get("limits"):
            yield f"container {c.get('name')} lacks requests or limits"


def _cluster_secret_readers(resources: list[Resource]) -> Iterator[tuple[Resource, str]]:
    """A ClusterRole reading Secrets is cluster-wide only where a ClusterRoleBinding grants it; bound by
    RoleBindings (the team roles) it reads the Secrets of that namespace alone."""
    bound = {r.prop("roleRef", "name") for r in resources if r.kind == "ClusterRoleBinding"}
    for r in resources:
        if r.kind != "ClusterRole" or r.k8s_name not in bound:
            continue
        for rule in _list(r.prop("rules")):
            verbs, kinds = set(_list(rule.get("verbs"))), set(_list(rule.get("resources")))
            if "secrets" in kinds and verbs & {"get", "list", "watch"}:
                yield r, "cluster-wide read of every Secret"


def _rbac(r: Resource) -> Iterator[str]:
    if r.kind in ("Role", "ClusterRole"):
        for rule in _list(r.prop("rules")):
            verbs, resources = set(_list(rule.get("verbs"))), set(_list(rule.get("resources")))
            if "*" in verbs | resources | set(_list(rule.get("apiGroups"))):
                yield "wildcard in an RBAC rule"
            if verbs & ESCALATING_VERBS - {"*"}:
                yield f"RBAC rule grants {sorted(verbs & ESCALATING_VERBS)}"

    if r.kind in ("RoleBinding", "ClusterRoleBinding"):
        if r.prop("roleRef", "name") == "cluster-admin":
            yield "binds cluster-admin"
        people = [s for s in _list(r.prop("subjects")) if s.get("kind") in ("User", "Group")]
        if r.kind == "ClusterRoleBinding" and people:
            yield "people get cluster-wide rights: tenants are bound inside their namespace only"


# --- secrets, versions ----------------------------------------------------------------------------------------


def _walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, sub in value.items():
            yield from _walk(sub, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for i, sub in enumerate(value):
            yield from _walk(sub, f"{path}[{i}]")
    else:
        yield path, value


def _literal_secrets(r: Resource) -> Iterator[str]:
    for path, value in _walk(r.prop("values") or {}):
        key = re.split(r"[.\[]", path)[-1]
        if SECRET_VALUE_KEYS.match(key) and isinstance(value, str) and value and value != "[secret]":
            yield f"literal secret in values at {path}: use an existing Secret"


_EXACT_VERSION = re.compile(r"^v?[0-9]+\.[0-9]+\.[0-9]+([-.+][0-9A-Za-z.-]+)?$")


def _pinned(r: Resource) -> Iterator[str]:
    version = r.prop("version")
    if not isinstance(version, str) or not _EXACT_VERSION.match(version):
        yield f"chart {r.prop('chart')} is not pinned to an exact version ({version!r})"
    for path, value in _walk(r.prop("values") or {}):
        key = re.split(r"[.\[]", path)[-1]
        if isinstance(value, str) and ((key == "tag" and value == "latest") or
                                       (key in ("image", "name", "repository") and value.endswith(":latest"))):
            yield f"image tag `latest` at {path}"


# --- data safety, upgrades -------------------------------------------------------------------------------------


def _protected(r: Resource) -> Iterator[str]:
    if r.type.startswith("kubernetes:") and r.kind not in DATA_KINDS:
        return
    if r.kind == "Cluster" and not r.type.startswith("kubernetes:postgresql.cnpg.io"):
        return
    if not r.protect:
        yield "data-bearing resource without `protect`: a rename or `pulumi destroy` would delete the data"
    if r.type == "aws:s3/bucket:Bucket" and r.prop("forceDestroy") is True:
        yield "bucket with forceDestroy: deleting it deletes every object"


def _retain_classes(r: Resource) -> Iterator[str]:
    name = r.prop("metadata", "name") or ""
    if name.endswith("-retain") and r.prop("reclaimPolicy") != "Retain":
        yield "a `-retain` StorageClass must reclaim with Retain"


def _karpenter_budgets(r: Resource) -> Iterator[str]:
    if not r.prop("spec", "disruption", "budgets"):
        yield "Karpenter NodePool without disruption budgets"
    labels = r.prop("spec", "template", "metadata", "labels") or {}
    if "nvidia.com/gpu.product" in labels and r.prop("spec", "template", "spec", "expireAfter") != "Never":
        yield "GPU NodePools must not expire nodes under training jobs (expiry ignores budgets)"


def _host_of(command: Resource) -> str:
    return command.name.rsplit("-", 1)[0]


def _upgrades(resources: list[Resource]) -> Iterator[tuple[Resource, str]]:
    commands = {r.urn: r for r in resources if r.type == COMMAND}
    upgrades = [r for r in commands.values() if r.name.endswith("-upgrade")]
    drains = {_host_of(r): r for r in commands.values() if r.name.endswith("-drain")}
    for upgrade in upgrades:
        drain = drains.get(_host_of(upgrade))
        if drain is None or drain.urn not in upgrade.dependencies:
            yield upgrade, "a node is upgraded without being drained first"
    predecessors = [r.dependencies for r in upgrades]
    if len(set(predecessors)) < len(predecessors):
        yield upgrades[0], "several nodes upgrade at once: one node at a time"


def _r(id_: str, title: str, severity: str, rationale: str, checks: tuple[str, ...], types: tuple[str, ...] = (),
       check: Any = None, stack: Any = None) -> Rule:
    return Rule(id_, title, severity, rationale, checks, types, check, stack)  # type: ignore[arg-type]


RULES = [
    _r("namespace-pod-security", "Pod Security labels on every namespace; teams baseline; one privileged", "high",
       "Admission is the last line between a container and the node.", ("checks.md#35", "PSS", "CIS 4.2"),
       ("kubernetes:Namespace",), _pod_security),
    _r("team-default-deny", "Default-deny ingress and egress in every team namespace", "high",
       "Teams must not reach each other's notebooks and services, nor platform data stores.",
       ("checks.md#36", "CIS 4.3.2"),
       stack=_default_deny),
    _r("team-roles-confined", "Team people cannot write their fences, act as the platform or reach other teams",
       "high", "A member bound to `edit`/`admin` could delete NetworkPolicies, create a SecretStore using the "
       "controller's identity or mint certificates from the platform CA.", ("checks.md#36", "CIS 5.1.1", "CIS 5.1.3"),
       stack=_roles_confined),
    _r("team-quota-and-limits", "GPU-capping ResourceQuota and a LimitRange per team", "high",
       "One team must not starve the others of GPUs.", ("checks.md#37", "CIS 4.5.1"), stack=_quota_and_limits),
    _r("workloads-hardened", "The toolkit's workloads run non-root, no escalation, no capabilities, seccomp",
       "medium", "A compromised controller must not own the node.",
       ("checks.md#38", "CKV_K8S_20", "CKV_K8S_22", "CKV_K8S_23", "CKV_K8S_28", "CKV_K8S_37"),
       ("kubernetes:Deployment",), _hardened),
    _r("workloads-have-resources", "Requests and limits on the toolkit's workloads", "medium",
       "Unbounded controllers starve the system pool.", ("checks.md#39", "CKV_K8S_10", "CKV_K8S_11", "CKV_K8S_12",
                                                          "CKV_K8S_13"), ("kubernetes:Deployment",), _resources),
    _r("rbac-least-privilege", "No wildcard, escalating or cluster-admin RBAC; tenants only in their namespace",
       "high", "RBAC is how a tenant stays a tenant.", ("checks.md#40", "CIS 4.1"),
       ("kubernetes:Role", "kubernetes:ClusterRole", "kubernetes:RoleBinding", "kubernetes:ClusterRoleBinding"),
       _rbac, stack=_cluster_secret_readers),
    _r("team-token-automount-off", "Team namespaces' default service account mounts no token", "medium",
       "Pods that do not need the API should not hold a token for it.", ("checks.md#41", "CIS 4.1.5", "CIS 4.1.6"),
       stack=_token_automount),
    _r("nothing-in-default-namespace", "Nothing deployed into `default`", "medium",
       "Everything belongs to a namespace with its own policy.", ("checks.md#41", "CIS 4.5.2"),
       ("kubernetes:Namespace", HELM, "kubernetes:Deployment", "kubernetes:ConfigMap", "kubernetes:Secret",
        "kubernetes:ServiceAccount", "kubernetes:NetworkPolicy"), _not_default_namespace),
    _r("no-literal-secrets-in-values", "No literal secrets in Helm values", "high",
       "Values end up in the state, in Helm's release Secret and in reviews.", ("checks.md#42", "CIS 4.4"),
       (HELM,), _literal_secrets),
    _r("pinned-versions", "Charts pinned to exact versions, no `latest` images", "high",
       "Unpinned versions change under a running platform without review.", ("checks.md#43", "CKV_K8S_14",
                                                                            "CKV_K8S_43"), (HELM,), _pinned),
    _r("data-resources-protected", "Data-bearing resources carry `protect`", "high",
       "Buckets, keys, databases and volumes must survive a rename or a destroy.", ("checks.md#45", "checks.md#47"),
       (*DATA_TYPES, "kubernetes:Cluster", "kubernetes:PersistentVolumeClaim"), _protected),
    _r("retain-storage-classes", "User-data storage classes reclaim with Retain", "low",
       "Deleting a claim must not delete a notebook's or a database's data.", ("checks.md#46",),
       ("kubernetes:StorageClass",), _retain_classes),
    _r("karpenter-disruption-budgets", "Karpenter GPU NodePools: budgets set, no expiry", "medium",
       "Consolidation and expiry must not kill training runs.", ("checks.md#50",), ("kubernetes:NodePool",),
       _karpenter_budgets),
    _r("baremetal-upgrades-drained-serially", "Bare-metal upgrades: drained first, one node at a time", "medium",
       "An upgrade must not take a node from under running jobs, nor several at once.", ("checks.md#51",),
       stack=_upgrades),
]
