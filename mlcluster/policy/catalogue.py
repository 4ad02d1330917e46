"""docs/guardrails.md: the rule catalogue a user reads, generated from the rules (`mlcluster schema`).

Every rule with its id (exactly what `policy.overrides[].rule` takes), severity, what it asks for, why, the
public checks it mirrors and how to accept an exception. A test fails when the file is stale.
"""

from __future__ import annotations

from pathlib import Path

from mlcluster.policy import rules

SIGNATURE = "Generated from mlcluster.policy by `mlcluster schema`"


def catalogue_text() -> str:
    out = ["# Guardrails", "",
           f"{SIGNATURE}; do not edit by hand. `mlcluster check` runs these rules offline on a render and the",
           "CrossGuard pack in `policies/` runs the very same rules during `pulumi preview`/`up`: high severity",
           "blocks an update, medium and low warn.", "",
           "Accept an exception in the profile, with the reason reviewers will read in every report:", "",
           "```yaml", "policy:", "  overrides:", "    - rule: nodes-no-public-ip          # an id from the table",
           "      reason: the lab's jump host pool needs public addresses (ticket NET-42)",
           "      resources: [gpu-a10g-*]           # optional: Pulumi resource names (globs); none = every one",
           "```", "",
           "| rule | severity | public checks | asks for |", "|---|---|---|---|"]
    ordered = sorted(rules().values(), key=lambda r: (("high", "medium", "low").index(r.severity), r.id))
    out += [f"| [`{r.id}`](#{r.id}) | {r.severity} | {', '.join(r.public_ids) or '—'} | {r.title} |"
            for r in ordered]
    out.append("")
    for rule in sorted(rules().values(), key=lambda r: r.id):
        out += [f"## {rule.id}", "", f"**{rule.title}** — severity {rule.severity}.", "", rule.rationale, ""]
        if rule.public_ids:
            out += [f"Mirrors: {', '.join(rule.public_ids)}.", ""]
        kinds = ", ".join(f"`{t}`" for t in rule.types)
        out += [f"Looks at: {kinds or 'the whole stack'}.", ""]
    return "\n".join(out)


def catalogue_file(root: Path) -> Path:
    return root / "docs" / "guardrails.md"
