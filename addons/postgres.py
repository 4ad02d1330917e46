"""PostgreSQL for the tools that keep state (MLflow's tracking and registry): the CloudNativePG operator.

The operator runs cluster-wide; each tool owns its `Cluster` (instances, volume on the Retain class,
generated credentials) in its own namespace, protected from deletion. CloudNativePG handles failover,
rolling minor upgrades and, when pointed at an object store, backups.
"""

from __future__ import annotations

from typing import Any

from mlcluster.addons.base import Addon
from mlcluster.profiles.model import AddonSettings, DnsLabel

API_VERSION = "postgresql.cnpg.io/v1"


class PostgresSettings(AddonSettings):
    namespace: DnsLabel = "cnpg-system"


def database_cluster(name: str, namespace: str, *, database: str, owner: str, secret: str, instances: int,
                     storage_gib: int, storage_class: str | None) -> dict[str, Any]:
    """A CloudNativePG `Cluster`: `instances` Postgres pods, the app database owned by `owner`, whose
    credentials (a basic-auth Secret) the caller generated."""
    storage: dict[str, Any] = {"size": f"{storage_gib}Gi"}
    if storage_class:
        storage["storageClass"] = storage_class
    return {
        "apiVersion": API_VERSION, "kind": "Cluster",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app.kubernetes.io/part-of": "mlcluster"}},
        "spec": {
            "instances": instances,
            "storage": storage,
            "bootstrap": {"initdb": {"database": database, "owner": owner, "secret": {"name": secret}}},
            "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"cpu": "2", "memory": "2Gi"}},
            "affinity": {"enablePodAntiAffinity": True, "topologyKey": "kubernetes.io/hostname"},
        },
    }


def read_write_host(name: str, namespace: str) -> str:
    """The Service CloudNativePG creates for the primary."""
    return f"{name}-rw.{namespace}.svc.cluster.local"


class Postgres(Addon):
    key = "postgres"
    type_name = "Postgres"
    description = "CloudNativePG operator: PostgreSQL clusters for the tools that keep state (MLflow)."
    Settings = PostgresSettings
    installs = ("cloudnative-pg",)
    requires = ("monitoring",)  # its PodMonitor needs the Prometheus operator's CRDs

    def build(self) -> dict[str, Any]:
        settings: PostgresSettings = self.settings  # type: ignore[assignment]
        ns = self.namespace(settings.namespace)
        monitoring = bool(self.profile.addons.monitoring.enabled)  # type: ignore[attr-defined]
        PODMONITOR = ("monitoring.coreos.com",) if monitoring else ()
        self.helm_release("cloudnative-pg", "cloudnative-pg", settings.namespace,
                          self.values(monitoring=bool(self.profile.addons.monitoring.enabled)),  # type: ignore[attr-defined]
                          depends_on=[ns], uses=PODMONITOR)
        return {}


ADDON = Postgres
