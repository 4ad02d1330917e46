"""Managed node groups: a launch template per pool (IMDSv2 only, hop limit 1, encrypted gp3 root volume,
EFA + cluster placement group where asked), AMI type from the instance family, GPU labels and taint,
rolling upgrades (MINIMAL for GPU groups, a third at a time otherwise), and `desired_size` left to the
autoscaler after creation so `pulumi up` never scales a pool back.
"""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

from mlcluster.components.cluster import PoolFacts
from mlcluster.profiles.instance_types import is_arm
from mlcluster.profiles.model import NodePool

EKS_TAINT_EFFECTS = {"NoSchedule": "NO_SCHEDULE", "NoExecute": "NO_EXECUTE", "PreferNoSchedule": "PREFER_NO_SCHEDULE"}
NODE_POLICIES = (
    "AmazonEKSWorkerNodePolicy",            # join the cluster
    "AmazonEC2ContainerRegistryPullOnly",   # pull images
    "AmazonSSMManagedInstanceCore",         # shell access through SSM instead of SSH (checks 12)
)


def ami_type(pool: NodePool) -> str:
    arm = is_arm(pool.instance_types[0])
    if pool.gpu is not None:
        return "AL2023_ARM_64_NVIDIA" if arm else "AL2023_x86_64_NVIDIA"
    return "AL2023_ARM_64_STANDARD" if arm else "AL2023_x86_64_STANDARD"


def update_config(pool: NodePool) -> dict[str, object]:
    """AWS documents MINIMAL for accelerator groups (no surge of scarce GPU capacity)."""
    if pool.gpu is not None:
        return {"update_strategy": "MINIMAL", "max_unavailable": 1}
    return {"max_unavailable_percentage": 33}


def node_role(name: str, partition: str, parent: pulumi.Resource) -> tuple[aws.iam.Role, list[pulumi.Resource]]:
    """The minimal node role (checks 17): add-on permissions go through Pod Identity, never here."""
    child = pulumi.ResourceOptions(parent=parent)
    role = aws.iam.Role(f"{name}-node", assume_role_policy=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "ec2.amazonaws.com"}}]}),
        description="mlcluster nodes: join, pull images, SSM", opts=child)
    attachments: list[pulumi.Resource] = [
        aws.iam.RolePolicyAttachment(f"{name}-node-{policy}", role=role.name,
                                     policy_arn=f"arn:{partition}:iam::aws:policy/{policy}", opts=child)
        for policy in NODE_POLICIES
    ]
    return role, attachments


class NodePools(pulumi.ComponentResource):
    def __init__(self, name: str, *, cluster_name: pulumi.Input[str], kubernetes_version: str,
                 pools: list[NodePool], subnet_ids: list[pulumi.Input[str]],
                 cluster_security_group_id: pulumi.Input[str], kms_key_arn: pulumi.Input[str], partition: str,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlcluster:aws:NodePools", name, None, opts)
        role, attachments = node_role(name, partition, self)
        self.role = role
        self.groups: dict[str, aws.eks.NodeGroup] = {}
        for pool in pools:
            if pool.provisioner != "managed":
                continue  # Karpenter's
            self.groups[pool.name] = self._group(name, pool, cluster_name, kubernetes_version, role, attachments,
                                                 subnet_ids, cluster_security_group_id, kms_key_arn)
        self.register_outputs({"nodeGroups": {k: g.node_group_name for k, g in self.groups.items()}})

    def _group(self, name: str, pool: NodePool, cluster_name: pulumi.Input[str], version: str, role: aws.iam.Role,
               attachments: list[pulumi.Resource], subnet_ids: list[pulumi.Input[str]],
               cluster_sg: pulumi.Input[str], kms_key_arn: pulumi.Input[str]) -> aws.eks.NodeGroup:
        child = pulumi.ResourceOptions(parent=self)
        facts = PoolFacts.from_pool(pool)
        template: dict[str, object] = {
            "metadata_options": {"http_endpoint": "enabled", "http_tokens": "required",
                                 "http_put_response_hop_limit": 1, "instance_metadata_tags": "disabled"},
            "block_device_mappings": [{"device_name": "/dev/xvda", "ebs": {
                "volume_size": pool.disk_gib, "volume_type": "gp3", "encrypted": "true", "kms_key_id": kms_key_arn,
                "delete_on_termination": "true"}}],
            "tag_specifications": [{"resource_type": "instance",
                                    "tags": {"Name": f"{name}-{pool.name}", "mlcluster.io/pool": pool.name}}],
        }
        if pool.efa:
            placement = aws.ec2.PlacementGroup(f"{name}-{pool.name}", strategy="cluster", opts=child)
            template["placement"] = {"group_name": placement.name}
            template["network_interfaces"] = [{"device_index": 0, "network_card_index": 0, "interface_type": "efa",
                                               "security_groups": [cluster_sg], "delete_on_termination": "true"}]
            subnet_ids = subnet_ids[:1]  # a cluster placement group lives in one AZ
        lt = aws.ec2.LaunchTemplate(f"{name}-{pool.name}", update_default_version=True,
                                    description=f"mlcluster pool {pool.name}", opts=child, **template)
        return aws.eks.NodeGroup(
            f"{name}-{pool.name}",
            cluster_name=cluster_name,
            node_group_name=pool.name,
            version=version,
            node_role_arn=role.arn,
            subnet_ids=subnet_ids,
            instance_types=pool.instance_types,
            ami_type=ami_type(pool),
            capacity_type="SPOT" if pool.capacity_type == "spot" else "ON_DEMAND",
            scaling_config={"min_size": pool.min, "max_size": pool.max, "desired_size": pool.min},
            update_config=update_config(pool),
            labels=facts.labels,
            taints=[{"key": t["key"], "value": t["value"] or None, "effect": EKS_TAINT_EFFECTS[t["effect"]]}
                    for t in facts.taints],
            launch_template={"id": lt.id, "version": lt.latest_version.apply(str)},
            opts=pulumi.ResourceOptions(parent=self, depends_on=attachments,
                                        ignore_changes=["scalingConfig.desiredSize"]),
        )
