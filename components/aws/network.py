"""The VPC: private and public subnets over 2–3 AZs, NAT, flow logs, a default SG that allows nothing,
load-balancer and Karpenter discovery tags, and VPC endpoints so private nodes reach S3/ECR/STS.

Or bring your own VPC: then only its ids are used and nothing is created.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from mlcluster.components.aws.subnets import plan
from mlcluster.deferred import Component, aws, pulumi
from mlcluster.profiles.model import Vpc


@dataclass(frozen=True)
class NetworkFacts:
    vpc_id: pulumi.Input[str]
    private_subnet_ids: list[pulumi.Input[str]]
    public_subnet_ids: list[pulumi.Input[str]]
    azs: list[str]


class Network(Component):
    def __init__(self, name: str, cluster_name: str, settings: Vpc, azs: list[str], region: str,
                 kms_key_arn: pulumi.Input[str], opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlcluster:aws:Network", name, None, opts)
        if settings.vpc_id:
            self.facts = NetworkFacts(settings.vpc_id, list(settings.private_subnet_ids),
                                      list(settings.public_subnet_ids), azs)
            self.register_outputs({"vpcId": settings.vpc_id})
            return
        child = pulumi.ResourceOptions(parent=self)
        tags = {"Name": name}
        vpc = aws.ec2.Vpc(f"{name}-vpc", cidr_block=settings.cidr, enable_dns_hostnames=True,
                          enable_dns_support=True, tags=tags, opts=child)
        # Checks 18: the default security group allows nothing (no rules at all).
        aws.ec2.DefaultSecurityGroup(f"{name}-default-sg", vpc_id=vpc.id, ingress=[], egress=[],
                                     tags={"Name": f"{name}-default-deny"}, opts=child)
        igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, tags=tags, opts=child)

        cluster_tag = {f"kubernetes.io/cluster/{cluster_name}": "shared"}
        public_rt = aws.ec2.RouteTable(f"{name}-public", vpc_id=vpc.id, tags={"Name": f"{name}-public"},
                                       routes=[{"cidr_block": "0.0.0.0/0", "gateway_id": igw.id}], opts=child)
        private_ids: list[pulumi.Output[str]] = []
        public_ids: list[pulumi.Output[str]] = []
        private_rts: list[pulumi.Output[str]] = []
        nat_ids: list[pulumi.Output[str]] = []
        for i, subnet in enumerate(plan(settings.cidr, azs)):
            public = aws.ec2.Subnet(
                f"{name}-public-{subnet.az}", vpc_id=vpc.id, cidr_block=subnet.public, availability_zone=subnet.az,
                map_public_ip_on_launch=False,
                tags={"Name": f"{name}-public-{subnet.az}", "kubernetes.io/role/elb": "1", **cluster_tag}, opts=child)
            aws.ec2.RouteTableAssociation(f"{name}-public-{subnet.az}", subnet_id=public.id,
                                          route_table_id=public_rt.id, opts=child)
            public_ids.append(public.id)
            if settings.nat_gateways == "per-az" or i == 0:
                eip = aws.ec2.Eip(f"{name}-nat-{subnet.az}", domain="vpc", tags={"Name": f"{name}-nat-{subnet.az}"},
                                  opts=child)
                nat = aws.ec2.NatGateway(f"{name}-nat-{subnet.az}", allocation_id=eip.id, subnet_id=public.id,
                                         tags={"Name": f"{name}-nat-{subnet.az}"},
                                         opts=pulumi.ResourceOptions(parent=self, depends_on=[igw]))
                nat_ids.append(nat.id)
            private = aws.ec2.Subnet(
                f"{name}-private-{subnet.az}", vpc_id=vpc.id, cidr_block=subnet.private, availability_zone=subnet.az,
                tags={"Name": f"{name}-private-{subnet.az}", "kubernetes.io/role/internal-elb": "1",
                      "karpenter.sh/discovery": cluster_name, **cluster_tag}, opts=child)
            rt = aws.ec2.RouteTable(f"{name}-private-{subnet.az}", vpc_id=vpc.id,
                                    routes=[{"cidr_block": "0.0.0.0/0", "nat_gateway_id": nat_ids[-1]}],
                                    tags={"Name": f"{name}-private-{subnet.az}"}, opts=child)
            aws.ec2.RouteTableAssociation(f"{name}-private-{subnet.az}", subnet_id=private.id, route_table_id=rt.id,
                                          opts=child)
            private_ids.append(private.id)
            private_rts.append(rt.id)

        self._flow_logs(name, cluster_name, vpc, kms_key_arn, settings.flow_log_retention_days, child)
        if settings.endpoints:
            self._endpoints(name, vpc, settings.cidr, region, private_ids, private_rts, child)
        self.facts = NetworkFacts(vpc.id, private_ids, public_ids, azs)
        self.register_outputs({"vpcId": vpc.id, "privateSubnetIds": private_ids, "publicSubnetIds": public_ids})

    def _flow_logs(self, name: str, cluster_name: str, vpc: aws.ec2.Vpc, kms_key_arn: pulumi.Input[str],
                   retention: int, child: pulumi.ResourceOptions) -> None:
        """Checks 19: VPC flow logs on, into an encrypted log group with a retention period. The group is named
        after the cluster (one per stack): a second stack in the account would otherwise collide on it."""
        group = aws.cloudwatch.LogGroup(f"{name}-flow-logs", name=f"/mlcluster/{cluster_name}/vpc-flow-logs",
                                        retention_in_days=retention, kms_key_id=kms_key_arn, opts=child)
        role = aws.iam.Role(f"{name}-flow-logs", assume_role_policy=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                           "Principal": {"Service": "vpc-flow-logs.amazonaws.com"}}]}), opts=child)
        aws.iam.RolePolicy(f"{name}-flow-logs", role=role.id, policy=group.arn.apply(lambda arn: json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Resource": [arn, f"{arn}:*"],
                           "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]}]})),
            opts=child)
        aws.ec2.FlowLog(f"{name}-flow-logs", vpc_id=vpc.id, traffic_type="ALL", log_destination_type="cloud-watch-logs",
                        log_destination=group.arn, iam_role_arn=role.arn, max_aggregation_interval=60, opts=child)

    def _endpoints(self, name: str, vpc: aws.ec2.Vpc, cidr: str, region: str, subnets: list, route_tables: list,
                   child: pulumi.ResourceOptions) -> None:
        """Private nodes pull images and get credentials without leaving the VPC."""
        aws.ec2.VpcEndpoint(f"{name}-s3", vpc_id=vpc.id, service_name=f"com.amazonaws.{region}.s3",
                            vpc_endpoint_type="Gateway", route_table_ids=route_tables, opts=child)
        sg = aws.ec2.SecurityGroup(
            f"{name}-endpoints", vpc_id=vpc.id, description="VPC interface endpoints: HTTPS from inside the VPC",
            ingress=[{"protocol": "tcp", "from_port": 443, "to_port": 443, "cidr_blocks": [cidr],
                      "description": "HTTPS from the VPC"}],
            egress=[], opts=child)
        for service in ("ecr.api", "ecr.dkr", "sts"):
            aws.ec2.VpcEndpoint(f"{name}-{service.replace('.', '-')}", vpc_id=vpc.id,
                                service_name=f"com.amazonaws.{region}.{service}", vpc_endpoint_type="Interface",
                                private_dns_enabled=True, subnet_ids=subnets, security_group_ids=[sg.id], opts=child)
