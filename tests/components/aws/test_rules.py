"""Bad eks profiles: GPU pool validation against the instance table, CIDRs, endpoint, production shape."""

from __future__ import annotations

import pytest

from mlcluster.errors import ConfigError
from mlcluster.profiles.effective import load_profile


def problem(*sets):
    with pytest.raises(ConfigError) as err:
        load_profile("aws-gpu", sets=sets)
    return {p.field: p for p in err.value.problems}


def test_gpu_pool_on_a_cpu_instance_type():
    found = problem("node_pools[2].instance_types=[m7i.2xlarge]")
    assert "not a GPU instance type" in found["node_pools[2].instance_types[0]"].allowed


def test_gpu_instance_types_with_different_gpu_counts_in_one_pool():
    found = problem("node_pools[2].instance_types=[g5.2xlarge, g5.12xlarge]")
    p = found["node_pools[2].gpu.count"]
    assert p.value == 1 and "g5.12xlarge has 4 GPUs" in p.allowed


def test_gpu_product_must_match_the_instance_type():
    found = problem("node_pools[3].gpu.product=NVIDIA-A10G")
    assert "g6.12xlarge carries NVIDIA-L4" in found["node_pools[3].gpu.product"].allowed


def test_efa_on_a_type_without_efa():
    found = problem("node_pools[2].efa=true")
    assert "has no EFA" in found["node_pools[2].efa"].allowed


def test_gpu_type_in_a_cpu_pool():
    found = problem("node_pools[1].instance_types=[g5.xlarge]")
    assert "belongs in a pool with role `gpu`" in found["node_pools[1].instance_types[0]"].allowed


def test_service_cidr_overlapping_the_vpc():
    found = problem("substrate.service_cidr=10.0.128.0/20")
    assert "overlaps the VPC 10.0.0.0/16" in found["substrate.service_cidr"].allowed


def test_api_never_open_to_the_world():
    found = problem("substrate.api.public_cidrs=[0.0.0.0/0]")
    assert "never open to the whole internet" in found["substrate.api.public_cidrs[0]"].allowed


def test_production_needs_a_nat_per_az():
    found = problem("substrate.vpc.nat_gateways=single")
    assert "per-az" in found["substrate.vpc.nat_gateways"].allowed


def test_eks_needs_a_system_pool():
    found = problem("node_pools[0].role=cpu")
    assert "needs a `system` pool" in found["node_pools"].allowed


def test_vpc_size_and_region_format():
    assert "/16 to /20" in problem("substrate.vpc.cidr=10.0.0.0/24")["substrate.vpc.cidr"].allowed
    assert "an AWS region name" in problem("substrate.region=Ireland")["substrate.region"].allowed


def test_mixed_arm_and_x86_in_one_pool():
    found = problem("node_pools[1].instance_types=[m7i.4xlarge, m7g.4xlarge]")
    assert "all Arm" in found["node_pools[1].instance_types"].allowed


def test_missing_admin_principals_is_a_stack_error():
    from mlcluster.render import engine

    with pytest.raises(ConfigError) as err:
        engine.run("prod", {"mlcluster:profile": "aws-gpu"}, [], "stacks/Pulumi.prod.yaml")
    (p,) = err.value.problems
    assert p.file == "stacks/Pulumi.prod.yaml" and "admin_principals" in p.field
