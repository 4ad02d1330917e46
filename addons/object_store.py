"""An S3-compatible object store for ML artifacts where the site has none: SeaweedFS (MinIO is unmaintained).

Master, volume and filer data live on the Retain storage class. S3 authentication is on; the admin
credentials are generated (pulumi-random), delivered as a platform secret and exported as secret outputs.
"""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_random as random
from pydantic import Field

from mlcluster.addons.base import Addon
from mlcluster.profiles.model import AddonSettings, DnsLabel, ProfileBase

CONFIG_SECRET = "seaweedfs-s3-config"


class ObjectStoreSettings(AddonSettings):
    namespace: DnsLabel = "object-store"
    volume_storage_gib: int = Field(500, ge=10, le=1048576, description="Data volume size per volume server.")
    volume_replicas: int = Field(1, ge=1, le=16, description="Volume servers.")


def s3_config(access_key: str, secret_key: str) -> str:
    return json.dumps({"identities": [{
        "name": "mlcluster-admin", "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
        "actions": ["Admin", "Read", "List", "Tagging", "Write"]}]}, sort_keys=True)


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
        opts = pulumi.ResourceOptions(parent=self)
        access = random.RandomPassword(f"{self.key}-access-key", length=20, special=False, upper=True, lower=False,
                                       opts=opts)
        secret = random.RandomPassword(f"{self.key}-secret-key", length=40, special=False, opts=opts)
        access_key, secret_key = pulumi.Output.secret(access.result), pulumi.Output.secret(secret.result)
        config = pulumi.Output.secret(pulumi.Output.all(access_key, secret_key).apply(lambda a: s3_config(*a)))
        credentials = self.platform_secret("s3-config", CONFIG_SECRET, settings.namespace,
                                           {"seaweedfs_s3_config": config}, depends_on=[ns])
        self.helm_release("seaweedfs", "seaweedfs", settings.namespace, self.values(config_secret=CONFIG_SECRET),
                          depends_on=[ns, credentials])
        return {"objectStoreEndpoint": f"http://seaweedfs-s3.{settings.namespace}.svc:8333",
                "objectStoreAccessKey": access_key, "objectStoreSecretKey": secret_key}


ADDON = ObjectStore
