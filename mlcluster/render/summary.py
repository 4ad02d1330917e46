"""SUMMARY.md: the one screen a reviewer reads first."""

from __future__ import annotations

from collections import Counter
from typing import Any

from mlcluster.components.platform import enabled_addons
from mlcluster.components.tenancy import team_namespace
from mlcluster.profiles.gpu_products import gpus_per_node
from mlcluster.profiles.rules import gpu_capacity, physical_gpus
from mlcluster.render.engine import RenderResult
from mlcluster.review.replacements import is_stateful, replacing_paths


def _table(headers: list[str], rows: list[list[Any]]) -> list[str]:
    def cell(value: Any) -> str:
        return str(value if value not in (None, "") else "—").replace("|", "\\|")

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return lines


def render(result: RenderResult, records: list[dict[str, Any]], manifests: list[str],
           releases: list[dict[str, Any]], notes: list[str], commands: list[dict[str, Any]] | None = None) -> str:
    p = result.profile
    out = [f"# mlcluster render — profile `{p.name}`, stack `{result.stack}`", ""]
    if p.description:
        out += [p.description, ""]
    out += [f"> {note}" for note in notes] + ([""] if notes else [])
    out += [
        f"- **Substrate:** {p.substrate.kind}",
        f"- **Kubernetes:** {p.kubernetes.version}",
        f"- **Add-ons:** {', '.join(enabled_addons(p)) or 'none'}",
        f"- **Teams:** {len(p.teams)} · **GPUs at max size:** {physical_gpus(p)} physical, offered as "
        f"{gpu_capacity(p)} schedulable `nvidia.com/gpu` (time-sliced replicas and MIG slices count one each)",
        f"- **Resources:** {len(records)} ({sum(r['custom'] for r in records)} custom, "
        f"{len(manifests)} Kubernetes objects, {len(releases)} Helm releases)",
        "",
        "## Node pools",
        "",
    ]
    out += _table(
        ["pool", "role", "GPU", "GPUs/node", "schedulable/node", "sharing", "capacity", "min–max"],
        [[n.name, n.role, n.gpu.product if n.gpu else None, n.gpu.count if n.gpu else None,
          gpus_per_node(n) if n.gpu else None, n.sharing.mode if n.gpu else None, n.capacity_type,
          f"{n.min}–{n.max}"] for n in p.node_pools],
    )
    out += ["", "## Add-ons and charts", ""]
    out += _table(["release", "chart", "version", "namespace", "repository"],
                  [[r["release"], r["chart"], r["version"], r["namespace"], r["repository"]]
                   for r in sorted(releases, key=lambda r: r["release"])])
    out += ["", "## Teams", ""]
    out += _table(
        ["team", "namespace", "CPU", "memory", "GPUs", "storage", "members", "leads"],
        [[t.name, team_namespace(t, p.tenancy), t.quota.cpu, t.quota.memory, t.quota.gpu, t.quota.storage,
          len(t.members) + len(t.groups), len(t.leads)] for t in p.teams],
    )
    out += ["", f"Network: default-deny ingress per team namespace; egress **{p.tenancy.egress}**.", ""]
    if p.tiers:
        out += ["## Tiers", ""]
        out += _table(["tier", "CPU", "memory", "GPUs", "description"],
                      [[t.name, t.cpu, t.memory, t.gpu, t.description] for t in p.tiers])
        out += [""]
    if commands:
        out += ["## Commands run on hosts", "",
                "Each runs once, and again only when its trigger changes (script hash, or the version for "
                "upgrades). Scripts are in `scripts/`; secrets arrive on stdin and are never in a script.", ""]
        out += _table(["command", "host", "via bastion", "script", "stdin"],
                      [[c["name"], c["host"], c["via"], f"`{c['script']}`", "[secret]" if c["stdin"] else None]
                       for c in commands])
        out += [""]
    protected = [r["urn"].rsplit("::", 1)[-1] for r in records if r["options"]["protect"]]
    out += ["## Data safety", ""]
    out += [f"- Protected from deletion: {', '.join(protected) if protected else 'nothing in this profile'}"]
    stateful = [r for r in records if is_stateful(r["type"]) and r["custom"]]
    if stateful:
        out += ["- Stateful resources, and the inputs whose change would replace them (delete, then create). "
                "`mlcluster diff` flags such a change loudly; `protect` makes `pulumi up` refuse it.", ""]
        out += _table(["resource", "type", "protected", "replaced by a change to"], [
            [f"`{r['name']}`", r["type"].rsplit(":", 1)[-1], "yes" if r["options"]["protect"] else "no",
             ", ".join(f"`{p}`" for p in replacing_paths(r["type"], r["options"].get("replaceOnChanges") or ()))]
            for r in sorted(stateful, key=lambda r: r["name"])])
        out += [""]
    if result.profile.policy.overrides:
        out += ["- Accepted guardrail exceptions (`policy.overrides`):", ""]
        out += [f"  - `{o.rule}` on {', '.join(o.resources) or 'every resource'}: {o.reason}"
                for o in result.profile.policy.overrides]
    out += ["", "## Resources by type", ""]
    counts = Counter(r["type"] for r in records)
    out += _table(["type", "count"], [[f"`{t}`", n] for t, n in sorted(counts.items())])
    out += ["", "## Stack outputs", ""]
    out += _table(["output", "value"], [
        [k, "[secret]" if secret else f"`{_short(v)}`"] for k, (v, secret) in sorted(result.outputs.items())
    ])
    out += ["", "Files: `resources.json` (every resource and its inputs), `manifests/` (Kubernetes objects, "
            "strictly validated), `helm/` (charts with pinned versions and full values).", ""]
    return "\n".join(out)


def _short(value: Any) -> str:
    import json

    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 80 else text[:77] + "..."
