"""The platform's customer-managed KMS key: EKS secrets envelope encryption, log groups, EBS volumes, S3.

Rotation on, 30-day deletion window, `protect`ed, and an explicit key policy: the account root (so IAM
policies can grant use), CloudWatch Logs scoped to this account's log groups, and EBS volume encryption for
instances this account launches through EC2.
"""

from __future__ import annotations

import json

from mlcluster.deferred import aws, pulumi

VOLUME_ACTIONS = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]


def key_policy(account_id: str, partition: str, region: str) -> str:
    """Node root volumes are encrypted with this key by whoever launches them: Auto Scaling's service-linked role
    for managed node groups, Karpenter's controller role for its nodes. Naming the service-linked role fails in a
    fresh account (it exists only after the first Auto Scaling group, and KMS refuses a policy whose principal does
    not exist: MalformedPolicyDocumentException), and Karpenter's nodes terminate at launch without a grant
    (karpenter.sh troubleshooting, "Node terminates before ready on failed encrypted EBS volume"). So: any
    principal of this account, only through EC2 in this region (kms:CallerAccount + kms:ViaService, the
    conditions of the AWS-managed aws/ebs key; KMS developer guide, "kms:ViaService")."""
    root = f"arn:{partition}:iam::{account_id}:root"
    through_ec2 = {"kms:CallerAccount": account_id, "kms:ViaService": f"ec2.{region}.amazonaws.com"}
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
            {"Sid": "NodeVolumesThroughEC2", "Effect": "Allow", "Principal": {"AWS": "*"},
             "Action": VOLUME_ACTIONS, "Resource": "*", "Condition": {"StringEquals": through_ec2}},
            {"Sid": "NodeVolumeGrantsThroughEC2", "Effect": "Allow", "Principal": {"AWS": "*"},
             "Action": "kms:CreateGrant", "Resource": "*",
             "Condition": {"StringEquals": through_ec2, "Bool": {"kms:GrantIsForAWSResource": "true"}}},
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
