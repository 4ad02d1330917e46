"""The quota model: one set of numbers from which Kueue's queues and the namespaces' ResourceQuotas are both
built, so they cannot disagree. Kueue is the authority for admission: every pod in a team namespace (jobs,
notebooks, serving) is a Kueue workload; the ResourceQuota is a backstop set to exactly what Kueue could admit.

- A **flavor** per GPU pool: the pool's GPU resource (`nvidia.com/gpu`, `nvidia.com/gpu.shared` or
  `nvidia.com/mig-<profile>`), units per node and capacity at the pool's max size.
- A team's **nominal** quota per flavor is what it is guaranteed: `quota.gpu` whole GPUs (and `shared_gpu`,
  `mig`) split over the pools of that resource in proportion to their capacity, moved so that the team's largest
  whole-GPU tier fits on one pool when the quota allows.
- The **cohort** owns the rest of every pool (capacity − Σ nominal), so all of a pool is reachable through the
  queues: a team borrows idle capacity (cohort's, or other teams' lendable nominal) when `ml.kueue.borrowing` is
  on, and owners reclaim their nominal quota by preemption.
- A team's **reach** for a resource is what Kueue can ever admit to it: its nominal plus, with borrowing, the
  rest of those pools. The ResourceQuota's `requests.<resource>` is the reach; CPU and memory are not borrowed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from mlcluster.profiles.gpu_products import (
    SHARED_GPU,
    WHOLE_GPU,
    gpus_per_node,
    mig_resource,
    pool_gpus,
    pool_resource,
    tier_resource,
)
from mlcluster.profiles.model import NodePool, ProfileBase, Team, Tier


@dataclass(frozen=True)
class Flavor:
    """A GPU pool as a queue flavor."""

    pool: str
    resource: str
    per_node: int  # units of `resource` one node offers
    capacity: int  # units at the pool's max size

    @property
    def whole(self) -> bool:
        return self.resource == WHOLE_GPU


def _kueue(profile: ProfileBase) -> Any:
    return getattr(getattr(profile, "ml", None), "kueue", None)


def borrowing(profile: ProfileBase) -> bool:
    settings = _kueue(profile)
    return bool(settings is None or settings.borrowing)


def flavors(profile: ProfileBase) -> list[Flavor]:
    """GPU pools with capacity, in the order Kueue tries them for one resource: smaller nodes first (a 1-GPU job
    takes an L4 before an H100), then by name."""
    found = [Flavor(p.name, resource, gpus_per_node(p), pool_gpus(p)) for p in profile.node_pools
             if (resource := pool_resource(p)) is not None and pool_gpus(p) > 0]
    return sorted(found, key=lambda f: (f.resource, f.per_node, f.pool))


def resources(profile: ProfileBase) -> list[str]:
    """GPU resources the cluster offers, whole GPUs first."""
    names = {f.resource for f in flavors(profile)}
    return sorted(names, key=lambda r: (r != WHOLE_GPU, r != SHARED_GPU, r))


def guaranteed(team: Team, resource: str) -> int:
    if resource == WHOLE_GPU:
        return team.quota.gpu
    if resource == SHARED_GPU:
        return team.quota.shared_gpu
    return next((n for profile, n in team.quota.mig.items() if mig_resource(profile) == resource), 0)


def eligible(profile: ProfileBase, tier: Tier) -> list[Flavor]:
    """Flavors a tier's pod can run on: its resource, and enough units on one node."""
    resource = tier_resource(tier)
    return [f for f in flavors(profile) if f.resource == resource and f.per_node >= tier.gpu]


def _split(total: int, pools: list[Flavor]) -> dict[str, int]:
    """`total` over `pools` in proportion to capacity (largest remainder, ties by name)."""
    capacity = sum(f.capacity for f in pools)
    if not pools or total == 0 or capacity == 0:
        return {f.pool: 0 for f in pools}
    exact = {f.pool: total * f.capacity / capacity for f in pools}
    split = {name: math.floor(value) for name, value in exact.items()}
    for name in sorted(exact, key=lambda n: (split[n] - exact[n], n))[: total - sum(split.values())]:
        split[name] += 1
    return split


def _fit_largest_tier(profile: ProfileBase, team: Team, split: dict[str, int]) -> dict[str, int]:
    """Move the team's whole-GPU nominal so its largest whole-GPU tier fits on one pool when the quota allows:
    admissible on guaranteed quota alone, not only when others are idle."""
    tiers = [t for t in profile.tiers if tier_resource(t) == WHOLE_GPU and (team.tiers is None or t.name in team.tiers)]
    if not tiers:
        return split
    need = max(t.gpu for t in tiers)
    targets = [f for f in eligible(profile, max(tiers, key=lambda t: t.gpu)) if f.capacity >= need]
    if need > team.quota.gpu or not targets or any(split.get(f.pool, 0) >= need for f in targets):
        return split
    target = max(targets, key=lambda f: (f.capacity, f.pool))
    moved = dict(split)
    for donor in sorted(moved, key=lambda n: (-moved[n], n)):
        if donor == target.pool:
            continue
        take = min(moved[donor], need - moved[target.pool])
        moved[donor] -= take
        moved[target.pool] += take
        if moved[target.pool] >= need:
            break
    return moved


def nominal(profile: ProfileBase) -> dict[str, dict[str, int]]:
    """Team → pool → guaranteed units of that pool's resource."""
    by_resource: dict[str, list[Flavor]] = {}
    for flavor in flavors(profile):
        by_resource.setdefault(flavor.resource, []).append(flavor)
    out: dict[str, dict[str, int]] = {}
    for team in profile.teams:
        shares: dict[str, int] = {}
        for resource, pools in by_resource.items():
            split = _split(guaranteed(team, resource), pools)
            shares.update(_fit_largest_tier(profile, team, split) if resource == WHOLE_GPU else split)
        out[team.name] = shares
    return out


def unassigned(profile: ProfileBase) -> dict[str, int]:
    """Pool → units no team is guaranteed: the cohort's own quota (negative: over-committed, a profile error)."""
    shares = nominal(profile)
    return {f.pool: f.capacity - sum(team.get(f.pool, 0) for team in shares.values()) for f in flavors(profile)}


def reach(profile: ProfileBase, team: Team) -> dict[str, int]:
    """Resource → the most Kueue can ever admit to the team at once (its ResourceQuota for that resource). Whole
    GPUs are always listed (0 where the profile has none), so a GPU node the profile does not describe is capped."""
    shares = nominal(profile)[team.name]
    out: dict[str, int] = {WHOLE_GPU: 0}
    for flavor in flavors(profile):
        own = shares.get(flavor.pool, 0)
        out[flavor.resource] = out.get(flavor.resource, 0) + (flavor.capacity if borrowing(profile) else own)
    return out


def efa_reach(profile: ProfileBase, team: Team) -> int:
    """EFA interfaces (`vpc.amazonaws.com/efa`) the team may hold at once: those of the nodes its whole-GPU reach
    covers on EFA pools. Kueue does not count EFA (excluded from its resources), so without this quota one team's
    pods could take every interface of the EFA pools, GPUs or not, and stall the others' multi-node jobs."""
    from math import ceil

    from mlcluster.profiles.instance_types import efa_interfaces

    shares = nominal(profile)[team.name]
    total = 0
    for flavor in flavors(profile):
        pool = pool_of(profile, flavor.pool)
        per_node = efa_interfaces(pool.instance_types)
        if not flavor.whole or not pool.efa or not per_node:
            continue
        gpus = flavor.capacity if borrowing(profile) else shares.get(flavor.pool, 0)
        total += ceil(gpus / flavor.per_node) * per_node
    return total


def pool_of(profile: ProfileBase, name: str) -> NodePool:
    return next(p for p in profile.node_pools if p.name == name)


def admissible_on(profile: ProfileBase, team: Team, tier: Tier) -> list[str]:
    """Pools where a workload of this tier can be admitted for this team (nominal, or borrowing when on)."""
    shares = nominal(profile)[team.name]
    return [f.pool for f in eligible(profile, tier)
            if (f.capacity if borrowing(profile) else shares.get(f.pool, 0)) >= tier.gpu]
