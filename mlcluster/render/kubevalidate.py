"""Strict validation of every Kubernetes object the toolkit writes, with `kubernetes-validate`.

Built-in kinds are checked against the OpenAPI schemas of the profile's Kubernetes version, in strict
mode (unknown fields are errors). A failure fails the render. Custom resources have no schema in
kubernetes-validate; the tests check them against the upstream CRDs instead.
"""

from __future__ import annotations

import functools
from typing import Any

import kubernetes_validate
import kubernetes_validate.utils

from mlcluster.components.k8s import is_custom


class RenderError(Exception):
    """The program ran but what it would deploy is invalid: a toolkit bug or an input the model let through."""


def _cache_schemas() -> None:
    """kubernetes-validate re-reads the (large) definitions file on every call; read each file once.
    The validation itself is still the library's."""
    utils = kubernetes_validate.utils
    if not hasattr(utils.schema_contents, "cache_info"):
        utils.schema_contents = functools.lru_cache(maxsize=None)(utils.schema_contents)


def validate_manifests(manifests: dict[str, dict[str, Any]], kubernetes_version: str) -> None:
    _cache_schemas()
    version = f"{kubernetes_version}.0"
    failures = []
    for path, manifest in sorted(manifests.items()):
        if is_custom(manifest):
            continue
        try:
            kubernetes_validate.validate(manifest, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = "/".join(str(p) for p in exc.path) or "(top)"
            failures.append(f"{path}: {where}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            failures.append(f"{path}: no schema for {manifest.get('apiVersion')}/{manifest.get('kind')} "
                            f"in Kubernetes {version} ({exc})")
    if failures:
        raise RenderError("Kubernetes objects fail strict validation for Kubernetes "
                          f"{kubernetes_version}:\n  " + "\n  ".join(failures))
