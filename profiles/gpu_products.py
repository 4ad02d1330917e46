"""What a GPU product offers and how the NVIDIA device plugin advertises it: one place for both.

Three kinds of GPU resource, so that a request can never land on the wrong kind (k8s-device-plugin v0.20.0):
- `nvidia.com/gpu`: a whole physical GPU (pools without sharing).
- `nvidia.com/gpu.shared`: a time-sliced replica. The plugin's `renameByDefault: true` advertises replicas under
  `<resource>.shared` (api/config/v1/consts.go `DefaultSharedResourceNameSuffix`), so a job asking for 2 whole
  GPUs can never be placed on two slices of one (and `failRequestsGreaterThanOne` still refuses >1 slice).
- `nvidia.com/mig-<profile>`: a MIG instance under the `mixed` strategy (one resource per MIG profile). The
  `single` strategy advertises MIG instances as `nvidia.com/gpu`, indistinguishable from whole GPUs, so it is
  only allowed where no teams share the cluster.

MIG profiles per product come from the GPU operator's default MIG configuration (`default-mig-parted-config`,
the `all-<profile>` layouts): the number is how many instances of that profile one GPU holds. The names
a pool is advertised under follow GPU Feature Discovery's labeler (k8s-device-plugin `internal/lm`): a
time-sliced GPU is `<product>-SHARED`, a MIG GPU under the single strategy is `<product>-MIG-<profile>`
and `nvidia.com/gpu.count` then counts MIG devices. Node labels, Kueue flavors and dashboards all use
these names, so they match what the labeler writes instead of fighting it.
"""

from __future__ import annotations

import re

from mlcluster.profiles.model import NodePool, Tier

WHOLE_GPU = "nvidia.com/gpu"
SHARED_GPU = "nvidia.com/gpu.shared"
MIG_PREFIX = "nvidia.com/mig-"


def mig_resource(profile: str) -> str:
    return f"{MIG_PREFIX}{profile}"

# (product pattern, {MIG profile: instances per GPU}). First match wins; products as GFD names them.
_MIG_80GB = {"1g.10gb": 7, "1g.20gb": 4, "2g.20gb": 3, "3g.40gb": 2, "4g.40gb": 1, "7g.80gb": 1}
MIG_PROFILES: tuple[tuple[str, dict[str, int]], ...] = (
    (r"(A100|A800).*40GB", {"1g.5gb": 7, "1g.10gb": 4, "2g.10gb": 3, "3g.20gb": 2, "4g.20gb": 1, "7g.40gb": 1}),
    (r"(H100|H800).*NVL", {"1g.12gb": 7, "1g.24gb": 4, "2g.24gb": 3, "3g.47gb": 2, "4g.47gb": 1, "7g.94gb": 1}),
    (r"(A100|A800|H100|H800).*80GB", _MIG_80GB),
    (r"H200", {"1g.18gb": 7, "1g.35gb": 4, "2g.35gb": 3, "3g.71gb": 2, "4g.71gb": 1, "7g.141gb": 1}),
    (r"B200", {"1g.23gb": 7, "1g.45gb": 4, "2g.45gb": 3, "3g.90gb": 2, "4g.90gb": 1, "7g.180gb": 1}),
    (r"A30", {"1g.6gb": 4, "2g.12gb": 2, "4g.24gb": 1}),
)
MIG_FAMILIES = "A30, A100/A800 (40 or 80 GB), H100/H800 (80 GB or NVL), H200, B200"
BALANCED_LAYOUT = "all-balanced"  # a mix of profiles per GPU; only the mixed strategy can advertise it


def mig_profiles(product: str) -> dict[str, int] | None:
    """MIG profiles of a product and instances per GPU; None when the product has no MIG."""
    for pattern, profiles in MIG_PROFILES:
        if re.search(pattern, product, re.IGNORECASE):
            return profiles
    return None


def layout_profile(layout: str) -> str | None:
    """`all-1g.10gb` → `1g.10gb`; None for a layout that is not one profile on every GPU."""
    return layout.removeprefix("all-") if layout.startswith("all-") and layout != BALANCED_LAYOUT else None


def pool_resource(pool: NodePool) -> str | None:
    """The one GPU resource a pool's nodes advertise (None: no GPU, or a mixed layout of several profiles)."""
    if pool.gpu is None:
        return None
    sharing = pool.sharing
    if sharing.mode == "time-slicing":
        return SHARED_GPU
    if sharing.mode == "mig":
        if sharing.mig_strategy == "single":
            return WHOLE_GPU
        profile = layout_profile(sharing.mig_layout or "")
        return mig_resource(profile) if profile else None
    return WHOLE_GPU


def tier_resource(tier: Tier) -> str | None:
    """The GPU resource a tier's pods request (None for a CPU tier)."""
    if not tier.gpu:
        return None
    if tier.gpu_type == "whole":
        return WHOLE_GPU
    if tier.gpu_type == "shared":
        return SHARED_GPU
    return mig_resource(tier.gpu_type)


def gpus_per_device(pool: NodePool) -> int:
    """How many of the pool's resource one physical GPU advertises: the replicas when time-sliced, the MIG
    instances of its layout (`all-1g.10gb` on an 80 GB H100 → 7), else 1."""
    sharing = pool.sharing
    if sharing.mode == "time-slicing" and sharing.replicas:
        return sharing.replicas
    if sharing.mode == "mig" and pool.gpu is not None:
        profile = layout_profile(sharing.mig_layout or "")
        return (mig_profiles(pool.gpu.product) or {}).get(profile or "", 0)
    return 1


def gpus_per_node(pool: NodePool) -> int:
    """Schedulable units of the pool's GPU resource on one node (whole GPUs, replicas or MIG instances)."""
    return 0 if pool.gpu is None else pool.gpu.count * gpus_per_device(pool)


def pool_gpus(pool: NodePool) -> int:
    """Schedulable units of the pool's GPU resource at its maximum size."""
    return pool.max * gpus_per_node(pool)


def is_exclusive(pool: NodePool) -> bool:
    """A whole physical GPU per `nvidia.com/gpu`: what multi-GPU requests (and NCCL) need."""
    return pool.gpu is not None and pool.sharing.mode == "none"


def advertised_product(pool: NodePool) -> str | None:
    """`nvidia.com/gpu.product` as GPU Feature Discovery writes it for this pool's nodes (under the single MIG
    strategy, `<product>-MIG-<profile>`)."""
    if pool.gpu is None:
        return None
    product = pool.gpu.product
    if pool.sharing.mode == "mig" and pool.sharing.mig_strategy == "single":
        profile = layout_profile(pool.sharing.mig_layout or "")
        return f"{product}-MIG-{profile}" if profile else product
    # Time-slicing with renameByDefault: GFD labels the product plainly (internal/lm/resource.go getProductName
    # appends "-SHARED" only when a shared resource is not renamed).
    return product


# Products built as HGX boards, whose GPUs talk over NVSwitch: CUDA initialisation fails on them until NVIDIA
# Fabric Manager (`nvidia-fabricmanager-<driver branch>`, service `nvidia-fabricmanager`) runs with the same
# driver branch (NVIDIA Fabric Manager user guide, "Supported Platforms": DGX/HGX A100, H100, H200, B200). PCIe and
# NVL cards do not have NVSwitch. Matched against GFD product names.
NVSWITCH_PRODUCTS = (r"A100-SXM", r"A800-SXM", r"H100-(SXM|80GB-HBM3)", r"H800-(SXM|80GB-HBM3)", r"H200(?!.*NVL)",
                     r"B200")


def needs_fabric_manager(product: str, gpus_per_node: int) -> bool:
    """An NVSwitch system: an HGX product with more than four GPUs in the node."""
    return gpus_per_node >= 8 and any(re.search(p, product, re.IGNORECASE) for p in NVSWITCH_PRODUCTS)
