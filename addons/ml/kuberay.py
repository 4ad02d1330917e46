"""KubeRay: the operator for Ray clusters, jobs and services in team namespaces. RayJobs and RayClusters go
through the team's Kueue queue like any job (Kueue's Ray integrations are on); the operator reaches Ray heads
in team namespaces to submit jobs (network role `ray`)."""

from __future__ import annotations

from typing import Any

from mlcluster.addons.base import Addon
from mlcluster.profiles.model import AddonSettings, DnsLabel


class KubeRaySettings(AddonSettings):
    namespace: DnsLabel = "kuberay"


class KubeRay(Addon):
    key = "kuberay"
    section = "ml"
    type_name = "KubeRay"
    description = "KubeRay operator: RayCluster, RayJob and RayService in team namespaces, queued by Kueue."
    Settings = KubeRaySettings
    installs = ("kuberay-operator",)
    reaches_teams = (8265,)  # the operator talks to a RayJob's dashboard / job API

    def build(self) -> dict[str, Any]:
        settings: KubeRaySettings = self.settings  # type: ignore[assignment]
        ns = self.namespace(settings.namespace)
        self.helm_release("kuberay-operator", "kuberay-operator", settings.namespace, self.values(), depends_on=[ns])
        return {}


ADDON = KubeRay
