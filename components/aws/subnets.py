"""Subnet math: carve private and public subnets per AZ out of the VPC CIDR.

Private subnets get the large blocks (pods take VPC addresses with the VPC CNI): the VPC is cut in four,
one quarter per AZ (up to three). Public subnets, which only hold load balancers and NAT gateways, are
small blocks (/prefix+6) cut from the fourth quarter.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass


@dataclass(frozen=True)
class SubnetPlan:
    az: str
    private: str
    public: str


def plan(vpc_cidr: str, azs: list[str]) -> list[SubnetPlan]:
    vpc = ipaddress.ip_network(vpc_cidr)
    quarters = list(vpc.subnets(prefixlen_diff=2))
    publics = list(quarters[3].subnets(new_prefix=vpc.prefixlen + 6))
    return [SubnetPlan(az, str(quarters[i]), str(publics[i])) for i, az in enumerate(azs[:3])]
