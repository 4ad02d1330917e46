"""The quota model (profiles/quotas.py): guaranteed shares per pool, the cohort's remainder, and each team's
reach, from which both the queues and the ResourceQuotas are built."""

from __future__ import annotations

import pytest

from mlcluster.errors import ConfigError
from mlcluster.profiles import quotas
from mlcluster.profiles.effective import load_profile


def test_guarantees_split_by_capacity_and_the_cohort_owns_the_rest():
    profile = load_profile("aws-gpu")  # L4 4x4=16, H100 2x8=16 whole; A10G 10 nodes x 4 replicas = 40 shared
    assert quotas.nominal(profile) == {"vision": {"gpu-l4": 8, "gpu-h100": 8, "gpu-a10g": 0},
                                       "nlp": {"gpu-l4": 8, "gpu-h100": 8, "gpu-a10g": 0}}
    assert quotas.unassigned(profile) == {"gpu-l4": 0, "gpu-h100": 0, "gpu-a10g": 40}
    assert quotas.reach(profile, profile.teams[0]) == {"nvidia.com/gpu": 32, "nvidia.com/gpu.shared": 40}


def test_the_largest_tier_fits_one_pool_of_the_guarantee():
    """8 whole GPUs split 4/4 over L4 and H100 would leave the 8-GPU tier admissible only by borrowing."""
    profile = load_profile("aws-gpu", sets=("teams[0].quota.gpu=8", "teams[1].quota.gpu=8"))
    shares = quotas.nominal(profile)
    assert shares["vision"]["gpu-h100"] == 8 and shares["vision"]["gpu-l4"] == 0
    small = load_profile("aws-gpu", sets=("teams[0].quota.gpu=4", "teams[1].quota.gpu=4"))
    assert quotas.nominal(small)["vision"] == {"gpu-l4": 2, "gpu-h100": 2, "gpu-a10g": 0}  # 8 > 4: cannot


def test_over_committed_pools_and_impossible_guarantees_are_errors():
    with pytest.raises(ConfigError) as caught:
        load_profile("aws-gpu", sets=("teams[0].quota.gpu=40",))
    assert "more nvidia.com/gpu than the pools can ever offer (32" in caught.value.render()
    with pytest.raises(ConfigError) as caught:
        load_profile("aws-gpu", sets=("teams[0].quota.gpu=20", "teams[1].quota.gpu=20"))
    assert "exceed its capacity" in caught.value.render()
    with pytest.raises(ConfigError) as caught:
        load_profile("onprem-gpu", sets=("teams[0].quota.mig={2g.20gb: 3}",))
    assert "nvidia.com/mig-2g.20gb" in caught.value.render()


def test_slices_are_one_per_tier_and_need_their_kind_of_pool():
    with pytest.raises(ConfigError, match="one GPU slice"):
        load_profile("aws-gpu", sets=("tiers[1].gpu=2",))
    with pytest.raises(ConfigError, match=r"no pool offers nvidia\.com/mig-1g\.10gb"):
        load_profile("aws-gpu", sets=("tiers[1].gpu_type=1g.10gb",))


def test_mig_pools_with_teams_use_the_mixed_strategy_with_one_profile():
    with pytest.raises(ConfigError) as caught:
        load_profile("onprem-gpu", sets=("node_pools[3].sharing.mig_strategy=single",))
    assert "advertises MIG instances as nvidia.com/gpu" in caught.value.render()
    with pytest.raises(ConfigError, match="one profile on every GPU"):
        load_profile("onprem-gpu", sets=("node_pools[3].sharing.mig_layout=all-balanced", "tiers[2].gpu=0"))
    alone = load_profile("onprem-gpu", sets=("teams=[]", "node_pools[3].sharing.mig_strategy=single",
                                             "tiers[2].gpu_type=whole", "ml.jupyterhub.enabled=false"))
    assert alone.node_pools[3].sharing.mig_strategy == "single"  # no teams: no quotas to escape
