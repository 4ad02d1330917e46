"""Kueue: team queues in one cohort that owns the unguaranteed capacity, one resource group per GPU kind, flavors
a multi-GPU job can select by node size, LocalQueues for the team and for unlabelled work, and every pod of a team
namespace managed (the pod, Deployment and StatefulSet integrations)."""

from __future__ import annotations

import yaml

from mlcluster.profiles.effective import load_profile
from tests.conftest import rendered_profile
from tests.upstream import unknown_value_keys


def manifest(profile, path):
    return yaml.safe_load(rendered_profile(profile).files[path])


def test_cluster_queue_per_team_in_one_cohort_only_for_its_namespace():
    queue = manifest("aws-gpu", "manifests/_cluster/clusterqueue-team-vision.yaml")["spec"]
    assert queue["cohortName"] == "mlcluster"
    assert queue["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": "team-vision"}}
    cpu_mem, whole, shared = queue["resourceGroups"]
    assert cpu_mem["flavors"][0]["resources"] == [{"name": "cpu", "nominalQuota": "400", "borrowingLimit": 0},
                                                  {"name": "memory", "nominalQuota": "4000Gi", "borrowingLimit": 0}]
    assert whole["coveredResources"] == ["nvidia.com/gpu"] and shared["coveredResources"] == ["nvidia.com/gpu.shared"]
    assert [f["name"] for f in whole["flavors"]] == ["gpu-l4", "gpu-h100"]  # smaller nodes first
    assert queue["preemption"]["reclaimWithinCohort"] == "Any"


def test_the_cohort_owns_what_no_team_is_guaranteed():
    cohort = manifest("onprem-gpu", "manifests/_cluster/cohort-mlcluster.yaml")["spec"]
    quota = {f["name"]: f["resources"][0]["nominalQuota"] for g in cohort["resourceGroups"] for f in g["flavors"]}
    assert quota == {"gpu-a100": 0, "gpu-l40s": 32, "gpu-h100-mig": 56}


def test_local_queues_for_the_team_and_for_unlabelled_work():
    for team in ("vision", "nlp"):
        for name in (team, "default"):
            local = manifest("local", f"manifests/team-{team}/localqueue-{name}.yaml")
            assert local["spec"] == {"clusterQueue": f"team-{team}"}


def test_flavors_select_their_pool_and_whole_gpu_pools_by_node_size():
    flavor = manifest("aws-gpu", "manifests/_cluster/resourceflavor-gpu-h100.yaml")["spec"]
    assert flavor["nodeLabels"] == {"mlcluster.io/pool": "gpu-h100", "nvidia.com/gpu.count": "8"}
    assert flavor["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Equal", "value": "true",
                                      "effect": "NoSchedule"}]
    shared = manifest("aws-gpu", "manifests/_cluster/resourceflavor-gpu-a10g.yaml")["spec"]
    assert shared["nodeLabels"] == {"mlcluster.io/pool": "gpu-a10g"}
    assert "manifests/_cluster/resourceflavor-default-flavor.yaml" in rendered_profile("local").files


def test_priorities_and_every_pod_of_a_team_namespace_goes_through_the_queues():
    classes = {name: manifest("local", f"manifests/_cluster/workloadpriorityclass-{name}.yaml")["value"]
               for name in ("interactive", "training", "batch")}
    assert classes["interactive"] > classes["training"] > classes["batch"]
    values = yaml.safe_load(rendered_profile("local").files["helm/kueue.yaml"])["values"]
    config = yaml.safe_load(values["managerConfig"]["controllerManagerConfigYaml"])
    assert config["apiVersion"] == "config.kueue.x-k8s.io/v1beta2"
    assert config["manageJobsWithoutQueueName"] is True
    assert config["managedJobsNamespaceSelector"]["matchExpressions"] == [
        {"key": "mlcluster.io/team", "operator": "Exists"}]
    assert {"batch/job", "trainer.kubeflow.org/trainjob", "ray.io/rayjob", "pod", "deployment",
            "statefulset"} <= set(config["integrations"]["frameworks"])
    assert config["resources"]["excludeResourcePrefixes"] == ["vpc.amazonaws.com/efa", "ephemeral-storage"]


def test_values_keys_exist_upstream():
    values = yaml.safe_load(rendered_profile("aws-gpu").files["helm/kueue.yaml"])["values"]
    assert unknown_value_keys("kueue", values) == []


def test_borrowing_and_lending_limits_come_from_the_profile():
    from mlcluster.addons.ml.kueue import KueueSettings, cluster_queue_manifest

    profile = load_profile("aws-gpu")
    settings = KueueSettings(enabled=True, borrowing=False, lending_limit_percent=50)
    queue = cluster_queue_manifest(profile.teams[0], "team-vision", profile, settings)
    flavors = {f["name"]: f for f in queue["spec"]["resourceGroups"][1]["flavors"]}
    assert flavors["gpu-h100"]["resources"][0] == {"name": "nvidia.com/gpu", "nominalQuota": 8, "borrowingLimit": 0,
                                                   "lendingLimit": 4}
