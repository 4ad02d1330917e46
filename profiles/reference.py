"""profiles/REFERENCE.md: every profile field with its type, default and description, from the model."""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from mlcluster.profiles.effective import _kind, _models, profile_model

REFERENCE_FILE = Path(__file__).resolve().parent / "REFERENCE.md"
SIGNATURE = "Generated from the profile model by `mlcluster schema`"


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin in (list, tuple):
        return f"list of {_type_name(args[0])}"
    if origin is dict:
        return f"map of {_type_name(args[-1])}"
    if origin is typing.Union or type(annotation).__name__ == "UnionType":
        return " or ".join(_type_name(a) for a in args if a is not type(None)) + " (or null)"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation.__name__
    return getattr(annotation, "__name__", str(annotation))


def _default(field: Any) -> str:
    if field.default_factory is not None:
        value = field.default_factory()
        if isinstance(value, BaseModel):
            return "(see below)"
        return f"`{value}`"
    if field.default is PydanticUndefined:
        return "**required**"
    if isinstance(field.default, BaseModel):
        return "(see below)"
    if field.default is None:
        return "`null`"
    return f"`{field.default}`" if field.default != "" else '`""`'


def reference_text() -> str:
    out = ["# Profile reference", "",
           f"{SIGNATURE}; do not edit by hand. Lists of items with a",
           "`name` merge by name across `extends:`, stack overrides and `--set`; other lists are replaced.", ""]
    seen: set[type] = set()
    queue: list[tuple[str, str, type[BaseModel]]] = [("profile", "", profile_model())]
    while queue:
        path, note, model = queue.pop(0)
        if model in seen:
            continue
        seen.add(model)
        out += [f"## `{path}`{note} — {model.__name__}", ""]
        doc = (model.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
        if doc and not doc.startswith("!!!"):
            out += [doc, ""]
        out += ["| field | type | default | description |", "|---|---|---|---|"]
        for name, field in model.model_fields.items():
            out.append(f"| `{name}` | {_type_name(field.annotation)} | {_default(field)} | "
                       f"{(field.description or '').replace('|', '/')} |")
            suffix = "[]" if typing.get_origin(field.annotation) is list else ""
            members = _models(field.annotation)
            for member in members:  # every member of a union (substrate kinds), not only the first
                kind = _kind(member) if len(members) > 1 else None
                queue.append((f"{path}.{name}{suffix}".removeprefix("profile."),
                              f" (kind: {kind})" if kind else note, member))
        out.append("")
    return "\n".join(out)
