"""A data scientist's journey with the real controllers (`make journey`): for aws-gpu and onprem-gpu, the team
objects the render writes go into a local API server; Kueue (run with the configuration our add-on renders),
kube-scheduler and kwok (fake nodes carrying each pool's labels, taints and GPU capacity) decide. For every team
× tier, the docs' shapes — a Job, a notebook pod as JupyterHub spawns it, a serving Deployment as KServe makes
it — must be admitted by Kueue, scheduled onto a node of a pool that can run the tier, and let in by the
ResourceQuota. Then contention: one team borrows a whole pool, the other reclaims its guarantee by preemption.

TrainJobs are checked by the offline model (tests/semantics/test_admission.py) only: the Trainer controller and
its runtime CRDs are not part of the toolchain. Kueue runs at v0.17.0, the newest the Go module proxy serves (we
pin the v0.19.2 chart); the README says so.
"""

from __future__ import annotations

import json
import time

import pytest
import yaml

from mlcluster.addons.ml.jupyterhub import notebook_profile
from mlcluster.profiles import quotas
from mlcluster.profiles.gpu_products import tier_resource
from tests.e2e.cluster import local_cluster, toolchain_bin
from tests.e2e.controllers import create, nodes_for, remove_metrics_certificates, start_kueue, start_kwok, wait_for

pytestmark = pytest.mark.journey

QUEUE = "kueue.x-k8s.io/queue-name"
RESULTS: dict[str, list[list[str]]] = {}


def platform_objects(files: dict[str, str]) -> list[dict]:
    """What the render writes that admission depends on, cluster-scoped and namespaces first."""
    wanted = {"Namespace": 0, "ResourceFlavor": 1, "WorkloadPriorityClass": 1, "Cohort": 1, "ClusterQueue": 2,
              "ClusterRole": 2, "ResourceQuota": 3, "LimitRange": 3, "LocalQueue": 3, "RoleBinding": 3,
              "ServiceAccount": 3}
    objs = [yaml.safe_load(t) for p, t in files.items() if p.startswith("manifests/") and not p.endswith(".patch.yaml")]
    team_ns = {o["metadata"]["name"] for o in objs if o["kind"] == "Namespace" and
               "mlcluster.io/team" in o["metadata"].get("labels", {})}
    keep = [o for o in objs if o["kind"] in wanted and (
        o["kind"] in ("ResourceFlavor", "WorkloadPriorityClass", "Cohort", "ClusterQueue", "ClusterRole")
        or o["metadata"].get("namespace") in team_ns or o["metadata"]["name"] in team_ns)]
    return sorted(keep, key=lambda o: wanted[o["kind"]])


@pytest.fixture(scope="module", params=["aws-gpu", "onprem-gpu"])
def world(request, tmp_path_factory):
    from tests.conftest import rendered_profile

    bin_dir = toolchain_bin()
    if bin_dir is None:
        pytest.skip("e2e toolchain not built: run `make e2e-toolchain` (tens of minutes once), then `make journey`")
    rendered = rendered_profile(request.param)
    files, profile = rendered.files, rendered.result.profile
    home = tmp_path_factory.mktemp(f"journey-{request.param}")
    with local_cluster(home, bin_dir, ("kube-controller-manager", "kube-scheduler")) as cluster:
        try:
            bring_up(cluster, files, profile)
            yield cluster, profile, request.param
        finally:
            remove_metrics_certificates()


def bring_up(cluster, files: dict[str, str], profile) -> None:
    """Kueue with the rendered configuration (only the integrations whose kinds exist here), the platform's
    team objects, one fake node per pool member, and kwok to keep them Ready."""
    config = yaml.safe_load(yaml.safe_load(files["helm/kueue.yaml"])["values"]["managerConfig"][
        "controllerManagerConfigYaml"])
    config["integrations"]["frameworks"] = [f for f in config["integrations"]["frameworks"]
                                            if f in ("batch/job", "pod", "deployment", "statefulset")]
    start_kueue(cluster, yaml.safe_dump(config))
    for obj in platform_objects(files):
        create(cluster, obj)
    for node in nodes_for(profile):
        create(cluster, node)
    start_kwok(cluster)
    assert wait_for(lambda: all(
        any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"].get("conditions", []))
        for n in cluster.request("GET", "/api/v1/nodes")[1]["items"]), timeout=90), "nodes never Ready"


def pod_template(labels: dict, requests: dict, affinity: list | None, tolerations: list, name: str) -> dict:
    spec: dict = {"containers": [{"name": name, "image": "registry.example/work:1", "resources": {
        "requests": requests, "limits": requests}}], "tolerations": tolerations, "restartPolicy": "Never"}
    if affinity:
        spec["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": affinity}}}
    return {"metadata": {"labels": labels}, "spec": spec}


def shapes(profile, team, tier, namespace: str) -> dict[str, dict]:
    """The docs' Job, a JupyterHub notebook pod and a KServe-like predictor Deployment for one team and tier."""
    requests = {"cpu": tier.cpu, "memory": tier.memory}
    resource = tier_resource(tier)
    if resource:
        requests[resource] = str(tier.gpu)
    tolerations = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}] if tier.gpu else []
    affinity = ([{"matchExpressions": [{"key": "nvidia.com/gpu.count", "operator": "Gt",
                                        "values": [str(tier.gpu - 1)]}]}] if tier.gpu > 1 and tier.gpu_type == "whole"
                else None)
    slug = f"{team.name}-{tier.name}"
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {
        "name": f"job-{slug}", "namespace": namespace, "labels": {QUEUE: team.name,
                                                                 "kueue.x-k8s.io/priority-class": "training"}},
        "spec": {"suspend": True, "template": pod_template({}, requests, affinity, tolerations, "train")}}
    override = notebook_profile(profile, team, tier, namespace)["kubespawner_override"]
    notebook_requests = {"cpu": str(override["cpu_guarantee"]), "memory": override["mem_guarantee"],
                         **override.get("extra_resource_guarantees", {})}
    notebook = {"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": f"jupyter-{slug}", "namespace": namespace, "labels": override["extra_labels"]},
        "spec": pod_template({}, notebook_requests, override.get("node_affinity_required"),
                             override.get("tolerations", []), "notebook")["spec"]}
    notebook["spec"]["restartPolicy"] = "Always"
    serving = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {
        "name": f"predictor-{slug}", "namespace": namespace, "labels": {QUEUE: team.name}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": f"predictor-{slug}"}},
                 "template": pod_template({"app": f"predictor-{slug}"}, requests, affinity, tolerations, "predictor")}}
    serving["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    return {"job": job, "notebook": notebook, "serving": serving}


def pods_of(cluster, namespace: str, shape: str, obj: dict) -> list[dict]:
    if shape == "notebook":
        _, pod = cluster.request("GET", f"/api/v1/namespaces/{namespace}/pods/{obj['metadata']['name']}")
        return [pod] if pod.get("kind") == "Pod" else []
    selector = (f"job-name={obj['metadata']['name']}" if shape == "job"
                else f"app={obj['spec']['selector']['matchLabels']['app']}")
    _, pods = cluster.request("GET", f"/api/v1/namespaces/{namespace}/pods?labelSelector={selector}")
    return pods.get("items", [])


def delete(cluster, obj: dict) -> None:
    from tests.e2e.controllers import api_path

    cluster.request("DELETE", api_path(obj) + "?propagationPolicy=Foreground")


def node_pool(cluster, name: str) -> str:
    _, node = cluster.request("GET", f"/api/v1/nodes/{name}")
    return node["metadata"]["labels"]["mlcluster.io/pool"]


def test_every_tier_of_every_team_is_admitted_and_scheduled(world):
    cluster, profile, name = world
    rows, failures = [], []
    for team in profile.teams:
        namespace = f"{profile.tenancy.namespace_prefix}{team.name}"
        for tier in profile.tiers:
            if team.tiers is not None and tier.name not in team.tiers:
                continue
            eligible = {f.pool for f in quotas.eligible(profile, tier)} or {
                p.name for p in profile.node_pools if p.gpu is None}
            for shape, obj in shapes(profile, team, tier, namespace).items():
                status, body = cluster.request("POST", f"/{'api' if obj['apiVersion'] == 'v1' else 'apis'}/"
                                               f"{obj['apiVersion']}/namespaces/{namespace}/"
                                               f"{obj['kind'].lower()}s", obj)
                if status not in (200, 201):
                    failures.append(f"{name}/{team.name}/{tier.name}/{shape}: refused {status} {body.get('message')}")
                    continue
                def nodes(s=shape, o=obj, ns=namespace):
                    return [p["spec"]["nodeName"] for p in pods_of(cluster, ns, s, o) if p["spec"].get("nodeName")]

                placed = wait_for(nodes, timeout=60)
                pools = sorted({node_pool(cluster, n) for n in placed or []})
                ok = bool(pools) and set(pools) <= eligible
                rows.append([team.name, tier.name, shape, ", ".join(pools) or "not scheduled", "yes" if ok else "NO"])
                if not ok:
                    _, workloads = cluster.request("GET", f"/apis/kueue.x-k8s.io/v1beta2/namespaces/{namespace}/"
                                                   "workloads")
                    conditions = [w.get("status", {}).get("conditions") for w in workloads.get("items", [])]
                    failures.append(f"{name}/{team.name}/{tier.name}/{shape}: pools {pools}, eligible "
                                    f"{sorted(eligible)}; workloads: " + json.dumps(conditions)[:1500])
                delete(cluster, obj)
                wait_for(lambda s=shape, o=obj, ns=namespace: not pods_of(cluster, ns, s, o), timeout=60)
    RESULTS[name] = rows
    print(f"\n{name}: team × tier × shape → pool\n" + "\n".join(" | ".join(r) for r in rows))
    assert failures == []


def test_contention_borrowing_and_reclaim(world):
    """Team A borrows the whole biggest pool; team B then submits work within its own guarantee there: Kueue
    preempts A's borrowed workload to give B what it is guaranteed."""
    cluster, profile, name = world
    big = max((t for t in profile.tiers if t.gpu_type == "whole" and t.gpu), key=lambda t: t.gpu)
    pool = max(quotas.eligible(profile, big), key=lambda f: f.capacity)
    first, second = profile.teams[0], profile.teams[1]
    per_pool = pool.capacity // big.gpu
    ns_a, ns_b = (f"{profile.tenancy.namespace_prefix}{t.name}" for t in (first, second))
    jobs_a = []
    for i in range(per_pool):
        job = shapes(profile, first, big, ns_a)["job"]
        job["metadata"]["name"] = f"borrow-{i}"
        create(cluster, job)
        jobs_a.append(job)
    running = wait_for(lambda: len([p for j in jobs_a for p in pods_of(cluster, ns_a, "job", j)
                                    if p["spec"].get("nodeName")]) == per_pool, timeout=90)
    assert running, f"{first.name} could not borrow all of {pool.pool}"
    guaranteed = quotas.nominal(profile)[second.name].get(pool.pool, 0)
    if guaranteed < big.gpu:
        pytest.skip(f"{second.name} is guaranteed {guaranteed} on {pool.pool}, less than one {big.name}")
    claim = shapes(profile, second, big, ns_b)["job"]
    claim["metadata"]["name"] = "reclaim"
    create(cluster, claim)
    placed = wait_for(lambda: [p for p in pods_of(cluster, ns_b, "job", claim) if p["spec"].get("nodeName")],
                      timeout=120)
    assert placed, f"{second.name} never got its guaranteed {pool.pool} back"
    _, workloads = cluster.request("GET", f"/apis/kueue.x-k8s.io/v1beta2/namespaces/{ns_a}/workloads")
    evicted = [w for w in workloads["items"] if any(c["type"] == "Evicted" and c["status"] == "True"
                                                     for c in w.get("status", {}).get("conditions", []))]
    assert evicted, "a borrowed workload of the other team was preempted"
    RESULTS.setdefault(f"{name}-contention", []).append(
        [first.name, f"{per_pool} × {big.name} on {pool.pool}", second.name, "reclaimed by preemption"])
    for job in [*jobs_a, claim]:
        delete(cluster, job)
    time.sleep(1)
