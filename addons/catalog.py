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
    repository: str
    version: str


@functools.cache
def catalog() -> dict[str, Chart]:
    raw = yaml.safe_load(CATALOG_FILE.read_text(encoding="utf-8")) or {}
    return {name: Chart(name, entry["repository"], str(entry["version"])) for name, entry in raw.items()}


def chart(name: str) -> Chart:
    try:
        return catalog()[name]
    except KeyError:
        raise KeyError(f"chart {name!r} is not in addons/catalog.yaml; add one line for it") from None
