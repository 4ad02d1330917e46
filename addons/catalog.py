"""The chart catalog: chart → repository and pinned version, read from `catalog.yaml`."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import yaml

CATALOG_FILE = Path(__file__).resolve().parent / "catalog.yaml"


@dataclass(frozen=True)
class Chart:
    name: str
    repository: str  # a Helm repository; for a manifest bundle, the URL of its YAML
    version: str
    crds: tuple[str, ...] = ()  # API groups whose CRDs it installs
    manifests: bool = False  # a plain YAML bundle (applied with yaml/v2), not a Helm chart


@functools.cache
def catalog() -> dict[str, Chart]:
    raw = yaml.safe_load(CATALOG_FILE.read_text(encoding="utf-8")) or {}
    return {name: Chart(name, entry.get("repository") or entry["manifests"], str(entry["version"]),
                        tuple(entry.get("crds") or ()), "manifests" in entry)
            for name, entry in raw.items()}


def crd_source(group: str) -> str | None:
    """The catalog entry that installs an API group's CRDs (None: a built-in group, or unknown)."""
    return next((c.name for c in catalog().values() if group in c.crds), None)


def chart(name: str) -> Chart:
    try:
        return catalog()[name]
    except KeyError:
        raise KeyError(f"chart {name!r} is not in addons/catalog.yaml; add one line for it") from None
