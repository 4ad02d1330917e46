"""Stub charts for the e2e stack: a control plane with no chart repository (and no nodes) can still install a
release's CustomResourceDefinitions, so every object that depends on them deploys for real. Each stub holds the
pinned CRDs from ../shared/upstream/crds (copied byte-for-byte from the upstream release tags) in `crds/`, which
Helm installs before anything else, and no templates."""

from __future__ import annotations

from pathlib import Path

import yaml

from mlcluster.addons.catalog import chart as catalog_chart
from tests.upstream import require_upstream

# chart → the API groups of the CRDs it installs upstream.
CRD_GROUPS = {
    "kueue": ("kueue.x-k8s.io",),
    "sealed-secrets": ("bitnami.com",),
    "cloudnative-pg": ("postgresql.cnpg.io",),
    "kube-prometheus-stack": ("monitoring.coreos.com",),
    "kubeflow-trainer": ("trainer.kubeflow.org",),
}


def write_stub_charts(dest: Path, charts: list[str]) -> None:
    crds = require_upstream() / "crds"
    for name in charts:
        folder = dest / name
        (folder / "crds").mkdir(parents=True, exist_ok=True)
        version = catalog_chart(name).version.lstrip("v")
        (folder / "Chart.yaml").write_text(yaml.safe_dump({
            "apiVersion": "v2", "name": name, "version": version,
            "description": f"e2e stub of {name} {version}: its pinned CRDs only"}))
        for group in CRD_GROUPS[name]:
            for crd in sorted((crds / group).glob("*.yaml")):
                (folder / "crds" / f"{group}-{crd.name}").write_bytes(crd.read_bytes())
