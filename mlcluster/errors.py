"""The one error type for bad input.

Every mistake a user can make in a profile, a stack config, an inventory or a CLI flag ends up as a
`ConfigError`: it names the file, the field path (and line when the YAML loader knows it), the bad value and
what is allowed. The CLI prints it as one paragraph per problem and exits with status 2; nothing is deployed
and nothing is written. It is raised before any resource is registered.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

EXIT_BAD_INPUT = 2


def _show(value: Any) -> str:
    """A short, single-line rendering of the offending value (numbers as the user wrote them)."""
    raw = getattr(value, "raw", None)
    if isinstance(raw, str):
        return raw
    try:
        text = json.dumps(value, default=str, sort_keys=True, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


@dataclass(frozen=True)
class Problem:
    """One bad input: where it is, what it is, and what would have been accepted."""

    file: str
    field: str
    value: Any
    allowed: str
    line: int | None = None
    has_value: bool = True

    def render(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        if self.field:
            value = f"has the value {_show(self.value)}" if self.has_value else "is missing"
            return f"{where}: field '{self.field}' {value}; {self.allowed}"
        if self.has_value:
            return f"{where}: the value {_show(self.value)} is not accepted; {self.allowed}"
        return f"{where}: {self.allowed}"


@dataclass
class ConfigError(Exception):
    """Bad input, with every problem found (not just the first)."""

    problems: list[Problem] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(self.render())

    @classmethod
    def one(
        cls,
        file: str,
        field_path: str,
        value: Any,
        allowed: str,
        *,
        line: int | None = None,
        missing: bool = False,
    ) -> ConfigError:
        return cls([Problem(file, field_path, value, allowed, line, has_value=not missing)])

    @classmethod
    def merge(cls, errors: Iterable[ConfigError]) -> ConfigError:
        return cls([p for e in errors for p in e.problems])

    def render(self) -> str:
        return "\n\n".join(p.render() for p in self.problems)

    def __str__(self) -> str:  # dataclass would otherwise print the field list
        return self.render()


class RenderError(Exception):
    """The program ran but what it would deploy is invalid: a toolkit bug or an input the model let through."""
