"""Subnet math: disjoint blocks inside the VPC, big private subnets, small public ones."""

from __future__ import annotations

import ipaddress
import itertools

import pytest

from mlcluster.components.aws.subnets import plan


@pytest.mark.parametrize(("cidr", "azs"), [("10.0.0.0/16", 3), ("10.1.0.0/16", 2), ("172.16.0.0/20", 3)])
def test_subnets_are_disjoint_and_inside_the_vpc(cidr, azs):
    vpc = ipaddress.ip_network(cidr)
    subnets = plan(cidr, [f"az{i}" for i in range(azs)])
    assert [s.az for s in subnets] == [f"az{i}" for i in range(azs)]
    blocks = [ipaddress.ip_network(b) for s in subnets for b in (s.private, s.public)]
    assert all(b.subnet_of(vpc) for b in blocks)
    assert not any(a.overlaps(b) for a, b in itertools.combinations(blocks, 2))


def test_private_subnets_hold_pods_public_ones_only_load_balancers():
    (first, *_) = plan("10.0.0.0/16", ["a", "b", "c"])
    assert first.private == "10.0.0.0/18"  # 16k addresses: pods take VPC IPs with the VPC CNI
    assert first.public == "10.0.192.0/22"
