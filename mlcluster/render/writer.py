"""Turn a recorded run into the render tree a reviewer reads.

    resources.json                         every resource: URN, type, parent, provider, deps, options, inputs
    manifests/<namespace>/<kind>-<name>.yaml   every Kubernetes object the toolkit writes itself
    helm/<release>.yaml                    chart, repository, pinned version, namespace, full values
    SUMMARY.md                             the one screen to read first

Secrets are replaced by "[secret]" everywhere. Output is deterministic: sorted keys, sorted resources,
integral floats (the wire format has only doubles) written back as integers. The tree is written to a
temporary folder and moved into place only when complete, so a failed render leaves nothing half-written.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from pulumi.runtime import rpc

from mlcluster.errors import RenderError
from mlcluster.render import summary
from mlcluster.render.engine import Registration, RenderResult
from mlcluster.render.kubevalidate import validate_manifests
from mlcluster.safewrite import MARKER_TEXT, RENDER_MARKER, check_render_target
from mlcluster.semantics.graph import cross_references

REDACTED = "[secret]"
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
REMOTE_COMMAND = "command:remote:Command"


def clean(value: Any) -> Any:
    """Redact secrets, and make numbers and ordering stable."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            inner = value.get("value")
            # A secret map (a Secret's stringData) keeps its keys, so the object's shape stays reviewable.
            return {k: REDACTED for k in sorted(inner)} if isinstance(inner, dict) else REDACTED
        return {k: clean(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [clean(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _unwrap(value: Any) -> Any:
    if isinstance(value, dict) and value.get(rpc._special_sig_key) == rpc._special_secret_sig:
        return value.get("value")
    return value


def is_kubernetes_object(reg: Registration) -> bool:
    return reg.custom and reg.type.startswith("kubernetes:") and reg.type != HELM_RELEASE


def manifest_path(manifest: dict[str, Any], patch: bool) -> str:
    meta = manifest.get("metadata", {})
    namespace = meta.get("namespace") or "_cluster"
    suffix = ".patch.yaml" if patch else ".yaml"
    return f"manifests/{namespace}/{manifest['kind'].lower()}-{meta['name']}{suffix}"


# libyaml's emitter when PyYAML has it (it does on every platform PyPI ships wheels for): the same representers,
# byte-identical output (tests/render/test_fast_paths.py compares both on every shipped render), ~5x faster.
_BASE_DUMPER: type = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _ReviewDumper(_BASE_DUMPER):  # type: ignore[misc, valid-type]
    """Multi-line strings (embedded configs, scripts) as literal blocks, so reviewers read them as written."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_ReviewDumper.add_representer(str, _str)


def _dump_yaml(data: Any) -> str:
    return yaml.dump(data, Dumper=_ReviewDumper, sort_keys=True, default_flow_style=False, allow_unicode=True,
                     width=100)


def resource_records(result: RenderResult) -> list[dict[str, Any]]:
    return [
        {
            "urn": r.urn, "type": r.type, "name": r.name, "custom": r.custom, "parent": r.parent,
            "provider": r.provider, "dependencies": r.dependencies, "options": r.options,
            "inputs": clean(r.inputs),
        }
        for r in sorted(result.resources, key=lambda r: r.urn)
    ]


def build_tree(result: RenderResult, header_notes: list[str],
               progress: Callable[[str], None] = lambda stage: None) -> dict[str, str]:
    """Every file of the render tree, path → content. Raises RenderError on invalid objects."""
    files: dict[str, str] = {}
    records = resource_records(result)
    cleaned = {record["urn"]: record["inputs"] for record in records}  # each resource's inputs, cleaned once
    files["resources.json"] = json.dumps(
        {"project": "mlcluster", "stack": result.stack, "profile": result.profile.name, "resources": records,
         "policy": result.profile.policy.model_dump(mode="json")},
        indent=2, sort_keys=True, ensure_ascii=False,
    ) + "\n"

    manifests: dict[str, dict[str, Any]] = {}
    for reg in result.resources:
        if is_kubernetes_object(reg):
            manifest = cleaned[reg.urn]
            path = manifest_path(manifest, reg.type.endswith("Patch"))
            if path in manifests:
                raise ValueError(f"two objects render to {path}")
            manifests[path] = manifest
    progress(f"validating {len(manifests)} Kubernetes objects (kubernetes-validate, strict) and cross-references")
    validate_manifests(manifests, result.profile.kubernetes.version)
    findings = cross_references(records)
    if findings:
        raise RenderError("the render's objects do not work together:\n" + "\n".join(
            f"  {f.name}: {f.message}" for f in findings))
    for path, manifest in manifests.items():
        files[path] = _dump_yaml(manifest)

    releases = []
    for reg in result.resources:
        if reg.type == HELM_RELEASE:
            inputs = cleaned[reg.urn]
            release = {
                "release": inputs.get("name", reg.name),
                "chart": inputs["chart"],
                "repository": inputs.get("repositoryOpts", {}).get("repo"),
                "version": inputs["version"],
                "namespace": inputs["namespace"],
                "values": inputs.get("values", {}),
            }
            releases.append(release)
            files[f"helm/{release['release']}.yaml"] = _dump_yaml(release)

    commands: list[dict[str, Any]] = []
    for reg in result.resources:
        if reg.type == REMOTE_COMMAND:
            inputs = cleaned[reg.urn]
            path = f"scripts/{reg.name}.sh"
            files[path] = inputs["create"]
            if inputs.get("delete"):  # what `pulumi destroy` runs on the host
                files[f"scripts/{reg.name}.delete.sh"] = inputs["delete"]
            # The connection is secret as a whole (it carries the key); its address is not, so show it.
            connection = _unwrap(reg.inputs["connection"])
            proxy = _unwrap(connection.get("proxy")) or {}
            commands.append({"name": reg.name, "host": f"{connection['user']}@{connection['host']}",
                             "script": path, "via": proxy.get("host"), "stdin": "stdin" in inputs})
    commands.sort(key=lambda c: c["name"])
    files["SUMMARY.md"] = summary.render(result, records, sorted(manifests), releases, header_notes, commands)
    return files


def write_tree(files: dict[str, str], out: Path) -> Path:
    """Write all files to a temporary sibling of `out`, then swap it into place. `out` must be new, empty or
    an earlier render (see `mlcluster.safewrite`); anything else raises ConfigError before anything is touched."""
    out = check_render_target(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        for rel, content in sorted({**files, RENDER_MARKER: MARKER_TEXT}.items()):
            path = tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content, encoding="utf-8")
        check_render_target(out)  # again, right before the swap: nothing may have appeared there meanwhile
        old = None
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.replace(out, old / out.name)
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
