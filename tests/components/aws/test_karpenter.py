"""Karpenter as a profile option: controller, interruption queue, scoped IAM, one NodePool per pool."""

from __future__ import annotations

import functools
import json

import pytest
import yaml

from mlcluster.errors import ConfigError
from mlcluster.profiles.effective import load_profile
from mlcluster.render import render
from tests.upstream import unknown_value_keys, validate_custom_resource

SETS = ("substrate.karpenter.enabled=true", "node_pools[1].provisioner=karpenter")


@functools.cache
def rendered():
    return render(profile="aws-dev", sets=SETS)


def resources():
    return json.loads(rendered().files["resources.json"])["resources"]


def test_karpenter_pool_replaces_the_managed_group():
    groups = [r["inputs"]["nodeGroupName"] for r in resources() if r["type"] == "aws:eks/nodeGroup:NodeGroup"]
    assert groups == ["system"]
    files = rendered().files
    pool = yaml.safe_load(files["manifests/_cluster/nodepool-gpu-a10g.yaml"])
    spec = pool["spec"]
    assert spec["limits"]["nvidia.com/gpu"] == "2"  # max 2 nodes x 1 GPU
    assert {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"} in spec["template"]["spec"]["taints"]
    assert spec["disruption"]["budgets"] == [{"nodes": "10%"}]  # checks 50
    assert spec["template"]["spec"]["expireAfter"] == "Never"
    node_class = yaml.safe_load(files["manifests/_cluster/ec2nodeclass-gpu-a10g.yaml"])["spec"]
    assert node_class["metadataOptions"]["httpTokens"] == "required"
    assert node_class["blockDeviceMappings"][0]["ebs"]["encrypted"] is True


def test_custom_resources_match_the_upstream_crds():
    files = rendered().files
    for path in ("manifests/_cluster/nodepool-gpu-a10g.yaml", "manifests/_cluster/ec2nodeclass-gpu-a10g.yaml"):
        validate_custom_resource(yaml.safe_load(files[path]))


def test_chart_values_exist_upstream():
    values = yaml.safe_load(rendered().files["helm/karpenter.yaml"])["values"]
    assert unknown_value_keys("karpenter", values) == []
    assert values["settings"] == {"clusterName": "mlcluster-render", "interruptionQueue": "mlcluster-render-karpenter"}


def test_interruption_queue_rules_and_node_access_entry():
    by_type = {}
    for r in resources():
        by_type.setdefault(r["type"], []).append(r)
    # the v1.14 reference's five rules, capacity-reservation interruptions included (13.7)
    assert len(by_type["aws:cloudwatch/eventRule:EventRule"]) == 5
    assert len(by_type["aws:cloudwatch/eventTarget:EventTarget"]) == 5
    (queue,) = by_type["aws:sqs/queue:Queue"]
    assert queue["inputs"]["sqsManagedSseEnabled"] is True
    (entry,) = [e for e in by_type["aws:eks/accessEntry:AccessEntry"] if e["inputs"]["type"] == "EC2_LINUX"]
    # 13.6: Karpenter's nodes have their own role; EKS owns the managed groups' role's entry
    assert entry["inputs"]["principalArn"].endswith(":role/mlcluster-karpenter-node")


def test_controller_policy_is_scoped():
    policies = [r for r in resources() if r["type"] == "aws:iam/rolePolicy:RolePolicy" and "karpenter" in r["name"]]
    (policy,) = policies
    statements = json.loads(policy["inputs"]["policy"])["Statement"]
    for statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert not [a for a in actions if a == "*" or a.endswith(":*")]
        writes = [a for a in actions if not a.split(":")[1].startswith(("Describe", "Get", "List"))]
        if statement["Resource"] == "*":
            assert not writes or statement.get("Condition"), statement["Sid"]
    pass_role = next(s for s in statements if s["Sid"] == "PassingInstanceRole")
    assert pass_role["Resource"].endswith(":role/mlcluster-karpenter-node")


def test_nodepools_depend_on_the_controller_for_ordered_teardown():
    controller = next(r["urn"] for r in resources() if r["type"] == "kubernetes:helm.sh/v3:Release"
                      and r["name"].endswith("karpenter-controller"))
    pools = [r for r in resources() if r["type"].startswith("kubernetes:karpenter.")]
    assert len(pools) == 2 and all(controller in r["dependencies"] for r in pools)


@pytest.mark.parametrize(("sets", "field", "message"), [
    (("node_pools[1].provisioner=karpenter",), "node_pools[1].provisioner", "karpenter.enabled"),
    (("substrate.karpenter.enabled=true", "node_pools[0].provisioner=karpenter"), "node_pools[0].provisioner",
     "must be `managed`"),
])
def test_bad_karpenter_settings(sets, field, message):
    with pytest.raises(ConfigError) as err:
        load_profile("aws-dev", sets=sets)
    found = {p.field: p for p in err.value.problems}
    assert message in found[field].allowed


def test_production_must_pin_the_ami():
    with pytest.raises(ConfigError) as err:
        load_profile("aws-gpu", sets=("substrate.karpenter.enabled=true",))
    assert err.value.problems[0].field == "substrate.karpenter.ami_alias"
    assert load_profile("aws-gpu", sets=("substrate.karpenter.enabled=true",
                                         "substrate.karpenter.ami_alias=al2023@v20261110"))
