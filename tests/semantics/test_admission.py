"""Every tier of every team is admitted by Kueue on a pool that can run it and then fits the namespace's
ResourceQuota — for the three shapes data scientists use: a notebook (JupyterHub's pod), a Job and a TrainJob as
the docs write them. Computed with mlcluster.semantics.kueue (Kueue v0.19.2's rules) on every render; the journey
loop (tests/e2e) runs the same shapes against the real Kueue and scheduler.

Before the quota redesign: a team's GPU quota was split per pool by capacity (gpu-8 never fit the A100s
on-prem), time-sliced replicas were `nvidia.com/gpu` like whole GPUs (a 2-GPU job could be admitted to slices),
MIG tiers asked for a resource the single strategy never advertises, and the ResourceQuota equalled the nominal
quota, so a borrowed admission was then refused pods."""

from __future__ import annotations

import pytest

from mlcluster.addons.ml.jupyterhub import notebook_profile
from mlcluster.components import quantity
from mlcluster.profiles import quotas
from mlcluster.profiles.gpu_products import tier_resource
from mlcluster.profiles.loader import shipped_profiles
from mlcluster.semantics.kueue import PodSet, Refused, Render, admit, quota_refusal
from mlcluster.semantics.limits import admitted, violations
from tests.conftest import rendered_profile, rendered_stack

GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def notebook(profile, team, tier, namespace) -> tuple[dict, PodSet]:
    override = notebook_profile(profile, team, tier, namespace)["kubespawner_override"]
    requests = {"cpu": str(override["cpu_guarantee"]), "memory": override["mem_guarantee"],
                **override.get("extra_resource_guarantees", {})}
    terms = tuple(tuple(t["matchExpressions"]) for t in override.get("node_affinity_required", []))
    return override["extra_labels"], PodSet(1, requests, affinity_terms=terms,
                                            tolerations=tuple(override.get("tolerations", [])))


def job(team, tier, count=1) -> tuple[dict, PodSet]:
    """The docs' shape: requests = limits, the team's queue, the GPU toleration, and for more than one GPU the
    affinity the page tells users to copy (`nvidia.com/gpu.count Gt N-1`)."""
    requests = {"cpu": tier.cpu, "memory": tier.memory}
    if tier_resource(tier):
        requests[tier_resource(tier)] = str(tier.gpu)
    terms = ((({"key": "nvidia.com/gpu.count", "operator": "Gt", "values": [str(tier.gpu - 1)]},),)
             if tier.gpu > 1 and tier.gpu_type == "whole" else ())
    return ({"kueue.x-k8s.io/queue-name": team.name},
            PodSet(count, requests, affinity_terms=terms, tolerations=(GPU_TOLERATION,) if tier.gpu else ()))


def limit_ranges(files, namespace):
    import yaml

    return [yaml.safe_load(t) for p, t in files.items() if p.startswith(f"manifests/{namespace}/limitrange-")]


RENDERS = [("profile", name) for name in shipped_profiles()] + [("stack", "prod"), ("stack", "lab")]


@pytest.mark.parametrize(("kind", "name"), RENDERS)
def test_every_tier_of_every_team_is_admitted_on_a_pool_that_can_run_it(kind, name):
    rendered = rendered_profile(name) if kind == "profile" else rendered_stack(name)
    profile, files = rendered.result.profile, rendered.files
    render = Render.of(files)
    if not render.cluster_queues:
        pytest.skip("no queues in this profile")
    for team in profile.teams:
        namespace = f"{profile.tenancy.namespace_prefix}{team.name}"
        for tier in profile.tiers:
            if team.tiers is not None and tier.name not in team.tiers:
                continue
            eligible = {f.pool for f in quotas.eligible(profile, tier)}
            for shape, (labels, podset) in {"notebook": notebook(profile, team, tier, namespace),
                                            "job": job(team, tier)}.items():
                where = f"{name}/{team.name}/{tier.name}/{shape}"
                admission = admit(render, namespace, labels, [podset])
                resource = tier_resource(tier)
                if resource:
                    assert admission.flavors[resource] in eligible, where
                assert quota_refusal(render, namespace, [podset]) is None, where
                pod = admitted({"requests": podset.requests, "limits": podset.requests},
                               limit_ranges(files, namespace))
                assert violations(pod, limit_ranges(files, namespace)) == [], where


def test_multi_gpu_work_is_never_admitted_to_slices_or_small_nodes():
    render = Render.of(rendered_profile("onprem-gpu").files)
    profile = rendered_profile("onprem-gpu").result.profile
    team = profile.teams[0]
    eight = next(t for t in profile.tiers if t.name == "gpu-8")
    assert admit(render, "team-vision", *[job(team, eight)[0]], [job(team, eight)[1]]).flavors == {
        "cpu": "default-flavor", "memory": "default-flavor", "nvidia.com/gpu": "gpu-a100"}
    # Two slices are never two GPUs: the shared resource refuses a second unit at the device plugin, and a
    # whole-GPU request is never offered the time-sliced or MIG pools.
    flavors = {f.pool: f.resource for f in quotas.flavors(profile)}
    assert flavors == {"gpu-a100": "nvidia.com/gpu", "gpu-l40s": "nvidia.com/gpu.shared",
                       "gpu-h100-mig": "nvidia.com/mig-1g.10gb"}
    aws = rendered_profile("aws-gpu")
    two = next(t for t in aws.result.profile.tiers if t.name == "gpu-2")
    labels, podset = job(aws.result.profile.teams[0], two)
    unpinned = PodSet(1, podset.requests, tolerations=podset.tolerations)
    assert admit(Render.of(aws.files), "team-vision", labels, [unpinned]).flavors["nvidia.com/gpu"] == "gpu-l4"


def test_the_whole_pool_is_reachable_through_the_cohort():
    """16 A100s, two teams with 8 guaranteed each: either team may run two gpu-8 jobs while the other is idle."""
    rendered = rendered_profile("onprem-gpu")
    render, profile = Render.of(rendered.files), rendered.result.profile
    eight = next(t for t in profile.tiers if t.name == "gpu-8")
    labels, podset = job(profile.teams[0], eight, count=2)
    admission = admit(render, "team-vision", labels, [podset])
    assert admission.flavors["nvidia.com/gpu"] == "gpu-a100" and admission.borrowed["nvidia.com/gpu"] == 8
    assert quota_refusal(render, "team-vision", [podset]) is None, "the quota lets in what Kueue admits"
    labels, three = job(profile.teams[0], eight, count=3)
    with pytest.raises(Refused, match="insufficient quota"):
        admit(render, "team-vision", labels, [three])


def test_unlabelled_workloads_go_to_the_default_queue_and_undeclared_resources_are_refused():
    render = Render.of(rendered_profile("aws-gpu").files)
    plain = PodSet(1, {"cpu": "1", "memory": "1Gi"})
    assert admit(render, "team-nlp", {}, [plain]).cluster_queue == "team-nlp"
    with pytest.raises(Refused, match="unavailable"):
        admit(render, "team-nlp", {}, [PodSet(1, {"cpu": "1", "example.com/fpga": "1"})])
    efa = PodSet(2, {"cpu": "180", "memory": "1800Gi", "nvidia.com/gpu": "8", "vpc.amazonaws.com/efa": "32"},
                 affinity_terms=((({"key": "nvidia.com/gpu.count", "operator": "Gt", "values": ["7"]},),)),
                 tolerations=(GPU_TOLERATION,))
    assert admit(render, "team-nlp", {"kueue.x-k8s.io/queue-name": "nlp"}, [efa]).flavors["nvidia.com/gpu"] == \
        "gpu-h100"


def test_borrowing_off_keeps_teams_to_their_guarantee():
    from mlcluster.errors import ConfigError
    from mlcluster.profiles.effective import load_profile

    with pytest.raises(ConfigError) as caught:
        load_profile("onprem-gpu", sets=("ml.kueue.borrowing=false",))
    messages = [p.render() for p in caught.value.problems]
    assert any("tier `gpu-shared`" in m and "could never be admitted" in m for m in messages)
    profile = load_profile("onprem-gpu", sets=("ml.kueue.borrowing=false", "teams[0].tiers=[cpu, gpu-1, gpu-8]",
                                               "teams[1].tiers=[cpu, gpu-2]"))
    assert quotas.reach(profile, profile.teams[0]) == {"nvidia.com/gpu": 8, "nvidia.com/gpu.shared": 0,
                                                       "nvidia.com/mig-1g.10gb": 0}
    assert quantity.value(profile.teams[0].quota.cpu) >= 96
