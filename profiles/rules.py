"""Rules that relate several fields of a profile.

Pydantic checks shapes and types; these checks need the whole profile (uniqueness, references between
sections, capacity). Each returns `(field path, value, what is allowed)` so the error can name the exact
field and the file and line that set it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from typing import Any

from mlcluster.components import quantity
from mlcluster.profiles import quotas
from mlcluster.profiles.gpu_products import (
    BALANCED_LAYOUT,
    MIG_FAMILIES,
    SHARED_GPU,
    WHOLE_GPU,
    layout_profile,
    mig_profiles,
    mig_resource,
    pool_gpus,
    pool_resource,
    tier_resource,
)
from mlcluster.profiles.instance_types import GPU_INSTANCES, is_arm
from mlcluster.profiles.model import BaremetalSubstrate, EksSubstrate, NodePool, ProfileBase
from mlcluster.yamlsource import Path_

# (field, value, what is allowed[, other fields the rule is about: the one the latest layer set is blamed])
Finding = tuple[Path_, Any, str] | tuple[Path_, Any, str, tuple[Path_, ...]]


def _unique(items: list[Any], section: str, what: str) -> Iterator[Finding]:
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        if item.name in seen:
            yield ((section, i, "name"), item.name,
                   f"{what} names must be unique; `{item.name}` is already {section}[{seen[item.name]}]")
        seen.setdefault(item.name, i)


def _pool(i: int, pool: NodePool, substrate: str) -> Iterator[Finding]:
    at: Path_ = ("node_pools", i)
    if substrate != "eks" and pool.provisioner != "managed":
        yield ((*at, "provisioner"), pool.provisioner, "Karpenter is an eks option; allowed here: managed")
    if pool.min > pool.max:
        yield ((*at, "min"), pool.min, f"min must be at most max ({pool.max})")
    if pool.role == "gpu" and pool.gpu is None:
        yield ((*at, "gpu"), None, "a pool with role `gpu` needs `gpu: {product: …, count: …}`")
    if pool.role != "gpu" and pool.gpu is not None:
        yield ((*at, "role"), pool.role, "a pool with a `gpu:` block must have role `gpu`")
    sharing = pool.sharing
    if sharing.mode != "none" and pool.gpu is None:
        yield ((*at, "sharing", "mode"), sharing.mode, "GPU sharing needs a GPU pool; allowed here is `none`")
    if sharing.mode == "time-slicing" and sharing.replicas is None:
        yield ((*at, "sharing", "replicas"), None, "time-slicing needs `replicas` (2–64 pods per GPU)")
    if sharing.mode != "time-slicing" and sharing.replicas is not None:
        yield ((*at, "sharing", "replicas"), sharing.replicas, "`replicas` applies to mode `time-slicing` only")
    if sharing.mode == "mig":
        yield from _mig(at, pool)
    elif sharing.mig_strategy is not None or sharing.mig_layout is not None:
        yield ((*at, "sharing", "mode"), sharing.mode, "`mig_strategy`/`mig_layout` are set, so mode must be `mig`")


def _mig(at: Path_, pool: NodePool) -> Iterator[Finding]:
    sharing = pool.sharing
    profiles = mig_profiles(pool.gpu.product) if pool.gpu is not None else None
    if pool.gpu is not None and profiles is None:
        yield ((*at, "sharing", "mode"), "mig",
               f"{pool.gpu.product} has no MIG; MIG GPUs: {MIG_FAMILIES} (use time-slicing for this GPU)")
        return
    if sharing.mig_strategy is None:
        yield ((*at, "sharing", "mig_strategy"), None, "MIG needs `mig_strategy`: single or mixed")
    if sharing.mig_layout is None:
        yield ((*at, "sharing", "mig_layout"), None, "MIG needs `mig_layout`, e.g. all-1g.10gb")
        return
    layouts = [f"all-{p}" for p in profiles or {}]
    profile = layout_profile(sharing.mig_layout)
    if sharing.mig_strategy == "single" and (profile is None or profile not in (profiles or {})):
        yield ((*at, "sharing", "mig_layout"), sharing.mig_layout,
               "the single strategy puts one MIG profile on every GPU; allowed here: " + (", ".join(layouts) or "none"))
    elif sharing.mig_strategy == "mixed" and sharing.mig_layout != BALANCED_LAYOUT and profile not in (profiles or {}):
        yield ((*at, "sharing", "mig_layout"), sharing.mig_layout,
               "allowed here: " + ", ".join([BALANCED_LAYOUT, *layouts]))


def _eks_pool(i: int, pool: NodePool) -> Iterator[Finding]:
    at: Path_ = ("node_pools", i)
    types = pool.instance_types
    if not types:
        yield ((*at, "instance_types"), [], "an eks pool needs at least one instance type, e.g. [m7i.xlarge]")
        return
    if len({is_arm(t) for t in types}) > 1:
        yield ((*at, "instance_types"), types, "one pool is all Arm (Graviton) or all x86: one AMI type per pool")
    known = [GPU_INSTANCES.get(t) for t in types]
    for j, (name, facts) in enumerate(zip(types, known, strict=True)):
        if pool.role == "gpu" and facts is None:
            yield ((*at, "instance_types", j), name,
                   f"not a GPU instance type the toolkit knows; known: {', '.join(sorted(GPU_INSTANCES))}")
        elif pool.role != "gpu" and facts is not None:
            yield ((*at, "instance_types", j), name, "a GPU instance type belongs in a pool with role `gpu`")
        elif facts is not None and pool.gpu is not None:
            if facts.product != pool.gpu.product:
                yield ((*at, "gpu", "product"), pool.gpu.product, f"{name} carries {facts.product}")
            if facts.gpus != pool.gpu.count:
                yield ((*at, "gpu", "count"), pool.gpu.count,
                       f"{name} has {facts.gpus} GPUs; every instance type in a pool must match `gpu.count`")
        if pool.efa and (facts is None or not facts.efa):
            yield ((*at, "efa"), True, f"{name} has no EFA; EFA types: "
                   f"{', '.join(sorted(t for t, f in GPU_INSTANCES.items() if f.efa))}")
    yield from _capacity(at, pool)


def _capacity(at: Path_, pool: NodePool) -> Iterator[Finding]:
    """Where a pool's instances come from (EC2 Capacity Blocks are launched with market type `capacity-block` into
    one named block, for one instance type: EKS user guide "capacity-blocks-mng"; a launch template targets one
    reservation, Karpenter selects several: karpenter.sh docs/tasks/odcrs)."""
    reservations = pool.capacity_reservation_ids
    if pool.capacity_type == "spot" and reservations:
        yield ((*at, "capacity_reservation_ids"), reservations, "reservations are on-demand capacity: use "
               "capacity_type on-demand (or capacity-block), not spot")
    if pool.capacity_type == "capacity-block":
        if len(reservations) != 1:
            yield ((*at, "capacity_reservation_ids"), reservations, "a capacity-block pool names its one Capacity "
                   "Block (cr-…)")
        if len(pool.instance_types) != 1:
            yield ((*at, "instance_types"), pool.instance_types, "a Capacity Block is for one instance type")
        if pool.min != 0:
            yield ((*at, "min"), pool.min, "a Capacity Block exists only in its time window: min 0, the "
                   "autoscaler adds nodes when admitted work needs them")
    if pool.provisioner == "managed" and len(reservations) > 1:
        yield ((*at, "capacity_reservation_ids"), reservations, "a managed pool's launch template targets one "
               "reservation; list one, or make the pool `provisioner: karpenter`, which selects several")


def _eks(profile: ProfileBase, eks: EksSubstrate) -> Iterator[Finding]:
    vpc = ipaddress.ip_network(eks.vpc.cidr)
    if not 16 <= vpc.prefixlen <= 20:
        yield (("substrate", "vpc", "cidr"), eks.vpc.cidr, "allowed is a /16 to /20 block")
    service = ipaddress.ip_network(eks.service_cidr)
    if vpc.version == service.version and vpc.overlaps(service):  # type: ignore[arg-type]
        yield (("substrate", "service_cidr"), eks.service_cidr,
               f"overlaps the VPC {eks.vpc.cidr}; pick a disjoint range", (("substrate", "vpc", "cidr"),))
    if eks.vpc.vpc_id and len(eks.vpc.private_subnet_ids) < 2:
        yield (("substrate", "vpc", "private_subnet_ids"), eks.vpc.private_subnet_ids,
               "with your own vpc_id, list at least two private subnets (in different AZs)")
    for j, cidr in enumerate(eks.api.public_cidrs):
        if ipaddress.ip_network(cidr).prefixlen == 0:
            yield (("substrate", "api", "public_cidrs", j), cidr,
                   "the API endpoint is never open to the whole internet; list your office/VPN/CI ranges")
    for j, cidr in enumerate(eks.api.runner_cidrs):
        if ipaddress.ip_network(cidr).prefixlen < 8:
            yield (("substrate", "api", "runner_cidrs", j), cidr,
                   "list the networks `pulumi up` runs from (a VPN range, a CI subnet), not a catch-all")
    if eks.production and eks.vpc.nat_gateways != "per-az" and not eks.vpc.vpc_id:
        yield (("substrate", "vpc", "nat_gateways"), eks.vpc.nat_gateways,
               "a production profile needs a NAT gateway per AZ (per-az)")
    for i, pool in enumerate(profile.node_pools):
        if pool.provisioner == "karpenter" and not eks.karpenter.enabled:
            yield (("node_pools", i, "provisioner"), "karpenter", "turn on `substrate.karpenter.enabled` first")
        if pool.provisioner == "karpenter" and pool.role == "system":
            yield (("node_pools", i, "provisioner"), "karpenter",
                   "the system pool runs Karpenter itself, so it must be `managed`")
    if eks.karpenter.enabled and eks.production and eks.karpenter.ami_alias.endswith("@latest"):
        yield (("substrate", "karpenter", "ami_alias"), eks.karpenter.ami_alias,
               "production pins the AMI (e.g. al2023@v20261110): `@latest` makes Karpenter replace every node "
               "whenever AWS publishes an AMI, training jobs included")
    if not any(p.role == "system" and p.min >= 1 for p in profile.node_pools):
        yield (("node_pools",), [p.name for p in profile.node_pools],
               "an eks profile needs a `system` pool with min >= 1 for cluster add-ons (CoreDNS, controllers)")
    for i, pool in enumerate(profile.node_pools):
        yield from _eks_pool(i, pool)


def _gpu_tiers_and_queues(profile: ProfileBase) -> Iterator[Finding]:
    """GPU kinds, tiers and team quotas as the queues will see them (profiles/quotas.py): every tier runs on some
    pool, every team's guaranteed GPUs exist, and every tier a team may use is admissible for it."""
    teams = bool(profile.teams)
    for i, pool in enumerate(profile.node_pools):
        if pool.sharing.mode != "mig" or not teams or pool.gpu is None or mig_profiles(pool.gpu.product) is None:
            continue
        if pool.sharing.mig_strategy == "single":
            yield ((("node_pools", i, "sharing", "mig_strategy")), "single",
                   "with teams, MIG pools use the mixed strategy: the single strategy advertises MIG instances as "
                   "nvidia.com/gpu, so a multi-GPU job could be given slices; mixed names them "
                   "nvidia.com/mig-<profile>, which quotas and queues count apart")
        elif pool_resource(pool) is None:
            yield ((("node_pools", i, "sharing", "mig_layout")), pool.sharing.mig_layout,
                   "with teams, a MIG pool has one profile on every GPU (all-<profile>), so it offers one resource "
                   "that quotas and queues can count")
    offered = {f.resource for f in quotas.flavors(profile)}
    for i, tier in enumerate(profile.tiers):
        resource = tier_resource(tier)
        if tier.gpu_type != "whole" and tier.gpu not in (0, 1):
            yield ((("tiers", i, "gpu")), tier.gpu, f"a {tier.gpu_type} tier gets one GPU slice: slices are not "
                   "combined (the device plugin refuses more than one shared GPU, and NCCL needs whole GPUs)")
        elif resource is not None and not quotas.eligible(profile, tier):
            kind = "whole GPUs" if resource == WHOLE_GPU else resource
            largest = max((f.per_node for f in quotas.flavors(profile) if f.resource == resource), default=0)
            pools = tuple(("node_pools", j, "max") for j in range(len(profile.node_pools)))
            yield ((("tiers", i, "gpu")), tier.gpu, f"tier `{tier.name}` needs {tier.gpu} {kind} on one node, and no "
                   f"node pool offers that (largest: "
                   f"{largest}); a tier must fit on one node" + ("" if resource in offered else
                   f"; no pool offers {resource} at all"), pools)
    impossible = False
    for i, team in enumerate(profile.teams):
        for resource in sorted({WHOLE_GPU, SHARED_GPU, *(mig_resource(p) for p in team.quota.mig)}):
            want = quotas.guaranteed(team, resource)
            have = sum(f.capacity for f in quotas.flavors(profile) if f.resource == resource)
            if want > have:
                impossible = True
                field = {WHOLE_GPU: "gpu", SHARED_GPU: "shared_gpu"}.get(resource, "mig")
                yield ((("teams", i, "quota", field)), want, f"more {resource} than the pools can ever offer "
                       f"({have} at their max size); raise a pool's max or lower the quota")
    if impossible:
        return
    over = {pool: -left for pool, left in quotas.unassigned(profile).items() if left < 0}
    for pool, excess in over.items():
        j = next(k for k, p in enumerate(profile.node_pools) if p.name == pool)
        yield ((("node_pools", j, "max")), profile.node_pools[j].max,
               f"the teams' guaranteed quotas on this pool exceed its capacity by {excess}; raise max or lower the "
               "teams' quotas")
    if over:
        return
    for i, team in enumerate(profile.teams):
        for tier in profile.tiers:
            if (team.tiers is not None and tier.name not in team.tiers) or not tier.gpu:
                continue
            if quotas.eligible(profile, tier) and not quotas.admissible_on(profile, team, tier):
                yield ((("teams", i, "quota", "gpu" if tier.gpu_type == "whole" else "mig")), quotas.guaranteed(
                    team, tier_resource(tier) or ""), f"tier `{tier.name}` ({tier.gpu} {tier_resource(tier)}) could "
                       "never be admitted for this team: borrowing is off (ml.kueue.borrowing) and its guaranteed "
                       "quota on the pools that can run the tier is smaller; raise the quota, turn borrowing on, or "
                       "leave the tier out of the team's `tiers`")


def gpu_capacity(profile: ProfileBase) -> int:
    """Schedulable `nvidia.com/gpu` at the pools' maximum size (a time-sliced replica or MIG slice is one)."""
    return sum(pool_gpus(pool) for pool in profile.node_pools)


def physical_gpus(profile: ProfileBase) -> int:
    """Physical GPUs at the pools' maximum size."""
    return sum(pool.max * pool.gpu.count for pool in profile.node_pools if pool.gpu is not None)


def reserved_namespaces() -> dict[str, str]:
    """Namespaces Kubernetes or the platform own outside any add-on's `namespace` setting, with their owner, from
    the constants the components use: nothing else may claim them."""
    from mlcluster.addons.secrets import NAMESPACES as SECRETS_NAMESPACES
    from mlcluster.addons.storage import LONGHORN_NAMESPACE, NFS_NAMESPACE
    from mlcluster.components.aws.karpenter import NAMESPACE as KARPENTER_NAMESPACE
    from mlcluster.components.cluster import NODE_AGENTS_NAMESPACE

    return {"default": "Kubernetes' default namespace",
            **{ns: "Kubernetes' own" for ns in ("kube-system", "kube-public", "kube-node-lease")},
            NODE_AGENTS_NAMESPACE: "the privileged node-agent namespace", LONGHORN_NAMESPACE: "Longhorn's (privileged)",
            NFS_NAMESPACE: "the NFS provisioner's", KARPENTER_NAMESPACE: "Karpenter's",
            **{ns: "the secrets backend's" for ns in SECRETS_NAMESPACES.values()}}


# NodeRestriction lets a kubelet set labels under kubernetes.io / k8s.io only in these (kubernetes.io docs,
# "Admission Controllers Reference", NodeRestriction); the others are the system's own (hostname, zone...).
NODE_LABEL_PREFIXES_ALLOWED = ("node.kubernetes.io/", "kubelet.kubernetes.io/")


def _namespaces(profile: ProfileBase) -> Iterator[Finding]:
    """One owner per namespace: two add-ons (or an add-on and a team) in one namespace overwrite each other's
    Namespace object, Pod Security labels and NetworkPolicies, and an add-on in kube-system relabels it."""
    from mlcluster.addons import enabled_addons, registry, settings_of
    from mlcluster.components.tenancy import team_namespace

    reserved = reserved_namespaces()
    claimed: dict[str, str] = {}
    for key in enabled_addons(profile):
        addon = registry()[key]
        for ns in addon.namespaces(settings_of(profile, key)):  # type: ignore[arg-type]
            at: Path_ = (addon.section, key, "namespace")
            if ns in reserved:
                yield (at, ns, f"`{ns}` is {reserved[ns]}; give {key} a namespace of its own")
            elif ns in claimed:
                yield (at, ns, f"`{ns}` is already {claimed[ns]}'s: two add-ons in one namespace overwrite each "
                       "other's namespace labels and network policies; pick another")
            else:
                claimed[ns] = f"add-on {key}"
    for i, team in enumerate(profile.teams):
        ns = team_namespace(team, profile.tenancy)
        owner = reserved.get(ns) or claimed.get(ns)
        if owner:
            yield (("teams", i, "name"), team.name, f"its namespace `{ns}` (tenancy.namespace_prefix + name) is "
                   f"{owner}'s; rename the team or change the prefix")


def _node_labels(i: int, pool: NodePool) -> Iterator[Finding]:
    for key in pool.labels:
        prefix = key.split("/", 1)[0] if "/" in key else ""
        system = prefix in ("kubernetes.io", "k8s.io") or prefix.endswith((".kubernetes.io", ".k8s.io"))
        if system and not key.startswith(NODE_LABEL_PREFIXES_ALLOWED):
            yield (("node_pools", i, "labels"), key, "labels under kubernetes.io / k8s.io are the system's own "
                   "(hostname, zone, instance type): the NodeRestriction admission plugin refuses them from a "
                   "kubelet and overriding them breaks scheduling; use your own prefix, or node.kubernetes.io/")


def _baremetal(profile: ProfileBase, b: BaremetalSubstrate) -> Iterator[Finding]:
    """The distribution's release string, its Kubernetes minor, the cluster's networks and the APT mirror's key."""
    distribution = "k3s" if "+k3s" in b.version else "rke2"
    if distribution != b.distribution:
        example = "v1.35.1+k3s1" if b.distribution == "k3s" else "v1.35.1+rke2r1"
        yield (("substrate", "version"), b.version, f"substrate.version {b.version} is a {distribution} release but "
               f"substrate.distribution is {b.distribution}: they go together (a {b.distribution} release looks like "
               f"{example})", (("substrate", "distribution"),))
    pods, services = ipaddress.ip_network(b.cluster_cidr), ipaddress.ip_network(b.service_cidr)
    if pods.overlaps(services):  # type: ignore[arg-type]
        yield (("substrate", "service_cidr"), b.service_cidr, f"substrate.cluster_cidr {b.cluster_cidr} (pods) and "
               f"substrate.service_cidr {b.service_cidr} overlap; pick disjoint ranges (the inventory's host "
               "networks must not overlap either)",
               (("substrate", "cluster_cidr"),))
    minor = b.version.split(".")[1]
    if f"1.{minor}" != profile.kubernetes.version:
        yield (("substrate", "version"), b.version, f"must be a {profile.kubernetes.version} release to match "
               "kubernetes.version")
    if b.air_gap.package_mirror and not b.air_gap.package_mirror_key:
        yield (("substrate", "air_gap", "package_mirror_key"), None, "the APT mirror's ASCII-armored signing key: "
               "packages installed as root are verified, never `trusted=yes`")
    if b.air_gap.package_mirror_key and "BEGIN PGP PUBLIC KEY BLOCK" not in b.air_gap.package_mirror_key:
        yield (("substrate", "air_gap", "package_mirror_key"), b.air_gap.package_mirror_key[:40],
               "an ASCII-armored public key (-----BEGIN PGP PUBLIC KEY BLOCK-----)")


_PRINCIPAL = re.compile(r"^arn:aws(-cn|-us-gov)?:iam::[0-9]{12}:(role|user)/[\w+=,.@/-]+$")


def _principals(eks: EksSubstrate) -> Iterator[Finding]:
    for j, arn in enumerate(eks.admin_principals):
        if _PRINCIPAL.match(arn):
            continue
        hint = ""
        if ":assumed-role/" in arn:
            from mlcluster.components.aws.preflight import principal_of

            account, _, role = principal_of(arn)
            hint = f" (a session ARN is not a principal: use arn:aws:iam::{account}:role/{role})"
        yield (("substrate", "admin_principals", j), arn, "allowed is an IAM role or user ARN, e.g. "
               f"arn:aws:iam::111122223333:role/platform-admins{hint}")


def check(profile: ProfileBase) -> list[Finding]:
    found: list[Finding] = []
    found += _unique(profile.node_pools, "node_pools", "node pool")
    found += _unique(profile.tiers, "tiers", "tier")
    found += _unique(profile.teams, "teams", "team")
    for i, pool in enumerate(profile.node_pools):
        found += _pool(i, pool, profile.substrate.kind)
        found += _node_labels(i, pool)
    found += _namespaces(profile)
    if isinstance(profile.substrate, EksSubstrate):
        found += _eks(profile, profile.substrate)
        found += _principals(profile.substrate)
    if isinstance(profile.substrate, BaremetalSubstrate):
        found += _baremetal(profile, profile.substrate)

    found += _gpu_tiers_and_queues(profile)

    tier_names = [t.name for t in profile.tiers]
    lead_of: dict[str, str] = {}
    for i, team in enumerate(profile.teams):
        for j, tier in enumerate(team.tiers or []):
            if tier not in tier_names:
                found.append((("teams", i, "tiers", j), tier,
                              f"unknown tier; the profile defines: {', '.join(tier_names) or 'no tiers'}"))
        for tier in (t for t in profile.tiers if team.tiers is None or t.name in team.tiers):
            too_big = [what for what, need, has in (
                ("cpu", quantity.value(tier.cpu), quantity.value(team.quota.cpu)),
                ("memory", quantity.value(tier.memory), quantity.value(team.quota.memory))) if need > has]
            if too_big:
                found.append((("teams", i, "quota", too_big[0]), getattr(team.quota, too_big[0]),
                              f"tier `{tier.name}` ({tier.cpu} CPU, {tier.memory}, {tier.gpu} GPU) does not fit the "
                              f"team's quota, so its notebooks and jobs could never start; raise the quota or "
                              f"leave the tier out of the team's `tiers`"))
        for j, lead in enumerate(team.leads):
            if lead in lead_of and lead_of[lead] != team.name:
                found.append((("teams", i, "leads", j), lead,
                              f"a user leads one team at most; {lead} already leads `{lead_of[lead]}`"))
            lead_of.setdefault(lead, team.name)
        if len(profile.tenancy.namespace_prefix + team.name) > 63:
            found.append((("teams", i, "name"), team.name,
                          f"the namespace `{profile.tenancy.namespace_prefix}{team.name}` would be longer than 63 "
                          "characters; shorten the team name"))
    from mlcluster.addons import registry, settings_of

    for key, cls in registry().items():
        settings = settings_of(profile, key)
        if settings.enabled:  # type: ignore[attr-defined]
            found += cls.check(profile, settings)  # type: ignore[arg-type]
            for other, reason in cls.needs.items():
                if not settings_of(profile, other).enabled:  # type: ignore[attr-defined]
                    other_section = registry()[other].section
                    found.append(((cls.section, key, "enabled"), True,
                                  f"{reason}: turn on {other_section}.{other} (or turn this off)"))
        elif reason := cls.required_by(profile):
            found.append(((cls.section, key, "enabled"), False, f"must be true: {reason}"))
    from mlcluster.policy import rules as guardrails

    for i, override in enumerate(profile.policy.overrides):
        if override.rule not in guardrails():
            found.append((("policy", "overrides", i, "rule"), override.rule,
                          f"no such rule; the rules are: {', '.join(sorted(guardrails()))}"))
    if profile.tenancy.egress == "open" and profile.tenancy.egress_cidrs:
        found.append((("tenancy", "egress_cidrs"), profile.tenancy.egress_cidrs,
                      "egress_cidrs only apply with `egress: restricted`"))
    return found
