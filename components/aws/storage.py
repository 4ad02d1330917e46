"""Storage: encrypted gp3 StorageClasses (default, and `Retain` for user data) and the ML artifacts bucket.

The bucket is versioned with a noncurrent-version lifecycle, SSE-KMS with the platform key, all four
public-access blocks, ACLs disabled, TLS-only by policy, `protect`ed and `retain_on_delete`: a
`pulumi destroy` never takes the team's models with it.
"""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws

from mlcluster.components import k8s as objects

DEFAULT_CLASS = "gp3"
RETAIN_CLASS = "gp3-retain"


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


class ArtifactsBucket(pulumi.ComponentResource):
    def __init__(self, name: str, bucket_name: str, kms_key_arn: pulumi.Input[str],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlcluster:aws:ArtifactsBucket", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        bucket = aws.s3.Bucket(f"{name}-bucket", bucket=bucket_name, force_destroy=False,
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
