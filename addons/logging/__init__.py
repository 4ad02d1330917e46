"""Logging: Loki (monolithic, on a persistent volume, with retention) fed by Fluent Bit on every node, and a
Grafana data source for it.

Fluent Bit tails container logs from the host, so it runs in the privileged node-agents namespace and
tolerates every taint (GPU nodes included). Loki keeps its index and chunks on the platform storage class and
deletes what is older than the retention (compactor). One tenant: who can open Grafana can read every
namespace's logs; keep Grafana's users to the platform team, or put a multi-tenant gateway in front.
"""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import Field

from mlcluster.addons.base import Addon
from mlcluster.components import k8s as objects
from mlcluster.components.cluster import NODE_AGENTS_NAMESPACE
from mlcluster.profiles.model import AddonSettings, DnsLabel

LOKI_PORT = 3100
DATASOURCE_LABEL = {"grafana_datasource": "1"}  # kube-prometheus-stack's Grafana sidecar picks these up


class LoggingSettings(AddonSettings):
    namespace: DnsLabel = "logging"
    retention_days: int = Field(14, ge=1, le=3650, description="Logs older than this are deleted.")
    storage_gib: int = Field(50, ge=1, le=16384, description="Loki's volume (index and chunks).")


def loki_url(settings: LoggingSettings) -> str:
    return f"http://loki.{settings.namespace}.svc.cluster.local:{LOKI_PORT}"


def datasource_manifest(settings: LoggingSettings, monitoring_namespace: str) -> dict[str, Any]:
    datasources = {"apiVersion": 1, "datasources": [
        {"name": "Loki", "type": "loki", "uid": "loki", "access": "proxy", "url": loki_url(settings),
         "jsonData": {"maxLines": 1000}}]}
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": objects.metadata("datasource-loki", monitoring_namespace, labels=dict(DATASOURCE_LABEL)),
            "data": {"loki.yaml": yaml.safe_dump(datasources, sort_keys=True)}}


class Logging(Addon):
    key = "logging"
    type_name = "Logging"
    description = "Logs: Loki (monolithic, retention) fed by Fluent Bit on every node, a Grafana data source."
    Settings = LoggingSettings
    requires = ("monitoring", "storage")
    needs = {"monitoring": "logs are read in the platform's Grafana"}
    uses_node_agents = True

    def build(self) -> dict[str, Any]:
        settings: LoggingSettings = self.settings  # type: ignore[assignment]
        ns = self.namespace(settings.namespace)
        loki = self.helm_release("loki", "loki", settings.namespace,
                                 self.values("loki", retention_hours=settings.retention_days * 24), depends_on=[ns])
        self.helm_release("fluent-bit", "fluent-bit", NODE_AGENTS_NAMESPACE,
                          self.values("fluent-bit", loki_host=f"loki.{settings.namespace}.svc.cluster.local",
                                      loki_port=LOKI_PORT), depends_on=[loki])
        monitoring_ns = self.profile.addons.monitoring.namespace  # type: ignore[attr-defined]
        self.apply("datasource", datasource_manifest(settings, monitoring_ns), depends_on=[loki])
        return {"lokiUrl": loki_url(settings)}


ADDON = Logging
