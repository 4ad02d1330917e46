"""GPU instance types the toolkit knows: one table, used to validate pools, label nodes and pick AMIs.

`product` is the value NVIDIA GPU Feature Discovery writes to `nvidia.com/gpu.product`, so pools, quotas
and queue flavors all speak the same name. `efa_interfaces` is how many EFA interfaces a node of the type takes
— one per network card (EC2 User Guide, "Maximize network bandwidth on Amazon EC2 instances with multiple network
cards"; DescribeInstanceTypes `NetworkInfo.EfaInfo.MaximumEfaInterfaces`): the launch template attaches that many,
the EFA device plugin advertises that many `vpc.amazonaws.com/efa`, and jobs ask for all of them. EFA types also
get a cluster placement group. Sizes not listed are not GPU types as far as the
toolkit is concerned: a GPU pool on one is an error, which is the point.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GpuInstance:
    product: str
    gpus: int
    memory_gib: int  # per GPU
    efa_interfaces: int = 0  # EFA interfaces a node takes (one per network card); 0: no EFA
    arm: bool = False

    @property
    def efa(self) -> bool:
        return self.efa_interfaces > 0


def _sizes(family: str, product: str, memory: int, sizes: dict[str, int], *, efa: int = 0,
           arm: bool = False) -> dict[str, GpuInstance]:
    return {f"{family}.{size}": GpuInstance(product, gpus, memory, efa, arm) for size, gpus in sizes.items()}


GPU_INSTANCES: dict[str, GpuInstance] = {
    **_sizes("g5", "NVIDIA-A10G", 24, {"xlarge": 1, "2xlarge": 1, "4xlarge": 1, "8xlarge": 1, "16xlarge": 1,
                                       "12xlarge": 4, "24xlarge": 4, "48xlarge": 8}),
    **_sizes("g5g", "NVIDIA-T4G", 16, {"xlarge": 1, "2xlarge": 1, "4xlarge": 1, "8xlarge": 1, "16xlarge": 2},
             arm=True),
    **_sizes("g6", "NVIDIA-L4", 24, {"xlarge": 1, "2xlarge": 1, "4xlarge": 1, "8xlarge": 1, "16xlarge": 1,
                                     "12xlarge": 4, "24xlarge": 4, "48xlarge": 8}),
    **_sizes("g6e", "NVIDIA-L40S", 48, {"xlarge": 1, "2xlarge": 1, "4xlarge": 1, "8xlarge": 1, "16xlarge": 1,
                                        "12xlarge": 4, "24xlarge": 4, "48xlarge": 8}),
    **_sizes("p4d", "NVIDIA-A100-SXM4-40GB", 40, {"24xlarge": 8}, efa=4),
    **_sizes("p4de", "NVIDIA-A100-SXM4-80GB", 80, {"24xlarge": 8}, efa=4),
    **_sizes("p5", "NVIDIA-H100-80GB-HBM3", 80, {"48xlarge": 8}, efa=32),
    **_sizes("p5e", "NVIDIA-H200", 141, {"48xlarge": 8}, efa=32),
    **_sizes("p5en", "NVIDIA-H200", 141, {"48xlarge": 8}, efa=16),
    **_sizes("p6-b200", "NVIDIA-B200", 179, {"48xlarge": 8}, efa=8),
}


def efa_interfaces(instance_types: list[str]) -> int:
    """EFA interfaces every node of a pool of these types takes (the launch template attaches them, the device
    plugin offers them, quotas count them): the smallest count among the types, 0 when one has no EFA."""
    return min((GPU_INSTANCES[t].efa_interfaces if t in GPU_INSTANCES else 0 for t in instance_types), default=0)


def is_arm(instance_type: str) -> bool:
    """Graviton families carry a `g` after the generation digit (m7g, c8g, r7gd, g5g)."""
    family = instance_type.split(".")[0]
    if instance_type in GPU_INSTANCES:
        return GPU_INSTANCES[instance_type].arm
    digits = [i for i, c in enumerate(family) if c.isdigit()]
    return bool(digits) and "g" in family[digits[0] + 1:]
