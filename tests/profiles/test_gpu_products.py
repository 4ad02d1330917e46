"""GPU product facts: MIG profiles per product, and the names GPU Feature Discovery advertises."""

from __future__ import annotations

import pytest

from mlcluster.components.cluster import PoolFacts
from mlcluster.errors import ConfigError
from mlcluster.profiles.effective import load_profile
from mlcluster.profiles.gpu_products import advertised_product, gpus_per_node, mig_profiles, pool_gpus
from mlcluster.profiles.model import NodePool


def pool(product: str = "NVIDIA-A100-SXM4-80GB", count: int = 8, **sharing) -> NodePool:
    return NodePool.model_validate({"name": "p", "role": "gpu", "max": 2, "gpu": {"product": product, "count": count},
                                    "sharing": sharing or {"mode": "none"}})


def test_mig_instances_depend_on_the_product_not_only_the_slice_size():
    assert mig_profiles("NVIDIA-A100-SXM4-80GB")["1g.10gb"] == 7
    assert mig_profiles("NVIDIA-A100-SXM4-40GB")["1g.10gb"] == 4  # same name, fewer per GPU
    assert mig_profiles("NVIDIA-H100-80GB-HBM3")["1g.20gb"] == 4
    assert mig_profiles("NVIDIA-H100-NVL")["1g.12gb"] == 7
    assert mig_profiles("NVIDIA-L40S") is None and mig_profiles("NVIDIA-A10G") is None


def test_schedulable_gpus_per_node_and_pool():
    assert gpus_per_node(pool()) == 8
    assert gpus_per_node(pool(mode="time-slicing", replicas=4)) == 32
    assert gpus_per_node(pool(mode="mig", mig_strategy="single", mig_layout="all-1g.10gb")) == 56
    assert gpus_per_node(pool("NVIDIA-A100-SXM4-40GB", mode="mig", mig_strategy="single",
                              mig_layout="all-1g.10gb")) == 32
    assert gpus_per_node(pool(mode="mig", mig_strategy="mixed", mig_layout="all-balanced")) == 0
    assert pool_gpus(pool(mode="time-slicing", replicas=4)) == 64


def test_advertised_product_follows_the_labeler():
    assert advertised_product(pool()) == "NVIDIA-A100-SXM4-80GB"
    # renameByDefault: the shared resource is renamed, so no "-SHARED" (internal/lm/resource.go getProductName)
    assert advertised_product(pool(mode="time-slicing", replicas=4)) == "NVIDIA-A100-SXM4-80GB"
    assert advertised_product(pool(mode="mig", mig_strategy="single", mig_layout="all-3g.40gb")) == \
        "NVIDIA-A100-SXM4-80GB-MIG-3g.40gb"
    assert advertised_product(pool(mode="mig", mig_strategy="mixed", mig_layout="all-balanced")) == \
        "NVIDIA-A100-SXM4-80GB"


def test_node_labels_match_what_discovery_writes():
    labels = PoolFacts.from_pool(pool(mode="mig", mig_strategy="single", mig_layout="all-1g.10gb")).labels
    assert labels["nvidia.com/gpu.product"] == "NVIDIA-A100-SXM4-80GB-MIG-1g.10gb"
    assert labels["nvidia.com/gpu.count"] == "56"  # MIG single overrides the count with MIG devices
    assert labels["nvidia.com/mig.config"] == "all-1g.10gb"
    assert labels["nvidia.com/device-plugin.config"] == "p"
    sliced = PoolFacts.from_pool(pool(mode="time-slicing", replicas=4)).labels
    assert sliced["nvidia.com/gpu.count"] == "8"  # physical GPUs; replicas are a separate label
    assert "nvidia.com/mig.config" not in sliced
    assert "nvidia.com/device-plugin.config" not in PoolFacts.from_pool(
        NodePool.model_validate({"name": "c", "role": "cpu", "max": 1})).labels


def problems(*sets: str) -> dict[str, str]:
    with pytest.raises(ConfigError) as err:
        load_profile("onprem-gpu", sets=sets)
    return {p.field: p.allowed for p in err.value.problems}


def test_mig_layout_must_exist_on_the_product():
    found = problems("node_pools[1].sharing={mode: mig, mig_strategy: single, mig_layout: all-1g.5gb}")
    allowed = found["node_pools[1].sharing.mig_layout"]
    assert "all-1g.10gb" in allowed and "all-7g.80gb" in allowed and "all-1g.5gb" not in allowed


def test_single_strategy_cannot_use_the_balanced_layout():
    found = problems("node_pools[1].sharing={mode: mig, mig_strategy: single, mig_layout: all-balanced}")
    assert "one MIG profile on every GPU" in found["node_pools[1].sharing.mig_layout"]


def test_single_strategy_is_refused_when_teams_share_the_cluster():
    found = problems("node_pools[3].sharing={mode: mig, mig_strategy: single, mig_layout: all-1g.10gb}")
    assert "mixed strategy" in found["node_pools[3].sharing.mig_strategy"]


def test_multi_gpu_tier_needs_whole_gpus():
    # Slice the A100 pool: the whole-GPU tiers no longer fit anywhere; the slice tiers still do.
    found = problems("node_pools[1].sharing={mode: time-slicing, replicas: 2}")
    for i in (3, 4, 5):  # gpu-1, gpu-2, gpu-8
        assert "whole GPUs" in found[f"tiers[{i}].gpu"]
    assert "tiers[1].gpu" not in found and "tiers[2].gpu" not in found
