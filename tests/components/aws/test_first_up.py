"""Issue 13: what a first real `pulumi up` of the eks substrate in a fresh account needs, and a redeploy after
destroy, each checked against the upstream contract it depends on (named per test)."""

from __future__ import annotations

import ipaddress
import json
import shutil
from pathlib import Path

import pytest
import yaml

from mlcluster.components.aws import preflight
from mlcluster.errors import ConfigError
from mlcluster.policy.aws import ACCOUNT_WIDE_NAMES
from mlcluster.profiles.effective import load_profile
from mlcluster.render import render
from mlcluster.semantics.netpol import Address, Network, Pod
from mlcluster.stackconfig import StackSettings
from tests.conftest import ROOT, rendered_profile, rendered_stack
from tests.upstream import validate_custom_resource

HERE = Path(__file__).resolve().parent
KARPENTER = ("substrate.karpenter.enabled=true", "substrate.karpenter.ami_alias=al2023@v20261110")


def records(rendered):
    return json.loads(rendered.files["resources.json"])["resources"]


def of_type(rendered, type_):
    return [r for r in records(rendered) if r["type"] == type_]


def stack_settings(overrides):
    return StackSettings(stack="t", profile="aws-gpu", overrides=overrides, source="stacks/Pulumi.t.yaml")


# --- 13.1: the runner reaches the private API -------------------------------------------------------------


def test_a_private_cluster_without_a_way_in_for_the_runner_is_refused_before_deploy():
    """EKS user guide, "Cluster API server endpoint": the private endpoint answers inside the VPC only, through the
    cluster security group, which admits itself. Without runner CIDRs `pulumi up` would time out after building
    the AWS side."""
    profile = load_profile("aws-gpu", sets=("substrate.admin_principals=[arn:aws:iam::111122223333:role/a]",))
    with pytest.raises(ConfigError) as err:
        preflight.check_stack(profile, stack_settings({}))
    (problem,) = err.value.problems
    assert problem.field == "mlcluster:overrides.substrate.api.runner_cidrs" and "public_cidrs" in problem.allowed
    fine = load_profile("aws-gpu", sets=("substrate.admin_principals=[arn:aws:iam::111122223333:role/a]",
                                         "substrate.api.runner_cidrs=[10.100.0.0/24]"))
    preflight.check_stack(fine, stack_settings({}))


def test_runner_cidrs_open_https_on_the_cluster_security_group_before_any_kubernetes_object():
    r = rendered_stack("prod")
    (rule,) = [x for x in of_type(r, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
               if "api-runner" in x["name"]]
    cluster = of_type(r, "aws:eks/cluster:Cluster")[0]
    assert rule["inputs"]["cidrIpv4"] == "10.100.0.0/24" and (rule["inputs"]["fromPort"], rule["inputs"]["toPort"]) \
        == (443, 443)
    assert rule["inputs"]["securityGroupId"].startswith("sg-") and cluster["urn"]  # the cluster's own SG
    (provider,) = of_type(r, "pulumi:providers:kubernetes")
    assert rule["urn"] in provider["dependencies"]


def test_runner_cidrs_are_networks_not_the_internet():
    with pytest.raises(ConfigError) as err:
        load_profile("aws-gpu", sets=("substrate.api.runner_cidrs=[0.0.0.0/0]",))
    assert "substrate.api.runner_cidrs[0]" in {p.field for p in err.value.problems}


# --- 13.2: container arguments the pinned binary has -------------------------------------------------------


def test_cluster_autoscaler_passes_only_flags_the_pinned_release_defines():
    """pflag exits on an unknown flag: `--aws-region` made the autoscaler crash-loop. The flag names come from
    cluster-autoscaler/config/flags/flags.go (cluster_autoscaler_flags.json names the commit)."""
    known = json.loads((HERE / "cluster_autoscaler_flags.json").read_text())
    allowed = set(known["flags"]) | set(known["klog_flags"])
    files = rendered_profile("aws-gpu").files
    deployment = yaml.safe_load(files["manifests/kube-system/deployment-cluster-autoscaler.yaml"])
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    flags = [arg.split("=", 1)[0].lstrip("-") for arg in container["command"][1:]]
    assert flags and not [f for f in flags if f not in allowed]
    assert "aws-region" not in flags
    # The region reaches the AWS SDK from the environment (IMDS is out of a pod's reach at hop limit 1).
    assert {"name": "AWS_REGION", "value": "us-east-1"} in container["env"]


# --- 13.3: EFA pools that NCCL and the autoscaler can use --------------------------------------------------


def h100_template(r):
    return next(x for x in of_type(r, "aws:ec2/launchTemplate:LaunchTemplate") if "gpu-h100" in x["name"])


def test_p5_nodes_get_one_efa_interface_per_network_card():
    """EC2 User Guide, "Maximize network bandwidth ... multiple network cards": p5.48xlarge has 32 cards; the
    example TrainJob asks for 32 `vpc.amazonaws.com/efa` and stayed Pending with one."""
    interfaces = h100_template(rendered_profile("aws-gpu"))["inputs"]["networkInterfaces"]
    assert sorted(i["networkCardIndex"] for i in interfaces) == list(range(32))
    assert all(i["interfaceType"] == "efa" for i in interfaces)
    primary = next(i for i in interfaces if i["networkCardIndex"] == 0)
    assert primary["deviceIndex"] == 0 and all(i["deviceIndex"] == 1 for i in interfaces if i is not primary)


def test_efa_security_group_admits_and_sends_all_traffic_to_itself_on_every_interface():
    """EC2 User Guide, "Get started with EFA": an EFA security group allows all inbound and outbound traffic from
    and to itself; without the egress rule NCCL hangs."""
    r = rendered_profile("aws-gpu")
    (group,) = [g for g in of_type(r, "aws:ec2/securityGroup:SecurityGroup") if g["name"].endswith("gpu-h100-efa")]
    group_id = f"{group['name']}-id"
    ingress = [x["inputs"] for x in of_type(r, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
               if x["inputs"]["securityGroupId"] == group_id]
    egress = [x["inputs"] for x in of_type(r, "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")
              if x["inputs"]["securityGroupId"] == group_id]
    for rules in (ingress, egress):
        assert [(x["ipProtocol"], x["referencedSecurityGroupId"]) for x in rules] == [("-1", group_id)]
    assert all(group_id in i["securityGroups"] for i in h100_template(r)["inputs"]["networkInterfaces"])


def test_autoscaler_knows_what_an_empty_gpu_group_offers():
    """cluster-autoscaler/cloudprovider/aws/README.md ("Auto-Discovery Setup", scaling from 0): node-template tags
    on the Auto Scaling group name the extended resources, labels and taints of a group with no node."""
    r = rendered_profile("aws-gpu")
    tags = {x["inputs"]["tag"]["key"]: x["inputs"]["tag"]["value"] for x in of_type(r, "aws:autoscaling/tag:Tag")
            if "gpu-h100" in x["name"]}
    prefix = "k8s.io/cluster-autoscaler/node-template"
    assert tags[f"{prefix}/resources/vpc.amazonaws.com/efa"] == "32"
    assert tags[f"{prefix}/resources/nvidia.com/gpu"] == "8"
    assert tags[f"{prefix}/taint/nvidia.com/gpu"] == "true:NoSchedule"
    assert tags[f"{prefix}/label/mlcluster.io/pool"] == "gpu-h100"
    groups = {x["inputs"]["autoscalingGroupName"] for x in of_type(r, "aws:autoscaling/tag:Tag")
              if "gpu-h100" in x["name"]}
    assert len(groups) == 1 and groups.pop().startswith("eks-gpu-h100-")  # the group EKS made


# --- 13.4 / 13.5: the platform key in a fresh account and on Karpenter's launch path ----------------------


def test_key_policy_names_no_principal_that_must_exist_first_and_covers_every_launcher():
    """KMS refuses a key policy whose principal does not exist (AWSServiceRoleForAutoScaling exists only after the
    account's first Auto Scaling group). The EC2 path grant covers Auto Scaling and Karpenter alike (Karpenter
    troubleshooting: nodes terminate before ready on an encrypted volume they cannot use)."""
    (key,) = of_type(rendered_profile("aws-gpu"), "aws:kms/key:Key")
    statements = json.loads(key["inputs"]["policy"])["Statement"]
    assert "aws-service-role" not in key["inputs"]["policy"]
    through_ec2 = [s for s in statements if s.get("Condition", {}).get("StringEquals", {}).get("kms:ViaService")
                   == "ec2.us-east-1.amazonaws.com"]
    actions = {a for s in through_ec2 for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert {"kms:GenerateDataKey*", "kms:Decrypt", "kms:CreateGrant", "kms:DescribeKey"} <= actions
    assert all(s["Condition"]["StringEquals"]["kms:CallerAccount"] == "111122223333" for s in through_ec2)
    grant = next(s for s in through_ec2 if s["Action"] == "kms:CreateGrant")
    assert grant["Condition"]["Bool"] == {"kms:GrantIsForAWSResource": "true"}


# --- 13.6 / 13.7: Karpenter ----------------------------------------------------------------------------------


def karpenter_render():
    return render(profile="aws-gpu", sets=(*KARPENTER, "node_pools[1].provisioner=karpenter"))


def test_karpenter_nodes_have_their_own_role_and_access_entry():
    """EKS creates the access entry of a managed node group's role itself; a second entry for that role is a 409,
    and deleting ours (Karpenter off) would remove the one every managed node uses."""
    r = karpenter_render()
    entries = [e["inputs"] for e in of_type(r, "aws:eks/accessEntry:AccessEntry")]
    principals = [e["principalArn"] for e in entries]
    assert len(principals) == len(set(principals))
    managed_role = next(x for x in of_type(r, "aws:eks/nodeGroup:NodeGroup"))["inputs"]["nodeRoleArn"]
    assert managed_role not in principals
    (karpenter_entry,) = [e for e in entries if e["type"] == "EC2_LINUX"]
    (node_class,) = [x for x in of_type(r, "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass")]
    assert karpenter_entry["principalArn"].endswith(f":role/{node_class['inputs']['spec']['role']}")


def _kind(arn: str) -> str:
    if arn == "*":
        return "*"
    resource = arn.split(":", 5)[5]
    return "queue" if arn.startswith("arn:aws:sqs:") else resource.split("/")[0]


def test_karpenter_controller_policy_matches_the_pinned_reference():
    reference = json.loads((HERE / "karpenter_reference_v1.14.json").read_text())
    r = karpenter_render()
    (policy,) = [x for x in of_type(r, "aws:iam/rolePolicy:RolePolicy") if "karpenter" in x["name"]]
    ours = {}
    for s in json.loads(policy["inputs"]["policy"])["Statement"]:
        resources = s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]
        actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
        conditions = {op: sorted(k.replace("mlcluster-render", "${ClusterName}") for k in keys)
                      for op, keys in (s.get("Condition") or {}).items()}
        ours["Allow" + s["Sid"]] = {"actions": sorted(actions), "resources": sorted({_kind(x) for x in resources}),
                                    "conditions": conditions}
    expected = {sid: {"actions": sorted(v["actions"]), "resources": sorted(v["resources"]),
                      "conditions": {op: sorted(k) for op, k in v["conditions"].items()}}
                for sid, v in reference["statements"].items()}
    assert ours == expected
    rules = [json.loads(x["inputs"]["eventPattern"])["detail-type"][0]
             for x in of_type(r, "aws:cloudwatch/eventRule:EventRule")]
    assert sorted(rules) == reference["interruption_detail_types"]
    (queue_policy,) = of_type(r, "aws:sqs/queuePolicy:QueuePolicy")
    deny = next(s for s in json.loads(queue_policy["inputs"]["policy"])["Statement"] if s["Effect"] == "Deny")
    assert deny["Sid"] in reference["queue_policy_sids"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


# --- 13.8 / 13.9: names unique per stack, and free again after a destroy -----------------------------------

def physical_names(rendered):
    """Every account/region-wide name (the guardrail names-scoped-to-stack's table of types and fields)."""
    return {(r["type"], r["inputs"][field]) for r in records(rendered)
            for field in ACCOUNT_WIDE_NAMES.get(r["type"], ()) if field in r["inputs"]}


def test_two_stacks_in_one_account_share_no_name(tmp_path):
    """A second stack in the same account and region failed on the flow-log group's name."""
    shutil.copy(ROOT / "stacks" / "Pulumi.prod.yaml", tmp_path / "Pulumi.staging.yaml")
    prod, staging = rendered_stack("prod"), render(stack=str(tmp_path / "Pulumi.staging.yaml"))
    names = physical_names(prod)
    assert len(names) >= 8
    assert not names & physical_names(staging)


def test_nothing_that_outlives_a_destroy_blocks_the_next_up():
    """Secrets Manager keeps a deleted name for its recovery window, the retained bucket keeps its name, and a
    final snapshot with a fixed identifier fails the second destroy (DBSnapshotAlreadyExists)."""
    r = rendered_stack("prod")
    assert all("name" not in s["inputs"] for s in of_type(r, "aws:secretsmanager/secret:Secret"))
    (bucket,) = of_type(r, "aws:s3/bucket:Bucket")
    assert "bucket" not in bucket["inputs"] and bucket["options"].get("retainOnDelete")
    (db,) = of_type(r, "aws:rds/instance:Instance")
    (suffix,) = [x for x in of_type(r, "random:index/randomId:RandomId") if "final-snapshot" in x["name"]]
    assert suffix["urn"] in db["dependencies"]
    assert db["inputs"]["finalSnapshotIdentifier"] != f"{db['inputs']['identifier']}-final"


# --- 13.10: data stores out of a team pod's reach -------------------------------------------------------


def test_team_pods_cannot_reach_the_database_or_nfs_but_mlflow_can():
    """Pods take VPC addresses (VPC CNI), so the security groups' VPC-wide 5432/2049 admit any pod; the teams'
    egress policies are what keep them out. Evaluated from the attacker's seat."""
    r = rendered_profile("aws-gpu")
    manifests = [yaml.safe_load(t) for p, t in r.files.items() if p.startswith("manifests/") and p.endswith(".yaml")]
    net = Network(manifests)
    vpc = ipaddress.ip_network("10.0.0.0/16")
    database, mount_target = Address(str(vpc[1234])), Address(str(vpc[4321]))
    attacker = Pod("team-vision", {"app": "anything"}, ip=str(vpc[99]))
    assert not net.can_connect(attacker, database, 5432)
    assert not net.can_connect(attacker, mount_target, 2049)
    assert net.can_connect(Pod("mlflow", {"app.kubernetes.io/name": "mlflow"}, ip=str(vpc[98])), database, 5432)


# --- 13.11: Karpenter in your own VPC -------------------------------------------------------------------


def test_karpenter_in_your_own_vpc_tags_your_subnets_for_discovery():
    r = render(profile="aws-gpu", sets=(*KARPENTER, "substrate.vpc.vpc_id=vpc-0abc",
                                        "substrate.vpc.private_subnet_ids=[subnet-a, subnet-b]"))
    tags = [x["inputs"] for x in of_type(r, "aws:ec2/tag:Tag")]
    assert sorted((t["resourceId"], t["key"], t["value"]) for t in tags) == [
        ("subnet-a", "karpenter.sh/discovery", "mlcluster-render"),
        ("subnet-b", "karpenter.sh/discovery", "mlcluster-render")]


# --- 13.12: capacity for H100s ---------------------------------------------------------------------------


def test_capacity_blocks_and_reservations_reach_the_launch_path():
    """EKS user guide "capacity-blocks-mng": market type capacity-block and the block as the reservation target in
    the launch template, capacity type CAPACITY_BLOCK on the group. Karpenter (docs/tasks/odcrs): the EC2NodeClass
    selects reservations by id and the NodePool allows `reserved`."""
    r = render(profile="aws-gpu", sets=("node_pools[4].capacity_type=capacity-block",
                                        "node_pools[4].capacity_reservation_ids=[cr-0123456789abcdef0]"))
    template = h100_template(r)["inputs"]
    assert template["instanceMarketOptions"] == {"marketType": "capacity-block"}
    assert template["capacityReservationSpecification"] == {
        "capacityReservationTarget": {"capacityReservationId": "cr-0123456789abcdef0"}}
    group = next(x for x in of_type(r, "aws:eks/nodeGroup:NodeGroup") if x["inputs"]["nodeGroupName"] == "gpu-h100")
    assert group["inputs"]["capacityType"] == "CAPACITY_BLOCK"
    assert "Capacity Block cr-0123456789abcdef0" in r.files["SUMMARY.md"]

    reservations = "[cr-0aaaaaaaaaaaaaaa1, cr-0bbbbbbbbbbbbbbb2]"
    k = render(profile="aws-gpu", sets=(*KARPENTER, "node_pools[3].provisioner=karpenter",
                                        "node_pools[3].capacity_type=on-demand",
                                        f"node_pools[3].capacity_reservation_ids={reservations}"))
    node_class = next(x for x in of_type(k, "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"))["inputs"]
    validate_custom_resource({"apiVersion": "karpenter.k8s.aws/v1", "kind": "EC2NodeClass", **node_class})
    assert node_class["spec"]["capacityReservationSelectorTerms"] == [{"id": "cr-0aaaaaaaaaaaaaaa1"},
                                                                      {"id": "cr-0bbbbbbbbbbbbbbb2"}]
    pool = next(x for x in of_type(k, "kubernetes:karpenter.sh/v1:NodePool"))["inputs"]
    requirements = pool["spec"]["template"]["spec"]["requirements"]
    (capacity,) = [q for q in requirements if q["key"] == "karpenter.sh/capacity-type"]
    assert capacity["values"] == ["reserved", "on-demand"]


def test_summary_says_where_each_gpu_pool_gets_capacity():
    summary = rendered_profile("aws-gpu").files["SUMMARY.md"]
    section = summary.split("## Where GPU capacity comes from", 1)[1].split("\n## ", 1)[0]
    assert "| gpu-h100 " in section and "On-demand without a reservation" in section
    assert "| gpu-a10g " in section and "Spot" in section


@pytest.mark.parametrize(("sets", "field", "message"), [
    (("node_pools[4].capacity_type=capacity-block",), "node_pools[4].capacity_reservation_ids", "names its one"),
    (("node_pools[2].capacity_reservation_ids=[cr-0123456789abcdef0]",), "node_pools[2].capacity_reservation_ids",
     "not spot"),
    (("node_pools[4].capacity_reservation_ids=[cr-0123456789abcdef0, cr-0123456789abcdef1]",),
     "node_pools[4].capacity_reservation_ids", "targets one"),
    (("node_pools[4].capacity_reservation_ids=[r-1]",), "node_pools[4].capacity_reservation_ids[0]", None),
])
def test_bad_capacity_settings(sets, field, message):
    with pytest.raises(ConfigError) as err:
        load_profile("aws-gpu", sets=sets)
    problems = {p.field: p for p in err.value.problems}
    assert field in problems and (message is None or message in problems[field].allowed)


# --- 13.13: managed add-ons move with the Kubernetes version -------------------------------------------


def test_managed_addons_are_pinned_to_the_default_for_the_kubernetes_minor():
    """DescribeAddonVersions' default version per Kubernetes version (pulumi-aws eks.getAddonVersion,
    most_recent=false): a version bump moves every add-on in the same preview."""
    def versions(rendered):
        return {x["inputs"]["addonName"]: x["inputs"].get("addonVersion") for x in
                of_type(rendered, "aws:eks/addon:Addon")}
    now = versions(rendered_profile("aws-gpu"))
    assert now and all(v and "1.35" in v for v in now.values())
    bumped = versions(render(profile="aws-gpu", sets=("kubernetes.version=1.36",)))
    assert set(bumped) == set(now) and all("1.36" in v for v in bumped.values())


# --- 13.14: the deployer is an admin ------------------------------------------------------------------------


@pytest.mark.parametrize("caller", [
    "arn:aws:sts::111122223333:assumed-role/mlcluster-deployer/ci-1234",  # a CI role session
    "arn:aws:iam::111122223333:user/ops/alice",  # an IAM user with a path
])
def test_the_deployer_must_be_an_admin_principal(caller):
    admins = ["arn:aws:iam::111122223333:role/ci/mlcluster-deployer", "arn:aws:iam::111122223333:user/ops/alice"]
    # Role paths are not in session ARNs: names compare.
    preflight.check_caller(caller, admins, "stacks/Pulumi.prod.yaml")
    with pytest.raises(ConfigError) as err:
        preflight.check_caller(caller, ["arn:aws:iam::111122223333:role/platform-admins"], "stacks/Pulumi.prod.yaml")
    (problem,) = err.value.problems
    assert problem.field == "mlcluster:overrides.substrate.admin_principals" and caller in problem.allowed


def test_a_deployer_from_another_account_is_not_an_admin():
    with pytest.raises(ConfigError):
        preflight.check_caller("arn:aws:sts::444455556666:assumed-role/mlcluster-deployer/ci",
                     ["arn:aws:iam::111122223333:role/mlcluster-deployer"], "stacks/Pulumi.prod.yaml")
