"""Kueue: team queues in one cohort, GPU flavors per pool, quotas that add up, no way around the queues."""

from __future__ import annotations

import pytest
import yaml

from mlcluster.addons.ml.kueue import gpu_shares, pool_capacity
from mlcluster.errors import ConfigError
from mlcluster.profiles.effective import load_profile
from tests.conftest import rendered_profile
from tests.upstream import unknown_value_keys


def manifest(profile, path):
    return yaml.safe_load(rendered_profile(profile).files[path])


def test_gpu_shares_sum_to_each_team_quota_and_fit_each_pool():
    profile = load_profile("aws-gpu")
    shares = gpu_shares(profile)
    for team in profile.teams:
        assert sum(shares[team.name].values()) == team.quota.gpu
    for pool in profile.node_pools:
        if pool.gpu:
            assert sum(s[pool.name] for s in shares.values()) <= pool_capacity(pool)
    # Capacity at max size: a10g 10 x 1 x 4 time-sliced = 40, l4 4 x 4 = 16, h100 2 x 8 = 16 (72). 16 GPUs split
    # 8.9 / 3.6 / 3.6 → floors 8/3/3, the two left over to the largest remainders (a10g, then h100 by name).
    assert shares["vision"] == {"gpu-a10g": 9, "gpu-l4": 3, "gpu-h100": 4}


def test_time_sliced_pool_capacity_counts_replicas():
    profile = load_profile("aws-gpu", sets=("node_pools[2].sharing.mode=time-slicing",
                                            "node_pools[2].sharing.replicas=4"))
    assert pool_capacity(profile.node_pools[2]) == 40


def test_oversubscribed_flavor_is_an_error():
    with pytest.raises(ConfigError) as err:
        load_profile("aws-gpu", sets=("teams[0].quota.gpu=30", "teams[1].quota.gpu=12",
                                      "node_pools[2].max=2"))
    fields = {p.field: p for p in err.value.problems}
    problem = next(p for f, p in fields.items() if f.endswith(".max"))
    assert "nominal GPU quota on this pool adds up to" in problem.allowed


def test_cluster_queue_per_team_in_one_cohort_only_for_its_namespace():
    queue = manifest("aws-gpu", "manifests/_cluster/clusterqueue-team-vision.yaml")["spec"]
    assert queue["cohortName"] == "mlcluster"
    assert queue["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": "team-vision"}}
    cpu_mem, gpus = queue["resourceGroups"]
    assert cpu_mem["flavors"][0]["resources"] == [{"name": "cpu", "nominalQuota": "200"},
                                                  {"name": "memory", "nominalQuota": "2000Gi"}]
    assert [f["name"] for f in gpus["flavors"]] == ["gpu-l4", "gpu-h100", "gpu-a10g"]  # time-sliced last
    assert queue["preemption"]["reclaimWithinCohort"] == "Any"


def test_local_queue_in_each_team_namespace_points_at_its_cluster_queue():
    for team in ("vision", "nlp"):
        local = manifest("local", f"manifests/team-{team}/localqueue-{team}.yaml")
        assert local["spec"] == {"clusterQueue": f"team-{team}"}


def test_gpu_flavors_select_and_tolerate_their_pool():
    flavor = manifest("aws-gpu", "manifests/_cluster/resourceflavor-gpu-h100.yaml")["spec"]
    assert flavor["nodeLabels"] == {"mlcluster.io/pool": "gpu-h100", "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
    assert flavor["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Equal", "value": "true",
                                      "effect": "NoSchedule"}]
    assert "manifests/_cluster/resourceflavor-default-flavor.yaml" in rendered_profile("local").files


def test_priorities_and_no_way_around_the_queues():
    classes = {name: manifest("local", f"manifests/_cluster/workloadpriorityclass-{name}.yaml")["value"]
               for name in ("interactive", "training", "batch")}
    assert classes["interactive"] > classes["training"] > classes["batch"]
    values = yaml.safe_load(rendered_profile("local").files["helm/kueue.yaml"])["values"]
    config = yaml.safe_load(values["managerConfig"]["controllerManagerConfigYaml"])
    assert config["apiVersion"] == "config.kueue.x-k8s.io/v1beta2"
    assert config["manageJobsWithoutQueueName"] is True
    assert config["managedJobsNamespaceSelector"]["matchExpressions"] == [
        {"key": "mlcluster.io/team", "operator": "Exists"}]
    assert {"batch/job", "trainer.kubeflow.org/trainjob", "ray.io/rayjob", "ray.io/raycluster"} <= set(
        config["integrations"]["frameworks"])
    assert config["waitForPodsReady"]["timeout"] == "10m"


def test_values_keys_exist_upstream():
    values = yaml.safe_load(rendered_profile("aws-gpu").files["helm/kueue.yaml"])["values"]
    assert unknown_value_keys("kueue", values) == []


def test_borrowing_and_lending_limits():
    from mlcluster.addons.ml.kueue import KueueSettings, cluster_queue_manifest

    profile = load_profile("aws-gpu")
    settings = KueueSettings(enabled=True, borrowing=False, lending_limit_percent=50)
    queue = cluster_queue_manifest(profile.teams[0], "team-vision", profile, settings, gpu_shares(profile)["vision"])
    flavors = {f["name"]: f for f in queue["spec"]["resourceGroups"][1]["flavors"]}
    h100 = flavors["gpu-h100"]["resources"][0]
    assert h100 == {"name": "nvidia.com/gpu", "nominalQuota": 4, "borrowingLimit": 0, "lendingLimit": 2}


def test_flavors_select_what_discovery_advertises_and_try_whole_gpus_first():
    from mlcluster.addons.ml.kueue import flavor_manifests

    profile = load_profile("aws-gpu", sets=("node_pools[2].sharing={mode: time-slicing, replicas: 4}",))
    flavors = {f["metadata"]["name"]: f for f in flavor_manifests(profile)}
    assert flavors["gpu-a10g"]["spec"]["nodeLabels"] == {"mlcluster.io/pool": "gpu-a10g",
                                                         "nvidia.com/gpu.product": "NVIDIA-A10G-SHARED"}
    assert [f["metadata"]["name"] for f in flavor_manifests(profile)][1:] == ["gpu-l4", "gpu-h100", "gpu-a10g"]
