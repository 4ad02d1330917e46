"""An S3-compatible object store for ML artifacts where the site has none: SeaweedFS (MinIO is unmaintained).

Master, volume and filer data live on the Retain storage class. S3 authentication is on; the admin
credentials are generated (pulumi-random), delivered as a platform secret and exported as secret outputs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from mlcluster.addons.base import Addon
from mlcluster.deferred import pulumi, random
from mlcluster.profiles.model import AddonSettings, DnsLabel, ProfileBase

CONFIG_SECRET = "seaweedfs-s3-config"


class ObjectStoreSettings(AddonSettings):
    namespace: DnsLabel = "object-store"
    volume_storage_gib: int = Field(500, ge=10, le=1048576, description="Data volume size per volume server.")
    volume_replicas: int = Field(1, ge=1, le=16, description="Volume servers.")


@dataclass(frozen=True)
class S3Access:
    """What a consumer add-on gets: the endpoint, its bucket and credentials valid for that bucket only."""

    endpoint: str
    bucket: str
    access_key: pulumi.Output[str]
    secret_key: pulumi.Output[str]


def consumers(profile: ProfileBase) -> dict[str, str]:
    """Enabled add-ons that keep data in the store: add-on key → bucket."""
    from mlcluster.addons import registry, settings_of

    return {key: cls.object_store_bucket for key, cls in registry().items()
            if cls.object_store_bucket and settings_of(profile, key).enabled}  # type: ignore[attr-defined]


def identity(name: str, access_key: str, secret_key: str, actions: list[str]) -> dict[str, Any]:
    return {"name": name, "credentials": [{"accessKey": access_key, "secretKey": secret_key}], "actions": actions}


def s3_config(identities: list[dict[str, Any]]) -> str:
    return json.dumps({"identities": identities}, sort_keys=True)


def bucket_actions(bucket: str) -> list[str]:
    """SeaweedFS scopes an action to a bucket as `<Action>:<bucket>`."""
    return [f"{action}:{bucket}" for action in ("Read", "Write", "List", "Tagging")]


class ObjectStore(Addon):
    key = "object_store"
    type_name = "ObjectStore"
    description = "SeaweedFS: an S3-compatible store for artifacts on bare metal (authenticated, Retain storage)."
    Settings = ObjectStoreSettings
    requires = ("secrets", "storage")

    @classmethod
    def check(cls, profile: ProfileBase, settings: ObjectStoreSettings) -> list[tuple[tuple, object, str]]:  # type: ignore[override]
        if profile.substrate.kind == "eks":
            return [(("addons", "object_store", "enabled"), True, "eks uses the S3 artifacts bucket "
                                                                  "(substrate.artifacts_bucket)")]
        return []

    def build(self) -> dict[str, Any]:
        settings: ObjectStoreSettings = self.settings  # type: ignore[assignment]
        ns = self.namespace(settings.namespace)
        endpoint = f"http://seaweedfs-s3.{settings.namespace}.svc:8333"
        access_key, secret_key = self._credentials("admin")
        identities = [pulumi.Output.all(access_key, secret_key).apply(
            lambda a: identity("mlcluster-admin", a[0], a[1], ["Admin", "Read", "List", "Tagging", "Write"]))]
        buckets = consumers(self.profile)
        access: dict[str, S3Access] = {}
        for key, bucket in sorted(buckets.items()):
            key_id, key_secret = self._credentials(key)
            identities.append(pulumi.Output.all(key_id, key_secret).apply(
                lambda a, key=key, bucket=bucket: identity(key, a[0], a[1], bucket_actions(bucket))))
            access[key] = S3Access(endpoint, bucket, key_id, key_secret)
        self.shared["object_store"] = access
        config = pulumi.Output.secret(pulumi.Output.all(*identities).apply(s3_config))
        credentials = self.platform_secret("s3-config", CONFIG_SECRET, settings.namespace,
                                           {"seaweedfs_s3_config": config}, depends_on=[ns])
        self.helm_release("seaweedfs", "seaweedfs", settings.namespace,
                          self.values(config_secret=CONFIG_SECRET, buckets=sorted(set(buckets.values()))),
                          depends_on=[ns, credentials])
        return {"objectStoreEndpoint": endpoint, "objectStoreAccessKey": access_key,
                "objectStoreSecretKey": secret_key}

    def _credentials(self, name: str) -> tuple[pulumi.Output[str], pulumi.Output[str]]:
        opts = pulumi.ResourceOptions(parent=self)
        prefix = self.key if name == "admin" else f"{self.key}-{name}"
        access = random.RandomPassword(f"{prefix}-access-key", length=20, special=False, upper=True, lower=False,
                                       opts=opts)
        secret = random.RandomPassword(f"{prefix}-secret-key", length=40, special=False, opts=opts)
        return pulumi.Output.secret(access.result), pulumi.Output.secret(secret.result)


ADDON = ObjectStore
