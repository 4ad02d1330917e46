"""A diff for a terminal, or as a pull-request comment that fits on a screen with the details folded."""

from __future__ import annotations

import difflib
import json
from typing import Any

from mlcluster.review.compare import MISSING, Change, Diff, PathChange

ICONS = {"add": "➕", "remove": "➖", "change": "✏️", "replace": "🔁"}
SHOWN = 15  # rows in the comment's main table; the rest are folded


def _short(value: Any, width: int = 60) -> str:
    if value is MISSING:
        return "∅"
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= width else text[: width - 1] + "…"


def _multiline(path: PathChange) -> bool:
    return any(isinstance(v, str) and "\n" in v for v in (path.old, path.new))


def line_diff(path: PathChange) -> list[str]:
    """A unified line diff of a multi-line string value (an embedded config, a script): every changed line,
    never both sides cut at the same prefix."""
    old = path.old if isinstance(path.old, str) else ""
    new = path.new if isinstance(path.new, str) else ""
    lines = difflib.unified_diff(old.splitlines(), new.splitlines(), "before", "after", n=2, lineterm="")
    return [line for line in lines if not line.startswith(("---", "+++"))]


def _fence(lines: list[str]) -> str:
    """A code-fence marker longer than any run of backticks inside, so the block cannot break the comment."""
    ticks = 3
    for line in lines:
        run = 0
        for ch in line:
            run = run + 1 if ch == "`" else 0
            ticks = max(ticks, run + 1)
    return "`" * ticks


def counts(diff: Diff) -> str:
    parts = [f"{len(diff.by_action(a))} to {a}" for a in ("add", "remove", "change", "replace")]
    extra = f" · {len(diff.chart_bumps)} chart version bump(s)" if diff.chart_bumps else ""
    extra += " · accepted exceptions changed" if diff.policy else ""
    return ", ".join(parts) + extra


def _what(change: Change, limit: int = 4) -> str:
    paths = [p.path for p in change.paths if p.replaces] or [p.path for p in change.paths]
    text = ", ".join(paths[:limit]) + (f" (+{len(paths) - limit})" if len(paths) > limit else "")
    return text or ("new" if change.action == "add" else "deleted")


def _warning(change: Change) -> str:
    reason = "holds data" if change.stateful else "is protected"
    if change.action == "remove":
        return f"**removes** `{change.name}` ({change.type}), which {reason}"
    return f"**replaces** `{change.name}` ({change.type}), which {reason}: {_what(change)}"


def text(diff: Diff) -> str:
    lines = [f"mlcluster diff: {diff.base} → {diff.head}", counts(diff)]
    if diff.empty:
        return "\n".join([*lines, "no change"])
    for change in diff.loud:
        lines.append("!! DATA AT RISK: " + _warning(change).replace("**", "").replace("`", ""))
    for bump in diff.chart_bumps:
        lines.append(f"chart {bump.chart} ({bump.release}): {bump.old} → {bump.new}")
    for change in diff.changes:
        lines.append(f"{change.action:8} {change.name}  [{change.type}]")
        for path in change.paths:
            mark = " (replaces)" if path.replaces else ""
            if _multiline(path):
                lines.append(f"           {path.path}: multi-line value changed{mark}")
                lines += [f"             {line}" for line in line_diff(path)]
            else:
                lines.append(f"           {path.path}: {_short(path.old)} → {_short(path.new)}{mark}")
    for path in diff.policy:
        lines.append(f"exceptions {path.path}: {_short(path.old)} → {_short(path.new)}")
    return "\n".join(lines)


def markdown(diff: Diff, title: str) -> str:
    lines = [f"### mlcluster diff — {title}", "", f"`{diff.base}` → `{diff.head}`: **{counts(diff)}**", ""]
    if diff.empty:
        return "\n".join([*lines, "No change to what would be deployed.", ""])
    if diff.loud:
        lines += ["> [!CAUTION]", "> **Data at risk.** " + "; ".join(_warning(c) for c in diff.loud), ""]
    ordered = sorted(diff.changes, key=lambda c: (not c.loud, ("replace", "remove", "add", "change").index(c.action),
                                                  c.group, c.name))
    lines += ["| | resource | type | what changes |", "|---|---|---|---|"]
    lines += [f"| {ICONS[c.action]} {c.action} | `{c.name}` | {c.type.rsplit(':', 1)[-1]} | {_what(c)} |"
              for c in ordered[:SHOWN]]
    if len(ordered) > SHOWN:
        lines.append(f"| … | {len(ordered) - SHOWN} more below | | |")
    lines.append("")
    if diff.chart_bumps:
        lines += ["<details><summary>Chart versions</summary>", ""]
        lines += [f"- `{b.chart}` ({b.release}): {b.old} → **{b.new}**" for b in diff.chart_bumps]
        lines += ["", "</details>", ""]
    groups: dict[str, list[Change]] = {}
    for change in diff.changes:
        groups.setdefault(change.group, []).append(change)
    for group, changes in sorted(groups.items()):
        lines += [f"<details><summary>{group} ({len(changes)})</summary>", ""]
        for change in changes:
            lines.append(f"- {ICONS[change.action]} `{change.name}` ({change.type})")
            for p in change.paths:
                mark = " **replaces**" if p.replaces else ""
                if _multiline(p):
                    body = line_diff(p)
                    fence = _fence(body)
                    lines += [f"  - `{p.path}` (multi-line){mark}:", "", f"    {fence}diff",
                              *[f"    {line}" for line in body], f"    {fence}", ""]
                else:
                    lines.append(f"  - `{p.path}`: `{_short(p.old)}` → `{_short(p.new)}`{mark}")
        lines += ["", "</details>", ""]
    if diff.policy:
        lines += ["<details><summary>Accepted exceptions (profile policy.overrides)</summary>", ""]
        lines += [f"- `{p.path}`: `{_short(p.old)}` → `{_short(p.new)}`" for p in diff.policy]
        lines += ["", "</details>", ""]
    return "\n".join(lines)
