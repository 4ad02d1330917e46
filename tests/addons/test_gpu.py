"""GPU enablement: device plugin or GPU operator per substrate, sharing per pool, DCGM counters, one owner of
drivers and containerd, and the clear errors for settings that cannot work."""

from __future__ import annotations

import functools
import re

import pytest
import yaml

from mlcluster.addons.gpu import config
from mlcluster.errors import ConfigError
from mlcluster.profiles.effective import load_profile
from mlcluster.render import render
from tests.conftest import rendered_profile, rendered_stack
from tests.upstream import UPSTREAM, require_upstream, schema_errors, unknown_value_keys, validate_custom_resource


@functools.cache
def onprem(*sets):
    return render(profile="onprem-gpu", sets=sets)


def release(rendered, name):
    return yaml.safe_load(rendered.files[f"helm/{name}.yaml"])


def releases(rendered):
    return {p.removeprefix("helm/").removesuffix(".yaml") for p in rendered.files if p.startswith("helm/")}


def test_mode_follows_the_substrate():
    aws = releases(rendered_profile("aws-gpu"))
    assert {"nvidia-device-plugin", "dcgm-exporter"} <= aws and "gpu-operator" not in aws
    lab = releases(rendered_stack("lab"))
    assert "gpu-operator" in lab and "nvidia-device-plugin" not in lab and "dcgm-exporter" not in lab
    assert not releases(rendered_profile("local")) & {"gpu-operator", "nvidia-device-plugin"}  # no GPUs, no add-on


def test_a_mig_pool_on_eks_brings_the_operator_with_host_drivers():
    r = render(profile="aws-gpu", sets=(  # the 8-GPU tier goes: a MIG H100 node has no whole GPUs left
        "node_pools[4].sharing={mode: mig, mig_strategy: mixed, mig_layout: all-1g.10gb}", "tiers[4].gpu=4",
        "tiers[4].memory=900Gi", "tiers[4].cpu=90", "teams[0].quota.gpu=8", "teams[1].quota.gpu=8"))
    values = release(r, "gpu-operator")["values"]
    assert values["driver"]["enabled"] is False and values["toolkit"]["enabled"] is False  # the EKS AMI's
    assert values["mig"]["strategy"] == "mixed" and values["migManager"]["enabled"] is True


def test_operator_driver_values_fit_the_chart():
    """Shipped renders are checked by tests/addons/test_chart_values.py; this variant ships in no profile."""
    values = release(onprem("addons.gpu.driver=operator"), "gpu-operator")["values"]
    assert unknown_value_keys("gpu-operator", values) == [] and schema_errors("gpu-operator", values) == []


def test_key_checker_follows_the_nfd_alias_into_its_own_chart():
    require_upstream()
    assert unknown_value_keys("nvidia-device-plugin", {"nfd": {"worker": {"resourcez": {}}}}) == \
        ["nfd.worker.resourcez"]


def test_time_sliced_pool_config_and_node_label_agree():
    r = rendered_profile("aws-gpu")
    configs = release(r, "nvidia-device-plugin")["values"]["config"]["map"]
    sliced = yaml.safe_load(configs["gpu-a10g"])
    # Replicas are advertised as nvidia.com/gpu.shared (k8s-device-plugin v0.20.0 api/config/v1: renameByDefault
    # gives each resource the DefaultSharedResourceNameSuffix ".shared"): never counted as whole GPUs.
    assert sliced["sharing"]["timeSlicing"] == {
        "renameByDefault": True, "failRequestsGreaterThanOne": True,
        "resources": [{"name": "nvidia.com/gpu", "replicas": 4}]}
    assert "sharing" not in yaml.safe_load(configs["gpu-h100"])
    assert set(configs) == {"default", "gpu-a10g", "gpu-l4", "gpu-h100"}
    # Every GPU node group names its config entry by label, so each node finds its own.
    groups = [res for res in _resources(r) if res["type"] == "aws:eks/nodeGroup:NodeGroup"]
    for group in groups:
        labels = group["inputs"].get("labels", {})
        if "nvidia.com/gpu.product" in labels:
            assert labels["nvidia.com/device-plugin.config"] in configs
    a10g = next(g for g in groups if g["inputs"]["labels"].get("mlcluster.io/pool") == "gpu-a10g")
    # A renamed shared resource is labelled with the plain product (internal/lm/resource.go getProductName).
    assert a10g["inputs"]["labels"]["nvidia.com/gpu.product"] == "NVIDIA-A10G"


def test_operator_on_baremetal_leaves_driver_and_containerd_to_the_host():
    r = rendered_stack("lab")
    values = release(r, "gpu-operator")["values"]
    assert values["driver"]["enabled"] is False
    assert values["toolkit"]["enabled"] is False
    assert values["mig"]["strategy"] == "mixed" and values["migManager"]["enabled"] is True
    assert values["devicePlugin"]["config"] == {"name": config.DEVICE_PLUGIN_CONFIG, "default": "default"}
    plugin = yaml.safe_load(r.files["manifests/node-agents/configmap-device-plugin-config.yaml"])
    assert set(plugin["data"]) == {"default", "gpu-a100", "gpu-l40s", "gpu-h100-mig"}
    assert yaml.safe_load(plugin["data"]["gpu-h100-mig"])["flags"]["migStrategy"] == "mixed"
    # The MIG host is labelled with the layout the MIG manager applies, and the product discovery will report.
    install = r.files["scripts/mlcluster-h100-1-install.sh"]
    assert "nvidia.com/mig.config=all-1g.10gb" in install
    assert "nvidia.com/gpu.product=NVIDIA-H100-80GB-HBM3" in install
    assert "default-runtime: nvidia" in install
    assert "default-runtime" not in r.files["scripts/mlcluster-server-1-install.sh"]


def test_operator_driver_per_pool_validates_against_the_crd():
    r = onprem("addons.gpu.driver=operator", "addons.gpu.pool_driver_versions={gpu-h100-mig: 580.95.05}")
    values = release(r, "gpu-operator")["values"]
    assert values["driver"]["enabled"] is True
    assert values["driver"]["nvidiaDriverCRD"] == {"enabled": True, "deployDefaultCR": False}
    drivers = {p: yaml.safe_load(t) for p, t in r.files.items() if "/nvidiadriver-" in p}
    assert {d["spec"]["nodeSelector"]["mlcluster.io/pool"]: d["spec"]["version"] for d in drivers.values()} == {
        "gpu-a100": "595.91.07", "gpu-l40s": "595.91.07", "gpu-h100-mig": "580.95.05"}
    for driver in drivers.values():
        validate_custom_resource(driver)
    # The example inventory follows: GPU hosts install only the toolkit, pointed at the driver container.
    script = r.files["scripts/mlcluster-gpu-a100-1-gpu.sh"]
    assert "nvidia-container-cli.root=/run/nvidia/driver" in script
    assert "nvidia-driver-" not in script and "cdi generate" not in script


def test_dcgm_counters_are_fields_the_exporter_documents():
    require_upstream()
    documented = set(re.findall(r"#\s*(DCGM_FI_[A-Z0-9_]+)\s*,", (UPSTREAM / "charts/dcgm-exporter/values.yaml")
                                .read_text()))
    fields = config.dcgm_fields()
    assert fields and set(fields) <= documented, set(fields) - documented
    assert {"DCGM_FI_DEV_XID_ERRORS", "DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED"} <= set(fields)


def test_dcgm_exporter_reads_our_counters_and_keeps_workload_labels():
    r = rendered_profile("aws-gpu")
    values = release(r, "dcgm-exporter")["values"]
    mount = values["extraVolumeMounts"][0]
    assert values["arguments"] == ["-f", f"{mount['mountPath']}/{config.DCGM_METRICS_KEY}"]
    volume = next(v for v in values["extraConfigMapVolumes"] if v["name"] == mount["name"])
    counters = yaml.safe_load(r.files[f"manifests/node-agents/configmap-{volume['configMap']['name']}.yaml"])
    assert counters["data"][config.DCGM_METRICS_KEY] == config.dcgm_counters()
    assert values["serviceMonitor"]["honorLabels"] is True
    assert values["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]


def test_gpu_components_run_only_in_the_privileged_namespace():
    for r in (rendered_profile("aws-gpu"), rendered_stack("lab")):
        for name in releases(r) & {"nvidia-device-plugin", "dcgm-exporter", "gpu-operator"}:
            assert release(r, name)["namespace"] == "node-agents"
        privileged = [p for p, t in r.files.items() if p.startswith("manifests/") and p.endswith(".yaml")
                      and "enforce: privileged" in t]
        # node agents, and Longhorn's engine/instance managers (host mounts, iSCSI) where Longhorn is on
        expected = ["manifests/_cluster/namespace-node-agents.yaml"]
        if "longhorn" in releases(r):
            expected.append("manifests/_cluster/namespace-longhorn-system.yaml")
        assert sorted(privileged) == sorted(expected)


def problems(profile, *sets):
    with pytest.raises(ConfigError) as err:
        load_profile(profile, sets=sets)
    return {p.field: p.allowed for p in err.value.problems}


def test_bad_gpu_settings():
    assert "EKS's NVIDIA AMIs carry the driver" in problems(
        "aws-gpu", "addons.gpu.mode=operator", "addons.gpu.driver=operator")["addons.gpu.driver"]
    assert "one owner" in problems("onprem-gpu", "addons.gpu.toolkit=operator")["addons.gpu.toolkit"]
    assert "MIG manager" in problems(
        "onprem-gpu", "addons.gpu.mode=device-plugin")["node_pools[3].sharing.mode"]
    found = problems("onprem-gpu", "addons.gpu.driver=operator", "addons.gpu.pool_driver_versions={cpu: '580.1'}")
    assert "not a GPU pool" in found["addons.gpu.pool_driver_versions.cpu"]
    assert "need `driver: operator`" in problems(
        "onprem-gpu", "addons.gpu.pool_driver_versions={gpu-a100: '580.95.05'}")["addons.gpu.pool_driver_versions"]
    assert "no nvidia.com/gpu" in problems("aws-gpu", "addons.gpu.enabled=false")["addons.gpu.enabled"]


def test_inventory_driver_modes_follow_who_installs_drivers():
    import json

    from mlcluster.render import engine

    with open("stacks/Pulumi.lab.yaml") as stack:
        inventory = yaml.safe_load(stack)["config"]["mlcluster:inventory"]
    config_ = {"mlcluster:profile": "onprem-gpu", "mlcluster:inventory": json.dumps(inventory),
               "mlcluster:sshPrivateKey": "[secret]"}
    with pytest.raises(ConfigError) as err:
        engine.run("t", config_, ["mlcluster:sshPrivateKey"], "stacks/Pulumi.t.yaml",
                   sets=("addons.gpu.driver=operator",))
    fields = {p.field: p.allowed for p in err.value.problems}
    assert "every GPU host says {mode: operator}" in fields["mlcluster:inventory.hosts[3].driver.mode"]


def _resources(rendered):
    import json

    return json.loads(rendered.files["resources.json"])["resources"]
