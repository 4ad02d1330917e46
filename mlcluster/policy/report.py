"""Guardrail reports for a terminal or a pull-request comment."""

from __future__ import annotations

from mlcluster.policy.model import Report, Severity

ICONS = {"high": "🔴", "medium": "🟠", "low": "🟡"}


def summary_line(report: Report) -> str:
    counts = {s: len([f for f in report.open() if f.severity == s]) for s in ("high", "medium", "low")}
    return (f"{report.evaluated} resources checked: {counts['high']} high, {counts['medium']} medium, "
            f"{counts['low']} low findings; {len(report.overridden())} accepted by profile overrides")


def rows(report: Report) -> list[list[str]]:
    return [[f.severity, f.rule.id, f.resource.name, f.message] for f in report.open()]


def markdown(report: Report, title: str, fail_on: Severity | None) -> str:
    failing = bool(fail_on and report.open(fail_on))
    lines = [f"### {'❌' if failing else '✅'} mlcluster check — {title}", "", summary_line(report), ""]
    open_findings = report.open()
    if open_findings:
        lines += ["| | rule | resource | finding |", "|---|---|---|---|"]
        lines += [f"| {ICONS[f.severity]} {f.severity} | `{f.rule.id}` | `{f.resource.name}` | {f.message} |"
                  for f in open_findings]
        lines.append("")
    if report.overridden():
        lines += ["<details><summary>Accepted exceptions (profile overrides)</summary>", ""]
        lines += [f"- `{f.rule.id}` on `{f.resource.name}`: {f.message} — *{f.override.reason}*"
                  for f in report.overridden() if f.override]
        lines += ["", "</details>", ""]
    return "\n".join(lines)
