"""Issue 12.9–12.11: inputs that would fail or endanger a deployment are refused before anything runs, with
the field, the value, what is allowed and the layer that set it; and the render tells the truth about the
stack it renders (its region)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from mlcluster.errors import ConfigError
from mlcluster.profiles.effective import load_profile
from mlcluster.render import render
from tests.conftest import ROOT, rendered_stack

BAD = [
    # two owners for one namespace (add-on vs system, add-on vs add-on, team vs add-on)
    ("onprem-gpu", "addons.monitoring.namespace=kube-system", "addons.monitoring.namespace", "Kubernetes' own"),
    ("onprem-gpu", "ml.mlflow.namespace=monitoring", "ml.mlflow.namespace", "already add-on monitoring's"),
    ("onprem-gpu", "addons.monitoring.namespace=node-agents", "addons.monitoring.namespace", "privileged"),
    ("local", "tenancy.namespace_prefix=ml", "teams[0].name", None),  # team `flow` → `mlflow`, MLflow's
    # node pool capacity vs the tiers and quotas that need it
    ("aws-gpu", "node_pools[4].max=0", "node_pools[4].max", "tier `gpu-8` needs 8 whole GPUs"),
    # taint and label syntax
    ("onprem-gpu", "node_pools[1].taints=[{key: 'bad key', effect: NoSchedule}]", "node_pools[1].taints[0].key",
     "qualified name"),
    ("onprem-gpu", "node_pools[1].taints=[{key: a, value: 'x y', effect: NoSchedule}]",
     "node_pools[1].taints[0].value", "label value"),
    ("onprem-gpu", "node_pools[1].labels={kubernetes.io/hostname: x}", "node_pools[1].labels", "NodeRestriction"),
    # distribution-specific version strings
    ("onprem-gpu", "substrate.distribution=rke2", "substrate.distribution", "is a k3s release"),
    # overlapping networks
    ("onprem-gpu", "substrate.cluster_cidr=10.43.0.0/16", "substrate.cluster_cidr", "overlap"),
    ("aws-gpu", "substrate.service_cidr=10.0.0.0/16", "substrate.service_cidr", "overlaps the VPC"),
    # receivers: unique names, and production alerts that reach someone
    ("onprem-gpu", "addons.monitoring.receivers=[{name: a, kind: slack}, {name: a, kind: webhook}]",
     "addons.monitoring.receivers[1].name", "unique"),
    ("aws-gpu", "addons.monitoring.receivers=[]", "addons.monitoring.receivers", "must reach someone"),
    # principal formats
    ("aws-gpu", "substrate.admin_principals=[alice]", "substrate.admin_principals[0]", "IAM role or user ARN"),
    ("aws-gpu", "substrate.admin_principals=[arn:aws:sts::111122223333:assumed-role/ops/alice]",
     "substrate.admin_principals[0]", "arn:aws:iam::111122223333:role/ops"),
]


@pytest.mark.parametrize(("profile", "set_", "field", "message"), BAD, ids=[b[1][:60] for b in BAD])
def test_inputs_that_would_fail_a_deployment_are_refused(profile, set_, field, message):
    sets = (set_, "teams[0].name=flow") if set_ == "tenancy.namespace_prefix=ml" else (set_,)
    with pytest.raises(ConfigError) as err:
        load_profile(profile, sets=sets)
    problems = {p.field: p for p in err.value.problems}
    assert field in problems, sorted(problems)
    assert message is None or message in problems[field].allowed
    assert problems[field].file == "--set"  # the layer that set the bad value, not the profile's line


def test_a_stack_override_is_blamed_on_the_stack_file_and_its_line(tmp_path):
    stack = tmp_path / "Pulumi.t.yaml"
    stack.write_text("config:\n  mlcluster:profile: onprem-gpu\n  mlcluster:overrides:\n    addons:\n"
                     "      monitoring:\n        namespace: kube-system\n")
    with pytest.raises(ConfigError) as err:
        render(stack=str(stack))
    (problem,) = [p for p in err.value.problems if p.field.endswith("monitoring.namespace")]
    assert problem.file.endswith("Pulumi.t.yaml") and problem.line == 6


def test_namespace_collision_is_exit_2_not_a_traceback(tmp_path):
    """It used to crash the writer ("two objects render to …namespace-monitoring.yaml")."""
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-m", "mlcluster.cli", "render", "--profile", "onprem-gpu", "--set",
                          "ml.mlflow.namespace=monitoring", "--out", str(out)],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert run.returncode == 2 and "Traceback" not in run.stderr + run.stdout
    assert "ml.mlflow.namespace" in run.stderr + run.stdout and not out.exists()


# --- inventory rules (stack layer) ---------------------------------------------------------------------


def lab_with(tmp_path, change):
    config = yaml.safe_load((ROOT / "stacks" / "Pulumi.lab.yaml").read_text())
    change(config["config"])
    path = tmp_path / "Pulumi.lab2.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def inventory_problems(path):
    with pytest.raises(ConfigError) as err:
        render(stack=str(path))
    return {p.field: p for p in err.value.problems}


def test_metallb_pool_may_not_hand_out_a_host_or_the_vip(tmp_path):
    def change(config):
        vip = config["mlcluster:inventory"]["registration_address"]
        config.setdefault("mlcluster:overrides", {}).setdefault("addons", {})["metallb"] = {
            "enabled": True, "addresses": [f"{vip}/32"]}
    problems = inventory_problems(lab_with(tmp_path, change))
    assert "inside MetalLB's address pool" in problems["mlcluster:inventory.registration_address"].allowed


def test_host_networks_apart_from_pod_and_service_networks(tmp_path):
    def change(config):
        config["mlcluster:inventory"]["networks"].append("10.42.0.0/24")
    problems = inventory_problems(lab_with(tmp_path, change))
    (field,) = [f for f in problems if f.startswith("mlcluster:inventory.networks")]
    assert "pod network" in problems[field].allowed


def test_the_bastion_is_not_one_of_the_hosts_and_ssh_users_are_not_empty(tmp_path):
    def change(config):
        inventory = config["mlcluster:inventory"]
        inventory["bastion"] = {"address": inventory["hosts"][0]["address"], "user": "",
                                "host_key": inventory["hosts"][0]["host_key"]}
        inventory["api_proxy"] = "socks5://127.0.0.1:1080"
    problems = inventory_problems(lab_with(tmp_path, change))
    assert "mlcluster:inventory.bastion.user" in problems


# --- 12.9 / 12.10 ---------------------------------------------------------------------------------------


def test_production_alerts_reach_the_receivers():
    r = rendered_stack("prod")
    values = yaml.safe_load(r.files["helm/kube-prometheus-stack.yaml"])["values"]
    route = values["alertmanager"]["config"]["route"]
    targets = {route["receiver"], *(child["receiver"] for child in route.get("routes", []))}
    assert {"platform-oncall", "platform-alerts"} <= targets


def test_the_render_is_in_the_stacks_region():
    """The eu-west-1 prod stack used to show us-east-1 zones, subnets and ARNs."""
    text = rendered_stack("prod").files["resources.json"]
    assert "us-east-1" not in text
    records = json.loads(text)["resources"]
    zones = {r["inputs"]["availabilityZone"] for r in records if r["type"] == "aws:ec2/subnet:Subnet"}
    assert zones == {"eu-west-1a", "eu-west-1b", "eu-west-1c"}
    (key,) = [r for r in records if r["type"] == "aws:eks/cluster:Cluster"]
    assert ":eu-west-1:" in key["inputs"]["encryptionConfig"]["provider"]["keyArn"]


def test_every_shipped_stack_file_still_validates():
    for path in sorted((ROOT / "stacks").glob("Pulumi.*.yaml")):
        run = subprocess.run([sys.executable, "-m", "mlcluster.cli", "validate", str(path)], capture_output=True,
                             text=True, cwd=ROOT, timeout=300)
        assert run.returncode == 0, (path.name, run.stdout[-2000:], run.stderr[-2000:])


