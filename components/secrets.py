"""How platform secrets reach the cluster, decided once per platform.

Platform secrets (Grafana admin, database passwords, cookie secrets…) are generated with pulumi-random and
held as Pulumi secrets. On `eks` with External Secrets they are also written to AWS Secrets Manager under
`mlcluster/<stack>/<namespace>/<name>` (encrypted with the platform key) and synced into the cluster by an
`ExternalSecret`, so the store of record is Secrets Manager and rotation there reaches the pods. Elsewhere
they become a Kubernetes Secret directly (encrypted at rest by the cluster; EKS envelope encryption or k3s
secrets encryption). Either way, nothing is written in plain text: not in values, not in outputs, not in
a render.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from mlcluster.components import k8s as objects
from mlcluster.components.cluster import ClusterHandle
from mlcluster.deferred import aws, pulumi

CLUSTER_STORE = "aws-secrets-manager"
SECRETS_MANAGER_PREFIX = "mlcluster/{stack}/"


def secret_name(namespace: str, name: str) -> str:
    return SECRETS_MANAGER_PREFIX.format(stack=pulumi.get_stack()) + f"{namespace}/{name}"


def external_secret_manifest(name: str, namespace: str, remote_key: pulumi.Input[str],
                             type_: str = "Opaque") -> dict[str, Any]:
    target: dict[str, Any] = {"name": name, "creationPolicy": "Owner", "deletionPolicy": "Retain"}
    if type_ != "Opaque":
        target["template"] = {"type": type_}
    return {
        "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
        "metadata": objects.metadata(name, namespace),
        "spec": {
            "refreshInterval": "1h",
            "secretStoreRef": {"kind": "ClusterSecretStore", "name": CLUSTER_STORE},
            "target": target,
            "dataFrom": [{"extract": {"key": remote_key}}],
        },
    }


@dataclass
class SecretDelivery:
    """`deliver()` puts a generated secret into a namespace the way this platform does it."""

    cluster: ClusterHandle
    via_secrets_manager: bool = False
    ready: list[pulumi.Resource] = field(default_factory=list)  # the store/controller, when there is one

    def deliver(self, owner: pulumi.Resource, logical_name: str, name: str, namespace: str,
                data: dict[str, pulumi.Input[str]], depends_on: list[pulumi.Resource],
                type_: str = "Opaque") -> pulumi.Resource:
        cluster = self.cluster
        if not self.via_secrets_manager or cluster.aws is None:
            return objects.apply(logical_name, {
                "apiVersion": "v1", "kind": "Secret", "metadata": objects.metadata(name, namespace),
                "type": type_, "stringData": data,
            }, cluster.provider, cluster.opts(owner, depends_on=depends_on))
        facts = cluster.aws
        aws_opts = pulumi.ResourceOptions(parent=owner, provider=facts.provider)
        # A deleted secret keeps its name for its recovery window (30 days), so a fixed name would make the next
        # `up` after a destroy fail; each create takes a fresh name under the stack's prefix (IAM scopes by it).
        remote = aws.secretsmanager.Secret(f"{logical_name}-sm", name_prefix=f"{secret_name(namespace, name)}-",
                                           kms_key_id=facts.kms_key_arn, recovery_window_in_days=30,
                                           description=f"mlcluster platform secret {namespace}/{name}", opts=aws_opts)
        payload = pulumi.Output.secret(pulumi.Output.all(**data).apply(lambda d: json.dumps(d, sort_keys=True)))
        version = aws.secretsmanager.SecretVersion(f"{logical_name}-sm", secret_id=remote.id,
                                                   secret_string=payload, opts=aws_opts)
        manifest = external_secret_manifest(name, namespace, remote.name, type_)
        return objects.apply(logical_name, manifest, cluster.provider,
                             cluster.opts(owner, depends_on=[*depends_on, *self.ready, version]))
