"""cert-manager: certificates for the platform's gateway, from a self-signed CA or from ACME.

`self-signed` bootstraps a private CA (a self-signed ClusterIssuer issues the CA certificate, a CA
ClusterIssuer named `mlcluster` issues from it): distribute `mlcluster-ca` to clients. `acme` issues
publicly trusted certificates (Let's Encrypt by default) with HTTP-01 answered through the Gateway API.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from mlcluster.addons.base import Addon
from mlcluster.components import k8s as objects
from mlcluster.profiles.model import AddonSettings, DnsLabel, ProfileBase

ISSUER = "mlcluster"
CA_SECRET = "mlcluster-ca"
LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"


class CertManagerSettings(AddonSettings):
    namespace: DnsLabel = "cert-manager"
    issuer: Literal["self-signed", "acme"] = "self-signed"
    acme_email: str | None = Field(None, pattern=r"^[^@\s]+@[^@\s]+$", description="acme: expiry notices go here.")
    acme_server: str = Field(LETS_ENCRYPT, description="acme: directory URL (use the staging URL to test).")


def issuer_manifests(settings: CertManagerSettings, gateway: tuple[str, str] | None) -> list[dict[str, Any]]:
    """ClusterIssuers (and the CA certificate for self-signed). `gateway` = (namespace, name) for HTTP-01."""
    if settings.issuer == "acme":
        solver: dict[str, Any] = {"http01": {"gatewayHTTPRoute": {"parentRefs": [
            {"name": gateway[1], "namespace": gateway[0], "kind": "Gateway"}]}}} if gateway else {}
        return [{"apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer", "metadata": objects.metadata(ISSUER),
                 "spec": {"acme": {"server": settings.acme_server, "email": settings.acme_email,
                                   "privateKeySecretRef": {"name": f"{ISSUER}-acme-account"},
                                   "solvers": [solver] if solver else []}}}]
    return [
        {"apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer", "metadata": objects.metadata("selfsigned"),
         "spec": {"selfSigned": {}}},
        {"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
         "metadata": objects.metadata(CA_SECRET, settings.namespace),
         "spec": {"isCA": True, "commonName": "mlcluster CA", "secretName": CA_SECRET, "duration": "87600h",
                  "privateKey": {"algorithm": "ECDSA", "size": 256},
                  "issuerRef": {"name": "selfsigned", "kind": "ClusterIssuer", "group": "cert-manager.io"}}},
        {"apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer", "metadata": objects.metadata(ISSUER),
         "spec": {"ca": {"secretName": CA_SECRET}}},
    ]


class CertManager(Addon):
    key = "cert_manager"
    type_name = "CertManager"
    description = "cert-manager: TLS certificates from a self-signed CA or ACME, for the gateway."
    Settings = CertManagerSettings
    installs = ("cert-manager",)

    @classmethod
    def check(cls, profile: ProfileBase, settings: CertManagerSettings) -> list[tuple[tuple, object, str]]:  # type: ignore[override]
        if settings.issuer == "acme" and not settings.acme_email:
            return [(("addons", "cert_manager", "acme_email"), None, "acme needs an email for expiry notices")]
        return []

    def build(self) -> dict[str, Any]:
        settings: CertManagerSettings = self.settings  # type: ignore[assignment]
        ns = self.namespace(settings.namespace)
        gateway_api = bool(getattr(self.profile.addons, "gateway", None) and self.profile.addons.gateway.enabled)  # type: ignore[attr-defined]
        # enableGatewayAPI makes the controller exit at start when the v1 Gateway CRDs are missing
        # (cert-manager pkg/controller/context.go): only with the gateway, and after its CRDs.
        release = self.helm_release("cert-manager", "cert-manager", settings.namespace,
                                    self.values(gateway_api=gateway_api), depends_on=[ns],
                                    uses=("gateway.networking.k8s.io",) if gateway_api else ())
        gateway = None
        gateway_settings = getattr(self.profile.addons, "gateway", None)  # type: ignore[attr-defined]
        if gateway_settings is not None and gateway_settings.enabled:
            gateway = (gateway_settings.namespace, "mlcluster")
        for manifest in issuer_manifests(settings, gateway):
            self.apply(f"{manifest['kind'].lower()}-{manifest['metadata']['name']}", manifest, depends_on=[release])
        return {"clusterIssuer": ISSUER}


ADDON = CertManager
