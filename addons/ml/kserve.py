"""KServe in Standard (raw Deployment) mode: InferenceServices as Deployments with an HPA, no Knative or Istio.
Webhook certificates come from cert-manager; with the gateway on, each service gets an HTTPRoute on the
platform Gateway (`<service>-<namespace>.<domain>`). GPU models request `nvidia.com/gpu` and tolerate the
GPU taint (README example); they run in team namespaces under the team's quota.
"""

from __future__ import annotations

from typing import Any

from mlcluster.addons.base import Addon
from mlcluster.profiles.model import AddonSettings, DnsLabel


class KServeSettings(AddonSettings):
    namespace: DnsLabel = "kserve"


class KServe(Addon):
    key = "kserve"
    section = "ml"
    type_name = "KServe"
    description = "KServe (Standard mode, HPA autoscaling, Gateway API): model serving without Knative or Istio."
    Settings = KServeSettings
    requires = ("cert_manager", "gateway")
    needs = {"cert_manager": "KServe's webhook certificates come from cert-manager"}

    def build(self) -> dict[str, Any]:
        settings: KServeSettings = self.settings  # type: ignore[assignment]
        ns = self.namespace(settings.namespace)
        crds = self.helm_release("kserve-crd", "kserve-crd", settings.namespace, {}, depends_on=[ns])
        gateway = self.profile.addons.gateway  # type: ignore[attr-defined]
        self.helm_release("kserve", "kserve-resources", settings.namespace,
                          self.values(gateway=gateway if gateway.enabled else None), depends_on=[ns, crds])
        return {}


ADDON = KServe
