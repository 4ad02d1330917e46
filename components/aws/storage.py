"""Storage: encrypted gp3 StorageClasses (default, and `Retain` for user data) and the ML artifacts bucket.

The bucket is versioned with a noncurrent-version lifecycle, SSE-KMS with the platform key, all four
public-access blocks, ACLs disabled, TLS-only by policy, `protect`ed and `retain_on_delete`: a
`pulumi destroy` never takes the team's models with it.
"""

from __future__ import annotations

import json
from typing import Any

from mlcluster.components import k8s as objects
from mlcluster.deferred import Component, aws, pulumi

DEFAULT_CLASS = "gp3"
RETAIN_CLASS = "gp3-retain"
EFS_CLASS = "efs"


def efs_class_manifest(file_system_id: pulumi.Input[str]) -> dict[str, Any]:
    """ReadWriteMany volumes as EFS access points; Retain, since what is shared is usually user data."""
    return {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": objects.metadata(EFS_CLASS),
            "provisioner": "efs.csi.aws.com", "reclaimPolicy": "Retain", "volumeBindingMode": "Immediate",
            "parameters": {"provisioningMode": "efs-ap", "fileSystemId": file_system_id, "directoryPerms": "700",
                           "basePath": "/dynamic"}}


class SharedFileSystem(Component):
    """EFS encrypted with the platform key, protected, reachable over NFS from the VPC only."""

    def __init__(self, name: str, *, vpc_id: pulumi.Input[str], vpc_cidr: str, subnet_ids: list[pulumi.Input[str]],
                 kms_key_arn: pulumi.Input[str], opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlcluster:aws:SharedFileSystem", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        fs = aws.efs.FileSystem(f"{name}-fs", encrypted=True, kms_key_id=kms_key_arn,
                                throughput_mode="elastic", tags={"Name": name},
                                opts=pulumi.ResourceOptions(parent=self, protect=True, retain_on_delete=True))
        aws.efs.BackupPolicy(f"{name}-backup", file_system_id=fs.id, backup_policy={"status": "ENABLED"},
                             opts=child)
        sg = aws.ec2.SecurityGroup(
            f"{name}-nfs", vpc_id=vpc_id, description="EFS mount targets: NFS from inside the VPC",
            ingress=[{"protocol": "tcp", "from_port": 2049, "to_port": 2049, "cidr_blocks": [vpc_cidr],
                      "description": "NFS from the VPC"}], egress=[], opts=child)
        for i, subnet in enumerate(subnet_ids):
            aws.efs.MountTarget(f"{name}-mount-{i}", file_system_id=fs.id, subnet_id=subnet,
                                security_groups=[sg.id], opts=child)
        self.file_system = fs
        self.register_outputs({"fileSystemId": fs.id})


def storage_class_manifests(kms_key_arn: pulumi.Input[str]) -> list[dict[str, Any]]:
    params = {"type": "gp3", "encrypted": "true", "kmsKeyId": kms_key_arn}
    base = {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "provisioner": "ebs.csi.aws.com",
            "volumeBindingMode": "WaitForFirstConsumer", "allowVolumeExpansion": True, "parameters": params}
    return [
        {**base, "metadata": objects.metadata(
            DEFAULT_CLASS, annotations={"storageclass.kubernetes.io/is-default-class": "true"}),
         "reclaimPolicy": "Delete"},
        # Notebooks, experiment tracking, databases: the volume outlives its claim (checks 46).
        {**base, "metadata": objects.metadata(RETAIN_CLASS), "reclaimPolicy": "Retain"},
    ]


class ArtifactsBucket(Component):
    def __init__(self, name: str, bucket_prefix: str, kms_key_arn: pulumi.Input[str],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        """The bucket outlives a destroy (retain_on_delete: it holds models and artifacts), so a fixed name would
        make the next `up` of the same stack fail (BucketAlreadyOwnedByYou outside us-east-1): each create gets
        a fresh name from the prefix, and the retained bucket stays where it was (README: what survives)."""
        super().__init__("mlcluster:aws:ArtifactsBucket", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        bucket = aws.s3.Bucket(f"{name}-bucket", bucket_prefix=bucket_prefix, force_destroy=False,
                               opts=pulumi.ResourceOptions(parent=self, protect=True, retain_on_delete=True))
        aws.s3.BucketPublicAccessBlock(f"{name}-public-access", bucket=bucket.id, block_public_acls=True,
                                       block_public_policy=True, ignore_public_acls=True,
                                       restrict_public_buckets=True, opts=child)
        aws.s3.BucketOwnershipControls(f"{name}-ownership", bucket=bucket.id,
                                       rule={"object_ownership": "BucketOwnerEnforced"}, opts=child)
        aws.s3.BucketVersioning(f"{name}-versioning", bucket=bucket.id,
                                versioning_configuration={"status": "Enabled"}, opts=child)
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption", bucket=bucket.id,
            rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "aws:kms",
                                                                 "kms_master_key_id": kms_key_arn},
                    "bucket_key_enabled": True}], opts=child)
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle", bucket=bucket.id,
            rules=[{"id": "expire-noncurrent-versions", "status": "Enabled", "filter": {},
                    "noncurrent_version_expiration": {"noncurrent_days": 90},
                    "abort_incomplete_multipart_upload": {"days_after_initiation": 7}}], opts=child)
        aws.s3.BucketPolicy(f"{name}-tls-only", bucket=bucket.id, policy=bucket.arn.apply(lambda arn: json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": {"AWS": "*"},
                           "Action": "s3:*", "Resource": [arn, f"{arn}/*"],
                           "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}, sort_keys=True)), opts=child)
        self.bucket = bucket
        self.register_outputs({"bucket": bucket.bucket, "arn": bucket.arn})
