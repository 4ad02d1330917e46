"""Storage on bare metal: a default StorageClass and a `Retain` class for user data (notebooks, tracking,
databases), from local-path (bundled with k3s), an NFS server (nfs-subdir-external-provisioner) or Longhorn
(replicated block storage, in `longhorn-system`, where upstream installs it (longhorn.io/docs deploy/install,
chart/README.md at v1.12.1) and its manifests assume it; privileged: its manager needs
host access). NFS and Longhorn volumes attach on any node, so notebooks' home volumes can follow their users.
The classes it provides replace the substrate's in the cluster handle, so every add-on uses them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from mlcluster.addons.base import Addon
from mlcluster.components import k8s as objects
from mlcluster.profiles.model import AddonSettings, ProfileBase

NFS_PROVISIONER = "mlcluster.io/nfs"
LONGHORN_NAMESPACE = "longhorn-system"
NFS_NAMESPACE = "storage"  # the NFS provisioner's
PROVISIONERS = {"local-path": "rancher.io/local-path", "nfs": NFS_PROVISIONER, "longhorn": "driver.longhorn.io"}
DEFAULT_CLASS = {"local-path": "local-path", "nfs": "nfs", "longhorn": "longhorn"}


class StorageSettings(AddonSettings):
    provider: Literal["local-path", "nfs", "longhorn"] = "local-path"
    nfs_server: str | None = Field(None, description="nfs: server address.")
    nfs_path: str = Field("/exports/mlcluster", description="nfs: exported path.")
    longhorn_replicas: int = Field(3, ge=1, le=5, description="longhorn: replicas per volume.")


def retain_class(settings: StorageSettings) -> dict[str, Any]:
    parameters: dict[str, str] = {}
    if settings.provider == "nfs":
        parameters = {"archiveOnDelete": "true"}
    elif settings.provider == "longhorn":
        parameters = {"numberOfReplicas": str(settings.longhorn_replicas), "dataLocality": "best-effort"}
    manifest: dict[str, Any] = {
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": objects.metadata(f"{DEFAULT_CLASS[settings.provider]}-retain"),
        "provisioner": PROVISIONERS[settings.provider], "reclaimPolicy": "Retain",
        "volumeBindingMode": "WaitForFirstConsumer" if settings.provider == "local-path" else "Immediate",
        "allowVolumeExpansion": settings.provider != "local-path",
    }
    if parameters:
        manifest["parameters"] = parameters
    return manifest


class Storage(Addon):
    key = "storage"
    type_name = "Storage"
    description = "Bare-metal storage: local-path (k3s), NFS or Longhorn, with a Retain class for user data."
    Settings = StorageSettings
    installs = ("longhorn",)

    @classmethod
    def check(cls, profile: ProfileBase, settings: StorageSettings) -> list[tuple[tuple, object, str]]:  # type: ignore[override]
        at = ("addons", "storage")
        substrate = profile.substrate
        if substrate.kind == "eks":
            return [((*at, "enabled"), True, "eks has its own gp3/EFS classes; this add-on is for bare metal")]
        if settings.provider == "local-path" and getattr(substrate, "distribution", "k3s") != "k3s":
            return [((*at, "provider"), "local-path", "only k3s bundles local-path; with rke2 use nfs or longhorn")]
        if settings.provider == "nfs" and not settings.nfs_server:
            return [((*at, "nfs_server"), None, "provider nfs needs the NFS server's address")]
        return []

    @classmethod
    def storage_classes(cls, settings: StorageSettings) -> tuple[str, str]:  # type: ignore[override]
        return DEFAULT_CLASS[settings.provider], f"{DEFAULT_CLASS[settings.provider]}-retain"

    @classmethod
    def portable_storage_class(cls, settings: StorageSettings) -> str | None:  # type: ignore[override]
        """NFS and Longhorn volumes attach on any node; local-path volumes live on the node that made them."""
        return None if settings.provider == "local-path" else f"{DEFAULT_CLASS[settings.provider]}-retain"

    def build(self) -> dict[str, Any]:
        settings: StorageSettings = self.settings  # type: ignore[assignment]
        deps: list[Any] = []
        if settings.provider == "nfs":
            ns = self.namespace(NFS_NAMESPACE)
            deps.append(self.helm_release("nfs", "nfs-subdir-external-provisioner", NFS_NAMESPACE,
                                          self.values(provisioner=NFS_PROVISIONER), depends_on=[ns]))
        elif settings.provider == "longhorn":
            # Longhorn is installed and documented only in longhorn-system (chart/README.md at v1.12.1); its
            # manager needs host access, so the namespace is privileged.
            ns = self.namespace(LONGHORN_NAMESPACE, enforce="privileged")
            deps.append(self.helm_release("longhorn", "longhorn", LONGHORN_NAMESPACE,
                                          self.values(provisioner=None), depends_on=[ns]))
        self.apply("storageclass-retain", retain_class(settings), depends_on=deps)
        default, retain = self.storage_classes(settings)
        return {"storageClasses": {"default": default, "retain": retain}}


ADDON = Storage
