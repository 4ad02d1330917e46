"""Kubernetes objects as plain dicts, registered as typed Pulumi resources.

Components build every object they write as a plain manifest dict (easy to read, to test and to validate
with kubernetes-validate), then hand it here. The dict becomes the typed pulumi-kubernetes resource for its
kind, always with an explicit provider; custom resources become `apiextensions.CustomResource`.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from mlcluster.deferred import CustomResource, k8s, pulumi

MANAGED_BY_LABELS = {"app.kubernetes.io/part-of": "mlcluster"}

# Built-in kinds the toolkit writes, by (apiVersion, kind). Anything else must be a custom resource.
_TYPED: dict[tuple[str, str], str] = {
    ("v1", "Namespace"): "core.v1.Namespace",
    ("v1", "ConfigMap"): "core.v1.ConfigMap",
    ("batch/v1", "Job"): "batch.v1.Job",
    ("v1", "Secret"): "core.v1.Secret",
    ("v1", "ServiceAccount"): "core.v1.ServiceAccount",
    ("v1", "ResourceQuota"): "core.v1.ResourceQuota",
    ("v1", "LimitRange"): "core.v1.LimitRange",
    ("networking.k8s.io/v1", "NetworkPolicy"): "networking.v1.NetworkPolicy",
    ("rbac.authorization.k8s.io/v1", "Role"): "rbac.v1.Role",
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): "rbac.v1.RoleBinding",
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): "rbac.v1.ClusterRole",
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): "rbac.v1.ClusterRoleBinding",
    ("storage.k8s.io/v1", "StorageClass"): "storage.v1.StorageClass",
    ("node.k8s.io/v1", "RuntimeClass"): "node.v1.RuntimeClass",
    ("scheduling.k8s.io/v1", "PriorityClass"): "scheduling.v1.PriorityClass",
    ("policy/v1", "PodDisruptionBudget"): "policy.v1.PodDisruptionBudget",
    ("apps/v1", "Deployment"): "apps.v1.Deployment",
    ("apps/v1", "DaemonSet"): "apps.v1.DaemonSet",
    ("v1", "PersistentVolumeClaim"): "core.v1.PersistentVolumeClaim",
    ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy"):
        "admissionregistration.v1.ValidatingAdmissionPolicy",
    ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding"):
        "admissionregistration.v1.ValidatingAdmissionPolicyBinding",
}

# Server-side-apply patches of objects the cluster already has (e.g. each namespace's `default` SA).
_PATCHES: dict[tuple[str, str], str] = {
    ("v1", "ServiceAccount"): "core.v1.ServiceAccountPatch",
    ("node.k8s.io/v1", "RuntimeClass"): "node.v1.RuntimeClassPatch",
}

_BUILTIN_GROUPS = {"v1", "networking.k8s.io/v1", "rbac.authorization.k8s.io/v1", "storage.k8s.io/v1",
                   "node.k8s.io/v1", "scheduling.k8s.io/v1", "policy/v1", "apps/v1", "batch/v1",
                   "admissionregistration.k8s.io/v1"}


@functools.cache
def _class(path: str) -> Any:
    """The typed resource class for `core.v1.Namespace` etc., imported on first use: pulumi_kubernetes' typed
    modules take ~0.6 s to import, which commands that never register a resource (validate, check) skip."""
    node: Any = k8s
    for part in path.split("."):
        node = getattr(node, part)
    return node


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def is_custom(manifest: dict[str, Any]) -> bool:
    return manifest["apiVersion"] not in _BUILTIN_GROUPS


def apply(
    logical_name: str,
    manifest: dict[str, Any],
    provider: pulumi.ProviderResource,
    opts: pulumi.ResourceOptions | None = None,
    *,
    patch: bool = False,
) -> pulumi.CustomResource:
    """Register `manifest` with `provider`; `patch=True` server-side-applies onto an existing object."""
    opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(provider=provider))
    key = (manifest["apiVersion"], manifest["kind"])
    body = {k: v for k, v in manifest.items() if k not in ("apiVersion", "kind")}
    if patch:
        return _class(_PATCHES[key])(logical_name, opts=opts, **{_snake(k): v for k, v in body.items()})
    if key in _TYPED:
        return _class(_TYPED[key])(logical_name, opts=opts, **{_snake(k): v for k, v in body.items()})
    if not is_custom(manifest):
        raise KeyError(f"add {key} to components/k8s.py:_TYPED before writing it")
    return CustomObject(logical_name, manifest, opts)


class CustomObject(CustomResource):
    """An instance of a CRD with all its top-level fields (`apiextensions.CustomResource` only takes `spec`,
    but e.g. Kueue's WorkloadPriorityClass has `value` and `description` at the top)."""

    def __init__(self, logical_name: str, manifest: dict[str, Any], opts: pulumi.ResourceOptions) -> None:
        version = pulumi.ResourceOptions(version=k8s._utilities.get_version())
        super().__init__(f"kubernetes:{manifest['apiVersion']}:{manifest['kind']}", logical_name, dict(manifest),
                         pulumi.ResourceOptions.merge(opts, version))


def metadata(name: str, namespace: str | None = None, labels: dict[str, str] | None = None,
             annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": {**MANAGED_BY_LABELS, **(labels or {})}}
    if namespace is not None:
        meta["namespace"] = namespace
    if annotations:
        meta["annotations"] = annotations
    return meta


def pod_security_labels(kubernetes_version: str, enforce: str, warn: str = "restricted") -> dict[str, str]:
    """Pod Security Admission labels, versions pinned to the cluster's minor so upgrades don't tighten
    policy under running workloads."""
    version = f"v{kubernetes_version}"
    return {
        "pod-security.kubernetes.io/enforce": enforce,
        "pod-security.kubernetes.io/enforce-version": version,
        "pod-security.kubernetes.io/warn": warn if enforce != "privileged" else "baseline",
        "pod-security.kubernetes.io/warn-version": version,
        "pod-security.kubernetes.io/audit": warn if enforce != "privileged" else "baseline",
        "pod-security.kubernetes.io/audit-version": version,
    }


def namespace_manifest(name: str, kubernetes_version: str, enforce: str,
                       labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": metadata(name, labels={**pod_security_labels(kubernetes_version, enforce), **(labels or {})}),
    }
