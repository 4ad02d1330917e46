"""Secrets: the backend that holds secrets of record, per substrate.

- `external-secrets` (eks): External Secrets Operator with a ClusterSecretStore for AWS Secrets Manager. Its
  role (Pod Identity) may read only `mlcluster/<stack>/*` and decrypt with the platform key through Secrets
  Manager; the store serves only the platform's namespaces, never team namespaces. Platform secrets are
  written to Secrets Manager and synced in with ExternalSecrets (see components/secrets.py).
- `vault` (baremetal/existing): HashiCorp Vault, HA with integrated raft storage on the Retain class.
  Initialise and unseal once after the first `pulumi up` (`kubectl -n vault exec vault-0 -- vault operator init`).
- `sealed-secrets` (baremetal/existing): the Sealed Secrets controller, so teams can commit encrypted
  secrets to Git (`kubeseal`).
`auto` picks external-secrets on eks and sealed-secrets elsewhere.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from mlcluster.addons import registry, settings_of
from mlcluster.addons.base import Addon
from mlcluster.components import k8s as objects
from mlcluster.components.aws.iam import ServiceAccountRole
from mlcluster.components.secrets import CLUSTER_STORE, SECRETS_MANAGER_PREFIX
from mlcluster.deferred import pulumi
from mlcluster.profiles.model import AddonSettings, ProfileBase

Backend = Literal["external-secrets", "vault", "sealed-secrets"]
NAMESPACES: dict[str, str] = {"external-secrets": "external-secrets", "vault": "vault",
                              "sealed-secrets": "sealed-secrets"}
CHARTS: dict[str, str] = {"external-secrets": "external-secrets", "vault": "vault", "sealed-secrets": "sealed-secrets"}
ESO_SERVICE_ACCOUNT = "external-secrets"


class SecretsSettings(AddonSettings):
    backend: Literal["auto", "external-secrets", "vault", "sealed-secrets"] = "auto"
    vault_replicas: int = Field(3, ge=1, le=7, description="vault: raft voters (odd).")
    vault_storage_gib: int = Field(10, ge=1, le=1024)


def backend_of(profile: ProfileBase, settings: SecretsSettings) -> Backend:
    if settings.backend != "auto":
        return settings.backend
    return "external-secrets" if profile.substrate.kind == "eks" else "sealed-secrets"


class Secrets(Addon):
    key = "secrets"
    type_name = "Secrets"
    description = "Secrets backend: External Secrets + AWS Secrets Manager (eks), Vault (HA raft) or Sealed Secrets."
    Settings = SecretsSettings
    installs = ("external-secrets", "vault", "sealed-secrets")
    requires = ("storage",)  # vault's raft volumes use the Retain class

    @classmethod
    def check(cls, profile: ProfileBase, settings: SecretsSettings) -> list[tuple[tuple, object, str]]:  # type: ignore[override]
        found: list[tuple[tuple, object, str]] = []
        if settings.backend == "external-secrets" and profile.substrate.kind != "eks":
            found.append((("addons", "secrets", "backend"), settings.backend,
                          "external-secrets here syncs from AWS Secrets Manager and needs substrate eks; "
                          "elsewhere allowed: vault, sealed-secrets (or auto)"))
        if settings.vault_replicas % 2 == 0:
            found.append((("addons", "secrets", "vault_replicas"), settings.vault_replicas,
                          "raft needs an odd number of voters: 1, 3, 5 or 7"))
        return found

    @classmethod
    def namespaces(cls, settings: SecretsSettings) -> tuple[str, ...]:  # type: ignore[override]
        return ()  # resolved per substrate in build(); no network role towards teams

    def build(self) -> dict[str, Any]:
        settings: SecretsSettings = self.settings  # type: ignore[assignment]
        backend = backend_of(self.profile, settings)
        namespace = NAMESPACES[backend]
        ns = self.namespace(namespace)
        if backend == "external-secrets":
            self._external_secrets(namespace, ns)
        else:
            values = self.values(backend=backend)
            self.helm_release(backend, CHARTS[backend], namespace, values, depends_on=[ns])
        return {"secretsBackend": backend}

    def _platform_namespaces(self) -> list[str]:
        """Namespaces of the enabled add-ons: the only ones the cluster-wide store serves."""
        names = set()
        for key, cls in registry().items():
            addon_settings = settings_of(self.profile, key)
            if key != self.key and addon_settings.enabled:  # type: ignore[attr-defined]
                names.update(cls.namespaces(addon_settings))  # type: ignore[arg-type]
        return sorted(names)

    def _external_secrets(self, namespace: str, ns: Any) -> None:
        facts = self.cluster.aws
        assert facts is not None  # check() guarantees eks
        prefix = SECRETS_MANAGER_PREFIX.format(stack=pulumi.get_stack())
        secrets_arn = f"arn:{facts.partition}:secretsmanager:{facts.region}:{facts.account_id}:secret:{prefix}*"
        policy = pulumi.Output.from_input(facts.kms_key_arn).apply(lambda key_arn: [
            {"Sid": "ReadThisStacksSecrets", "Effect": "Allow", "Resource": secrets_arn,
             "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret",
                        "secretsmanager:ListSecretVersionIds"]},
            {"Sid": "DecryptThroughSecretsManager", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": key_arn,
             "Condition": {"StringEquals": {"kms:ViaService": f"secretsmanager.{facts.region}.amazonaws.com"}}},
        ])
        role = ServiceAccountRole(f"{self.key}-external-secrets", cluster_name=facts.cluster_name,
                                  cluster_arn=facts.cluster_arn, namespace=namespace,
                                  service_account=ESO_SERVICE_ACCOUNT, statements=policy,
                                  opts=pulumi.ResourceOptions(parent=self, providers={"aws": facts.provider}))
        values = self.values(backend="external-secrets",
                             service_account=ESO_SERVICE_ACCOUNT)
        release = self.helm_release("external-secrets", "external-secrets", namespace, values, depends_on=[ns, role])
        store = self.apply("cluster-store", {
            "apiVersion": "external-secrets.io/v1", "kind": "ClusterSecretStore",
            "metadata": objects.metadata(CLUSTER_STORE),
            "spec": {
                "provider": {"aws": {"service": "SecretsManager", "region": facts.region}},
                "conditions": [{"namespaces": self._platform_namespaces()}],
            },
        }, depends_on=[release])
        self.secrets.via_secrets_manager = True
        self.secrets.ready.append(store)



ADDON = Secrets
