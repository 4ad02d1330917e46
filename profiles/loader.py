"""Profile YAML → merged data → validated `Profile`.

Order of layers, last wins: the `extends:` chain (base first), the profile itself, the stack's
`mlcluster:overrides`, then `--set key=value` flags. Merging is deep: mappings merge key by key, lists of
mappings that all carry a `name` merge item by item on that name (so an override can raise one team's quota
without restating the others), any other list or scalar is replaced. Every merged value remembers the
file and line it came from, so a validation error points at the layer that set the bad value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlcluster.errors import ConfigError
from mlcluster.yamlsource import Path_, Source, dotted, load, parse

PROFILES_DIR = Path(__file__).resolve().parent
ABSTRACT_PREFIX = "_"  # `_base.yaml` is only ever extended, never rendered on its own


@dataclass(frozen=True)
class Origin:
    file: str
    line: int | None


@dataclass
class Layered:
    """Merged data plus where every path in it was last set."""

    data: dict[str, Any]
    origins: dict[Path_, Origin]
    # Items a later layer appended to a list merged by name: (their path, name, the names already there).
    # When such an item fails validation, the likelier story is a misspelt name, and the error says so.
    added: list[tuple[Path_, str, list[str]]] = field(default_factory=list)

    def origin(self, path: Path_) -> Origin:
        for cut in range(len(path), -1, -1):
            if path[:cut] in self.origins:
                return self.origins[path[:cut]]
        return Origin("<unknown>", None)


def display_path(path: Path) -> str:
    """Paths in messages are relative to the working directory when they can be."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def shipped_profiles() -> dict[str, Path]:
    """Profiles users can pick by name (abstract `_*.yaml` bases excluded)."""
    return {
        p.stem: p
        for p in sorted(PROFILES_DIR.glob("*.yaml"))
        if not p.stem.startswith(ABSTRACT_PREFIX)
    }


def _resolve_name(name: str, relative_to: Path | None, referrer: str, field: str, line: int | None) -> Path:
    """A profile reference: a shipped name, a name beside the referring file, or a path to a YAML file."""
    candidates = []
    if name.endswith((".yaml", ".yml")):
        candidates.append(Path(name) if relative_to is None else relative_to / name)
        candidates.append(Path(name))
    else:
        if relative_to is not None:
            candidates.append(relative_to / f"{name}.yaml")
        candidates.append(PROFILES_DIR / f"{name}.yaml")
    for path in candidates:
        if path.is_file():
            return path
    allowed = ", ".join(shipped_profiles())
    raise ConfigError.one(
        referrer, field, name, f"no such profile; the shipped profiles are: {allowed}", line=line
    )


def _named_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(
        isinstance(item, dict) and isinstance(item.get("name"), str) for item in value
    )


def _record(value: Any, src_path: Path_, out_path: Path_, source: Source, origins: dict[Path_, Origin]) -> None:
    """Note the origin of `value` and everything under it."""
    origins[out_path] = Origin(source.file, source.line_of(src_path))
    if isinstance(value, dict):
        for key, item in value.items():
            _record(item, (*src_path, key), (*out_path, key), source, origins)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _record(item, (*src_path, i), (*out_path, i), source, origins)


def _merge(
    base: Any, over: Any, src_path: Path_, out_path: Path_, source: Source, origins: dict[Path_, Origin],
    added: list[tuple[Path_, str, list[str]]] | None = None,
) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        merged = dict(base)
        for key, value in over.items():
            merged[key] = _merge(base.get(key), value, (*src_path, key), (*out_path, key), source, origins, added)
        origins.setdefault(out_path, Origin(source.file, source.line_of(src_path)))
        return merged
    if _named_list(base) and _named_list(over):
        by_name = {item["name"]: i for i, item in enumerate(base)}
        merged_list = list(base)
        for j, item in enumerate(over):
            if item["name"] in by_name:
                i = by_name[item["name"]]
                merged_list[i] = _merge(base[i], item, (*src_path, j), (*out_path, i), source, origins, added)
            else:
                merged_list.append(item)
                _record(item, (*src_path, j), (*out_path, len(merged_list) - 1), source, origins)
                if added is not None:
                    added.append(((*out_path, len(merged_list) - 1), item["name"], list(by_name)))
        return merged_list
    # Replacement: forget the origins of whatever was under this path before.
    _forget_below(origins, out_path)
    _record(over, src_path, out_path, source, origins)
    return over


def _forget_below(origins: dict[Path_, Origin], path: Path_) -> None:
    for stale in [p for p in origins if p[: len(path)] == path and len(p) > len(path)]:
        del origins[stale]


def merge_layer(layered: Layered, source: Source, at: Path_ = ()) -> Layered:
    """Apply one more layer (a profile file, overrides, a --set) on top of `layered`."""
    data = source.data
    if data is None:
        return layered
    if not isinstance(data, dict):
        raise ConfigError.one(
            source.file, dotted(at), data, "allowed is a mapping of profile fields", line=source.line_of(())
        )
    merged = _merge(layered.data, data, (), at, source, layered.origins, layered.added)
    return Layered(merged, layered.origins, layered.added)


def _chain(path: Path, seen: list[str]) -> list[Source]:
    """The file at `path` and its `extends:` ancestors, base first; cycles are an error."""
    shown = display_path(path)
    key = str(path.resolve())
    if key in seen:
        cycle = " → ".join([*(Path(s).name for s in seen[seen.index(key):]), path.name])
        raise ConfigError.one(shown, "extends", cycle, "`extends` must not form a cycle; break the loop")
    source = load(path, shown)
    if source.data is None:
        source.data = {}
    if not isinstance(source.data, dict):
        raise ConfigError.one(shown, "", source.data, "a profile is a YAML mapping of fields", line=1)
    parent = source.data.pop("extends", None)
    if parent is None:
        return [source]
    if not isinstance(parent, str):
        raise ConfigError.one(
            shown, "extends", parent, "allowed is one profile name (e.g. `_base`) or a path to a YAML file",
            line=source.line_of(("extends",)),
        )
    parent_path = _resolve_name(parent, path.parent, shown, "extends", source.line_of(("extends",)))
    return [*_chain(parent_path, [*seen, key]), source]


def load_layers(path: Path) -> Layered:
    """Merge a profile file with everything it extends."""
    layered = Layered({}, {})
    for source in _chain(path, []):
        layered = merge_layer(layered, source)
    return layered


def resolve_profile_path(name: str, referrer: str = "mlcluster:profile", field: str = "") -> Path:
    """`local` → profiles/local.yaml; an explicit path to a YAML file is used as it is."""
    if name.startswith(ABSTRACT_PREFIX):
        raise ConfigError.one(
            referrer, field, name,
            f"profiles starting with '{ABSTRACT_PREFIX}' are bases to extend, not to deploy; "
            f"the shipped profiles are: {', '.join(shipped_profiles())}",
        )
    return _resolve_name(name, None, referrer, field, None)


def overrides_source(overrides: Any, file: str, lines: dict[Path_, int] | None = None) -> Source:
    """Stack overrides as a merge layer; `lines` lets errors point into the stack file."""
    return Source(file, overrides, dict(lines or {}))


def set_flag_source(flag: str) -> tuple[Path_, Source]:
    """`--set node_pools[0].max=3` → a one-value layer at that path; the value is parsed as YAML."""
    if "=" not in flag:
        raise ConfigError.one("--set", "", flag, "allowed is KEY=VALUE, e.g. --set addons.monitoring.enabled=false")
    key, _, raw = flag.partition("=")
    path: list[str | int] = []
    for part in key.replace("]", "").replace("[", ".").split("."):
        if part == "":
            raise ConfigError.one("--set", key, flag, "allowed is a dotted path such as teams[0].quota.gpu")
        path.append(int(part) if part.isdigit() else part)
    value = parse(raw, "--set").data if raw else ""
    return tuple(path), Source("--set", value, {})


def apply_set(layered: Layered, flag: str) -> Layered:
    path, source = set_flag_source(flag)
    data = layered.data
    cursor: Any = data
    for i, part in enumerate(path[:-1]):
        nxt = path[i + 1]
        if isinstance(part, int):
            if not isinstance(cursor, list) or part >= len(cursor):
                raise ConfigError.one(
                    "--set", dotted(path[: i + 1]), flag,
                    f"the list has {len(cursor) if isinstance(cursor, list) else 0} items; use an index inside it",
                )
            cursor = cursor[part]
        else:
            if not isinstance(cursor, dict):
                raise ConfigError.one("--set", dotted(path[: i + 1]), flag, "the path goes through a non-mapping value")
            cursor = cursor.setdefault(part, [] if isinstance(nxt, int) else {})
    last = path[-1]
    if isinstance(last, int):
        if not isinstance(cursor, list) or last >= len(cursor):
            raise ConfigError.one("--set", dotted(path), flag, "the index is outside the list")
        cursor[last] = source.data
    else:
        if not isinstance(cursor, dict):
            raise ConfigError.one("--set", dotted(path), flag, "the path goes through a non-mapping value")
        cursor[last] = source.data
    _forget_below(layered.origins, path)
    _record(source.data, (), path, source, layered.origins)
    return layered
