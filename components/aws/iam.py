"""IAM for add-ons: one role per service account, trusted only through EKS Pod Identity for exactly that
cluster, namespace and service account, with a policy scoped to what the add-on needs.

Add-on permissions never go on the node role (checks 17, 23, 24).
"""

from __future__ import annotations

import json
from typing import Any

from mlcluster.deferred import Component, aws, pulumi

POD_IDENTITY_PRINCIPAL = "pods.eks.amazonaws.com"


def pod_identity_trust(cluster_arn: str, namespace: str, service_account: str) -> str:
    """Trust scoped by the session tags Pod Identity sets: cluster ARN, namespace, service account."""
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": POD_IDENTITY_PRINCIPAL},
            "Action": ["sts:AssumeRole", "sts:TagSession"],
            "Condition": {"StringEquals": {
                "aws:RequestTag/eks-cluster-arn": cluster_arn,
                "aws:RequestTag/kubernetes-namespace": namespace,
                "aws:RequestTag/kubernetes-service-account": service_account,
            }},
        }],
    }, sort_keys=True)


def assert_least_privilege(statements: list[dict[str, Any]]) -> None:
    """Refuse `*` actions and `*`-on-`*`: a generated policy with either is a toolkit bug."""
    for statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement.get("Resource", [])
        resources = resources if isinstance(resources, list) else [resources]
        if any(a == "*" or a.endswith(":*") for a in actions):
            raise ValueError(f"wildcard action in generated policy: {actions}")
        if "*" in resources and statement.get("Effect") == "Allow" and not statement.get("Condition"):
            writes = [a for a in actions if not a.split(":")[1].startswith(("Describe", "List", "Get"))]
            if writes:
                raise ValueError(f"write actions {writes} on Resource '*' without a condition")


class ServiceAccountRole(Component):
    """A role for one Kubernetes service account, bound with a Pod Identity association."""

    def __init__(self, name: str, *, cluster_name: pulumi.Input[str], cluster_arn: pulumi.Input[str],
                 namespace: str, service_account: str,
                 statements: pulumi.Input[list[dict[str, Any]]] | None = None,
                 managed_policy_arns: list[str] | None = None, associate: bool = True,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlcluster:aws:ServiceAccountRole", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        trust = pulumi.Output.from_input(cluster_arn).apply(
            lambda arn: pod_identity_trust(arn, namespace, service_account))
        self.role = aws.iam.Role(f"{name}-role", assume_role_policy=trust,
                                 description=f"Pod Identity role for {namespace}/{service_account}", opts=child)
        for i, arn in enumerate(managed_policy_arns or []):
            aws.iam.RolePolicyAttachment(f"{name}-managed-{i}", role=self.role.name, policy_arn=arn, opts=child)
        if statements is not None:
            def document(stmts: list[dict[str, Any]]) -> str:
                assert_least_privilege(stmts)
                return json.dumps({"Version": "2012-10-17", "Statement": stmts}, sort_keys=True)

            aws.iam.RolePolicy(f"{name}-policy", role=self.role.id,
                               policy=pulumi.Output.from_input(statements).apply(document), opts=child)
        if associate:
            aws.eks.PodIdentityAssociation(f"{name}-association", cluster_name=cluster_name, namespace=namespace,
                                           service_account=service_account, role_arn=self.role.arn, opts=child)
        self.register_outputs({"roleArn": self.role.arn})


def bucket_prefix_role(name: str, facts: Any, prefix: str, namespace: str, service_account: str,
                       parent: pulumi.Resource) -> ServiceAccountRole:
    """A role that may read and write one prefix of the artifacts bucket (and use the platform key only
    through S3), for one service account: team workloads, MLflow."""
    statements = pulumi.Output.all(facts.artifacts_bucket, facts.kms_key_arn).apply(lambda a: [
        {"Sid": "ListOwnPrefix", "Effect": "Allow", "Action": "s3:ListBucket",
         "Resource": f"arn:{facts.partition}:s3:::{a[0]}",
         "Condition": {"StringLike": {"s3:prefix": [prefix, f"{prefix}*"]}}},
        {"Sid": "ReadWriteOwnPrefix", "Effect": "Allow",
         "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
         "Resource": f"arn:{facts.partition}:s3:::{a[0]}/{prefix}*"},
        {"Sid": "UseKeyThroughS3", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
         "Resource": a[1], "Condition": {"StringEquals": {"kms:ViaService": f"s3.{facts.region}.amazonaws.com"}}},
    ])
    return ServiceAccountRole(name, cluster_name=facts.cluster_name, cluster_arn=facts.cluster_arn,
                              namespace=namespace, service_account=service_account, statements=statements,
                              opts=pulumi.ResourceOptions(parent=parent, providers={"aws": facts.provider}))
