"""Kubernetes resource quantities as numbers, to compare and take the largest (e.g. of tiers)."""

from __future__ import annotations

import re

_SUFFIX = {"": 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
           "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_QUANTITY = re.compile(r"^([0-9.]+)([a-zA-Z]*)$")


def value(quantity: str) -> float:
    match = _QUANTITY.match(quantity)
    if not match or match.group(2) not in _SUFFIX:
        raise ValueError(f"not a Kubernetes quantity: {quantity!r}")
    return float(match.group(1)) * _SUFFIX[match.group(2)]


def largest(quantities: list[str]) -> str:
    return max(quantities, key=value)
