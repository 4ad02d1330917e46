"""Kueue: the queues data scientists feel. One ClusterQueue per team in a shared cohort, ResourceFlavors per
GPU pool, priorities, and a LocalQueue in each team namespace (built by the team space).

Quota model (Kueue v1beta2): CPU and memory come from one `default-flavor` (any node); GPUs from one flavor
per GPU pool (node labels + the GPU taint, so admitted pods land on that pool and tolerate it). A team's
nominal GPU quota is split over the GPU flavors in proportion to each pool's capacity; idle quota is lent
within the cohort and reclaimed by preemption. The sum of nominal GPUs per flavor never exceeds what the
pool can hold at its max size (checked, with a clear error). ResourceQuota stays the hard cap per namespace.
"""

from __future__ import annotations

import math
from typing import Any

import pulumi
import yaml
from pydantic import Field

from mlcluster.addons.base import Addon
from mlcluster.components import k8s as objects
from mlcluster.components.cluster import GPU_PRODUCT_LABEL, GPU_RESOURCE, GPU_TAINT_KEY, POOL_LABEL, PoolFacts
from mlcluster.components.tenancy import team_namespace
from mlcluster.profiles.gpu_products import is_exclusive, pool_gpus
from mlcluster.profiles.model import AddonSettings, DnsLabel, NodePool, ProfileBase, Team

DEFAULT_FLAVOR = "default-flavor"
TEAM_LABEL = "mlcluster.io/team"
PRIORITIES = {  # WorkloadPriorityClass name → (value, description)
    "interactive": (1000, "Notebooks and debugging sessions: admitted first, preempt batch work."),
    "training": (500, "Training runs."),
    "batch": (100, "Batch and sweep jobs: run on idle capacity, first to be preempted."),
}
UNQUOTED_RESOURCES = ("vpc.amazonaws.com/efa",)
FRAMEWORKS = ["batch/job", "jobset.x-k8s.io/jobset", "trainer.kubeflow.org/trainjob", "ray.io/rayjob",
              "ray.io/raycluster", "ray.io/rayservice"]


class KueueSettings(AddonSettings):
    namespace: DnsLabel = "kueue-system"
    cohort: DnsLabel = "mlcluster"
    borrowing: bool = Field(True, description="Teams may borrow idle quota from the cohort.")
    lending_limit_percent: int = Field(100, ge=0, le=100,
                                       description="Share of a team's nominal quota the cohort may borrow.")
    wait_for_pods_ready_timeout: str = Field("10m", pattern=r"^[0-9]+(s|m|h)$",
                                             description="All-or-nothing admission: evict if pods are not ready.")
    manage_unlabelled_jobs: bool = Field(True, description="Jobs without a queue label in team namespaces are "
                                                           "held by Kueue, so nobody bypasses the queues.")


def pool_capacity(pool: NodePool) -> int:
    """`nvidia.com/gpu` a pool offers at its max size (time-slicing replicas and MIG instances count)."""
    return pool_gpus(pool)


def gpu_flavors(profile: ProfileBase) -> list[NodePool]:
    """GPU pools in the order Kueue tries them: whole GPUs first, time-sliced and MIG slices last, so a job
    only lands on a shared GPU when the whole ones are taken (or when it selects that pool)."""
    pools = [p for p in profile.node_pools if p.gpu is not None and pool_capacity(p) > 0]
    return sorted(pools, key=lambda p: not is_exclusive(p))


def gpu_shares(profile: ProfileBase) -> dict[str, dict[str, int]]:
    """Team → flavor → nominal GPUs: each team's quota split over GPU pools by capacity (largest remainder)."""
    flavors = gpu_flavors(profile)
    total = sum(pool_capacity(p) for p in flavors)
    shares: dict[str, dict[str, int]] = {}
    for team in profile.teams:
        if not flavors or team.quota.gpu == 0:
            shares[team.name] = {p.name: 0 for p in flavors}
            continue
        exact = {p.name: team.quota.gpu * pool_capacity(p) / total for p in flavors}
        split = {name: math.floor(value) for name, value in exact.items()}
        left = team.quota.gpu - sum(split.values())
        for name in sorted(exact, key=lambda n: (split[n] - exact[n], n))[:left]:
            split[name] += 1
        shares[team.name] = split
    return shares


def flavor_manifests(profile: ProfileBase) -> list[dict[str, Any]]:
    out = [{"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ResourceFlavor",
            "metadata": objects.metadata(DEFAULT_FLAVOR), "spec": {}}]
    for pool in gpu_flavors(profile):
        facts = PoolFacts.from_pool(pool)
        taints = [{"key": t["key"], "value": t["value"], "effect": t["effect"]} for t in facts.taints]
        gpu_taint = [t for t in taints if t["key"] == GPU_TAINT_KEY]
        out.append({"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ResourceFlavor",
                    "metadata": objects.metadata(pool.name),
                    "spec": {"nodeLabels": {POOL_LABEL: pool.name, GPU_PRODUCT_LABEL: facts.gpu_product},
                             "nodeTaints": taints,
                             "tolerations": [{"key": t["key"], "operator": "Equal", "value": t["value"],
                                              "effect": t["effect"]} for t in gpu_taint]}})
    return out


def _resource(name: str, nominal: str | int, settings: KueueSettings) -> dict[str, Any]:
    """One quota entry. The lending limit applies to GPUs (the scarce resource), which are whole numbers."""
    entry: dict[str, Any] = {"name": name, "nominalQuota": nominal}
    if not settings.borrowing:
        entry["borrowingLimit"] = 0
    if isinstance(nominal, int) and settings.lending_limit_percent < 100:
        entry["lendingLimit"] = nominal * settings.lending_limit_percent // 100
    return entry


def cluster_queue_name(team: Team) -> str:
    return f"team-{team.name}"


def cluster_queue_manifest(team: Team, namespace: str, profile: ProfileBase, settings: KueueSettings,
                           shares: dict[str, int]) -> dict[str, Any]:
    cpu_mem = [_resource("cpu", team.quota.cpu, settings), _resource("memory", team.quota.memory, settings)]
    groups: list[dict[str, Any]] = [
        {"coveredResources": ["cpu", "memory"], "flavors": [{"name": DEFAULT_FLAVOR, "resources": cpu_mem}]}]
    flavors = gpu_flavors(profile)
    if flavors:
        groups.append({"coveredResources": [GPU_RESOURCE], "flavors": [
            {"name": p.name, "resources": [_resource(GPU_RESOURCE, shares[p.name], settings)]} for p in flavors]})
    return {
        "apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ClusterQueue",
        "metadata": objects.metadata(cluster_queue_name(team), labels={TEAM_LABEL: team.name}),
        "spec": {
            "cohortName": settings.cohort,
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
            "queueingStrategy": "BestEffortFIFO",
            "resourceGroups": groups,
            "preemption": {
                "reclaimWithinCohort": "Any",
                "borrowWithinCohort": {"policy": "LowerPriority",
                                       "maxPriorityThreshold": PRIORITIES["training"][0]},
                "withinClusterQueue": "LowerPriority",
            },
        },
    }


def local_queue_manifest(team: Team, namespace: str) -> dict[str, Any]:
    """The queue scientists name in `kueue.x-k8s.io/queue-name`: their team's name."""
    return {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "LocalQueue",
            "metadata": objects.metadata(team.name, namespace),
            "spec": {"clusterQueue": cluster_queue_name(team)}}


def priority_manifests() -> list[dict[str, Any]]:
    return [{"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "WorkloadPriorityClass",
             "metadata": objects.metadata(name), "value": value, "description": description}
            for name, (value, description) in PRIORITIES.items()]


def manager_config(settings: KueueSettings) -> str:
    config: dict[str, Any] = {
        "apiVersion": "config.kueue.x-k8s.io/v1beta2", "kind": "Configuration",
        "health": {"healthProbeBindAddress": ":8081"},
        "metrics": {"bindAddress": ":8443"},
        "webhook": {"port": 9443},
        "leaderElection": {"leaderElect": True, "resourceName": "c1f6bfd2.kueue.x-k8s.io"},
        "waitForPodsReady": {"timeout": settings.wait_for_pods_ready_timeout, "blockAdmission": False,
                             "requeuingStrategy": {"timestamp": "Eviction", "backoffBaseSeconds": 60,
                                                   "backoffMaxSeconds": 3600}},
        "integrations": {"frameworks": list(FRAMEWORKS)},
        # Devices that are not quota (EFA interfaces come with the node): a job asking for them stays admissible.
        "resources": {"excludeResourcePrefixes": list(UNQUOTED_RESOURCES)},
    }
    if settings.manage_unlabelled_jobs:
        config["manageJobsWithoutQueueName"] = True
        config["managedJobsNamespaceSelector"] = {"matchExpressions": [{"key": TEAM_LABEL, "operator": "Exists"}]}
    return yaml.safe_dump(config, sort_keys=True)


class Kueue(Addon):
    key = "kueue"
    section = "ml"
    type_name = "Kueue"
    description = "Kueue: team ClusterQueues in a cohort, GPU flavors per pool, priorities, LocalQueues."
    Settings = KueueSettings

    @classmethod
    def check(cls, profile: ProfileBase, settings: KueueSettings) -> list[tuple[tuple, object, str]]:  # type: ignore[override]
        found: list[tuple[tuple, object, str]] = []
        total = sum(pool_capacity(p) for p in gpu_flavors(profile))
        if any(team.quota.gpu > total for team in profile.teams):
            return found  # already reported on the team's quota (profiles/rules.py)
        shares = gpu_shares(profile)
        for i, pool in enumerate(gpu_flavors(profile)):
            nominal = sum(team_shares.get(pool.name, 0) for team_shares in shares.values())
            if nominal > pool_capacity(pool):
                found.append((("node_pools", i, "max"), pool.max,
                               f"the teams' nominal GPU quota on this pool adds up to {nominal}, more than its "
                               f"{pool_capacity(pool)} GPUs at max size; raise max or lower team GPU quotas"))
        return found

    def build(self) -> dict[str, Any]:
        settings: KueueSettings = self.settings  # type: ignore[assignment]
        ns = self.namespace(settings.namespace)
        values = self.values(manager_config=manager_config(settings),
                             monitoring=self.profile.addons.monitoring.enabled)  # type: ignore[attr-defined]
        release = self.helm_release("kueue", "kueue", settings.namespace, values, depends_on=[ns])
        after = [release]
        objects_created: list[pulumi.Resource] = []
        for manifest in [*flavor_manifests(self.profile), *priority_manifests()]:
            kind = manifest["kind"].lower()
            objects_created.append(self.apply(f"{kind}-{manifest['metadata']['name']}", manifest, depends_on=after))
        shares = gpu_shares(self.profile)
        for team in self.profile.teams:
            manifest = cluster_queue_manifest(team, team_namespace(team, self.profile.tenancy), self.profile, settings,
                                              shares[team.name])
            self.apply(f"clusterqueue-{team.name}", manifest, depends_on=[*after, *objects_created])
        return {"queues": {t.name: t.name for t in self.profile.teams}}


ADDON = Kueue
