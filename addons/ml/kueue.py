"""Kueue: the queues data scientists feel, and the one authority for admission in team namespaces.

Every pod a team runs is a Kueue workload: Jobs, JobSets, TrainJobs and Ray objects through their
integrations, and everything else — notebooks (JupyterHub's bare pods), KServe predictors (Deployments),
ad-hoc pods — through the pod, Deployment and StatefulSet integrations, limited to team namespaces
(`managedJobsNamespaceSelector`). A pod without a queue label goes to the namespace's `default` LocalQueue
(LocalQueue defaulting), which points at the team's ClusterQueue like the LocalQueue named after the team.

Quotas come from profiles/quotas.py, the same numbers the namespaces' ResourceQuotas are built from: a
ClusterQueue per team with its guaranteed share of each GPU pool (one flavor per pool; one resource group per
GPU resource, so whole GPUs, time-sliced replicas and MIG instances never stand in for each other), and a
Cohort that owns the rest of every pool, so all of it is reachable. Teams borrow idle capacity when
`borrowing` is on; owners reclaim theirs by preemption. CPU and memory are not borrowed. Flavors carry the
pool label and, for whole GPUs, `nvidia.com/gpu.count`: a job that needs N GPUs on one node says so with
node affinity `nvidia.com/gpu.count Gt N-1`, which Kueue evaluates against each flavor's labels
(pkg/scheduler/flavorassigner `checkFlavorForPodSets`), so it is never admitted to a pool of smaller nodes.
"""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import Field

from mlcluster.addons.base import Addon
from mlcluster.components import k8s as objects
from mlcluster.components.cluster import EFA_RESOURCE, GPU_COUNT_LABEL, GPU_TAINT_KEY, POOL_LABEL, PoolFacts
from mlcluster.components.tenancy import team_namespace
from mlcluster.deferred import pulumi
from mlcluster.profiles import quotas
from mlcluster.profiles.model import AddonSettings, DnsLabel, ProfileBase, Team

DEFAULT_FLAVOR = "default-flavor"
DEFAULT_QUEUE = "default"  # Kueue's LocalQueue defaulting: unlabelled workloads in a namespace go here
TEAM_LABEL = "mlcluster.io/team"
API = "kueue.x-k8s.io/v1beta2"
PRIORITIES = {  # WorkloadPriorityClass name → (value, description)
    "interactive": (1000, "Notebooks and debugging sessions: admitted first, preempt batch work."),
    "training": (500, "Training runs."),
    "batch": (100, "Batch and sweep jobs: run on idle capacity, first to be preempted."),
}
# Requested, but not queue quota (Kueue would otherwise refuse workloads asking for a resource no resource group
# covers): EFA interfaces come with the node; scratch space is bounded by the namespace's ResourceQuota.
UNQUOTED_RESOURCES = (EFA_RESOURCE, "ephemeral-storage")
FRAMEWORKS = ["batch/job", "jobset.x-k8s.io/jobset", "trainer.kubeflow.org/trainjob", "ray.io/rayjob",
              "ray.io/raycluster", "ray.io/rayservice", "pod", "deployment", "statefulset"]


class KueueSettings(AddonSettings):
    namespace: DnsLabel = "kueue-system"
    cohort: DnsLabel = "mlcluster"
    borrowing: bool = Field(True, description="Teams may borrow idle GPU capacity in the cohort (reclaimed by "
                                              "preemption when its owners need it).")
    lending_limit_percent: int = Field(100, ge=0, le=100,
                                       description="Share of a team's guaranteed GPUs others may borrow while idle.")
    wait_for_pods_ready_timeout: str = Field("10m", pattern=r"^[0-9]+(s|m|h)$",
                                             description="All-or-nothing admission: evict if pods are not ready.")
    manage_unlabelled_jobs: bool = Field(True, description="Workloads without a queue label in team namespaces go "
                                                           "to the team's `default` queue: nobody bypasses it.")


def flavor_manifests(profile: ProfileBase) -> list[dict[str, Any]]:
    out = [{"apiVersion": API, "kind": "ResourceFlavor", "metadata": objects.metadata(DEFAULT_FLAVOR), "spec": {}}]
    for flavor in quotas.flavors(profile):
        facts = PoolFacts.from_pool(quotas.pool_of(profile, flavor.pool))
        taints = [{"key": t["key"], "value": t["value"], "effect": t["effect"]} for t in facts.taints]
        gpu_taint = [t for t in taints if t["key"] == GPU_TAINT_KEY]
        labels = {POOL_LABEL: flavor.pool}
        if flavor.whole:
            labels[GPU_COUNT_LABEL] = facts.labels[GPU_COUNT_LABEL]  # what multi-GPU jobs select with `Gt`
        out.append({"apiVersion": API, "kind": "ResourceFlavor", "metadata": objects.metadata(flavor.pool),
                    "spec": {"nodeLabels": labels, "nodeTaints": taints,
                             "tolerations": [{"key": t["key"], "operator": "Equal", "value": t["value"],
                                              "effect": t["effect"]} for t in gpu_taint]}})
    return out


def _gpu_groups(profile: ProfileBase, quota: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One resource group per GPU resource; `quota[pool]` is the entry for that pool's flavor."""
    groups = []
    for resource in quotas.resources(profile):
        pools = [f for f in quotas.flavors(profile) if f.resource == resource]
        groups.append({"coveredResources": [resource], "flavors": [
            {"name": f.pool, "resources": [{"name": resource, **quota[f.pool]}]} for f in pools]})
    return groups


def cohort_manifest(profile: ProfileBase, settings: KueueSettings) -> dict[str, Any]:
    """The cohort owns what no team is guaranteed, so every GPU of every pool can be reached through a queue."""
    left = quotas.unassigned(profile)
    spec: dict[str, Any] = {}
    groups = _gpu_groups(profile, {pool: {"nominalQuota": units} for pool, units in left.items()})
    if groups:
        spec["resourceGroups"] = groups
    return {"apiVersion": API, "kind": "Cohort", "metadata": objects.metadata(settings.cohort), "spec": spec}


def cluster_queue_name(team: Team) -> str:
    return f"team-{team.name}"


def cluster_queue_manifest(team: Team, namespace: str, profile: ProfileBase, settings: KueueSettings
                           ) -> dict[str, Any]:
    shares = quotas.nominal(profile)[team.name]
    not_borrowed = {"borrowingLimit": 0}
    cpu_mem = [{"name": "cpu", "nominalQuota": team.quota.cpu, **not_borrowed},
               {"name": "memory", "nominalQuota": team.quota.memory, **not_borrowed}]
    groups: list[dict[str, Any]] = [
        {"coveredResources": ["cpu", "memory"], "flavors": [{"name": DEFAULT_FLAVOR, "resources": cpu_mem}]}]

    def gpu_quota(pool: str) -> dict[str, Any]:
        entry: dict[str, Any] = {"nominalQuota": shares.get(pool, 0)}
        if not settings.borrowing:
            entry["borrowingLimit"] = 0
        if settings.lending_limit_percent < 100:
            entry["lendingLimit"] = shares.get(pool, 0) * settings.lending_limit_percent // 100
        return entry

    groups += _gpu_groups(profile, {f.pool: gpu_quota(f.pool) for f in quotas.flavors(profile)})
    return {
        "apiVersion": API, "kind": "ClusterQueue",
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


def local_queue_manifests(team: Team, namespace: str) -> list[dict[str, Any]]:
    """The queue scientists name in `kueue.x-k8s.io/queue-name` (their team's name), and `default`, where Kueue
    puts what carries no queue label. Both feed the team's ClusterQueue."""
    return [{"apiVersion": API, "kind": "LocalQueue", "metadata": objects.metadata(name, namespace),
             "spec": {"clusterQueue": cluster_queue_name(team)}}
            for name in sorted({team.name, DEFAULT_QUEUE})]


def priority_manifests() -> list[dict[str, Any]]:
    return [{"apiVersion": API, "kind": "WorkloadPriorityClass",
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
    installs = ("kueue",)
    requires = ("monitoring",)

    def build(self) -> dict[str, Any]:
        settings: KueueSettings = self.settings  # type: ignore[assignment]
        ns = self.namespace(settings.namespace)
        values = self.values(manager_config=manager_config(settings),
                             monitoring=self.profile.addons.monitoring.enabled)  # type: ignore[attr-defined]
        monitoring = ("monitoring.coreos.com",) if self.profile.addons.monitoring.enabled else ()  # type: ignore[attr-defined]
        release = self.helm_release("kueue", "kueue", settings.namespace, values, depends_on=[ns],
                                    uses=monitoring)  # enablePrometheus: its ServiceMonitor
        after = [release]
        objects_created: list[pulumi.Resource] = []
        for manifest in [*flavor_manifests(self.profile), *priority_manifests(),
                         cohort_manifest(self.profile, settings)]:
            kind = manifest["kind"].lower()
            objects_created.append(self.apply(f"{kind}-{manifest['metadata']['name']}", manifest, depends_on=after))
        for team in self.profile.teams:
            manifest = cluster_queue_manifest(team, team_namespace(team, self.profile.tenancy), self.profile, settings)
            self.apply(f"clusterqueue-{team.name}", manifest, depends_on=[*after, *objects_created])
        return {"queues": {t.name: t.name for t in self.profile.teams}}


ADDON = Kueue
