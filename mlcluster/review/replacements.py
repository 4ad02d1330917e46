"""Which input changes replace a resource (delete and create) rather than update it in place, and which
resources hold data. A replacement of a stateful resource loses data unless it is protected, so review
must see it first (checks.md item 47).

The paths are the providers' force-new properties for the resources the toolkit creates; `replaceOnChanges`
options and any URN change (a rename) count too.
"""

from __future__ import annotations

REPLACING: dict[str, tuple[str, ...]] = {
    "aws:eks/cluster:Cluster": ("name", "vpcConfig.subnetIds", "kubernetesNetworkConfig", "encryptionConfig"),
    "aws:eks/nodeGroup:NodeGroup": ("amiType", "capacityType", "instanceTypes", "subnetIds", "nodeGroupName",
                                    "nodeRoleArn", "clusterName", "diskSize", "remoteAccess"),
    "aws:ec2/vpc:Vpc": ("cidrBlock",),
    "aws:ec2/subnet:Subnet": ("cidrBlock", "availabilityZone", "vpcId"),
    "aws:ec2/launchTemplate:LaunchTemplate": ("name",),
    "aws:ec2/placementGroup:PlacementGroup": ("name", "strategy"),
    "aws:ec2/securityGroup:SecurityGroup": ("name", "description", "vpcId"),
    "aws:s3/bucket:Bucket": ("bucket",),
    "aws:kms/key:Key": ("customerMasterKeySpec", "keyUsage", "multiRegion"),
    "aws:efs/fileSystem:FileSystem": ("encrypted", "kmsKeyId", "performanceMode", "creationToken"),
    "aws:rds/instance:Instance": ("identifier", "engine", "storageEncrypted", "kmsKeyId", "dbName", "username"),
    "aws:iam/role:Role": ("name",),
    "aws:cloudwatch/logGroup:LogGroup": ("name",),
    "aws:secretsmanager/secret:Secret": ("name",),
    "aws:sqs/queue:Queue": ("name", "fifoQueue"),
    "random:index/randomPassword:RandomPassword": ("length", "special", "upper", "lower", "numeric", "keepers"),
    "kubernetes:helm.sh/v3:Release": ("name", "namespace"),
    "kubernetes:core/v1:PersistentVolumeClaim": ("spec.storageClassName", "spec.accessModes", "spec.volumeName",
                                                 "spec.selector"),
    "kubernetes:storage.k8s.io/v1:StorageClass": ("provisioner", "parameters", "reclaimPolicy",
                                                  "volumeBindingMode"),
    "command:remote:Command": ("triggers",),  # the scripts re-run; connection details are ignored by design
}
KUBERNETES_IDENTITY = ("metadata.name", "metadata.namespace", "apiVersion", "kind")

# Resources that hold data (their replacement or removal loses it).
STATEFUL_TYPES = ("aws:s3/bucket:Bucket", "aws:kms/key:Key", "aws:efs/fileSystem:FileSystem",
                  "aws:rds/instance:Instance", "aws:rds/cluster:Cluster", "aws:eks/cluster:Cluster",
                  "kubernetes:core/v1:PersistentVolumeClaim", "kubernetes:postgresql.cnpg.io/v1:Cluster",
                  "random:index/randomPassword:RandomPassword")


def replacing_paths(type_: str, replace_on_changes: list[str] | tuple[str, ...] = ()) -> tuple[str, ...]:
    paths = REPLACING.get(type_, ())
    if type_.startswith("kubernetes:") and type_ != "kubernetes:helm.sh/v3:Release":
        paths = (*paths, *KUBERNETES_IDENTITY)
    return (*paths, *replace_on_changes)


def covered(path: str, prefixes: list[str] | tuple[str, ...]) -> bool:
    """Whether a dotted path (list items as [i]) falls under one of Pulumi's property paths (`a.b`, `a[*]`)."""
    for prefix in prefixes:
        prefix = prefix.replace("[*]", "")
        if prefix == "*" or path == prefix or path.startswith((f"{prefix}.", f"{prefix}[")):
            return True
    return False


def replaces(type_: str, path: str, replace_on_changes: list[str] | tuple[str, ...] = ()) -> bool:
    """Whether changing input `path` replaces a resource of this type."""
    return covered(path, replacing_paths(type_, replace_on_changes))


def is_stateful(type_: str) -> bool:
    return type_ in STATEFUL_TYPES
