"""Strict validation of every Kubernetes object the toolkit writes, with `kubernetes-validate`.

Built-in kinds are checked against the OpenAPI schemas of the profile's Kubernetes version, in strict
mode (unknown fields are errors). A failure fails the render. Custom resources have no schema in
kubernetes-validate; the tests check them against the upstream CRDs instead.

The verdict comes first from jsonschema-rs (the same schemas and definitions, Draft 2020-12, formats as
annotations as the library has them): ~100x faster than the pure-Python validator, which was a tenth of a
render. An object it rejects goes through the library's own validator, whose message the render reports.
tests/render/test_fast_paths.py checks that both give the same verdict on every object of every shipped
render and on mutations of each kind (unknown fields at every depth, wrong types, missing required fields).
"""

from __future__ import annotations

import functools
import re
from typing import Any

import jsonschema_rs
import kubernetes_validate
import kubernetes_validate.utils

from mlcluster.components.k8s import is_custom
from mlcluster.errors import RenderError


def _cache_schemas() -> None:
    """kubernetes-validate re-reads the (large) definitions file on every call; read each file once."""
    utils = kubernetes_validate.utils
    if not hasattr(utils.schema_contents, "cache_info"):
        utils.schema_contents = functools.lru_cache(maxsize=None)(utils.schema_contents)


@functools.cache
def _schema_dir(desired_version: str) -> tuple[str, str]:
    """The library's choice of schema folder (kubernetes_validate/utils.py `validate`, 1.x): the newest version not
    newer than the one asked for, strict. Computed once, not per object (it lists the package's folders)."""
    utils = kubernetes_validate.utils
    if utils.major_minor(desired_version) > utils.latest_version():
        raise kubernetes_validate.VersionNotSupportedError(version=utils.major_minor(desired_version))
    version = [v for v in utils.all_versions()
               if utils.major_minor(v) <= utils.major_minor(desired_version)][-1]
    return f"v{version}-local-strict", version


@functools.cache
def _kind_schema(desired_version: str, kind: str, api_version: str) -> dict[str, Any]:
    """The schema file for the kind, named as the library names it (kubernetes_validate/utils.py `validate`)."""
    utils = kubernetes_validate.utils
    schema_dir, _ = _schema_dir(desired_version)
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    try:
        return utils.schema_contents(f"kubernetes-json-schema/{schema_dir}/{kind.lower()}-{group_version}.json",
                                     desired_version)
    except FileNotFoundError:
        raise kubernetes_validate.SchemaNotFoundError(version=utils.major_minor(desired_version), kind=kind,
                                                      api_version=api_version) from None


@functools.cache
def _validator(desired_version: str, kind: str, api_version: str) -> Any:
    """One compiled validator per (version, kind, apiVersion), built exactly as the library builds it per call
    (the schema file for the kind, the definitions as a referencing registry, Draft 2020-12)."""
    import jsonschema
    from referencing import Registry, Resource

    schema = _kind_schema(desired_version, kind, api_version)
    schema_dir, _ = _schema_dir(desired_version)
    definitions = kubernetes_validate.utils.schema_contents(f"kubernetes-json-schema/{schema_dir}/_definitions.json",
                                                            desired_version)
    registry = Resource.from_contents(definitions) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


def _no_retrieval(uri: str) -> Any:
    raise ValueError(f"{uri}: kubernetes-validate's schemas refer only to their own definitions; nothing is fetched")


@functools.cache
def _definitions_registry(desired_version: str) -> Any:
    """The version's definitions for jsonschema-rs, registered under their own `$id` (each kind's `$ref`s name it
    relative to the kind's `$id`). Built once per version: it is the large part. The definitions are read past the
    file cache: once registered, only the library's validator would read them again, for a rejected object."""
    schema_dir, _ = _schema_dir(desired_version)
    read = kubernetes_validate.utils.schema_contents
    definitions = getattr(read, "__wrapped__", read)(f"kubernetes-json-schema/{schema_dir}/_definitions.json",
                                                     desired_version)
    return jsonschema_rs.Registry([(definitions["$id"], definitions)], retriever=_no_retrieval)


@functools.cache
def _fast_validator(desired_version: str, kind: str, api_version: str) -> Any:
    """jsonschema-rs compiled from the schema _validator uses: the kind's schema file and the definitions, Draft
    2020-12 from its `$schema`, formats not asserted (python-jsonschema asserts none without a format checker, and
    the library passes none)."""
    schema = _kind_schema(desired_version, kind, api_version)
    return jsonschema_rs.validator_for(schema, registry=_definitions_registry(desired_version),
                                       validate_formats=False, retriever=_no_retrieval)


def validate_one(manifest: dict[str, Any], desired_version: str) -> None:
    """kubernetes_validate.validate(manifest, desired_version, strict=True), with the validators reused: the fast
    verdict first, the library's validator for the message of an object it rejects."""
    kind, api_version = manifest["kind"], manifest["apiVersion"]
    fast = _fast_validator(desired_version, kind, api_version)
    if fast.is_valid(manifest):
        return
    import jsonschema

    version = kubernetes_validate.utils.major_minor(_schema_dir(desired_version)[1])
    try:
        _validator(desired_version, kind, api_version).validate(manifest)
    except jsonschema.ValidationError as exc:
        raise kubernetes_validate.ValidationError(exc, version=version) from None
    # The two disagree (the tests say they never do on what we write): fail closed with jsonschema-rs's reason.
    error = next(iter(fast.iter_errors(manifest)))
    raise kubernetes_validate.ValidationError(
        jsonschema.ValidationError(error.message, path=list(error.instance_path)), version=version)


def validate_manifests(manifests: dict[str, dict[str, Any]], kubernetes_version: str) -> None:
    _cache_schemas()
    version = f"{kubernetes_version}.0"
    failures = []
    for path, manifest in sorted(manifests.items()):
        if is_custom(manifest):
            continue
        try:
            validate_one(manifest, version)
        except kubernetes_validate.ValidationError as exc:
            where = "/".join(str(p) for p in exc.path) or "(top)"
            failures.append(f"{path}: {where}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            failures.append(f"{path}: no schema for {manifest.get('apiVersion')}/{manifest.get('kind')} "
                            f"in Kubernetes {version} ({exc})")
    if failures:
        raise RenderError("Kubernetes objects fail strict validation for Kubernetes "
                          f"{kubernetes_version}:\n  " + "\n  ".join(failures))
