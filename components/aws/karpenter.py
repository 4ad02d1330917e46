"""Karpenter for the pools marked `provisioner: karpenter`: controller, interruption queue, node classes
and one NodePool per pool, each with GPU taints, limits and disruption budgets.

Long training pods should carry the annotation `karpenter.sh/do-not-disrupt: "true"`: consolidation and
drift then leave their node alone (node expiry does not honour budgets, so pools set no `expireAfter`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlcluster.components import helm
from mlcluster.components import k8s as objects
from mlcluster.components.aws import nodepools
from mlcluster.components.aws.iam import ServiceAccountRole
from mlcluster.components.aws.karpenter_policy import statements
from mlcluster.components.cluster import GPU_RESOURCE, PoolFacts
from mlcluster.deferred import Component, aws, pulumi
from mlcluster.profiles.model import Karpenter as KarpenterSettings
from mlcluster.profiles.model import NodePool

NAMESPACE = "karpenter"
SERVICE_ACCOUNT = "karpenter"
VALUES = Path(__file__).resolve().parent / "karpenter.values.yaml.j2"
INTERRUPTION_EVENTS = {
    "scheduled-change": {"source": ["aws.health"], "detail-type": ["AWS Health Event"]},
    "spot-interruption": {"source": ["aws.ec2"], "detail-type": ["EC2 Spot Instance Interruption Warning"]},
    "rebalance": {"source": ["aws.ec2"], "detail-type": ["EC2 Instance Rebalance Recommendation"]},
    "state-change": {"source": ["aws.ec2"], "detail-type": ["EC2 Instance State-change Notification"]},
    "capacity-reservation": {"source": ["aws.ec2"],
                             "detail-type": ["EC2 Capacity Reservation Instance Interruption Warning"]},
}
TAINT_EFFECTS = {"NoSchedule", "PreferNoSchedule", "NoExecute"}


def node_class_manifest(pool: NodePool, settings: KarpenterSettings, *, cluster_name: str,
                        node_role: pulumi.Input[str], security_group_id: pulumi.Input[str],
                        kms_key_arn: pulumi.Input[str]) -> dict[str, Any]:
    return {
        "apiVersion": "karpenter.k8s.aws/v1", "kind": "EC2NodeClass",
        "metadata": objects.metadata(pool.name),
        "spec": {
            "role": node_role,
            "amiSelectorTerms": [{"alias": settings.ami_alias}],
            "subnetSelectorTerms": [{"tags": {"karpenter.sh/discovery": cluster_name}}],
            "securityGroupSelectorTerms": [{"id": security_group_id}],
            "metadataOptions": {"httpEndpoint": "enabled", "httpProtocolIPv6": "disabled",
                                "httpPutResponseHopLimit": 1, "httpTokens": "required"},
            "blockDeviceMappings": [{"deviceName": "/dev/xvda", "ebs": {
                "volumeSize": f"{pool.disk_gib}Gi", "volumeType": "gp3", "encrypted": True, "kmsKeyID": kms_key_arn,
                "deleteOnTermination": True}}],
            "tags": {"mlcluster.io/pool": pool.name},
            # Reserved capacity (karpenter.sh docs/tasks/odcrs; the chart's reservedCapacity gate is on by
            # default in 1.14.1): Capacity Blocks are selected like On-Demand Capacity Reservations.
            **({"capacityReservationSelectorTerms": [{"id": r} for r in pool.capacity_reservation_ids]}
               if pool.capacity_reservation_ids else {}),
        },
    }


def capacity_types(pool: NodePool) -> list[str]:
    """`reserved` is what Karpenter calls reservation capacity; a Capacity Block pool uses only its block, an ODCR
    pool its reservations first and on-demand when they are full."""
    if pool.capacity_type == "spot":
        return ["spot"]
    if pool.capacity_type == "capacity-block":
        return ["reserved"]
    return ["reserved", "on-demand"] if pool.capacity_reservation_ids else ["on-demand"]


def node_pool_manifest(pool: NodePool, settings: KarpenterSettings) -> dict[str, Any]:
    facts = PoolFacts.from_pool(pool)
    limits: dict[str, str] = {"cpu": str(pool.max * 1000)}  # generous CPU cap; GPUs are what is counted
    if pool.gpu is not None:
        limits[GPU_RESOURCE] = str(pool.max * pool.gpu.count)
    return {
        "apiVersion": "karpenter.sh/v1", "kind": "NodePool",
        "metadata": objects.metadata(pool.name),
        "spec": {
            "template": {
                "metadata": {"labels": facts.labels},
                "spec": {
                    "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": pool.name},
                    "requirements": [
                        {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": pool.instance_types},
                        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": capacity_types(pool)},
                    ],
                    "taints": [dict(t) for t in facts.taints],
                    "expireAfter": "Never",  # expiry ignores disruption budgets; upgrades go through drift
                },
            },
            "limits": limits,
            "disruption": {
                "consolidationPolicy": "WhenEmpty",
                "consolidateAfter": settings.consolidate_after,
                "budgets": [{"nodes": settings.disruption_budget}],
            },
        },
    }


class Karpenter(Component):
    def __init__(self, name: str, *, settings: KarpenterSettings, pools: list[NodePool], cluster: aws.eks.Cluster,
                 cluster_name: str, region: str, account: str, partition: str,
                 kms_key_arn: pulumi.Input[str], k8s_provider: pulumi.ProviderResource,
                 kubernetes_version: str, depends_on: list[pulumi.Resource],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlcluster:aws:Karpenter", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        queue = aws.sqs.Queue(f"{name}-interruptions", name=f"{cluster_name}-karpenter",
                              message_retention_seconds=300, sqs_managed_sse_enabled=True, opts=child)
        policy_doc = queue.arn.apply(lambda arn: json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Sid": "EventBridgeDelivers", "Effect": "Allow", "Action": "sqs:SendMessage",
                           "Principal": {"Service": ["events.amazonaws.com", "sqs.amazonaws.com"]},
                           "Resource": arn},
                          {"Sid": "DenyHTTP", "Effect": "Deny", "Action": "sqs:*", "Resource": arn,
                           "Principal": "*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]},
            sort_keys=True))
        aws.sqs.QueuePolicy(f"{name}-interruptions", queue_url=queue.url, policy=policy_doc, opts=child)
        for event, pattern in INTERRUPTION_EVENTS.items():
            rule = aws.cloudwatch.EventRule(f"{name}-{event}", event_pattern=json.dumps(pattern, sort_keys=True),
                                            description=f"Karpenter interruption: {event}", opts=child)
            aws.cloudwatch.EventTarget(f"{name}-{event}", rule=rule.name, arn=queue.arn, opts=child)

        # Karpenter's nodes get a role of their own: EKS makes the access entry of the managed groups' role itself,
        # so an entry for a shared role collides with it (409 on enabling Karpenter) and deleting it (disabling
        # Karpenter) would lock every managed node out. Same minimal policies as the managed nodes.
        node_role, attachments = nodepools.node_role(name, partition, self)
        aws.eks.AccessEntry(f"{name}-nodes", cluster_name=cluster.name, principal_arn=node_role.arn, type="EC2_LINUX",
                            opts=pulumi.ResourceOptions(parent=self, depends_on=attachments))
        policy = pulumi.Output.all(cluster.arn, queue.arn, node_role.arn).apply(lambda a: statements(
            partition=partition, region=region, account=account, cluster_name=cluster_name, cluster_arn=a[0],
            queue_arn=a[1], node_role_arn=a[2]))
        ServiceAccountRole(f"{name}-controller", cluster_name=cluster.name, cluster_arn=cluster.arn,
                           namespace=NAMESPACE, service_account=SERVICE_ACCOUNT, statements=policy, opts=child)

        k8s_opts = pulumi.ResourceOptions(parent=self, depends_on=depends_on)
        ns = objects.apply(f"{name}-ns", objects.namespace_manifest(NAMESPACE, kubernetes_version, "baseline"),
                           k8s_provider, k8s_opts)
        values = helm.render_values(VALUES, cluster_name=cluster_name, queue_name=f"{cluster_name}-karpenter",
                                    service_account=SERVICE_ACCOUNT)
        controller = helm.release(f"{name}-controller", name="karpenter", chart_name="karpenter", namespace=NAMESPACE,
                                  values=values, provider=k8s_provider,
                                  opts=pulumi.ResourceOptions(parent=self, depends_on=[ns, *depends_on]))
        # NodePools and their nodes go before the controller on destroy: they depend on it.
        after = pulumi.ResourceOptions(parent=self, depends_on=[controller])
        security_group = cluster.vpc_config.cluster_security_group_id
        for pool in pools:
            node_class = node_class_manifest(pool, settings, cluster_name=cluster_name, node_role=node_role.name,
                                             security_group_id=security_group, kms_key_arn=kms_key_arn)
            objects.apply(f"{name}-nodeclass-{pool.name}", node_class, k8s_provider, after)
            objects.apply(f"{name}-nodepool-{pool.name}", node_pool_manifest(pool, settings), k8s_provider, after)
        self.register_outputs({"queue": queue.name})
