"""Guardrails for AWS resources (../shared/checks.md items 1–34)."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from typing import Any

from mlcluster.policy.model import Resource, Rule

LOG_TYPES = {"api", "audit", "authenticator", "controllerManager", "scheduler"}
SUPPORTED_MINORS = ("1.32", "1.33", "1.34", "1.35", "1.36", "1.37")
WORLD = {"0.0.0.0/0", "::/0"}
NODE_POLICIES = {"AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryPullOnly", "AmazonSSMManagedInstanceCore",
                 "AmazonEC2ContainerRegistryReadOnly", "AmazonEKS_CNI_Policy"}
GPU_TAINT = "nvidia.com/gpu"


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [] if value is None else [value]


def policy_problems(statements: list[dict[str, Any]]) -> list[str]:
    """What makes a generated IAM policy too broad: `*` actions, write actions on `*` without a condition."""
    problems = []
    for statement in statements:
        if statement.get("Effect") != "Allow":
            continue
        actions = [a for a in _list(statement.get("Action")) if isinstance(a, str)]
        resources = _list(statement.get("Resource"))
        wild = [a for a in actions if a == "*" or a.endswith(":*")]
        if wild:
            problems.append(f"wildcard action {wild} in statement {statement.get('Sid', '')!r}".replace(" ''", ""))
        if "*" in resources and not statement.get("Condition"):
            writes = [a for a in actions if ":" in a and not a.split(":")[1].startswith(("Describe", "List", "Get"))]
            if writes:
                problems.append(f"write actions {writes} on Resource '*' without a condition")
    return problems


# --- EKS control plane ----------------------------------------------------------------------------------


def _secrets_encrypted(r: Resource) -> Iterator[str]:
    config = r.prop("encryptionConfig") or {}
    config = config[0] if isinstance(config, list) and config else config
    if "secrets" not in _list(config.get("resources") if isinstance(config, dict) else None) or \
            not (isinstance(config, dict) and (config.get("provider") or {}).get("keyArn")):
        yield "Kubernetes Secrets are not envelope-encrypted with a customer-managed KMS key"


def _control_plane_logs(r: Resource) -> Iterator[str]:
    missing = LOG_TYPES - set(_list(r.prop("enabledClusterLogTypes")))
    if missing:
        yield f"control-plane log types off: {', '.join(sorted(missing))}"


def _log_group(r: Resource) -> Iterator[str]:
    if not r.prop("retentionInDays"):
        yield "log group keeps logs forever (no retention period)"
    if not r.prop("kmsKeyId"):
        yield "log group is not encrypted with a KMS key"


def _endpoint(r: Resource) -> Iterator[str]:
    vpc = r.prop("vpcConfig") or {}
    if vpc.get("endpointPrivateAccess") is not True:
        yield "the API endpoint is not reachable privately"
    if vpc.get("endpointPublicAccess", True) is not False:
        cidrs = set(_list(vpc.get("publicAccessCidrs")))
        if not cidrs or cidrs & WORLD:
            yield "the public API endpoint is open to the whole internet; list CIDRs or turn it off"


def _version(r: Resource) -> Iterator[str]:
    version = r.prop("version")
    if isinstance(version, str) and version not in SUPPORTED_MINORS:
        yield f"Kubernetes {version} is not a supported version ({', '.join(SUPPORTED_MINORS)})"


def _authentication(r: Resource) -> Iterator[str]:
    access = r.prop("accessConfig") or {}
    if access.get("authenticationMode") != "API":
        yield "authentication mode is not API (access entries)"
    if access.get("bootstrapClusterCreatorAdminPermissions") is not False:
        yield "whoever creates the cluster becomes an implicit admin"


def _deletion_protection(r: Resource) -> Iterator[str]:
    if r.protect and r.prop("deletionProtection") is not True:
        yield "a protected (production) cluster has no EKS deletion protection"


def _network_policy(r: Resource) -> Iterator[str]:
    if r.prop("addonName") == "vpc-cni":
        config = _json(r.prop("configurationValues")) or {}
        if str(config.get("enableNetworkPolicy", "false")).lower() != "true":
            yield "the VPC CNI does not enforce NetworkPolicies: team isolation does nothing"


# --- nodes ------------------------------------------------------------------------------------------------


def _imds(r: Resource) -> Iterator[str]:
    if (r.prop("metadataOptions") or {}).get("httpTokens") != "required":
        yield "IMDSv2 is not required"


def _hop_limit(r: Resource) -> Iterator[str]:
    limit = (r.prop("metadataOptions") or {}).get("httpPutResponseHopLimit")
    if limit not in (1, 1.0):
        yield f"IMDS hop limit is {limit}: pods can reach the node's credentials"


def _public_ip(r: Resource) -> Iterator[str]:
    for interface in _list(r.prop("networkInterfaces")):
        if str(interface.get("associatePublicIpAddress", "false")).lower() == "true":
            yield "nodes get public IP addresses"


def _ssh(r: Resource) -> Iterator[str]:
    if r.prop("remoteAccess") or r.prop("keyName"):
        yield "SSH access to nodes is configured; use SSM Session Manager"


def _volumes_encrypted(r: Resource) -> Iterator[str]:
    for mapping in _list(r.prop("blockDeviceMappings")) + _list(r.prop("spec", "blockDeviceMappings")):
        ebs = mapping.get("ebs") or {}
        if str(ebs.get("encrypted", "false")).lower() != "true":
            yield f"volume {mapping.get('deviceName', '')} is not encrypted"


_SECRET_IN_TEXT = re.compile(r"(AKIA[0-9A-Z]{16}|aws_secret_access_key|password\s*=|BEGIN [A-Z ]*PRIVATE KEY)", re.I)


def _user_data(r: Resource) -> Iterator[str]:
    data = r.prop("userData")
    if isinstance(data, str) and data:
        try:
            text = base64.b64decode(data, validate=True).decode(errors="replace")
        except ValueError:
            text = data
        if _SECRET_IN_TEXT.search(text):
            yield "user data contains what looks like a credential"


def _ami(r: Resource) -> Iterator[str]:
    ami = r.prop("amiType")
    if isinstance(ami, str) and not ami.startswith(("AL2023_", "BOTTLEROCKET_")):
        yield f"AMI type {ami} is not an EKS-optimised AL2023 or Bottlerocket image"


def _gpu_taint(r: Resource) -> Iterator[str]:
    labels = r.prop("labels") or r.prop("spec", "template", "metadata", "labels") or {}
    if "nvidia.com/gpu.product" not in labels:
        return
    taints = _list(r.prop("taints")) + _list(r.prop("spec", "template", "spec", "taints"))
    if not any(t.get("key") == GPU_TAINT and t.get("effect") in ("NO_SCHEDULE", "NoSchedule") for t in taints):
        yield "a GPU pool without the nvidia.com/gpu NoSchedule taint: CPU pods will take its nodes"


def _update_config(r: Resource) -> Iterator[str]:
    update = r.prop("updateConfig") or {}
    gpu = any(t.get("key") == GPU_TAINT for t in _list(r.prop("taints")))
    if gpu and update.get("updateStrategy") != "MINIMAL":
        yield "GPU node groups roll with the MINIMAL update strategy (AWS's advice for accelerated nodes)"
    if not gpu and not (update.get("maxUnavailable") in (1, 1.0) or 0 < (update.get("maxUnavailablePercentage") or 0)
                        <= 34):
        yield "node groups roll one node or at most a third at a time"


def _desired_ignored(r: Resource) -> Iterator[str]:
    if "scalingConfig.desiredSize" not in r.ignore_changes:
        yield "desiredSize is managed by Pulumi: every `pulumi up` scales the pool back"


def _node_role(resources: list[Resource]) -> Iterator[tuple[Resource, str]]:
    node_roles = {r.prop("name") or r.name for r in resources if r.type == "aws:iam/role:Role"
                  and "ec2.amazonaws.com" in str(r.prop("assumeRolePolicy"))}
    for r in resources:
        if r.type == "aws:iam/rolePolicyAttachment:RolePolicyAttachment" and r.prop("role") in node_roles:
            policy = str(r.prop("policyArn", default="")).rsplit("/", 1)[-1]
            if policy not in NODE_POLICIES:
                yield r, f"the node role carries {policy}: add-on permissions belong on Pod Identity roles"


# --- network and IAM ----------------------------------------------------------------------------------


def _default_sg(r: Resource) -> Iterator[str]:
    if r.prop("ingress") or r.prop("egress"):
        yield "the VPC's default security group allows traffic"


def _flow_logs(resources: list[Resource]) -> Iterator[tuple[Resource, str]]:
    if not any(r.type == "aws:ec2/flowLog:FlowLog" for r in resources):
        for vpc in (r for r in resources if r.type == "aws:ec2/vpc:Vpc"):
            yield vpc, "the VPC has no flow logs"


def _rules_of(r: Resource) -> list[dict[str, Any]]:
    if r.type == "aws:ec2/securityGroup:SecurityGroup":
        return [*_list(r.prop("ingress")), *_list(r.prop("egress"))]
    return [r.props]


def _world_ingress(r: Resource) -> Iterator[str]:
    rules = _list(r.prop("ingress")) if r.type == "aws:ec2/securityGroup:SecurityGroup" else \
        [r.props] if r.prop("type", default="ingress") == "ingress" else []
    for rule in rules:
        cidrs = set(_list(rule.get("cidrBlocks")) + _list(rule.get("ipv6CidrBlocks")) +
                    _list(rule.get("cidrIpv4")) + _list(rule.get("cidrIpv6")))
        if cidrs & WORLD:
            yield f"ingress from the whole internet on port {rule.get('fromPort')}"


def _described(r: Resource) -> Iterator[str]:
    if r.type == "aws:ec2/securityGroup:SecurityGroup" and not r.prop("description"):
        yield "security group without a description"
    for rule in _rules_of(r):
        if not rule.get("description"):
            yield f"rule for port {rule.get('fromPort')} has no description"


def _pod_identity_trust(r: Resource) -> Iterator[str]:
    trust = _json(r.prop("assumeRolePolicy")) or {}
    for statement in _list(trust.get("Statement")):
        if "pods.eks.amazonaws.com" in str(statement.get("Principal")):
            condition = (statement.get("Condition") or {}).get("StringEquals") or {}
            wanted = {"aws:RequestTag/eks-cluster-arn", "aws:RequestTag/kubernetes-namespace",
                      "aws:RequestTag/kubernetes-service-account"}
            if not wanted <= set(condition):
                yield "Pod Identity trust is not limited to one cluster, namespace and service account"


def _iam_policy(r: Resource) -> Iterator[str]:
    document = _json(r.prop("policy")) or {}
    yield from policy_problems(_list(document.get("Statement")))


def _admin_attachment(r: Resource) -> Iterator[str]:
    if str(r.prop("policyArn", default="")).endswith(("/AdministratorAccess", "/IAMFullAccess", "/PowerUserAccess")):
        yield f"attaches {r.prop('policyArn')}: no admin policies on generated roles"


# --- KMS, S3, RDS, ECR --------------------------------------------------------------------------------------


def _kms(r: Resource) -> Iterator[str]:
    if r.prop("enableKeyRotation") is not True:
        yield "KMS key rotation is off"


def _kms_window(r: Resource) -> Iterator[str]:
    if r.prop("deletionWindowInDays") not in (30, 30.0):
        yield f"KMS deletion window is {r.prop('deletionWindowInDays')} days, not 30"


def _kms_policy(r: Resource) -> Iterator[str]:
    document = _json(r.prop("policy"))
    if document is None:
        yield "no explicit key policy"
        return
    for statement in _list(document.get("Statement")):
        principal = statement.get("Principal")
        wildcard = principal == "*" or (isinstance(principal, dict) and "*" in _list(principal.get("AWS")))
        # A `*` principal is one account's only when kms:CallerAccount pins it (the aws/ebs key's pattern).
        pinned = ((statement.get("Condition") or {}).get("StringEquals") or {}).get("kms:CallerAccount")
        if statement.get("Effect") == "Allow" and wildcard and not pinned:
            yield "the key policy allows principals of any account (no kms:CallerAccount condition)"


def _paired(kind: str, buckets_message: str) -> Any:
    def check(resources: list[Resource]) -> Iterator[tuple[Resource, str]]:
        buckets = [r for r in resources if r.type == "aws:s3/bucket:Bucket"]
        if len([r for r in resources if r.type == kind]) < len(buckets):
            for bucket in buckets:
                yield bucket, buckets_message
    return check


def _public_access(r: Resource) -> Iterator[str]:
    off = [f for f in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
           if r.prop(f) is not True]
    if off:
        yield f"public access block flags off: {', '.join(off)}"


def _sse(r: Resource) -> Iterator[str]:
    for rule in _list(r.prop("rules")):
        if (rule.get("applyServerSideEncryptionByDefault") or {}).get("sseAlgorithm") != "aws:kms":
            yield "bucket encryption is not SSE-KMS"


def _versioning(r: Resource) -> Iterator[str]:
    if (r.prop("versioningConfiguration") or {}).get("status") != "Enabled":
        yield "versioning is not enabled"


def _lifecycle(r: Resource) -> Iterator[str]:
    if not any(rule.get("noncurrentVersionExpiration") for rule in _list(r.prop("rules"))):
        yield "no lifecycle rule for noncurrent versions"


def _ownership(r: Resource) -> Iterator[str]:
    if (r.prop("rule") or {}).get("objectOwnership") != "BucketOwnerEnforced":
        yield "ACLs are not disabled (BucketOwnerEnforced)"


def _bucket_policy(r: Resource) -> Iterator[str]:
    document = _json(r.prop("policy")) or {}
    for statement in _list(document.get("Statement")):
        if statement.get("Effect") == "Allow" and statement.get("Principal") in ("*", {"AWS": "*"}) and \
                not statement.get("Condition"):
            yield "the bucket policy allows anyone"


def _rds(r: Resource) -> Iterator[str]:
    if r.prop("storageEncrypted") is not True:
        yield "the database is not encrypted"
    if r.prop("publiclyAccessible") is True:
        yield "the database is publicly accessible"
    if r.prop("deletionProtection") is not True:
        yield "the database has no deletion protection"
    if r.prop("skipFinalSnapshot") is True:
        yield "the database skips its final snapshot"
    if not r.prop("backupRetentionPeriod"):
        yield "the database keeps no backups"


def _ecr(r: Resource) -> Iterator[str]:
    if r.prop("imageTagMutability") != "IMMUTABLE":
        yield "image tags are mutable"
    if (r.prop("imageScanningConfiguration") or {}).get("scanOnPush") is not True:
        yield "images are not scanned on push"


ACCOUNT_WIDE_NAMES = {  # names unique in an account and region: two stacks must never share one
    "aws:cloudwatch/logGroup:LogGroup": ("name",), "aws:eks/cluster:Cluster": ("name",),
    "aws:kms/alias:Alias": ("name",), "aws:rds/instance:Instance": ("identifier",),
    "aws:secretsmanager/secret:Secret": ("name", "namePrefix"), "aws:s3/bucket:Bucket": ("bucket", "bucketPrefix"),
    "aws:sqs/queue:Queue": ("name",), "aws:iam/role:Role": ("name",),
    "aws:ec2/placementGroup:PlacementGroup": ("name",),
}


def _stack_of(r: Resource) -> str:
    return r.urn.split("::", 1)[0].rsplit(":", 1)[-1]  # urn:pulumi:<stack>::<project>::…


def _names_scoped(resources: list[Resource]) -> Iterator[tuple[Resource, str]]:
    for r in resources:
        for field in ACCOUNT_WIDE_NAMES.get(r.type, ()):
            name, stack = r.prop(field), _stack_of(r)
            if isinstance(name, str) and not re.search(rf"(^|[^A-Za-z0-9]){re.escape(stack)}([^A-Za-z0-9]|$)", name):
                yield r, f"{field} {name!r} does not carry the stack name {stack!r}: a second stack collides on it"


def _names_free_after_destroy(resources: list[Resource]) -> Iterator[tuple[Resource, str]]:
    for r in resources:
        if r.type == "aws:secretsmanager/secret:Secret" and r.prop("name") and r.prop("recoveryWindowInDays") != 0:
            yield r, "a fixed secret name stays taken for the recovery window after a destroy: use namePrefix"
        if r.type == "aws:s3/bucket:Bucket" and r.prop("bucket"):  # data buckets are retained on delete
            yield r, "a retained bucket keeps its fixed name after a destroy, so the next up fails: use bucketPrefix"


def _efa_groups(resources: list[Resource]) -> Iterator[tuple[Resource, str]]:
    """Every EFA interface carries a group that admits and sends all traffic from and to itself (EC2 User Guide,
    "Get started with EFA"), matched through dependencies, since ids are unknown at preview."""
    def self_rule(kind: str, group: Resource) -> bool:
        return any(x.type == kind and group.urn in x.dependencies and x.prop("ipProtocol") == "-1"
                   and x.prop("referencedSecurityGroupId") == x.prop("securityGroupId") for x in resources)
    by_urn = {r.urn: r for r in resources}
    for template in (r for r in resources if r.type == LAUNCH_TEMPLATE):
        if not any(i.get("interfaceType") == "efa" for i in _list(template.prop("networkInterfaces"))):
            continue
        groups = [by_urn[u] for u in template.dependencies if u in by_urn
                  and by_urn[u].type == "aws:ec2/securityGroup:SecurityGroup"]
        if not any(self_rule("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", g)
                   and self_rule("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule", g) for g in groups):
            yield template, "EFA interfaces without a security group allowing all traffic to and from itself " \
                            "(ingress and egress): NCCL hangs"


def _r(id_: str, title: str, severity: str, rationale: str, checks: tuple[str, ...], types: tuple[str, ...] = (),
       check: Any = None, stack: Any = None) -> Rule:
    return Rule(id_, title, severity, rationale, checks, types, check, stack)  # type: ignore[arg-type]


EKS = "aws:eks/cluster:Cluster"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
SG = ("aws:ec2/securityGroup:SecurityGroup", "aws:ec2/securityGroupRule:SecurityGroupRule",
      "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")

RULES = [
    _r("eks-secrets-encrypted", "Kubernetes Secrets envelope-encrypted with a customer KMS key", "high",
       "Secrets in etcd are readable by anyone with the disk or a backup otherwise.",
       ("checks.md#1", "CKV_AWS_58", "AVD-AWS-0039", "CIS 5.3.1"), (EKS,), _secrets_encrypted),
    _r("eks-control-plane-logs", "All five control-plane log types on", "medium",
       "Audit and authenticator logs are what an incident review needs.", ("checks.md#2", "CKV_AWS_37",
                                                                          "AVD-AWS-0038"), (EKS,), _control_plane_logs),
    _r("log-group-retained-encrypted", "Log groups retained and KMS-encrypted", "medium",
       "Logs hold request details; they should expire and be encrypted.", ("checks.md#3", "CKV_AWS_338",
                                                                            "CKV_AWS_158"),
       ("aws:cloudwatch/logGroup:LogGroup",), _log_group),
    _r("eks-endpoint-private", "Private API endpoint; public only from listed CIDRs", "high",
       "An API open to the internet is an open door for credential stuffing and zero-days.",
       ("checks.md#4", "CKV_AWS_38", "CKV_AWS_39", "AVD-AWS-0040", "AVD-AWS-0041", "CIS 5.4.1", "CIS 5.4.2"),
       (EKS,), _endpoint),
    _r("eks-supported-version", "A supported Kubernetes version", "medium",
       "Unsupported versions get no security fixes.", ("checks.md#5", "CKV_AWS_339"), (EKS,), _version),
    _r("eks-explicit-access", "Authentication mode API, no implicit creator admin", "high",
       "Who administers the cluster must be written down, not inherited from whoever ran `pulumi up`.",
       ("checks.md#6", "CIS 4.1.7"), (EKS,), _authentication),
    _r("eks-deletion-protection", "Deletion protection on protected (production) clusters", "high",
       "A deleted cluster takes every workload with it.", ("checks.md#7",), (EKS,), _deletion_protection),
    _r("eks-network-policy-enforced", "VPC CNI enforces NetworkPolicies", "high",
       "Without enforcement, team isolation policies are decoration.", ("checks.md#8", "CIS 4.3.1"),
       ("aws:eks/addon:Addon",), _network_policy),
    _r("nodes-imdsv2", "IMDSv2 required on nodes", "high", "IMDSv1 hands node credentials to SSRF.",
       ("checks.md#9", "CKV_AWS_79", "AVD-AWS-0028"), (LAUNCH_TEMPLATE,), _imds),
    _r("nodes-imds-hop-limit", "IMDS hop limit 1", "medium", "Pods must not reach the node's instance role.",
       ("checks.md#10", "CKV_AWS_341"), (LAUNCH_TEMPLATE,), _hop_limit),
    _r("nodes-no-public-ip", "Nodes without public IPs", "medium", "Nodes belong in private subnets.",
       ("checks.md#11", "CKV_AWS_88", "CIS 5.4.3"), (LAUNCH_TEMPLATE,), _public_ip),
    _r("nodes-no-ssh", "No SSH to nodes", "high", "SSH keys leak and ports get opened; SSM needs neither.",
       ("checks.md#12", "CKV_AWS_24", "CKV_AWS_100"), (LAUNCH_TEMPLATE, NODE_GROUP), _ssh),
    _r("nodes-volumes-encrypted", "Encrypted node volumes", "high", "Node disks hold images, caches and datasets.",
       ("checks.md#13", "CKV_AWS_8", "CKV_AWS_189"), (LAUNCH_TEMPLATE, "kubernetes:EC2NodeClass"),
       _volumes_encrypted),
    _r("nodes-no-secrets-in-user-data", "No secrets in user data", "high",
       "User data is readable by anything that can read instance attributes.", ("checks.md#14", "CKV_AWS_46"),
       (LAUNCH_TEMPLATE,), _user_data),
    _r("nodes-eks-optimised-ami", "EKS-optimised or Bottlerocket images", "low",
       "Hardened, patched images with the right kubelet settings.", ("checks.md#16", "CIS 3.3.1"),
       (NODE_GROUP,), _ami),
    _r("gpu-pools-tainted", "GPU pools carry the nvidia.com/gpu taint", "high",
       "Otherwise CPU pods fill GPU nodes and GPU jobs wait behind them.", ("issue#8", "checks.md#16"),
       (NODE_GROUP, "kubernetes:NodePool"), _gpu_taint),
    _r("node-role-minimal", "Minimal node role", "medium", "Add-on permissions go on Pod Identity roles.",
       ("checks.md#17", "CIS 5.1.3"), stack=_node_role),
    _r("default-security-group-closed", "The default security group allows nothing", "medium",
       "Anything launched without a group would otherwise talk freely.", ("checks.md#18", "CKV2_AWS_12"),
       ("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup",), _default_sg),
    _r("vpc-flow-logs", "VPC flow logs on", "medium", "Network forensics needs flow logs.",
       ("checks.md#19", "CKV2_AWS_11"), stack=_flow_logs),
    _r("no-world-ingress", "No ingress from 0.0.0.0/0", "high", "Nothing in the platform needs the whole internet.",
       ("checks.md#20", "CKV_AWS_260", "CKV_AWS_277", "CKV_AWS_382"), SG, _world_ingress),
    _r("security-groups-described", "Security groups and rules have descriptions", "low",
       "Reviewers must see why a port is open.", ("checks.md#21", "CKV_AWS_23"), SG, _described),
    _r("pod-identity-trust-scoped", "Add-on roles trusted by one cluster, namespace and service account", "high",
       "A loose trust lets any pod assume the role.", ("checks.md#23", "CIS 5.2.1", "CKV_AWS_60", "CKV_AWS_61"),
       ("aws:iam/role:Role",), _pod_identity_trust),
    _r("iam-no-wildcards", "No wildcard actions, no writes on *", "high",
       "Least privilege for every generated policy.", ("checks.md#24", "CKV_AWS_1", "CKV_AWS_62", "CKV_AWS_63",
                                                      "CKV_AWS_355", "CKV_AWS_356"),
       ("aws:iam/rolePolicy:RolePolicy", "aws:iam/policy:Policy"), _iam_policy),
    _r("iam-no-admin-policies", "No admin managed policies on generated roles", "high",
       "Admin policies defeat every other guardrail.", ("checks.md#24",),
       ("aws:iam/rolePolicyAttachment:RolePolicyAttachment",), _admin_attachment),
    _r("kms-rotation", "KMS key rotation on", "high", "Rotation limits what one leaked key version exposes.",
       ("checks.md#25", "CKV_AWS_7"), ("aws:kms/key:Key",), _kms),
    _r("kms-policy-no-wildcard-principal", "Explicit key policy without a wildcard principal", "high",
       "A `*` principal lets any account use the key, unless kms:CallerAccount pins it to this one.",
       ("checks.md#26", "CKV_AWS_33"), ("aws:kms/key:Key",),
       _kms_policy),
    _r("kms-deletion-window", "KMS deletion window 30 days", "medium", "Time to notice and cancel a deletion.",
       ("checks.md#27",), ("aws:kms/key:Key",), _kms_window),
    _r("s3-public-access-blocked", "All four public-access-block flags on every bucket", "high",
       "Buckets with data must never become public by accident.", ("checks.md#28", "CKV2_AWS_6"),
       ("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",), _public_access,
       _paired("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "the bucket has no public access block")),
    _r("s3-sse-kms", "SSE-KMS on every bucket", "high", "Customer-managed keys for artifacts and models.",
       ("checks.md#29", "CKV_AWS_145"), ("aws:s3/bucketServerSideEncryptionConfiguration:"
                                          "BucketServerSideEncryptionConfiguration",), _sse,
       _paired("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
               "the bucket has no SSE-KMS configuration")),
    _r("s3-versioning", "Versioning on every bucket", "medium", "Overwritten or deleted models can be recovered.",
       ("checks.md#30", "CKV_AWS_21"), ("aws:s3/bucketVersioning:BucketVersioning",), _versioning,
       _paired("aws:s3/bucketVersioning:BucketVersioning", "the bucket is not versioned")),
    _r("s3-noncurrent-lifecycle", "A lifecycle rule for noncurrent versions", "medium",
       "Versioning without expiry grows cost without bound.", ("checks.md#30", "CKV2_AWS_61"),
       ("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",), _lifecycle,
       _paired("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "the bucket has no lifecycle")),
    _r("s3-acls-disabled", "ACLs disabled; no bucket policy open to anyone", "medium",
       "Ownership stays with the account; access goes through IAM.", ("checks.md#31", "CKV_AWS_18", "CKV_AWS_70"),
       ("aws:s3/bucketOwnershipControls:BucketOwnershipControls", "aws:s3/bucketPolicy:BucketPolicy"),
       lambda r: _ownership(r) if "OwnershipControls" in r.type else _bucket_policy(r)),
    _r("rds-encrypted-private-protected", "Databases encrypted, private, protected, backed up", "high",
       "Experiment history and the model registry live there.",
       ("checks.md#32", "checks.md#33", "CKV_AWS_16", "CKV_AWS_17", "CKV_AWS_293", "CKV_AWS_133"),
       ("aws:rds/instance:Instance",), _rds),
    _r("ecr-immutable-scanned", "Container registries immutable and scanned", "medium",
       "A tag must always mean the same image.", ("checks.md#34", "CKV_AWS_51", "CKV_AWS_163"),
       ("aws:ecr/repository:Repository",), _ecr),
    _r("node-group-rolling-updates", "Node groups roll safely (MINIMAL for GPU groups)", "medium",
       "A rollout must not take a whole training pool down at once.", ("checks.md#48",), (NODE_GROUP,),
       _update_config),
    _r("node-group-size-owned-by-autoscaler", "desiredSize ignored after creation", "medium",
       "The autoscaler owns the size; `pulumi up` must not scale a pool back mid-training.", ("checks.md#49",),
       (NODE_GROUP,), _desired_ignored),
    _r("names-scoped-to-stack", "Account-wide names carry the stack name", "medium",
       "A second stack in the same account and region must not collide.", ("issue#13.8",), stack=_names_scoped),
    _r("names-free-after-destroy", "Nothing retained after a destroy blocks the next up by name", "medium",
       "Destroy then up of the same stack must work.", ("issue#13.9",), stack=_names_free_after_destroy),
    _r("efa-security-group-self", "EFA interfaces carry a self-referencing all-traffic group", "high",
       "Without it, multi-node NCCL over EFA hangs.", ("issue#13.3",), stack=_efa_groups),
]
