"""YAML loading that remembers where each value came from.

Profiles and stack files are loaded with pyyaml's safe loader, but through its node graph so every value
keeps its line: an error about `node_pools[1].max` can then point at `profiles/aws-gpu.yaml:42`.
Duplicate keys, which pyyaml silently collapses, are reported as errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlcluster.errors import ConfigError

Path_ = tuple[str | int, ...]

# One loader instance constructs every scalar (ints, bools, nulls...) exactly as pyyaml's safe_load would.
_SCALARS = yaml.SafeLoader("")
# libyaml's parser builds the node graph (with the same marks) when PyYAML has it: a profile with 1,000 teams
# parses several times faster; the nodes are constructed by _SCALARS and _construct either way. Malformed YAML is
# parsed again by the pure-Python parser, whose messages name the offending character.
_COMPOSER: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YamlFloat(float):
    """A number YAML read from an unquoted scalar, remembering how it was written: `1.30` is the float 1.3,
    but a field that takes text (a Kubernetes version) wants "1.30", exactly as the user typed it."""

    raw: str

    def __new__(cls, value: float, raw: str) -> YamlFloat:
        made = super().__new__(cls, value)
        made.raw = raw
        return made


def as_written(value: object) -> object:
    """For text fields: an unquoted number becomes the text the user wrote (`1.30` → "1.30")."""
    if isinstance(value, YamlFloat):
        return value.raw
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


def dotted(path: Path_) -> str:
    """`("node_pools", 1, "max")` → `node_pools[1].max`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


@dataclass
class Source:
    """A loaded YAML document: its data and the line of every value in it (1-based)."""

    file: str
    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)

    def line_of(self, path: Path_) -> int | None:
        """The line of `path`, or of its nearest ancestor the document has."""
        for cut in range(len(path), -1, -1):
            if path[:cut] in self.lines:
                return self.lines[path[:cut]]
        return None


def _construct(node: yaml.Node, path: Path_, lines: dict[Path_, int], file: str) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise ConfigError.one(
                    file, dotted(path), "<<", "YAML merge keys are not supported; use `extends:`",
                    line=key_node.start_mark.line + 1,
                )
            key = _construct(key_node, (*path, "<key>"), {}, file)
            if not isinstance(key, str):
                raise ConfigError.one(
                    file, dotted(path), key, "keys must be strings", line=key_node.start_mark.line + 1
                )
            if key in out:
                raise ConfigError.one(
                    file, dotted((*path, key)), key,
                    "the key appears twice in the same mapping; keep one",
                    line=key_node.start_mark.line + 1,
                )
            out[key] = _construct(value_node, (*path, key), lines, file)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(item, (*path, i), lines, file) for i, item in enumerate(node.value)]
    value = _SCALARS.construct_object(node, deep=True)
    if isinstance(value, float) and isinstance(node, yaml.ScalarNode):
        return YamlFloat(value, node.value)
    return value


def parse(text: str, file: str) -> Source:
    """Parse one YAML document; malformed YAML is a ConfigError with the loader's line."""
    try:
        try:
            node = yaml.compose(text, Loader=_COMPOSER)
        except yaml.YAMLError:  # pure-Python's message says more ("found character '\t'…"): report that one
            node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError.one(
            file, "", None, f"the file is not valid YAML ({problem}); fix the syntax",
            line=mark.line + 1 if mark else None, missing=True,
        ) from None
    if node is None:
        return Source(file, None, {(): 1})
    lines: dict[Path_, int] = {}
    data = _construct(node, (), lines, file)
    return Source(file, data, lines)


def load(path: Path, display: str | None = None) -> Source:
    """Read and parse a YAML file; a missing file is a ConfigError, not a traceback."""
    name = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError.one(name, "", None, "the file does not exist", missing=True) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError.one(name, "", None, f"the file cannot be read ({exc})", missing=True) from None
    return parse(text, name)
