"""Ingress through the Gateway API (ingress-nginx was retired upstream in 2026): Traefik or Envoy Gateway,
one `Gateway` named `mlcluster` with an HTTP listener (ACME challenges, redirects) and an HTTPS listener
whose certificate cert-manager issues. Tools attach HTTPRoutes to it. Team namespaces accept traffic from
its namespace (network role `ingress`); nothing else reaches them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from mlcluster.addons.base import Addon
from mlcluster.components import k8s as objects
from mlcluster.profiles.model import AddonSettings, DnsLabel

GATEWAY = "mlcluster"
TLS_SECRET = "mlcluster-gateway-tls"
CONTROLLERS = {"traefik": "traefik.io/gateway-controller",
               "envoy-gateway": "gateway.envoyproxy.io/gatewayclass-controller"}
CHARTS = {"traefik": "traefik", "envoy-gateway": "gateway-helm"}
# Traefik binds Gateway listeners to its entrypoints by port; Envoy Gateway uses the ports as given.
PORTS = {"traefik": (8000, 8443), "envoy-gateway": (80, 443)}


class GatewaySettings(AddonSettings):
    namespace: DnsLabel = "gateway"
    controller: Literal["traefik", "envoy-gateway"] = "traefik"
    domain: str = Field("ml.example.internal", pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)+[a-z]{2,}$",
                        description="Tools are served as <tool>.<domain>.")


def manifests(settings: GatewaySettings, wildcard: bool) -> list[dict[str, Any]]:
    http, https = PORTS[settings.controller]
    names = [settings.domain, f"*.{settings.domain}"] if wildcard else [settings.domain]
    return [
        {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass", "metadata": objects.metadata(GATEWAY),
         "spec": {"controllerName": CONTROLLERS[settings.controller]}},
        {"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
         "metadata": objects.metadata(TLS_SECRET, settings.namespace),
         "spec": {"secretName": TLS_SECRET, "dnsNames": names,
                  "issuerRef": {"name": "mlcluster", "kind": "ClusterIssuer", "group": "cert-manager.io"}}},
        {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
         "metadata": objects.metadata(GATEWAY, settings.namespace),
         "spec": {"gatewayClassName": GATEWAY, "listeners": [
             {"name": "http", "protocol": "HTTP", "port": http, "allowedRoutes": {"namespaces": {"from": "All"}}},
             {"name": "https", "protocol": "HTTPS", "port": https, "hostname": names[-1],
              "tls": {"mode": "Terminate", "certificateRefs": [{"kind": "Secret", "name": TLS_SECRET}]},
              "allowedRoutes": {"namespaces": {"from": "All"}}},
         ]}},
    ]


def route_manifest(name: str, namespace: str, host: str, gateway: GatewaySettings, service: str,
                   port: int) -> dict[str, Any]:
    """An HTTPRoute for a tool: `host` on the platform Gateway's HTTPS listener to the tool's Service."""
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": objects.metadata(name, namespace),
            "spec": {"parentRefs": [{"name": GATEWAY, "namespace": gateway.namespace, "sectionName": "https"}],
                     "hostnames": [host],
                     "rules": [{"backendRefs": [{"name": service, "port": port}]}]}}


class Gateway(Addon):
    key = "gateway"
    type_name = "Gateway"
    description = "Gateway API ingress (Traefik or Envoy Gateway) with TLS from cert-manager."
    Settings = GatewaySettings
    requires = ("cert_manager", "metallb")
    needs = {"cert_manager": "the gateway's TLS certificate comes from cert-manager"}
    network_roles = ("ingress",)

    def build(self) -> dict[str, Any]:
        settings: GatewaySettings = self.settings  # type: ignore[assignment]
        ns = self.namespace(settings.namespace)
        release = self.helm_release(settings.controller, CHARTS[settings.controller], settings.namespace,
                                    self.values(), depends_on=[ns])
        wildcard = self.profile.addons.cert_manager.issuer == "self-signed"  # type: ignore[attr-defined]
        for manifest in manifests(settings, wildcard):
            self.apply(f"{manifest['kind'].lower()}-{manifest['metadata']['name']}", manifest, depends_on=[release])
        return {"gateway": f"{settings.namespace}/{GATEWAY}", "domain": settings.domain}


ADDON = Gateway
