"""Guardrails: every shipped profile and stack passes; every rule fails on a fragment that breaks it; the
offline runner and the CrossGuard runner agree; profile overrides need a reason and show in reports."""

from __future__ import annotations

import base64
import copy
import functools
import json
import subprocess
import sys
import types
from collections.abc import Callable

import pytest

from mlcluster.errors import ConfigError
from mlcluster.policy import Override, evaluate, from_records, rules
from mlcluster.profiles.effective import load_profile
from mlcluster.render import render
from tests.conftest import ROOT, rendered_profile, rendered_stack
from tests.render.test_render import RENDERS, get


@functools.cache
def records(name: str) -> list[dict]:
    if name == "aws-full":  # every AWS feature on: Karpenter, EFS
        r = render(profile="aws-gpu", sets=("substrate.karpenter.enabled=true", "substrate.efs=true",
                                            "substrate.karpenter.ami_alias=al2023@v20261110",
                                            "node_pools[2].provisioner=karpenter"))
    elif name == "lab":
        r = rendered_stack("lab")
    else:
        r = rendered_profile(name)
    return json.loads(r.files["resources.json"])["resources"]


@pytest.mark.parametrize(("kind", "name"), RENDERS)
def test_every_shipped_render_passes_every_rule(kind, name):
    report = evaluate(from_records(json.loads(get(kind, name).files["resources.json"])["resources"]))
    assert [(f.rule.id, f.resource.name, f.message) for f in report.findings] == []


# --- one failing fragment per rule: (render, mutation of its resource records) ------------------------------

def first(recs, type_, where: Callable[[dict], bool] = lambda r: True) -> dict:
    return next(r for r in recs if r["type"] == type_ and where(r))


def k8s(recs, kind, where: Callable[[dict], bool] = lambda r: True) -> dict:
    return next(r for r in recs if r["type"].startswith("kubernetes:") and r["inputs"].get("kind") == kind
                and where(r))


def drop(recs, predicate):
    recs[:] = [r for r in recs if not predicate(r)]


def set_in(record, path, value):
    node = record["inputs"]
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value


EKS, LT, NG = "aws:eks/cluster:Cluster", "aws:ec2/launchTemplate:LaunchTemplate", "aws:eks/nodeGroup:NodeGroup"
GPU_NG = lambda r: "nvidia.com/gpu.product" in r["inputs"].get("labels", {})  # noqa: E731
TEAM_NS = lambda r: "mlcluster.io/team" in r["inputs"].get("metadata", {}).get("labels", {})  # noqa: E731


def _extra(record):
    return lambda recs: recs.append(record)


def _rds(**changes):
    return {"type": "aws:rds/instance:Instance", "name": "db", "urn": "urn:x::db", "custom": True,
            "options": {"protect": True}, "dependencies": [],
            "inputs": {"storageEncrypted": True, "publiclyAccessible": False, "deletionProtection": True,
                       "skipFinalSnapshot": False, "backupRetentionPeriod": 14, **changes}}


def _ecr(**changes):
    return {"type": "aws:ecr/repository:Repository", "name": "repo", "urn": "urn:x::repo", "custom": True,
            "options": {}, "dependencies": [],
            "inputs": {"imageTagMutability": "IMMUTABLE", "imageScanningConfiguration": {"scanOnPush": True},
                       **changes}}


def _ungate_upgrade(recs):
    upgrade = first(recs, "command:remote:Command", lambda r: r["name"].endswith("-upgrade")
                    and any(d.endswith("-drain") for d in r["dependencies"]))  # an agent: drained by its own step
    upgrade["dependencies"] = [d for d in upgrade["dependencies"] if not d.endswith("-drain")]


BREAKS: dict[str, tuple[str, Callable[[list[dict]], None]]] = {
    "eks-secrets-encrypted": ("aws-gpu", lambda recs: set_in(first(recs, EKS), ["encryptionConfig"], {})),
    "eks-control-plane-logs": ("aws-gpu", lambda recs: set_in(first(recs, EKS), ["enabledClusterLogTypes"], ["api"])),
    "log-group-retained-encrypted": ("aws-gpu", lambda recs: first(recs, "aws:cloudwatch/logGroup:LogGroup")[
        "inputs"].pop("retentionInDays")),
    "eks-endpoint-private": ("aws-gpu", lambda recs: first(recs, EKS)["inputs"]["vpcConfig"].update(
        endpointPublicAccess=True, publicAccessCidrs=["0.0.0.0/0"])),
    "eks-supported-version": ("aws-gpu", lambda recs: set_in(first(recs, EKS), ["version"], "1.28")),
    "eks-explicit-access": ("aws-gpu", lambda recs: set_in(first(recs, EKS), ["accessConfig",
                                                         "bootstrapClusterCreatorAdminPermissions"], True)),
    "eks-deletion-protection": ("aws-gpu", lambda recs: set_in(first(recs, EKS), ["deletionProtection"], False)),
    "eks-network-policy-enforced": ("aws-gpu", lambda recs: set_in(first(
        recs, "aws:eks/addon:Addon", lambda r: r["inputs"]["addonName"] == "vpc-cni"), ["configurationValues"], "{}")),
    "nodes-imdsv2": ("aws-gpu", lambda recs: set_in(first(recs, LT), ["metadataOptions", "httpTokens"], "optional")),
    "nodes-imds-hop-limit": ("aws-gpu", lambda recs: set_in(first(recs, LT), ["metadataOptions",
                                                                               "httpPutResponseHopLimit"], 2)),
    "nodes-no-public-ip": ("aws-gpu", lambda recs: set_in(first(recs, LT), ["networkInterfaces"],
                                                          [{"associatePublicIpAddress": "true"}])),
    "nodes-no-ssh": ("aws-gpu", lambda recs: set_in(first(recs, NG), ["remoteAccess"], {"ec2SshKey": "ops"})),
    "nodes-volumes-encrypted": ("aws-gpu", lambda recs: set_in(first(recs, LT), ["blockDeviceMappings"],
                                                               [{"deviceName": "/dev/xvda",
                                                                 "ebs": {"encrypted": "false"}}])),
    "nodes-no-secrets-in-user-data": ("aws-gpu", lambda recs: set_in(first(recs, LT), ["userData"], base64.b64encode(
        b"#!/bin/sh\nexport DB_PASSWORD=x\npassword = hunter2\n").decode())),
    "nodes-eks-optimised-ami": ("aws-gpu", lambda recs: set_in(first(recs, NG), ["amiType"], "CUSTOM")),
    "gpu-pools-tainted": ("aws-gpu", lambda recs: set_in(first(recs, NG, GPU_NG), ["taints"], [])),
    "node-role-minimal": ("aws-gpu", _extra({"type": "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
                                             "name": "extra", "urn": "urn:x::extra", "custom": True, "options": {},
                                             "dependencies": [], "inputs": {
                                                 "role": "mlcluster-pools-node",
                                                 "policyArn": "arn:aws:iam::aws:policy/AmazonS3FullAccess"}})),
    "default-security-group-closed": ("aws-gpu", lambda recs: set_in(first(
        recs, "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"), ["egress"], [{"cidrBlocks": ["0.0.0.0/0"]}])),
    "vpc-flow-logs": ("aws-gpu", lambda recs: drop(recs, lambda r: r["type"] == "aws:ec2/flowLog:FlowLog")),
    "no-world-ingress": ("aws-gpu", lambda recs: first(recs, "aws:ec2/securityGroup:SecurityGroup")["inputs"][
        "ingress"][0].update(cidrBlocks=["0.0.0.0/0"])),
    "security-groups-described": ("aws-gpu", lambda recs: first(recs, "aws:ec2/securityGroup:SecurityGroup")[
        "inputs"]["ingress"][0].pop("description")),
    "pod-identity-trust-scoped": ("aws-gpu", lambda recs: set_in(first(
        recs, "aws:iam/role:Role", lambda r: "pods.eks" in r["inputs"]["assumeRolePolicy"]), ["assumeRolePolicy"],
        json.dumps({"Statement": [{"Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"},
                                   "Action": "sts:AssumeRole"}]}))),
    "iam-no-wildcards": ("aws-gpu", lambda recs: set_in(first(recs, "aws:iam/rolePolicy:RolePolicy"), ["policy"],
                                                        json.dumps({"Statement": [{"Effect": "Allow", "Action": "s3:*",
                                                                                   "Resource": "*"}]}))),
    "iam-no-admin-policies": ("aws-gpu", lambda recs: set_in(first(
        recs, "aws:iam/rolePolicyAttachment:RolePolicyAttachment"), ["policyArn"],
        "arn:aws:iam::aws:policy/AdministratorAccess")),
    "kms-rotation": ("aws-gpu", lambda recs: set_in(first(recs, "aws:kms/key:Key"), ["enableKeyRotation"], False)),
    "kms-policy-no-wildcard-principal": ("aws-gpu", lambda recs: set_in(first(recs, "aws:kms/key:Key"), ["policy"],
                                                                        json.dumps({"Statement": [{
                                                                            "Effect": "Allow", "Principal": "*",
                                                                            "Action": "kms:Decrypt",
                                                                            "Resource": "*"}]}))),
    "kms-deletion-window": ("aws-gpu", lambda recs: set_in(first(recs, "aws:kms/key:Key"),
                                                           ["deletionWindowInDays"], 7)),
    "s3-public-access-blocked": ("aws-gpu", lambda recs: set_in(first(
        recs, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"), ["blockPublicPolicy"], False)),
    "s3-sse-kms": ("aws-gpu", lambda recs: drop(recs, lambda r: "ServerSideEncryption" in r["type"])),
    "s3-versioning": ("aws-gpu", lambda recs: set_in(first(recs, "aws:s3/bucketVersioning:BucketVersioning"),
                                                     ["versioningConfiguration", "status"], "Suspended")),
    "s3-noncurrent-lifecycle": ("aws-gpu", lambda recs: set_in(first(
        recs, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"), ["rules"], [])),
    "s3-acls-disabled": ("aws-gpu", lambda recs: set_in(first(
        recs, "aws:s3/bucketOwnershipControls:BucketOwnershipControls"), ["rule", "objectOwnership"], "ObjectWriter")),
    "rds-encrypted-private-protected": ("aws-gpu", _extra(_rds(publiclyAccessible=True))),
    "ecr-immutable-scanned": ("aws-gpu", _extra(_ecr(imageTagMutability="MUTABLE"))),
    "node-group-rolling-updates": ("aws-gpu", lambda recs: set_in(first(recs, NG, GPU_NG), ["updateConfig"],
                                                                  {"maxUnavailable": 1})),
    "node-group-size-owned-by-autoscaler": ("aws-gpu", lambda recs: first(recs, NG)["options"].update(
        ignoreChanges=[])),
    "namespace-pod-security": ("local", lambda recs: k8s(recs, "Namespace", TEAM_NS)["inputs"]["metadata"][
        "labels"].update({"pod-security.kubernetes.io/enforce": "privileged"})),
    "team-default-deny": ("local", lambda recs: drop(recs, lambda r: r["inputs"].get("kind") == "NetworkPolicy")),
    "team-roles-confined": ("local", lambda recs: k8s(recs, "RoleBinding", lambda r: r["inputs"]["roleRef"]["name"]
                                                      == "mlcluster-team-member")["inputs"]["roleRef"].update(
        name="edit")),
    "team-quota-and-limits": ("local", lambda recs: drop(recs, lambda r: r["inputs"].get("kind") == "ResourceQuota")),
    "workloads-hardened": ("aws-gpu", lambda recs: k8s(recs, "Deployment")["inputs"]["spec"]["template"]["spec"][
        "containers"][0].pop("securityContext")),
    "workloads-have-resources": ("aws-gpu", lambda recs: k8s(recs, "Deployment")["inputs"]["spec"]["template"][
        "spec"]["containers"][0].pop("resources")),
    "rbac-least-privilege": ("aws-gpu", lambda recs: k8s(recs, "ClusterRole")["inputs"]["rules"][0].update(
        verbs=["*"])),
    "team-token-automount-off": ("local", lambda recs: drop(recs, lambda r: r["type"].endswith("ServiceAccountPatch"))),
    "nothing-in-default-namespace": ("local", lambda recs: set_in(first(recs, "kubernetes:helm.sh/v3:Release"),
                                                                  ["namespace"], "default")),
    "no-literal-secrets-in-values": ("local", lambda recs: first(recs, "kubernetes:helm.sh/v3:Release")["inputs"][
        "values"].update(auth={"password": "hunter2"})),
    "pinned-versions": ("local", lambda recs: set_in(first(recs, "kubernetes:helm.sh/v3:Release"),
                                                     ["version"], "^1.2")),
    "data-resources-protected": ("aws-gpu", lambda recs: first(recs, "aws:s3/bucket:Bucket")["options"].update(
        protect=False)),
    "retain-storage-classes": ("aws-gpu", lambda recs: set_in(k8s(
        recs, "StorageClass", lambda r: r["inputs"]["metadata"]["name"].endswith("-retain")), ["reclaimPolicy"],
        "Delete")),
    "karpenter-disruption-budgets": ("aws-full", lambda recs: set_in(k8s(recs, "NodePool"), ["spec", "disruption",
                                                                                            "budgets"], [])),
    "baremetal-upgrades-drained-serially": ("lab", _ungate_upgrade),
    # issue 13: the pre-fix shapes
    "names-scoped-to-stack": ("aws-gpu", lambda recs: set_in(first(
        recs, "aws:cloudwatch/logGroup:LogGroup", lambda r: "flow" in r["name"]), ["name"],
        "/mlcluster/mlcluster-network/vpc-flow-logs")),
    "names-free-after-destroy": ("aws-gpu", lambda recs: first(recs, "aws:secretsmanager/secret:Secret")[
        "inputs"].update(name="mlcluster/render/monitoring/grafana-admin", recoveryWindowInDays=30)),
    "efa-security-group-self": ("aws-gpu", lambda recs: drop(
        recs, lambda r: r["type"] == "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")),
}


def test_every_rule_has_a_failing_fragment():
    assert set(BREAKS) == set(rules())


def broken(rule_id):
    name, mutation = BREAKS[rule_id]
    recs = copy.deepcopy(records(name))
    mutation(recs)
    return recs


@pytest.mark.parametrize("rule_id", sorted(BREAKS))
def test_rule_passes_on_the_render_and_fails_on_its_fragment(rule_id):
    name, _ = BREAKS[rule_id]
    rule = rules()[rule_id]
    assert not list(rule.evaluate(from_records(records(name)))), "the untouched render must pass"
    if rule_id in ("rds-encrypted-private-protected", "ecr-immutable-scanned"):  # nothing of that type is shipped:
        compliant = copy.deepcopy(records(name))  # a compliant resource of the type must pass too
        compliant.append(_rds() if rule_id.startswith("rds") else _ecr())
        assert not list(rule.evaluate(from_records(compliant)))
    found = list(rule.evaluate(from_records(broken(rule_id))))
    assert found, f"{rule_id} did not fire on its fragment"
    assert rule.severity in ("high", "medium", "low") and rule.rationale and rule.checks[0].startswith(
        ("checks.md#", "issue#"))


# --- overrides ---------------------------------------------------------------------------------------------

def test_override_accepts_a_finding_and_keeps_it_visible():
    recs = broken("nodes-imdsv2")
    lt = first(recs, LT, lambda r: r["inputs"]["metadataOptions"]["httpTokens"] == "optional")
    report = evaluate(from_records(recs), [Override("nodes-imdsv2", "legacy agent needs IMDSv1 until 2027-03",
                                                    (lt["name"],))])
    assert not report.open("high")
    (accepted,) = report.overridden()
    assert accepted.override.reason.startswith("legacy agent")
    other = evaluate(from_records(recs), [Override("nodes-imdsv2", "legacy agent needs IMDSv1 until 2027-03",
                                                   ("some-other-*",))])
    assert other.open("high")  # an override covers only the resources it names


def test_override_needs_a_real_rule_and_a_reason():
    with pytest.raises(ConfigError) as err:
        load_profile("local", sets=('policy.overrides=[{rule: nodes-imdsv2, reason: "because"}]',))
    assert err.value.problems[0].field == "policy.overrides[0].reason"
    with pytest.raises(ConfigError) as err:
        load_profile("local", sets=('policy.overrides=[{rule: imdsv1-is-fine, reason: "a long enough reason here"}]',))
    assert "no such rule" in err.value.problems[0].allowed


# --- the CrossGuard runner -----------------------------------------------------------------------------------

def _opts(record):
    options = record.get("options", {})
    return types.SimpleNamespace(protect=options.get("protect", False), ignore_changes=options.get("ignoreChanges", []))


def crossguard(recs, config=None):
    """Run the CrossGuard policies as the engine would, on the same records; return (policy, urn, message). Props
    arrive wrapped in pulumi_policy's unknown-checking proxies, as the analyzer hands them over (policy.py): the
    real engine loop found the pack crashing on them ("'_ListProxy' object has no attribute 'get'") while plain
    dicts here passed."""
    from pulumi_policy import ResourceValidationPolicy, StackValidationPolicy
    from pulumi_policy.proxy import unknown_checking_proxy

    from mlcluster.policy.crossguard import policies

    custom = [r for r in recs if r.get("custom")]
    by_urn = {}
    for r in custom:
        by_urn[r["urn"]] = types.SimpleNamespace(resource_type=r["type"], urn=r["urn"], name=r["name"],
                                                 props=unknown_checking_proxy(r["inputs"]), opts=_opts(r),
                                                 dependencies=[])
    for r in custom:
        by_urn[r["urn"]].dependencies = [by_urn[d] for d in r.get("dependencies", []) if d in by_urn]
    found = []
    for policy in policies():
        get_config = lambda policy=policy: (config or {}).get(policy.name, {})  # noqa: E731
        if isinstance(policy, ResourceValidationPolicy):
            for item in by_urn.values():
                args = types.SimpleNamespace(**vars(item), get_config=get_config)
                policy.validate(args, lambda message, urn, item=item, policy=policy: found.append(
                    (policy.name.removesuffix("-stack"), item.urn, message)))
        elif isinstance(policy, StackValidationPolicy):
            args = types.SimpleNamespace(resources=list(by_urn.values()), get_config=get_config)
            policy.validate(args, lambda message, urn, policy=policy: found.append(
                (policy.name.removesuffix("-stack"), urn, message)))
    return sorted(found)


def offline(recs, overrides=()):
    return sorted((f.rule.id, f.resource.urn, f.message) for f in evaluate(from_records(recs), overrides).open())


@pytest.mark.parametrize("rule_id", ["nodes-imdsv2", "team-default-deny", "s3-sse-kms", "gpu-pools-tainted",
                                     "baremetal-upgrades-drained-serially", "data-resources-protected"])
def test_both_runners_report_the_same(rule_id):
    recs = broken(rule_id)
    assert crossguard(recs) == offline(recs) != []


def test_crossguard_applies_the_profile_overrides():
    from mlcluster.policy.crossguard import config

    recs = broken("team-default-deny")
    override = Override("team-default-deny", "the lab's shared team opts out until audit", ("*",))
    assert crossguard(recs, config([override])) == offline(recs, [override]) == []


def test_policy_pack_metadata_and_enforcement():
    from pulumi_policy import EnforcementLevel

    from mlcluster.policy.crossguard import policies

    made = {p.name: p for p in policies()}
    assert made["nodes-imdsv2"].enforcement_level == EnforcementLevel.MANDATORY  # high blocks
    assert made["vpc-flow-logs"].enforcement_level == EnforcementLevel.ADVISORY
    assert "CKV_AWS_79" in made["nodes-imdsv2"].tags
    assert {"s3-sse-kms", "s3-sse-kms-stack"} <= set(made)


def test_policy_pack_starts(tmp_path):
    """The pack as `pulumi preview --policy-pack policies` starts it: it serves and prints its port."""
    process = subprocess.Popen([sys.executable, str(ROOT / "policies" / "__main__.py")], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        port = process.stdout.readline().strip()
        assert port.isdigit(), process.stderr.read() if process.poll() is not None else port
    finally:
        process.kill()
        process.wait(timeout=10)
