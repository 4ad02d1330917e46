"""GPU enablement: the NVIDIA device plugin with GPU Feature Discovery, or the NVIDIA GPU Operator; GPU sharing
per pool; the DCGM exporter scraped by Prometheus.

Two modes (`auto` picks):
- `device-plugin` (eks, existing): the node image brings the driver and the container toolkit (EKS's NVIDIA
  AMIs do). The plugin chart runs the plugin, GPU Feature Discovery and Node Feature Discovery; the standalone
  dcgm-exporter chart publishes GPU metrics.
- `operator` (baremetal, or any cluster with a MIG pool, since only the operator's MIG manager partitions
  GPUs): the GPU Operator runs the plugin, discovery, DCGM exporter and MIG manager. The driver is the host's
  (`driver: host`: EKS AMI, or the bare-metal host scripts; `driver.enabled=false`) or the operator's
  (`driver: operator`, one `NVIDIADriver` per pool, so pools may run different versions). The container
  toolkit is the host's on eks and baremetal: containerd's config has one owner there (the AMI, or
  k3s/RKE2), so the operator's toolkit stays off. On `existing` it may be the operator's.

Everything runs in the node-agents namespace, the only Pod Security `privileged` one, and only on GPU nodes
(Node Feature Discovery's NVIDIA PCI label, tolerating the GPU taint).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field

from mlcluster.addons.base import Addon
from mlcluster.addons.gpu import config
from mlcluster.components.cluster import NODE_AGENTS_NAMESPACE
from mlcluster.profiles.model import AddonSettings, DnsLabel, ProfileBase

Mode = Literal["device-plugin", "operator"]
DRIVER_VERSION = "595.91.07"  # the driver the pinned GPU operator (v26.7.0) ships with
_VERSION = r"^[0-9]{3}(\.[0-9]+){1,2}$"


class GpuSettings(AddonSettings):
    mode: Literal["auto", "device-plugin", "operator"] = Field(
        "auto", description="auto: the GPU operator on baremetal or when a pool uses MIG, the device plugin "
                            "elsewhere.")
    driver: Literal["host", "operator"] = Field(
        "host", description="host: the node image or host scripts install the driver (the operator's is off); "
                            "operator: the GPU operator installs it (operator mode; not on eks).")
    driver_version: str = Field(DRIVER_VERSION, pattern=_VERSION,
                                description="driver: operator — the version for every GPU pool.")
    pool_driver_versions: dict[DnsLabel, str] = Field(
        default_factory=dict, description="driver: operator — a different version for some pools (pool → version).")
    toolkit: Literal["host", "operator"] = Field(
        "host", description="Who configures containerd for GPUs: the host (eks AMI, k3s/RKE2) or, on an existing "
                            "cluster only, the GPU operator.")
    dcgm_exporter: bool = Field(True, description="Publish GPU metrics (DCGM exporter) to Prometheus.")


def gpu_mode(profile: ProfileBase, settings: GpuSettings) -> Mode:
    if settings.mode != "auto":
        return settings.mode
    uses_mig = any(p.sharing.mode == "mig" for p in config.gpu_pools(profile))
    return "operator" if profile.substrate.kind == "baremetal" or uses_mig else "device-plugin"


def driver_by_operator(profile: ProfileBase) -> bool:
    """Whether the GPU operator installs drivers (bare-metal GPU hosts then leave the driver out)."""
    settings: GpuSettings = profile.addons.gpu  # type: ignore[attr-defined]
    return settings.enabled and gpu_mode(profile, settings) == "operator" and settings.driver == "operator"


class Gpu(Addon):
    key = "gpu"
    type_name = "Gpu"
    description = "GPU enablement: NVIDIA device plugin + feature discovery, or the GPU operator; sharing; DCGM."
    Settings = GpuSettings
    installs = ("nvidia-device-plugin", "gpu-operator")
    requires = ("monitoring",)  # its ServiceMonitors need the Prometheus operator's CRDs
    uses_node_agents = True

    @classmethod
    def required_by(cls, profile: ProfileBase) -> str | None:
        pools = [p.name for p in config.gpu_pools(profile)]
        if pools and profile.substrate.kind in ("eks", "baremetal"):
            return f"GPU pools ({', '.join(pools)}) offer no nvidia.com/gpu without a device plugin"
        return None

    @classmethod
    def check(cls, profile: ProfileBase, settings: GpuSettings) -> list[tuple[tuple, object, str]]:  # type: ignore[override]
        found: list[tuple[tuple, object, str]] = []
        at = ("addons", "gpu")
        mode, kind = gpu_mode(profile, settings), profile.substrate.kind
        if settings.driver == "operator" and mode != "operator":
            found.append(((*at, "driver"), "operator", "the driver comes from the GPU operator only in mode "
                          "`operator`; allowed here: host"))
        if settings.driver == "operator" and kind == "eks":
            found.append(((*at, "driver"), "operator", "EKS's NVIDIA AMIs carry the driver; allowed on eks: host"))
        if settings.toolkit == "operator" and kind != "existing":
            owner = "the EKS AMI" if kind == "eks" else "k3s/RKE2"
            found.append(((*at, "toolkit"), "operator", f"containerd's config has one owner here ({owner}); "
                          "the operator's toolkit would overwrite it; allowed here: host"))
        if settings.toolkit == "operator" and mode != "operator":
            found.append(((*at, "toolkit"), "operator", "the toolkit comes from the GPU operator only in mode "
                          "`operator`; allowed here: host"))
        gpu_pool_names = [p.name for p in config.gpu_pools(profile)]
        for pool in settings.pool_driver_versions:
            if pool not in gpu_pool_names:
                found.append(((*at, "pool_driver_versions", pool), pool,
                              f"not a GPU pool of this profile; GPU pools: {', '.join(gpu_pool_names) or 'none'}"))
        for pool, version in settings.pool_driver_versions.items():
            if not re.match(_VERSION, version):
                found.append(((*at, "pool_driver_versions", pool), version, "allowed is a driver version such as "
                              "580.95.05"))
        if settings.pool_driver_versions and settings.driver != "operator":
            found.append(((*at, "pool_driver_versions"), settings.pool_driver_versions,
                          "per-pool driver versions need `driver: operator`; with host drivers, pin them per host"))
        strategies = set()
        for i, pool in enumerate(profile.node_pools):
            if pool.sharing.mode != "mig":
                continue
            strategies.add(pool.sharing.mig_strategy)
            if mode == "device-plugin":
                found.append((("node_pools", i, "sharing", "mode"), "mig",
                              "MIG partitions are made by the GPU operator's MIG manager: set addons.gpu.mode to "
                              "operator (or auto)"))
        if len(strategies) > 1:
            found.append(((*at, "mode"), mode, "the GPU operator applies one MIG strategy to the whole cluster; "
                          f"the MIG pools use {', '.join(sorted(s or '' for s in strategies))}: pick one"))
        return found

    def build(self) -> dict[str, Any]:
        settings: GpuSettings = self.settings  # type: ignore[assignment]
        mode = gpu_mode(self.profile, settings)
        monitoring = bool(self.profile.addons.monitoring.enabled)  # type: ignore[attr-defined]
        namespace = NODE_AGENTS_NAMESPACE
        dcgm = [self.apply("dcgm-metrics", config.dcgm_config_map(namespace))] if settings.dcgm_exporter else []
        context = {"namespace": namespace, "monitoring": monitoring, "dcgm_config": config.DCGM_METRICS_CONFIG,
                   "dcgm_key": config.DCGM_METRICS_KEY, "default_config": config.DEFAULT_CONFIG}
        if mode == "device-plugin":
            self.helm_release("nvidia-device-plugin", "nvidia-device-plugin", namespace,
                              self.values("device-plugin", configs=config.plugin_configs(self.profile), **context))
            if settings.dcgm_exporter:
                self.helm_release("dcgm-exporter", "dcgm-exporter", namespace,
                                  self.values("dcgm-exporter", **context), depends_on=dcgm,
                                  uses=("monitoring.coreos.com",) if monitoring else ())
        else:
            plugin = self.apply("device-plugin-config", config.plugin_config_map(self.profile, namespace))
            driver = settings.driver == "operator"
            release = self.helm_release(
                "gpu-operator", "gpu-operator", namespace,
                self.values("gpu-operator", plugin_config=config.DEVICE_PLUGIN_CONFIG, driver=driver,
                            toolkit=settings.toolkit == "operator", mig_strategy=config.mig_strategy(self.profile),
                            dcgm=settings.dcgm_exporter, **context),
                depends_on=[plugin, *dcgm], uses=("monitoring.coreos.com",) if monitoring else ())
            if driver:
                for manifest in config.driver_manifests(self.profile, settings.driver_version,
                                                        settings.pool_driver_versions):
                    self.apply(manifest["metadata"]["name"], manifest, depends_on=[release])
        return {"gpuMode": mode}


ADDON = Gpu
