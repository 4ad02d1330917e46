"""Managed node groups: a launch template per pool (IMDSv2 only, hop limit 1, encrypted gp3 root volume,
EFA + cluster placement group where asked), AMI type from the instance family, GPU labels and taint,
rolling upgrades (MINIMAL for GPU groups, a third at a time otherwise), and `desired_size` left to the
autoscaler after creation so `pulumi up` never scales a pool back.
"""

from __future__ import annotations

import hashlib
import json

from mlcluster.components.cluster import EFA_RESOURCE, GPU_RESOURCE, PoolFacts
from mlcluster.deferred import Component, aws, pulumi
from mlcluster.profiles.instance_types import efa_interfaces, is_arm
from mlcluster.profiles.model import NodePool

NODE_TEMPLATE = "k8s.io/cluster-autoscaler/node-template"
CAPACITY_TYPES = {"on-demand": "ON_DEMAND", "spot": "SPOT", "capacity-block": "CAPACITY_BLOCK"}

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


def network_interfaces(pool: NodePool, security_groups: list[pulumi.Input[str]],
                       efa_group: pulumi.Input[str]) -> list[dict[str, object]]:
    """One EFA interface per network card (EC2 User Guide, "Maximize network bandwidth on Amazon EC2 instances with
    multiple network cards": p5.48xlarge has 32), all of interface type `efa` as EKS sets them up (EKS user guide,
    "Manage EFA devices": eksctl's efaEnabled); the primary on card 0 at device index 0, the others at device index
    1 of their card. Each carries the EFA security group; the primary also the cluster's."""
    return [{"network_card_index": card, "device_index": 0 if card == 0 else 1, "interface_type": "efa",
             "security_groups": [*security_groups, efa_group] if card == 0 else [efa_group],
             "delete_on_termination": "true"} for card in range(efa_interfaces(pool.instance_types))]


def node_template_tags(pool: NodePool) -> dict[str, str]:
    """What Cluster Autoscaler cannot learn about a group at zero (cluster-autoscaler/cloudprovider/aws/README.md,
    "Auto-Discovery Setup": node-template tags on the Auto Scaling group): its labels and taints (also readable from
    eks:DescribeNodegroup) and its extended resources, which nothing else tells it. Without the EFA resource an
    EFA pod never scales a pool up from zero."""
    facts = PoolFacts.from_pool(pool)
    tags = {f"{NODE_TEMPLATE}/label/{k}": v for k, v in facts.labels.items()}
    tags.update({f"{NODE_TEMPLATE}/taint/{t['key']}": f"{t['value']}:{t['effect']}" for t in facts.taints})
    if pool.gpu is not None:
        tags[f"{NODE_TEMPLATE}/resources/{GPU_RESOURCE}"] = str(pool.gpu.count)
    if pool.efa:
        tags[f"{NODE_TEMPLATE}/resources/{EFA_RESOURCE}"] = str(efa_interfaces(pool.instance_types))
    return tags


def capacity_template(pool: NodePool) -> dict[str, object]:
    """Launch-template settings that put a pool into its reservation: a Capacity Block is launched with market type
    `capacity-block` into the named block (EKS user guide, "capacity-blocks-mng"); an On-Demand Capacity
    Reservation is targeted by id."""
    if not pool.capacity_reservation_ids:
        return {}
    template: dict[str, object] = {"capacity_reservation_specification": {
        "capacity_reservation_target": {"capacity_reservation_id": pool.capacity_reservation_ids[0]}}}
    if pool.capacity_type == "capacity-block":
        template["instance_market_options"] = {"market_type": "capacity-block"}
    return template


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


class NodePools(Component):
    def __init__(self, name: str, *, cluster_name: pulumi.Input[str], kubernetes_version: str,
                 pools: list[NodePool], subnet_ids: list[pulumi.Input[str]], vpc_id: pulumi.Input[str],
                 cluster_security_group_id: pulumi.Input[str], kms_key_arn: pulumi.Input[str], partition: str,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlcluster:aws:NodePools", name, None, opts)
        role, attachments = node_role(name, partition, self)
        self.role = role
        self.groups: dict[str, aws.eks.NodeGroup] = {}
        self.vpc_id = vpc_id
        for pool in pools:
            if pool.provisioner != "managed":
                continue  # Karpenter's
            group = self._group(name, pool, cluster_name, kubernetes_version, role, attachments,
                                subnet_ids, cluster_security_group_id, kms_key_arn)
            self.groups[pool.name] = group
            if pool.min < pool.max:
                self._node_template(name, pool, group)
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
            template["network_interfaces"] = network_interfaces(pool, [cluster_sg], self._efa_group(name, pool).id)
            subnet_ids = subnet_ids[:1]  # a cluster placement group lives in one AZ
        template.update(capacity_template(pool))
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
            capacity_type=CAPACITY_TYPES[pool.capacity_type],
            scaling_config={"min_size": pool.min, "max_size": pool.max, "desired_size": pool.min},
            update_config=update_config(pool),
            labels=facts.labels,
            taints=[{"key": t["key"], "value": t["value"] or None, "effect": EKS_TAINT_EFFECTS[t["effect"]]}
                    for t in facts.taints],
            launch_template={"id": lt.id, "version": lt.latest_version.apply(str)},
            opts=pulumi.ResourceOptions(parent=self, depends_on=attachments,
                                        ignore_changes=["scalingConfig.desiredSize"]),
        )

    def _efa_group(self, name: str, pool: NodePool) -> aws.ec2.SecurityGroup:
        """EC2 User Guide, "Get started with EFA" (prepare an EFA-enabled security group): all traffic in from, and
        out to, the group itself; without the egress rule NCCL's RDMA traffic between nodes hangs."""
        child = pulumi.ResourceOptions(parent=self)
        group = aws.ec2.SecurityGroup(f"{name}-{pool.name}-efa", vpc_id=self.vpc_id,
                                      description=f"mlcluster pool {pool.name}: EFA traffic between its nodes",
                                      tags={"Name": f"{name}-{pool.name}-efa"}, opts=child)
        aws.vpc.SecurityGroupIngressRule(f"{name}-{pool.name}-efa-in", security_group_id=group.id,
                                         referenced_security_group_id=group.id, ip_protocol="-1",
                                         description="EFA: all traffic from the group", opts=child)
        aws.vpc.SecurityGroupEgressRule(f"{name}-{pool.name}-efa-out", security_group_id=group.id,
                                        referenced_security_group_id=group.id, ip_protocol="-1",
                                        description="EFA: all traffic to the group", opts=child)
        return group

    def _node_template(self, name: str, pool: NodePool, group: aws.eks.NodeGroup) -> None:
        """Node-template tags on the group's Auto Scaling group (EKS does not copy node group tags there)."""
        asg = group.resources.apply(lambda r: r[0].autoscaling_groups[0].name)
        for key, value in sorted(node_template_tags(pool).items()):
            tag_id = hashlib.sha256(key.encode()).hexdigest()[:8]  # stable per key: a new label adds one tag
            aws.autoscaling.Tag(f"{name}-{pool.name}-template-{tag_id}", autoscaling_group_name=asg,
                                tag={"key": key, "value": value, "propagate_at_launch": False},
                                opts=pulumi.ResourceOptions(parent=self))
