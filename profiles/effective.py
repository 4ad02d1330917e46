"""The effective profile: merged layers validated into the full `Profile` model.

The full model is `ProfileBase` plus one `addons.<name>` block per add-on module, built from the add-on
registry, so adding an add-on never touches this package.
"""

from __future__ import annotations

import difflib
import functools
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pydantic
from pydantic import BaseModel, Field, create_model

from mlcluster.errors import ConfigError, Problem
from mlcluster.profiles import rules
from mlcluster.profiles.loader import (
    PROFILES_DIR,
    Layered,
    apply_set,
    display_path,
    load_layers,
    merge_layer,
    overrides_source,
    resolve_profile_path,
)
from mlcluster.profiles.model import ProfileBase, Strict
from mlcluster.yamlsource import Path_, dotted


@functools.cache
def profile_model() -> type[ProfileBase]:
    """`ProfileBase` + `addons: {<name>: <that add-on's Settings>}` for every registered add-on."""
    from mlcluster.addons import registry

    def section(name: str, title: str, doc: str) -> Any:
        fields: dict[str, Any] = {
            key: (cls.Settings, Field(default_factory=cls.Settings, description=cls.description))
            for key, cls in registry().items() if cls.section == name
        }
        model = create_model(title, __base__=Strict, **fields)
        model.__doc__ = doc
        return model

    addons = section("addons", "Addons", "Platform add-ons by name; each is off unless `enabled: true`.")
    ml = section("ml", "MlBundle", "The ML tool bundle by tool; each is off unless `enabled: true`.")
    model = create_model(
        "Profile", __base__=ProfileBase,
        addons=(addons, Field(default_factory=addons, description="Platform add-ons and their settings.")),
        ml=(ml, Field(default_factory=ml, description="ML tools (queues, notebooks, tracking…) and settings.")),
    )
    model.__doc__ = "An mlcluster profile: what the platform is made of, independent of where it runs."
    return model


def _models(annotation: Any) -> list[type[BaseModel]]:
    """The model classes an annotation can hold (through Optional, Annotated, list, dict, unions)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _models(args[0])
    if origin in (list, tuple, dict):
        return _models(args[-1])
    if origin is typing.Union or type(annotation).__name__ == "UnionType":
        return [m for arg in args for m in _models(arg)]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return []


def _unwrap(annotation: Any) -> Any:
    """The first model class an annotation holds, or the annotation itself."""
    models = _models(annotation)
    return models[0] if models else annotation


def _kind(model: type[BaseModel]) -> str | None:
    field = model.model_fields.get("kind")
    args = typing.get_args(field.annotation) if field else ()
    return args[0] if args else None


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model at a pydantic error location; a union's tag in the path (substrate.eks.…) picks the member."""
    models: list[type[BaseModel]] = [profile_model()]
    for part in loc:
        if isinstance(part, int):
            continue
        tagged = [m for m in models if _kind(m) == part]
        if tagged:
            models = tagged
            continue
        models = [c for m in models if part in m.model_fields for c in _models(m.model_fields[part].annotation)]
        if not models:
            return None
    return models[0] if len(models) == 1 else None


def _allowed(error: dict[str, Any]) -> str:
    loc = tuple(error["loc"])
    kind = error["type"]
    if kind == "missing":
        parent = _model_at(loc[:-1])
        desc = parent.model_fields[loc[-1]].description if parent and loc[-1] in parent.model_fields else None
        return "it is required" + (f" ({desc})" if desc else "")
    if kind == "extra_forbidden":
        parent = _model_at(loc[:-1])
        names = ", ".join(parent.model_fields) if parent else "none"
        what = "add-on" if loc[:1] in (("addons",), ("ml",)) and len(loc) == 2 else "key"
        return f"unknown {what}; allowed here: {names}"
    msg: str = error["msg"]
    msg = msg.removeprefix("Value error, ")
    if not msg.startswith("allowed"):
        msg = "allowed: " + msg[0].lower() + msg[1:]
    return msg


def _substrate_kinds() -> str:
    union = typing.get_args(ProfileBase.model_fields["substrate"].annotation)
    return ", ".join(f"'{typing.get_args(m.model_fields['kind'].annotation)[0]}'" for m in union)


def _rank(origin: Any) -> int:
    """How late a layer is: a shipped profile (its extends chain), then stack overrides, then `--set`."""
    if origin.file == "--set":
        return 3
    if origin.file == "<unknown>":
        return 0
    try:
        Path(origin.file).resolve().relative_to(PROFILES_DIR.resolve())
        return 1
    except ValueError:
        return 2


def _value_at(data: Any, path: Path_) -> Any:
    for step in path:
        try:
            data = data[step]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _blamed(layered: Layered, finding: tuple) -> tuple[Path_, Any, str]:
    """A rule about several fields (a version and its distribution, two networks) names the one the latest layer
    set: a `--set distribution=rke2` is the change to undo, not the profile's version line."""
    path, value, allowed = finding[:3]
    candidates = [path, *(finding[3] if len(finding) > 3 else ())]
    best = max(candidates, key=lambda p: (_rank(layered.origin(p)), p == path))
    return (path, value, allowed) if best == path else (best, _value_at(layered.data, best), allowed)


def _problem(layered: Layered, path: Path_, value: Any, allowed: str, *, missing: bool = False) -> Problem:
    origin = layered.origin(path)
    return Problem(origin.file, dotted(path), value, allowed, origin.line, has_value=not missing)


def _misspelt(layered: Layered, loc: Path_, reported: set[Path_]) -> Problem | None:
    """An item a later layer appended to a named list (a team, a pool) that is missing required fields was most
    likely meant to change an existing item: say which, instead of listing the new item's missing fields."""
    for path, name, existing in layered.added:
        if loc[: len(path)] != path or not existing:
            continue
        guess = difflib.get_close_matches(name, existing, n=1, cutoff=0.6)
        if not guess:
            return None  # a new item indeed: its missing fields are the story
        if path in reported:
            return None
        reported.add(path)
        section = str(path[-2])
        what = {"teams": "team", "node_pools": "node pool", "tiers": "tier"}.get(section, f"{section} item")
        origin = layered.origin((*path, "name"))
        return Problem(origin.file, dotted((*path, "name")), name,
                       f"there is no {what} '{name}' to change ({section}: {', '.join(existing)}); did you mean "
                       f"'{guess[0]}'? (a new {what} needs all its required fields)", origin.line)
    return None


def validate(layered: Layered) -> ProfileBase:
    """Model-check then rule-check; every problem is reported at once, each with its file and line."""
    try:
        profile = profile_model().model_validate(layered.data)
    except pydantic.ValidationError as exc:
        problems = []
        reported: set[Path_] = set()
        errors = exc.errors(include_url=False)
        incomplete = {tuple(e["loc"])[:2] for e in errors if e["type"] == "missing"}
        for error in errors:
            loc = tuple(error["loc"])
            if loc[:2] in incomplete and any(loc[: len(p)] == p for p, _, _ in layered.added):
                found = _misspelt(layered, loc, reported)
                if found is not None:
                    problems.append(found)
                if any(loc[: len(p)] == p for p in reported):
                    continue
            if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
                # A discriminated union (substrate): point at its `kind` and list the kinds.
                ctx = error.get("ctx", {})
                tag = ctx.get("discriminator", "'kind'").strip("'")
                kinds = ctx.get("expected_tags") or _substrate_kinds()
                missing = error["type"] == "union_tag_not_found"
                problems.append(_problem(layered, (*loc, tag), None if missing else ctx.get("tag"),
                                         f"allowed kinds: {kinds}", missing=missing))
                continue
            if loc[:1] == ("substrate",) and len(loc) > 2 and f"'{loc[1]}'" in _substrate_kinds():
                loc = (loc[0], *loc[2:])  # pydantic puts the union's tag in the path: substrate.eks.region
            missing = error["type"] == "missing"
            problems.append(_problem(layered, loc, None if missing else error.get("input"), _allowed(error),
                                     missing=missing))
        raise ConfigError(problems) from None
    findings = rules.check(profile)
    if findings:
        raise ConfigError([_problem(layered, *_blamed(layered, finding)) for finding in findings])
    return profile


def layered_profile(
    ref: str | Path,
    *,
    overrides: dict[str, Any] | None = None,
    overrides_file: str = "mlcluster:overrides",
    override_lines: dict[Path_, int] | None = None,
    sets: Iterable[str] = (),
    referrer: str = "mlcluster:profile",
) -> Layered:
    path = Path(ref) if isinstance(ref, Path) else resolve_profile_path(ref, referrer)
    layered = load_layers(path)
    if "name" in layered.data:
        origin = layered.origin(("name",))
        raise ConfigError.one(origin.file, "name", layered.data["name"],
                              "a profile's name is its file name; remove `name:`", line=origin.line)
    layered.data["name"] = path.stem
    if overrides:
        layered = merge_layer(layered, overrides_source(overrides, overrides_file, override_lines))
    for flag in sets:
        layered = apply_set(layered, flag)
    return layered


def load_profile(ref: str | Path, **kwargs: Any) -> ProfileBase:
    """The effective, validated profile: `extends` chain, then stack overrides, then `--set` flags."""
    return validate(layered_profile(ref, **kwargs))


def profile_file(ref: str) -> str:
    return display_path(resolve_profile_path(ref))
