"""KServe in Standard (raw Deployment) mode: InferenceServices as Deployments with an HPA, no Knative or Istio.
Webhook certificates come from cert-manager; with the gateway on and the private CA issuing (its wildcard
covers run-time names), each service gets an HTTPRoute on the platform Gateway's HTTPS listener
(`<service>-<namespace>.<domain>`); with ACME (HTTP-01 cannot issue a wildcard) services stay in-cluster.
Predictors run in team namespaces as Kueue workloads (Deployment integration) under the team's quota.
"""

from __future__ import annotations

from typing import Any

from mlcluster.addons.base import Addon
from mlcluster.addons.gateway import wildcard_allowed
from mlcluster.profiles.model import AddonSettings, DnsLabel


class KServeSettings(AddonSettings):
    namespace: DnsLabel = "kserve"


class KServe(Addon):
    key = "kserve"
    section = "ml"
    type_name = "KServe"
    description = "KServe (Standard mode, HPA autoscaling, Gateway API): model serving without Knative or Istio."
    Settings = KServeSettings
    installs = ("kserve-crd",)
    requires = ("cert_manager", "gateway")
    needs = {"cert_manager": "KServe's webhook certificates come from cert-manager"}

    def build(self) -> dict[str, Any]:
        settings: KServeSettings = self.settings  # type: ignore[assignment]
        ns = self.namespace(settings.namespace)
        crds = self.helm_release("kserve-crd", "kserve-crd", settings.namespace, {}, depends_on=[ns])
        gateway = self.profile.addons.gateway  # type: ignore[attr-defined]
        routed = gateway.enabled and wildcard_allowed(self.profile)
        uses = ("cert-manager.io", *(("gateway.networking.k8s.io",) if routed else ()))
        self.helm_release("kserve", "kserve-resources", settings.namespace,
                          self.values(gateway=gateway if routed else None), depends_on=[ns, crds],
                          uses=uses)  # webhook certificates; routes on the platform Gateway
        return {}


ADDON = KServe
