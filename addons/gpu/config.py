"""What the GPU add-on writes besides chart values, as plain data: the device plugin's configuration per pool,
the DCGM counters, and one `NVIDIADriver` per GPU pool when the GPU operator owns the driver.

Per-pool configuration uses the device plugin's own mechanism: one ConfigMap holding a named config per GPU
pool, each node picking its entry through the `nvidia.com/device-plugin.config` label its pool carries
(`PoolFacts`). Time-slicing renames its replicas to `nvidia.com/gpu.shared` (`renameByDefault`), so quotas and
queues count them apart from whole GPUs, and refuses requests above one (`failRequestsGreaterThanOne`): two
slices of one GPU are not two GPUs.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml

from mlcluster.components import k8s as objects
from mlcluster.components.cluster import GPU_RESOURCE, GPU_TAINT_KEY, POOL_LABEL
from mlcluster.profiles.model import NodePool, ProfileBase

DEVICE_PLUGIN_CONFIG = "device-plugin-config"  # ConfigMap (operator mode) of per-pool configs
DEFAULT_CONFIG = "default"  # the entry for GPU nodes whose pool the profile does not describe
DCGM_METRICS_CONFIG = "dcgm-metrics"  # ConfigMap with the counters CSV
DCGM_METRICS_KEY = "dcgm-metrics.csv"  # the key the GPU operator reads; the standalone exporter mounts it
DCGM_METRICS_FILE = Path(__file__).resolve().parent / "dcgm-metrics.csv"
DRIVER_REPOSITORY = "nvcr.io/nvidia"


def gpu_pools(profile: ProfileBase) -> list[NodePool]:
    return [p for p in profile.node_pools if p.gpu is not None]


def mig_strategy(profile: ProfileBase) -> str:
    """The cluster's MIG strategy: the one its MIG pools use (rules keep it to one), else `none`."""
    strategies = {p.sharing.mig_strategy for p in gpu_pools(profile) if p.sharing.mode == "mig"}
    return strategies.pop() if len(strategies) == 1 else "none"


def plugin_config(pool: NodePool | None, strategy: str, volume_mounts: bool = False) -> dict[str, Any]:
    """The device plugin's config file (`version: v1`) for one pool. `volume_mounts`: pass the GPUs a pod got as
    volume mounts (k8s-device-plugin v0.20.0 `flags.plugin.deviceListStrategy`), on hosts whose container toolkit
    mlcluster configured to ignore NVIDIA_VISIBLE_DEVICES from unprivileged containers (bare metal): otherwise
    any CUDA image (ENV NVIDIA_VISIBLE_DEVICES=all) on a GPU node sees every GPU of it."""
    config: dict[str, Any] = {"version": "v1", "flags": {"migStrategy": strategy, "failOnInitError": True}}
    if volume_mounts:
        config["flags"]["plugin"] = {"deviceListStrategy": "volume-mounts"}
    if pool is not None and pool.sharing.mode == "time-slicing":
        config["sharing"] = {"timeSlicing": {
            "renameByDefault": True,  # replicas are nvidia.com/gpu.shared: never mistaken for whole GPUs
            "failRequestsGreaterThanOne": True,
            "resources": [{"name": GPU_RESOURCE, "replicas": pool.sharing.replicas}],
        }}
    return config


def plugin_configs(profile: ProfileBase) -> dict[str, str]:
    """Config name → YAML text: `default`, then one entry per GPU pool (the node label's values)."""
    strategy = mig_strategy(profile)
    mounts = profile.substrate.kind == "baremetal"
    configs = {DEFAULT_CONFIG: plugin_config(None, strategy, mounts)}
    configs.update({p.name: plugin_config(p, strategy, mounts) for p in gpu_pools(profile)})
    return {name: yaml.safe_dump(config, sort_keys=True) for name, config in configs.items()}


def plugin_config_map(profile: ProfileBase, namespace: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": objects.metadata(DEVICE_PLUGIN_CONFIG, namespace),
            "data": plugin_configs(profile)}


@functools.cache
def dcgm_counters() -> str:
    return DCGM_METRICS_FILE.read_text(encoding="utf-8")


def dcgm_fields() -> list[str]:
    """The DCGM fields the exporter publishes, i.e. the Prometheus metric names it exposes."""
    return [line.split(",", 1)[0].strip() for line in dcgm_counters().splitlines()
            if line.strip() and not line.startswith("#")]


def dcgm_config_map(namespace: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": objects.metadata(DCGM_METRICS_CONFIG, namespace),
            "data": {DCGM_METRICS_KEY: dcgm_counters()}}


def driver_manifests(profile: ProfileBase, version: str, pool_versions: dict[str, str]) -> list[dict[str, Any]]:
    """One `NVIDIADriver` per GPU pool (the operator's per-pool driver), selecting the pool's nodes."""
    return [{
        "apiVersion": "nvidia.com/v1alpha1", "kind": "NVIDIADriver",
        "metadata": objects.metadata(f"driver-{pool.name}"),
        "spec": {
            "driverType": "gpu",
            "default": False,
            "repository": DRIVER_REPOSITORY,
            "image": "driver",
            "version": pool_versions.get(pool.name, version),
            "nodeSelector": {POOL_LABEL: pool.name},
            "tolerations": [{"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}],
        },
    } for pool in gpu_pools(profile)]
