"""The examples users copy: valid Kubernetes, and they name queues, namespaces and priorities that exist."""

from __future__ import annotations

import re

import kubernetes_validate
import yaml

from tests.conftest import ROOT, rendered_profile


def test_team_job_example_is_valid_and_matches_the_platform():
    job = yaml.safe_load((ROOT / "docs" / "examples" / "team-job.yaml").read_text())
    kubernetes_validate.validate(job, "1.35.0", strict=True)
    files = rendered_profile("aws-gpu").files
    ns, queue = job["metadata"]["namespace"], job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"]
    assert f"manifests/{ns}/localqueue-{queue}.yaml" in files
    priority = job["metadata"]["labels"]["kueue.x-k8s.io/priority-class"]
    assert f"manifests/_cluster/workloadpriorityclass-{priority}.yaml" in files
    resources = job["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert resources["requests"] == resources["limits"], "what Kueue counts is what the pod requests"
    quota = yaml.safe_load(files[f"manifests/{ns}/resourcequota-team-quota.yaml"])["spec"]["hard"]
    assert resources["limits"]["nvidia.com/gpu"] <= int(quota["requests.nvidia.com/gpu"])


def test_readme_shows_the_same_job():
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```yaml\n(apiVersion: batch/v1\n.*?)```", readme, re.S).group(1)
    example = (ROOT / "docs" / "examples" / "team-job.yaml").read_text()
    strip = lambda text: [line.split("#")[0].rstrip() for line in text.splitlines()  # noqa: E731
                          if line.strip() and not line.lstrip().startswith("#")]
    assert strip(block) == strip(example)


EXAMPLES = ROOT / "docs" / "examples"


def example(name):
    """The example's main object (its last document) and the ConfigMaps it ships code in."""
    docs = list(yaml.safe_load_all((EXAMPLES / name).read_text()))
    return docs[-1], [d for d in docs[:-1] if d["kind"] == "ConfigMap"]


def test_example_code_ships_with_the_job_and_is_mounted_where_the_command_runs_it():
    """The TrainJobs ran /workspace/*.py, which the image does not contain: the code now ships in a ConfigMap that
    runtimePatches mounts on the runtime's `node` container (kubeflow/trainer v2.3.0
    charts/kubeflow-trainer/files/runtimes/torch-distributed.yaml: replicatedJob `node`, container `node`)."""
    import ast

    for name in ("trainjob-2gpu.yaml", "trainjob-efa.yaml"):
        job, config_maps = example(name)
        script = job["spec"]["trainer"]["command"][-1]
        assert script.startswith("/workspace/")
        (code,) = config_maps
        kubernetes_validate.validate(code, "1.35.0", strict=True)
        ast.parse(code["data"][script.removeprefix("/workspace/")])  # the code is Python that parses
        patch = job["spec"]["runtimePatches"][0]["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"][0]
        assert patch["name"] == "node"
        pod = patch["template"]["spec"]["template"]["spec"]
        assert pod["volumes"] == [{"name": "code", "configMap": {"name": code["metadata"]["name"]}}]
        assert pod["containers"][0]["name"] == "node"
        assert pod["containers"][0]["volumeMounts"][0]["mountPath"] == "/workspace"
        assert code["metadata"]["namespace"] == job["metadata"]["namespace"]


def _blocks(text, language="yaml"):
    return re.findall(rf"```{language}\n(.*?)```", text, re.S)


def _strip(text):
    return [line.split("#")[0].rstrip() for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def test_data_scientists_page_shows_the_examples_verbatim():
    page = (ROOT / "docs" / "data-scientists.md").read_text()
    blocks = [_strip(b) for b in _blocks(page)]
    for name in ("trainjob-2gpu.yaml", "trainjob-efa.yaml", "inference-gpu.yaml"):
        assert _strip((EXAMPLES / name).read_text()) in blocks, name
    assert "docs/data-scientists.md" in (ROOT / "README.md").read_text()


def test_trainjob_example_runs_on_the_platform():
    from tests.upstream import validate_custom_resource

    job, _ = example("trainjob-2gpu.yaml")
    validate_custom_resource(job)
    r = rendered_profile("aws-gpu")
    ns, queue = job["metadata"]["namespace"], job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"]
    assert f"manifests/{ns}/localqueue-{queue}.yaml" in r.files
    trainer = yaml.safe_load(r.files["helm/kubeflow-trainer.yaml"])["values"]
    assert job["spec"]["runtimeRef"]["name"] == "torch-distributed"
    assert trainer["runtimes"]["torchDistributed"]["enabled"]
    gpu_tier = next(t for t in r.result.profile.tiers if t.name == "gpu-2")
    resources = job["spec"]["trainer"]["resourcesPerNode"]
    assert resources["limits"] == resources["requests"] == {
        "nvidia.com/gpu": gpu_tier.gpu, "cpu": gpu_tier.cpu, "memory": gpu_tier.memory}


def test_inference_example_is_valid_and_fits_the_team():
    from tests.upstream import validate_custom_resource

    service = yaml.safe_load((EXAMPLES / "inference-gpu.yaml").read_text())
    validate_custom_resource(service)
    r = rendered_profile("aws-gpu")
    ns = service["metadata"]["namespace"]
    quota = yaml.safe_load(r.files[f"manifests/{ns}/resourcequota-team-quota.yaml"])["spec"]["hard"]
    limits = service["spec"]["predictor"]["model"]["resources"]["limits"]
    assert limits["nvidia.com/gpu"] <= int(quota["requests.nvidia.com/gpu"])
    assert "helm/kserve.yaml" in r.files


def test_efa_example_lands_on_the_efa_pool_with_its_devices():
    from tests.upstream import validate_custom_resource

    job, _ = example("trainjob-efa.yaml")
    validate_custom_resource(job)
    r = rendered_profile("aws-gpu")
    limits = job["spec"]["trainer"]["resourcesPerNode"]["limits"]
    pod = job["spec"]["runtimePatches"][0]["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"][0]
    annotations = pod["template"]["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {"cluster-autoscaler.kubernetes.io/safe-to-evict": "false",
                           "karpenter.sh/do-not-disrupt": "true"}, "the page promises both do-not-evict annotations"
    eight = next(t for t in r.result.profile.tiers if t.name == "gpu-8")
    assert (limits["nvidia.com/gpu"], limits["cpu"], limits["memory"]) == (eight.gpu, eight.cpu, eight.memory)
    plugin = yaml.safe_load(r.files["manifests/kube-system/daemonset-aws-efa-k8s-device-plugin.yaml"])
    selector = plugin["spec"]["template"]["spec"]["nodeSelector"]
    import json

    resources = json.loads(r.files["resources.json"])["resources"]
    groups = [x for x in resources if x["type"] == "aws:eks/nodeGroup:NodeGroup"]
    efa_groups = [g["inputs"]["nodeGroupName"] for g in groups
                  if all(g["inputs"]["labels"].get(k) == v for k, v in selector.items())]
    assert efa_groups == ["gpu-h100"]  # the plugin runs on the EFA pool only
    kueue = yaml.safe_load(yaml.safe_load(r.files["helm/kueue.yaml"])["values"]["managerConfig"][
        "controllerManagerConfigYaml"])
    assert "vpc.amazonaws.com/efa" in kueue["resources"]["excludeResourcePrefixes"]  # admissible despite EFA
    env = {e["name"]: e["value"] for e in job["spec"]["trainer"]["env"]}
    assert env["FI_PROVIDER"] == "efa"
