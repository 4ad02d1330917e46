"""PromQL helpers for tests: `promtool check rules` (the real parser) and the metric names an expression uses."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

_KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left",
             "group_right", "inf", "nan"}


def require_promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool is not installed (Debian package `prometheus`; .ci/run installs it)")
    return path


def check_rules(groups: list[dict[str, Any]], tmp_path: Path) -> None:
    """Fail with promtool's own message unless every rule parses and is well-formed."""
    promtool = require_promtool()
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    done = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def as_recording_rules(exprs: list[str]) -> list[dict[str, Any]]:
    """Queries (dashboard panels) wrapped as recording rules, so promtool parses them too."""
    return [{"name": "queries", "rules": [{"record": f"mlcluster:query:{i}", "expr": e} for i, e in enumerate(exprs)]}]


def metric_names(expr: str) -> set[str]:
    """Metric names in an expression: identifiers that are not functions, keywords, labels or durations."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges and subqueries
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)  # label lists
    names = set()
    for match in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", text):
        rest = text[match.end():].lstrip()
        if match.group() not in _KEYWORDS and not rest.startswith("("):
            names.add(match.group())
    return names
