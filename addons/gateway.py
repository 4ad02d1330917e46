"""Ingress through the Gateway API (ingress-nginx was retired upstream in 2026): Traefik or Envoy Gateway,
one `Gateway` named `mlcluster` whose HTTP listener only redirects to HTTPS (and answers ACME's HTTP-01
challenges), and whose HTTPS listener serves every tool's host with one certificate naming them all (a
wildcard with the private CA; each name with ACME, which cannot issue wildcards over HTTP-01). Tools attach
HTTPRoutes to the HTTPS listener. The Gateway API CRDs come first (components/platform.py). Team namespaces
accept traffic from the gateway's namespace (network role `ingress`); nothing else reaches them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from mlcluster.addons.base import Addon
from mlcluster.components import k8s as objects
from mlcluster.profiles.model import AddonSettings, DnsLabel, ProfileBase

GATEWAY = "mlcluster"
TLS_SECRET = "mlcluster-gateway-tls"
CONTROLLERS = {"traefik": "traefik.io/gateway-controller",
               "envoy-gateway": "gateway.envoyproxy.io/gatewayclass-controller"}
CHARTS = {"traefik": "traefik", "envoy-gateway": "gateway-helm"}
# On eks the gateway's LoadBalancer Service becomes an internal NLB, with the annotations of the AWS cloud provider's
# service controller (kubernetes/cloud-provider-aws docs/service_controller.md; no AWS Load Balancer Controller
# needed): without them EKS makes an internet-facing Classic ELB.
AWS_INTERNAL_NLB = {"service.beta.kubernetes.io/aws-load-balancer-type": "nlb",
                    "service.beta.kubernetes.io/aws-load-balancer-internal": "true"}
# Traefik binds Gateway listeners to its entrypoints by port; Envoy Gateway uses the ports as given.
PORTS = {"traefik": (8000, 8443), "envoy-gateway": (80, 443)}


class GatewaySettings(AddonSettings):
    namespace: DnsLabel = "gateway"
    controller: Literal["traefik", "envoy-gateway"] = "traefik"
    domain: str = Field("ml.example.internal", pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)+[a-z]{2,}$",
                        description="Tools are served as <tool>.<domain>.")


def routed_hosts(profile: ProfileBase) -> list[str]:
    """Every hostname the platform routes through its Gateway (the certificate must name each one)."""
    settings: GatewaySettings = profile.addons.gateway  # type: ignore[attr-defined]
    ml = profile.ml  # type: ignore[attr-defined]
    hosts = []
    if ml.jupyterhub.enabled:
        hosts.append(f"jupyter.{settings.domain}")
    if ml.mlflow.enabled and ml.mlflow.expose:
        hosts.append(f"mlflow.{settings.domain}")
    if ml.argo_workflows.enabled:
        hosts.append(f"argo.{settings.domain}")
    if ml.kserve.enabled and wildcard_allowed(profile):
        hosts.append(f"*.{settings.domain}")  # one name per InferenceService, made at run time
    return hosts


def wildcard_allowed(profile: ProfileBase) -> bool:
    """ACME's HTTP-01 challenge cannot issue a wildcard; the private CA can."""
    return profile.addons.cert_manager.issuer == "self-signed"  # type: ignore[attr-defined]


def manifests(settings: GatewaySettings, hosts: list[str]) -> list[dict[str, Any]]:
    """The GatewayClass, the certificate for every routed name, and the Gateway: HTTP only redirects (routes
    from other namespaces cannot attach to it; ACME's HTTP-01 solver routes live beside the certificate), HTTPS
    serves every routed host with that certificate."""
    http, https = PORTS[settings.controller]
    names = sorted({settings.domain, *hosts}, key=lambda n: (n.startswith("*"), n))
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
             {"name": "http", "protocol": "HTTP", "port": http, "allowedRoutes": {"namespaces": {"from": "Same"}}},
             {"name": "https", "protocol": "HTTPS", "port": https,
              "tls": {"mode": "Terminate", "certificateRefs": [{"kind": "Secret", "name": TLS_SECRET}]},
              "allowedRoutes": {"namespaces": {"from": "All"}}},
         ]}},
        {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
         "metadata": objects.metadata("https-redirect", settings.namespace),
         "spec": {"parentRefs": [{"name": GATEWAY, "sectionName": "http"}],
                  "rules": [{"filters": [{"type": "RequestRedirect",
                                          "requestRedirect": {"scheme": "https", "statusCode": 301}}]}]}},
    ]


def parent_ref(gateway: GatewaySettings) -> dict[str, str]:
    """Where every route attaches: the HTTPS listener of the platform Gateway."""
    return {"name": GATEWAY, "namespace": gateway.namespace, "sectionName": "https"}


def route_manifest(name: str, namespace: str, host: str, gateway: GatewaySettings, service: str,
                   port: int) -> dict[str, Any]:
    """An HTTPRoute for a tool: `host` on the platform Gateway's HTTPS listener to the tool's Service."""
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": objects.metadata(name, namespace),
            "spec": {"parentRefs": [parent_ref(gateway)], "hostnames": [host],
                     "rules": [{"backendRefs": [{"name": service, "port": port}]}]}}


class Gateway(Addon):
    key = "gateway"
    type_name = "Gateway"
    description = "Gateway API ingress (Traefik or Envoy Gateway) with TLS from cert-manager."
    Settings = GatewaySettings
    installs = ("traefik", "gateway-helm")
    requires = ("cert_manager", "metallb")
    needs = {"cert_manager": "the gateway's TLS certificate comes from cert-manager"}
    reaches_teams = (8080,)  # routes to KServe predictors in team namespaces

    @classmethod
    def check(cls, profile: ProfileBase, settings: GatewaySettings) -> list[tuple[tuple, object, str]]:  # type: ignore[override]
        if profile.substrate.kind == "eks" and settings.controller != "traefik":
            return [(("addons", "gateway", "controller"), settings.controller, "on eks only traefik, whose load "
                     "balancer mlcluster makes an internal NLB (Envoy Gateway's would be internet-facing)")]
        return []

    def build(self) -> dict[str, Any]:
        settings: GatewaySettings = self.settings  # type: ignore[assignment]
        ns = self.namespace(settings.namespace)
        release = self.helm_release(settings.controller, CHARTS[settings.controller], settings.namespace,
                                    self.values(aws_internal_nlb=AWS_INTERNAL_NLB), depends_on=[ns],
                                    uses=("gateway.networking.k8s.io",))
        for manifest in manifests(settings, routed_hosts(self.profile)):
            self.apply(f"{manifest['kind'].lower()}-{manifest['metadata']['name']}", manifest, depends_on=[release])
        return {"gateway": f"{settings.namespace}/{GATEWAY}", "domain": settings.domain}


ADDON = Gateway
