"""What Kueue does with a workload in a team namespace, given the objects a render writes: which LocalQueue
and ClusterQueue take it, which flavor each of its resources gets, whether the quota (nominal, or borrowed from
the cohort) admits it, and whether the namespace's ResourceQuota then lets its pods in.

Mirrors Kueue v0.19.2 on an empty cluster: LocalQueue defaulting (`default` for unlabelled workloads,
pkg/controller/jobframework/defaults.go), `excludeResourcePrefixes` and resources no group covers
(inadmissible), flavor assignment in the group's flavor order with taints/tolerations and node affinity matched
against the flavor's `nodeLabels` for the keys the flavor has (pkg/scheduler/flavorassigner
`checkFlavorForPodSets`, `flavorSelector`), and borrowing up to the cohort's own quota plus what other
ClusterQueues may lend (`lendingLimit`), bounded by `borrowingLimit`. It is a model, checked against the real
controller by the journey loop (tests/e2e/test_journey.py) where the toolchain is built.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from mlcluster.components import quantity

QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
DEFAULT_QUEUE = "default"


@dataclass(frozen=True)
class PodSet:
    """`count` pods with the same template (requests are per pod, as Kueue counts them)."""

    count: int
    requests: dict[str, str]
    node_selector: dict[str, str] = field(default_factory=dict)
    affinity_terms: tuple[tuple[dict[str, Any], ...], ...] = ()  # ORed terms of ANDed expressions
    tolerations: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class Admission:
    cluster_queue: str
    flavors: dict[str, str]  # resource → flavor
    borrowed: dict[str, float]  # resource → units above the queue's nominal quota


@dataclass
class Render:
    """The objects of a render that decide admission."""

    flavors: dict[str, dict[str, Any]]
    cluster_queues: dict[str, dict[str, Any]]
    cohorts: dict[str, dict[str, Any]]
    local_queues: dict[tuple[str, str], str]  # (namespace, name) → cluster queue
    resource_quotas: dict[str, list[dict[str, Any]]]
    excluded_prefixes: tuple[str, ...] = ()

    @classmethod
    def of(cls, files: dict[str, str]) -> Render:
        objects = [yaml.safe_load(text) for path, text in files.items() if path.startswith("manifests/")]
        kinds: dict[str, list[dict[str, Any]]] = {}
        for obj in objects:
            kinds.setdefault(obj["kind"], []).append(obj)
        excluded: tuple[str, ...] = ()
        if "helm/kueue.yaml" in files:
            values = yaml.safe_load(files["helm/kueue.yaml"])["values"]
            config = yaml.safe_load(values["managerConfig"]["controllerManagerConfigYaml"])
            excluded = tuple(config.get("resources", {}).get("excludeResourcePrefixes", []))
        quotas: dict[str, list[dict[str, Any]]] = {}
        for rq in kinds.get("ResourceQuota", []):
            quotas.setdefault(rq["metadata"]["namespace"], []).append(rq)
        return cls(
            flavors={f["metadata"]["name"]: f for f in kinds.get("ResourceFlavor", [])},
            cluster_queues={q["metadata"]["name"]: q for q in kinds.get("ClusterQueue", [])},
            cohorts={c["metadata"]["name"]: c for c in kinds.get("Cohort", [])},
            local_queues={(q["metadata"]["namespace"], q["metadata"]["name"]): q["spec"]["clusterQueue"]
                          for q in kinds.get("LocalQueue", [])},
            resource_quotas=quotas, excluded_prefixes=excluded)


class Refused(Exception):
    """Kueue would not admit the workload (the message says why, in Kueue's terms)."""


def _expression_matches(expression: dict[str, Any], labels: dict[str, str]) -> bool:
    key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
    value = labels.get(key)
    if operator == "In":
        return value in values
    if operator == "NotIn":
        return value not in values
    if operator == "Exists":
        return key in labels
    if operator == "DoesNotExist":
        return key not in labels
    if operator in ("Gt", "Lt"):
        if value is None:
            return False
        number, bound = int(value), int(values[0])
        return number > bound if operator == "Gt" else number < bound
    raise ValueError(f"unknown operator {operator}")


def node_affinity_matches(podset: PodSet, labels: dict[str, str], keys: set[str] | None = None) -> bool:
    """kube-scheduler's NodeAffinity filter (nodeSelector AND any term), limited to `keys` when given, as
    Kueue's `flavorSelector` limits it to the flavor's own label keys."""
    selector = {k: v for k, v in podset.node_selector.items() if keys is None or k in keys}
    if any(labels.get(k) != v for k, v in selector.items()):
        return False
    terms = []
    for term in podset.affinity_terms:
        kept = tuple(e for e in term if keys is None or e["key"] in keys)
        if not kept:
            return True  # a term that becomes empty matches every flavor (Kueue: terms are ORed)
        terms.append(kept)
    return not terms or any(all(_expression_matches(e, labels) for e in term) for term in terms)


def _tolerated(taints: list[dict[str, Any]], tolerations: list[dict[str, Any]]) -> bool:
    def tolerates(toleration: dict[str, Any], taint: dict[str, Any]) -> bool:
        if toleration.get("effect") and toleration["effect"] != taint["effect"]:
            return False
        if toleration.get("operator", "Equal") == "Exists":
            return not toleration.get("key") or toleration["key"] == taint["key"]
        return toleration.get("key") == taint["key"] and toleration.get("value", "") == taint.get("value", "")

    return all(any(tolerates(t, taint) for t in tolerations) for taint in taints
               if taint["effect"] in ("NoSchedule", "NoExecute"))


def _quota_entry(groups: list[dict[str, Any]], flavor: str, resource: str) -> dict[str, Any] | None:
    for group in groups:
        for f in group["flavors"]:
            if f["name"] == flavor:
                for r in f["resources"]:
                    if r["name"] == resource:
                        return r
    return None


def _units(value: Any) -> float:
    return quantity.value(str(value))


def available(render: Render, queue: str, flavor: str, resource: str) -> tuple[float, float]:
    """(nominal, most with borrowing) of `resource` in `flavor` for `queue` on an empty cluster."""
    spec = render.cluster_queues[queue]["spec"]
    own = _quota_entry(spec["resourceGroups"], flavor, resource)
    if own is None:
        return 0, 0
    nominal = _units(own["nominalQuota"])
    if own.get("borrowingLimit") is not None and _units(own["borrowingLimit"]) == 0:
        return nominal, nominal
    cohort = spec.get("cohortName")
    lendable = 0.0
    if cohort in render.cohorts:
        entry = _quota_entry(render.cohorts[cohort]["spec"].get("resourceGroups", []), flavor, resource)
        lendable += _units(entry["nominalQuota"]) if entry else 0
    for name, other in render.cluster_queues.items():
        if name == queue or other["spec"].get("cohortName") != cohort:
            continue
        entry = _quota_entry(other["spec"]["resourceGroups"], flavor, resource)
        if entry:
            limit = entry.get("lendingLimit")
            lendable += _units(limit if limit is not None else entry["nominalQuota"])
    if own.get("borrowingLimit") is not None:
        lendable = min(lendable, _units(own["borrowingLimit"]))
    return nominal, nominal + lendable


def admit(render: Render, namespace: str, labels: dict[str, str], podsets: list[PodSet]) -> Admission:
    """The admission Kueue would make on an empty cluster, or `Refused`."""
    queue_name = labels.get(QUEUE_LABEL)
    if queue_name is None and (namespace, DEFAULT_QUEUE) in render.local_queues:
        queue_name = DEFAULT_QUEUE
    if queue_name is None or (namespace, queue_name) not in render.local_queues:
        raise Refused(f"LocalQueue {queue_name} doesn't exist in {namespace}")
    queue = render.local_queues[(namespace, queue_name)]
    spec = render.cluster_queues[queue]["spec"]
    selector = spec.get("namespaceSelector", {}).get("matchLabels", {})
    if selector and selector.get("kubernetes.io/metadata.name", namespace) != namespace:
        raise Refused("namespace doesn't match the ClusterQueue's namespaceSelector")
    totals: dict[str, float] = {}
    for podset in podsets:
        for resource, value in podset.requests.items():
            if not any(resource.startswith(p) for p in render.excluded_prefixes) and _units(value) > 0:
                totals[resource] = totals.get(resource, 0) + podset.count * _units(value)
    chosen: dict[str, str] = {}
    borrowed: dict[str, float] = {}
    for group in spec["resourceGroups"]:
        wanted = {r: totals[r] for r in group["coveredResources"] if r in totals}
        if not wanted:
            continue
        reasons = []
        for f in group["flavors"]:
            flavor = render.flavors[f["name"]]["spec"]
            labels_of = flavor.get("nodeLabels", {})
            tolerations = [*flavor.get("tolerations", [])]
            if not all(_tolerated(flavor.get("nodeTaints", []), [*p.tolerations, *tolerations]) for p in podsets):
                reasons.append(f"untolerated taint in flavor {f['name']}")
                continue
            if not all(node_affinity_matches(p, labels_of, set(labels_of)) for p in podsets):
                reasons.append(f"flavor {f['name']} doesn't match node affinity")
                continue
            fits = {r: available(render, queue, f["name"], r) for r in wanted}
            if all(need <= most for r, need in wanted.items() for most in [fits[r][1]]):
                for r, need in wanted.items():
                    chosen[r] = f["name"]
                    if need > fits[r][0]:
                        borrowed[r] = need - fits[r][0]
                break
            reasons.append(f"insufficient quota for {', '.join(wanted)} in flavor {f['name']}")
        else:
            raise Refused("; ".join(reasons) or "no flavor")
        for r in wanted:
            totals.pop(r)
    if totals:
        raise Refused(f"resource {', '.join(sorted(totals))} unavailable in ClusterQueue")
    return Admission(queue, chosen, borrowed)


def quota_refusal(render: Render, namespace: str, podsets: list[PodSet]) -> str | None:
    """The ResourceQuota admission plugin's answer for the admitted pods, all running at once."""
    totals: dict[str, float] = {}
    for podset in podsets:
        for resource, value in podset.requests.items():
            key = resource if resource in ("pods",) else f"requests.{resource}"
            totals[key] = totals.get(key, 0) + podset.count * _units(value)
        totals["pods"] = totals.get("pods", 0) + podset.count
    for rq in render.resource_quotas.get(namespace, []):
        if rq["spec"].get("scopeSelector") or rq["spec"].get("scopes"):
            continue
        for key, hard in rq["spec"]["hard"].items():
            if key in totals and totals[key] > _units(hard):
                return f"exceeded quota: {rq['metadata']['name']}, requested: {key}={totals[key]:g}, limited: {hard}"
    return None
