"""Add-ons: one module per add-on, discovered by name.

An add-on is a module in this package (platform add-ons, profile section `addons:`) or in `ml/` (the ML tool
bundle, profile section `ml:`) that exports `ADDON`, an `Addon` subclass; its Helm values template sits
beside it as `<module>.values.yaml.j2` and its chart is one entry in `catalog.yaml`. That is the whole change
needed to add one: the profile model, the schema and the program pick it up from here.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlcluster.addons.base import Addon

_NOT_ADDONS = {"base", "catalog", "ml"}
SECTIONS = {"addons": __name__, "ml": f"{__name__}.ml"}


@functools.cache
def registry() -> dict[str, type[Addon]]:
    """Add-on classes by profile key, sorted by key (discovery order never leaks into names or order)."""
    found: dict[str, type[Addon]] = {}
    for section, package in SECTIONS.items():
        for info in pkgutil.iter_modules(importlib.import_module(package).__path__):
            if info.name in _NOT_ADDONS or info.name.startswith("_"):
                continue
            module = importlib.import_module(f"{package}.{info.name}")
            addon = getattr(module, "ADDON", None)
            if addon is None:
                raise ImportError(f"{module.__file__} must export ADDON (its Addon subclass)")
            if addon.key in found:
                raise ImportError(f"two add-ons use the key {addon.key!r}")
            if addon.section != section:
                raise ImportError(f"{module.__file__}: ADDON.section must be {section!r}")
            found[addon.key] = addon
    return dict(sorted(found.items()))


def settings_of(profile: object, key: str) -> object:
    """The profile's settings block of add-on `key` (`profile.addons.<key>` or `profile.ml.<key>`)."""
    return getattr(getattr(profile, registry()[key].section), key)


def install_order(enabled: list[str]) -> list[str]:
    """Enabled add-on keys with every add-on after the ones it `requires` (ties broken by name)."""
    addons = registry()
    order: list[str] = []
    visiting: set[str] = set()

    def visit(key: str) -> None:
        if key in order:
            return
        if key in visiting:
            raise ValueError(f"add-on dependency cycle through {key!r}")
        visiting.add(key)
        for dep in sorted(addons[key].requires):
            if dep in enabled:
                visit(dep)
        visiting.discard(key)
        order.append(key)

    for key in sorted(enabled):
        visit(key)
    return order


def enabled_addons(profile: object) -> list[str]:
    """Keys of the enabled add-ons, in install order."""
    return install_order([key for key in registry() if settings_of(profile, key).enabled])  # type: ignore[attr-defined]
