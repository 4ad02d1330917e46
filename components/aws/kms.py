"""The platform's customer-managed KMS key: EKS secrets envelope encryption, log groups, EBS volumes, S3.

Rotation on, 30-day deletion window, `protect`ed, and an explicit key policy without a wildcard principal:
the account root (so IAM policies can grant use), and CloudWatch Logs scoped to this account's log groups.
"""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws


def key_policy(account_id: str, partition: str, region: str) -> str:
    root = f"arn:{partition}:iam::{account_id}:root"
    autoscaling = (f"arn:{partition}:iam::{account_id}:role/aws-service-role/autoscaling.amazonaws.com/"
                   "AWSServiceRoleForAutoScaling")
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "AccountAdministersKeyThroughIAM", "Effect": "Allow", "Principal": {"AWS": root},
             "Action": "kms:*", "Resource": "*"},
            {"Sid": "CloudWatchLogsEncryptThisAccountsLogGroups", "Effect": "Allow",
             "Principal": {"Service": f"logs.{region}.amazonaws.com"},
             "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
             "Resource": "*",
             "Condition": {"ArnLike": {
                 "kms:EncryptionContext:aws:logs:arn": f"arn:{partition}:logs:{region}:{account_id}:log-group:*"}}},
            # Managed node groups launch through Auto Scaling, whose service-linked role must be able to use
            # the key for the encrypted root volumes, or nodes never start.
            {"Sid": "AutoScalingUsesKeyForNodeVolumes", "Effect": "Allow",
             "Principal": {"AWS": autoscaling},
             "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
             "Resource": "*"},
            {"Sid": "AutoScalingGrantsForNodeVolumes", "Effect": "Allow", "Principal": {"AWS": autoscaling},
             "Action": "kms:CreateGrant", "Resource": "*",
             "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}}},
        ],
    }, sort_keys=True)


def platform_key(name: str, account_id: str, partition: str, region: str,
                 opts: pulumi.ResourceOptions) -> aws.kms.Key:
    key = aws.kms.Key(
        f"{name}-key",
        description=f"mlcluster {name}: Kubernetes secrets, logs, volumes and artifacts",
        enable_key_rotation=True,
        deletion_window_in_days=30,
        policy=key_policy(account_id, partition, region),
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(protect=True)),
    )
    aws.kms.Alias(f"{name}-key", name=f"alias/mlcluster/{name}", target_key_id=key.key_id, opts=opts)
    return key
