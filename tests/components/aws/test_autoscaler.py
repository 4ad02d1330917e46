"""Cluster Autoscaler: managed pools scale from zero; its role resizes only this cluster's groups."""

from __future__ import annotations

import json

import yaml

from mlcluster.components.aws.autoscaler import policy_statements
from mlcluster.components.aws.iam import assert_least_privilege
from mlcluster.render import render
from tests.conftest import rendered_profile

DEPLOYMENT = "manifests/kube-system/deployment-cluster-autoscaler.yaml"


def test_autoscaler_discovers_this_clusters_groups_from_the_system_pool():
    r = rendered_profile("aws-gpu")
    spec = yaml.safe_load(r.files[DEPLOYMENT])["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    cluster = json.loads(r.files["resources.json"])["resources"]
    name = next(x for x in cluster if x["type"] == "aws:eks/cluster:Cluster")["inputs"]["name"]
    assert (f"--node-group-auto-discovery=asg:tag=k8s.io/cluster-autoscaler/enabled,"
            f"k8s.io/cluster-autoscaler/{name}") in container["command"]
    assert container["image"].endswith(":v1.35.0")  # the minor of kubernetes.version
    assert spec["nodeSelector"] == {"mlcluster.io/pool": "system"}
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                            "capabilities": {"drop": ["ALL"]}}
    assert container["resources"]["requests"] and container["resources"]["limits"]


def test_role_resizes_only_groups_this_cluster_owns():
    statements = policy_statements("mlc-prod", "eu-west-1", "111122223333", "aws")
    assert_least_privilege(statements)
    writes = next(s for s in statements if "autoscaling:SetDesiredCapacity" in s["Action"])
    assert writes["Condition"] == {"StringEquals": {"aws:ResourceTag/k8s.io/cluster-autoscaler/mlc-prod": "owned"}}
    nodegroups = next(s for s in statements if s["Action"] == "eks:DescribeNodegroup")
    assert nodegroups["Resource"] == "arn:aws:eks:eu-west-1:111122223333:nodegroup/mlc-prod/*/*"
    policy = next(x for x in json.loads(rendered_profile("aws-gpu").files["resources.json"])["resources"]
                  if x["type"] == "aws:iam/rolePolicy:RolePolicy" and "autoscaler" in x["name"])
    assert "autoscaling:TerminateInstanceInAutoScalingGroup" in policy["inputs"]["policy"]


def test_rbac_has_no_wildcards():
    r = rendered_profile("aws-gpu")
    role = yaml.safe_load(r.files["manifests/_cluster/clusterrole-cluster-autoscaler.yaml"])
    for rule in role["rules"]:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"] and "*" not in rule["apiGroups"]
    assert not any("secrets" in rule["resources"] for rule in role["rules"])


def test_fixed_size_pools_need_no_autoscaler():
    fixed = render(profile="aws-dev", sets=("node_pools[0].min=3", "node_pools[1].min=2"))
    assert DEPLOYMENT not in fixed.files
    assert DEPLOYMENT in rendered_profile("aws-dev").files
