"""Cost and usage: OpenCost, reading the platform's Prometheus, allocates cost per namespace, so each team
(namespace `team-<name>`) sees its spend, GPUs included.

On eks OpenCost prices nodes from AWS's public on-demand price list; elsewhere from the prices below (custom
pricing: what the site pays per CPU-hour, GiB-hour and GPU-hour). OpenCost's own metrics are scraped, so the
GPUs-by-team dashboard shows spend beside use.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from mlcluster.addons.base import Addon
from mlcluster.profiles.model import AddonSettings, DnsLabel

PROMETHEUS_SERVICE = "kps-prometheus"  # kube-prometheus-stack with fullnameOverride `kps`
PROMETHEUS_PORT = 9090


class CostSettings(AddonSettings):
    namespace: DnsLabel = "opencost"
    cpu_hourly: float = Field(0.031, ge=0, description="Price of one CPU-hour (custom pricing, not on eks).")
    ram_gib_hourly: float = Field(0.004, ge=0, description="Price of one GiB-hour of memory (custom pricing).")
    gpu_hourly: float = Field(2.5, ge=0, description="Price of one GPU-hour (custom pricing).")
    storage_gib_monthly: float = Field(0.04, ge=0, description="Price of one GiB-month of volume (custom pricing).")


class Cost(Addon):
    key = "cost"
    type_name = "Cost"
    description = "OpenCost: cost and GPU spend per team namespace, from the platform's Prometheus."
    Settings = CostSettings
    requires = ("monitoring",)
    needs = {"monitoring": "OpenCost reads the platform's Prometheus"}

    def build(self) -> dict[str, Any]:
        settings: CostSettings = self.settings  # type: ignore[assignment]
        ns = self.namespace(settings.namespace)
        monitoring = self.profile.addons.monitoring  # type: ignore[attr-defined]
        values = self.values(prometheus_service=PROMETHEUS_SERVICE, prometheus_namespace=monitoring.namespace,
                             prometheus_port=PROMETHEUS_PORT, custom_pricing=self.profile.substrate.kind != "eks")
        self.helm_release("opencost", "opencost", settings.namespace, values, depends_on=[ns],
                          uses=("monitoring.coreos.com",))  # its ServiceMonitor
        return {}


ADDON = Cost
