"""The eks substrate under mocks: the cloud guardrails of ../shared/checks.md asserted from the inputs."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.conftest import rendered_profile


def resources(profile="aws-gpu"):
    return json.loads(rendered_profile(profile).files["resources.json"])["resources"]


def of_type(type_, profile="aws-gpu"):
    return [r for r in resources(profile) if r["type"] == type_]


def one(type_, profile="aws-gpu"):
    (r,) = of_type(type_, profile)
    return r


def test_control_plane_is_private_encrypted_logged_and_api_authenticated():
    cluster = one("aws:eks/cluster:Cluster")
    i = cluster["inputs"]
    assert i["version"] == "1.35"
    assert i["vpcConfig"]["endpointPrivateAccess"] is True
    assert i["vpcConfig"]["endpointPublicAccess"] is False  # checks 4
    assert i["encryptionConfig"]["resources"] == ["secrets"]  # checks 1
    assert i["encryptionConfig"]["provider"]["keyArn"].startswith("arn:aws:kms:")
    assert sorted(i["enabledClusterLogTypes"]) == ["api", "audit", "authenticator", "controllerManager",
                                                   "scheduler"]  # checks 2
    assert i["accessConfig"] == {"authenticationMode": "API", "bootstrapClusterCreatorAdminPermissions": False}
    assert i["deletionProtection"] is True and cluster["options"]["protect"] is True  # checks 7, 45
    log_group = [g for g in of_type("aws:cloudwatch/logGroup:LogGroup") if g["inputs"]["name"].startswith("/aws/eks/")]
    assert log_group[0]["inputs"]["retentionInDays"] == 365 and log_group[0]["inputs"]["kmsKeyId"]  # checks 3
    assert log_group[0]["urn"] in cluster["dependencies"]


def test_public_endpoint_only_from_listed_cidrs():
    from mlcluster.render import render

    rendered = render(profile="aws-dev", sets=("substrate.api.public_cidrs=[203.0.113.0/24]",))
    cluster = next(r for r in json.loads(rendered.files["resources.json"])["resources"]
               if r["type"] == "aws:eks/cluster:Cluster")
    assert cluster["inputs"]["vpcConfig"]["endpointPublicAccess"] is True
    assert cluster["inputs"]["vpcConfig"]["publicAccessCidrs"] == ["203.0.113.0/24"]


def test_admin_access_entries_are_explicit():
    entries = of_type("aws:eks/accessEntry:AccessEntry")
    assert [e["inputs"]["principalArn"] for e in entries] == ["arn:aws:iam::111122223333:role/mlcluster-admin"]
    (assoc,) = of_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
    assert assoc["inputs"]["policyArn"].endswith("AmazonEKSClusterAdminPolicy")


def test_kms_key_rotates_waits_30_days_is_protected_and_any_wildcard_is_this_account_through_ec2():
    key = one("aws:kms/key:Key")
    i = key["inputs"]
    assert i["enableKeyRotation"] is True and i["deletionWindowInDays"] == 30 and key["options"]["protect"]
    for statement in json.loads(i["policy"])["Statement"]:
        if statement["Principal"] in ("*", {"AWS": "*"}):  # the aws/ebs key's pattern (KMS: kms:ViaService)
            assert statement["Condition"]["StringEquals"] == {"kms:CallerAccount": "111122223333",
                                                              "kms:ViaService": "ec2.us-east-1.amazonaws.com"}


def test_node_launch_templates_require_imdsv2_and_encrypt_root_volumes():
    templates = of_type("aws:ec2/launchTemplate:LaunchTemplate")
    assert len(templates) == 5
    for lt in templates:
        meta = lt["inputs"]["metadataOptions"]
        assert meta["httpTokens"] == "required" and meta["httpPutResponseHopLimit"] == 1  # checks 9, 10
        ebs = lt["inputs"]["blockDeviceMappings"][0]["ebs"]
        assert ebs["encrypted"] == "true" and ebs["volumeType"] == "gp3" and ebs["kmsKeyId"]  # checks 13
        assert "userData" not in lt["inputs"]  # checks 14


def test_node_groups_gpu_ami_labels_taints_upgrades_and_autoscaler_owned_size():
    groups = {g["inputs"]["nodeGroupName"]: g for g in of_type("aws:eks/nodeGroup:NodeGroup")}
    assert set(groups) == {"system", "cpu", "gpu-a10g", "gpu-l4", "gpu-h100"}
    for name, group in groups.items():
        i = group["inputs"]
        assert group["options"]["ignoreChanges"] == ["scalingConfig.desiredSize"]  # checks 49
        assert i["launchTemplate"]["id"]
        if name.startswith("gpu-"):
            assert i["amiType"] == "AL2023_x86_64_NVIDIA"
            assert {"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"} in i["taints"]
            assert i["labels"]["nvidia.com/gpu.product"].startswith("NVIDIA-")
            assert i["updateConfig"] == {"updateStrategy": "MINIMAL", "maxUnavailable": 1}  # checks 48
            assert i["scalingConfig"]["minSize"] == 0
        else:
            assert i["amiType"] == "AL2023_x86_64_STANDARD"
            assert i["updateConfig"] == {"maxUnavailablePercentage": 33}
    assert groups["gpu-a10g"]["inputs"]["capacityType"] == "SPOT"
    assert groups["gpu-h100"]["inputs"]["capacityType"] == "ON_DEMAND"
    assert groups["gpu-l4"]["inputs"]["labels"]["nvidia.com/gpu.count"] == "4"


def test_efa_pool_gets_efa_interface_and_cluster_placement_group_in_one_az():
    (pg,) = of_type("aws:ec2/placementGroup:PlacementGroup")
    assert pg["inputs"]["strategy"] == "cluster"
    lt = next(t for t in of_type("aws:ec2/launchTemplate:LaunchTemplate") if t["name"].endswith("gpu-h100"))
    assert lt["inputs"]["networkInterfaces"][0]["interfaceType"] == "efa"
    group = next(g for g in of_type("aws:eks/nodeGroup:NodeGroup") if g["inputs"]["nodeGroupName"] == "gpu-h100")
    assert len(group["inputs"]["subnetIds"]) == 1


def test_node_role_is_minimal_and_addons_use_pod_identity():
    node_policies = [a["inputs"]["policyArn"] for a in of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
                     if "-node-" in a["name"]]
    assert sorted(p.rsplit("/", 1)[1] for p in node_policies) == [
        "AmazonEC2ContainerRegistryPullOnly", "AmazonEKSWorkerNodePolicy", "AmazonSSMManagedInstanceCore"]
    addons = {a["inputs"]["addonName"]: a["inputs"] for a in of_type("aws:eks/addon:Addon")}
    assert set(addons) == {"vpc-cni", "kube-proxy", "coredns", "eks-pod-identity-agent", "aws-ebs-csi-driver",
                           "metrics-server",  # 16.10: HPAs (KServe scaling on CPU) read metrics.k8s.io
                           "aws-efs-csi-driver"}  # 16.8: notebook homes that follow a user across AZs
    assert json.loads(addons["vpc-cni"]["configurationValues"]) == {"enableNetworkPolicy": "true"}  # checks 8
    assert addons["vpc-cni"]["podIdentityAssociations"][0]["serviceAccount"] == "aws-node"
    assert addons["aws-ebs-csi-driver"]["podIdentityAssociations"][0]["serviceAccount"] == "ebs-csi-controller-sa"
    assert addons["aws-efs-csi-driver"]["podIdentityAssociations"][0]["serviceAccount"] == "efs-csi-controller-sa"


def test_pod_identity_roles_trust_one_cluster_namespace_and_service_account():
    roles = [r for r in of_type("aws:iam/role:Role") if "pods.eks.amazonaws.com" in r["inputs"]["assumeRolePolicy"]]
    bound = set()
    for role in roles:
        condition = json.loads(role["inputs"]["assumeRolePolicy"])["Statement"][0]["Condition"]["StringEquals"]
        assert condition["aws:RequestTag/eks-cluster-arn"].startswith("arn:aws:eks:")
        bound.add((condition["aws:RequestTag/kubernetes-namespace"],
                   condition["aws:RequestTag/kubernetes-service-account"]))
    assert bound == {("kube-system", "aws-node"), ("kube-system", "ebs-csi-controller-sa"),
                     ("kube-system", "efs-csi-controller-sa"), ("kube-system", "cluster-autoscaler"),
                     ("external-secrets", "external-secrets"),
                     ("mlflow", "mlflow"),
                     ("team-vision", "workload"), ("team-nlp", "workload")}


def test_no_generated_policy_has_wildcard_actions():
    for policy in of_type("aws:iam/rolePolicy:RolePolicy"):
        for statement in json.loads(policy["inputs"]["policy"])["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert not [a for a in actions if a == "*" or a.endswith(":*")], policy["urn"]


def test_network_default_sg_flow_logs_endpoints_and_described_rules():
    (default_sg,) = of_type("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
    assert default_sg["inputs"]["ingress"] == [] and default_sg["inputs"]["egress"] == []  # checks 18
    (flow,) = of_type("aws:ec2/flowLog:FlowLog")
    assert flow["inputs"]["trafficType"] == "ALL"  # checks 19
    for sg in of_type("aws:ec2/securityGroup:SecurityGroup"):
        assert sg["inputs"]["description"]
        for rule in sg["inputs"].get("ingress", []) + sg["inputs"].get("egress", []):
            assert rule["description"] and "0.0.0.0/0" not in rule.get("cidrBlocks", [])  # checks 20, 21
    services = sorted(e["inputs"]["serviceName"].rsplit(".", 2)[-1] if "ecr" not in e["inputs"]["serviceName"]
                      else e["inputs"]["serviceName"].split(".", 3)[-1]
                      for e in of_type("aws:ec2/vpcEndpoint:VpcEndpoint"))
    assert services == ["ecr.api", "ecr.dkr", "s3", "sts"]
    assert len(of_type("aws:ec2/natGateway:NatGateway")) == 3  # per AZ in production
    subnets = of_type("aws:ec2/subnet:Subnet")
    assert len(subnets) == 6
    for subnet in subnets:
        assert subnet["inputs"]["mapPublicIpOnLaunch"] is False if "public" in subnet["name"] else True  # checks 11
    private = [s for s in subnets if "private" in s["name"]]
    assert all(s["inputs"]["tags"]["karpenter.sh/discovery"] == "mlcluster-render" for s in private)


def test_artifacts_bucket_is_private_encrypted_versioned_and_protected():
    bucket = one("aws:s3/bucket:Bucket")
    assert bucket["options"]["protect"] and bucket["options"]["retainOnDelete"]  # checks 45
    assert bucket["inputs"]["forceDestroy"] is False
    pab = one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")["inputs"]
    assert all(pab[k] for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"))
    sse = one("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")["inputs"]
    assert sse["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "aws:kms"  # checks 29
    assert one("aws:s3/bucketVersioning:BucketVersioning")["inputs"]["versioningConfiguration"]["status"] == "Enabled"
    lifecycle = one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")["inputs"]["rules"][0]
    assert lifecycle["noncurrentVersionExpiration"]["noncurrentDays"] == 90  # checks 30
    ownership = one("aws:s3/bucketOwnershipControls:BucketOwnershipControls")["inputs"]
    assert ownership["rule"]["objectOwnership"] == "BucketOwnerEnforced"  # checks 31


def test_storage_classes_default_gp3_and_retain_for_user_data():
    files = rendered_profile("aws-gpu").files
    gp3 = yaml.safe_load(files["manifests/_cluster/storageclass-gp3.yaml"])
    retain = yaml.safe_load(files["manifests/_cluster/storageclass-gp3-retain.yaml"])
    assert gp3["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"
    assert gp3["parameters"]["encrypted"] == "true" and gp3["parameters"]["kmsKeyId"].startswith("arn:aws:kms")
    assert retain["reclaimPolicy"] == "Retain"  # checks 46


def test_kubeconfig_is_exec_based_and_secret():
    rendered = rendered_profile("aws-gpu")
    value, secret = rendered.result.outputs["kubeconfig"]
    assert secret
    user = json.loads(value)["users"][0]["user"]["exec"]
    assert user["command"] == "aws" and user["args"][:2] == ["eks", "get-token"]
    assert '"kubeconfig": "[secret]"' in rendered.files["resources.json"]


def test_addons_wait_for_nodes_so_destroy_removes_them_first():
    platform_children = [r for r in resources() if r["type"] == "mlcluster:addons:Monitoring"]
    deps = platform_children[0]["dependencies"]
    assert any("aws:eks/addon:Addon::" in d and d.endswith("coredns") for d in deps)


def test_dev_profile_is_cheap():
    assert len(of_type("aws:ec2/natGateway:NatGateway", "aws-dev")) == 1
    assert len(of_type("aws:ec2/subnet:Subnet", "aws-dev")) == 4
    assert not of_type("aws:ec2/vpcEndpoint:VpcEndpoint", "aws-dev")
    cluster = one("aws:eks/cluster:Cluster", "aws-dev")
    assert cluster["inputs"]["deletionProtection"] is False and not cluster["options"]["protect"]


@pytest.mark.parametrize("profile", ["aws-gpu", "aws-dev"])
def test_every_aws_resource_is_on_the_regional_provider(profile):
    for r in resources(profile):
        if r["custom"] and r["type"].startswith("aws:"):
            assert r["provider"].endswith("pulumi:providers:aws::mlcluster-aws"), r["urn"]


def test_optional_efs_is_encrypted_protected_and_nfs_from_the_vpc_only():
    from mlcluster.render import render

    rendered = render(profile="aws-dev", sets=("substrate.efs=true",))
    res = json.loads(rendered.files["resources.json"])["resources"]
    (fs,) = [r for r in res if r["type"] == "aws:efs/fileSystem:FileSystem"]
    assert fs["inputs"]["encrypted"] is True and fs["inputs"]["kmsKeyId"]
    assert fs["options"]["protect"] and fs["options"]["retainOnDelete"]
    assert len([r for r in res if r["type"] == "aws:efs/mountTarget:MountTarget"]) == 2
    (sg,) = [r for r in res if r["type"] == "aws:ec2/securityGroup:SecurityGroup" and "efs" in r["name"]]
    assert sg["inputs"]["ingress"][0]["cidrBlocks"] == ["10.1.0.0/16"]
    assert "aws-efs-csi-driver" in {r["inputs"]["addonName"] for r in res if r["type"] == "aws:eks/addon:Addon"}
    efs_class = yaml.safe_load(rendered.files["manifests/_cluster/storageclass-efs.yaml"])
    assert efs_class["reclaimPolicy"] == "Retain" and efs_class["provisioner"] == "efs.csi.aws.com"


def test_eks_render_is_byte_identical_run_to_run():
    from mlcluster.render import render

    assert render(profile="aws-gpu").files == render(profile="aws-gpu").files
