"""SUMMARY.md: the one screen a reviewer reads first."""

from __future__ import annotations

from collections import Counter
from typing import Any

from mlcluster.components.platform import enabled_addons
from mlcluster.components.tenancy import team_namespace
from mlcluster.profiles import quotas
from mlcluster.profiles.gpu_products import gpus_per_node, tier_resource
from mlcluster.profiles.rules import gpu_capacity, physical_gpus
from mlcluster.render.engine import RenderResult
from mlcluster.review.replacements import is_stateful, replacing_paths


def _table(headers: list[str], rows: list[list[Any]]) -> list[str]:
    def cell(value: Any) -> str:
        return str(value if value not in (None, "") else "—").replace("|", "\\|")

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return lines


def capacity_source(pool: Any) -> str:
    """How a GPU pool gets instances, and what can go wrong, in a reviewer's words (13.12)."""
    reservations = ", ".join(pool.capacity_reservation_ids)
    if pool.capacity_type == "spot":
        return "Spot: cheapest; EC2 may reclaim a node with two minutes' warning, and a scale-up may find none"
    if pool.capacity_type == "capacity-block":
        return (f"Capacity Block {reservations}: nodes only inside the block's time window, in its availability "
                "zone; outside it the pool stays at zero")
    if reservations:
        then = ("then on-demand" if pool.provisioner == "karpenter"
                else "only (a launch template targets one reservation)")
        return f"On-Demand Capacity Reservation {reservations} first, {then}"
    return ("On-demand without a reservation: a scale-up fails (InsufficientInstanceCapacity) when the zone has "
            "none, common for p4/p5; add capacity_reservation_ids or a Capacity Block")


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
    if p.substrate.kind == "eks" and any(n.gpu for n in p.node_pools):
        out += ["", "## Where GPU capacity comes from", ""]
        out += _table(["pool", "instances", "capacity"],
                      [[n.name, ", ".join(n.instance_types), capacity_source(n)] for n in p.node_pools if n.gpu])
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
    egress = ("anywhere outside the cluster's own addresses" if p.tenancy.egress == "open"
              else f"only {', '.join(p.tenancy.egress_cidrs) or 'nowhere'} outside the cluster")
    out += ["", "Network: team pods are fenced both ways. Other teams, platform data stores, nodes and the metadata "
            f"service are out of reach; team pods call the platform's front doors (MLflow, the hub API), DNS and "
            f"{egress}; platform components reach team pods only on the ports they need (metrics, notebooks, "
            "served models).", ""]
    if p.tiers:
        out += ["## Tiers", ""]
        out += _table(["tier", "CPU", "memory", "GPUs", "requests", "description"],
                      [[t.name, t.cpu, t.memory, t.gpu, tier_resource(t) or "—", t.description] for t in p.tiers])
        out += [""]
    out += data_scientists(p)
    out += team_member(p, records)
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


def data_scientists(p: Any) -> list[str]:
    """What data scientists get: for each team and tier, where its work can run and on what terms (the quota
    model of profiles/quotas.py; `make journey` checks the same against the real Kueue and scheduler)."""
    if not p.teams or not p.tiers or not getattr(p.ml, "kueue", None) or not p.ml.kueue.enabled:
        return []
    rows = []
    shares = quotas.nominal(p)
    for team in p.teams:
        for tier in p.tiers:
            if team.tiers is not None and tier.name not in team.tiers:
                continue
            if not tier.gpu:
                rows.append([team.name, tier.name, "any CPU node", "—", "queued on the team's CPU/memory quota"])
                continue
            pools = quotas.admissible_on(p, team, tier)
            guaranteed = [f"{pool} ({shares[team.name].get(pool, 0)})" for pool in pools]
            terms = "guaranteed, or borrowed when idle" if quotas.borrowing(p) else "within the guarantee only"
            rows.append([team.name, tier.name, ", ".join(pools) or "NONE", ", ".join(guaranteed), terms])
    lines = ["## What data scientists get", "",
             "Every pod in a team namespace goes through the team's queue (Kueue): a tier runs on the pools below. "
             "The number is the team's guaranteed share of that pool; beyond it, idle capacity is borrowed and "
             "handed back by preemption when its owner needs it. Checked on this render by the admission model "
             "(tests/semantics) and, for the shipped GPU profiles, by `make journey` with the real controllers.", ""]
    return [*lines, *_table(["team", "tier", "runs on", "guaranteed there", "terms"], rows), ""]


def team_member(p: Any, records: list[dict[str, Any]]) -> list[str]:
    """What a member of the first team can do, computed by the same evaluators the tests and `mlcluster check` use
    (mlcluster.semantics.rbac: the authorizer's rules; mlcluster.semantics.netpol: the NetworkPolicy API's)."""
    from mlcluster.components.tenancy import team_namespace
    from mlcluster.semantics.netpol import Address, Network, Pod
    from mlcluster.semantics.rbac import Authorizer, team_people

    if not p.teams:
        return []
    objects = [r["inputs"] for r in records if r["type"].startswith("kubernetes:") and "kind" in (r["inputs"] or {})]
    auth, net = Authorizer(objects), Network(objects)
    team = p.teams[0]
    own = team_namespace(team, p.tenancy)
    other = team_namespace(p.teams[1], p.tenancy) if len(p.teams) > 1 else "kube-system"
    people = team_people(objects, own)
    if not people:
        return []
    person = people[0]

    def can(verb: str, group: str, resource: str, namespace: str | None) -> str:
        return "yes" if auth.allowed(person, verb, group, resource, namespace) else "no"

    rows = [
        ["run Jobs, TrainJobs, RayJobs, InferenceServices, Workflows", " · ".join(
            can("create", g, r, own) for g, r in (("batch", "jobs"), ("trainer.kubeflow.org", "trainjobs"),
                                                  ("ray.io", "rayjobs"), ("serving.kserve.io", "inferenceservices"),
                                                  ("argoproj.io", "workflows")))],
        ["read the team's Secrets (e.g. its MLflow login)", can("get", "", "secrets", own)],
        ["exec / port-forward into pods (`tenancy.member_exec`)", can("create", "", "pods/exec", own)],
        ["change NetworkPolicies, quotas, LimitRanges, RoleBindings", " · ".join(
            can("update", g, r, own) for g, r in (("networking.k8s.io", "networkpolicies"), ("", "resourcequotas"),
                                                  ("", "limitranges"), ("rbac.authorization.k8s.io", "rolebindings")))],
        ["create SecretStores, Issuers, Certificates", " · ".join(
            can("create", g, r, own) for g, r in (("external-secrets.io", "secretstores"),
                                                  ("cert-manager.io", "issuers"),
                                                  ("cert-manager.io", "certificates")))],
        [f"read Secrets or run pods in another team's namespace ({other})",
         " · ".join((can("get", "", "secrets", other), can("create", "", "pods", other)))],
    ]
    pod = Pod(own, {"app": "anything"}, {"metrics": 9400})
    reach = [
        ["connect to another team's pods", "yes" if any(net.can_connect(pod, Pod(other, {}), port)
                                                         for port in (22, 80, 443, 8080, 8888)) else "no"],
        ["connect to the node metadata service (169.254.169.254)",
         "yes" if net.can_connect(pod, Address("169.254.169.254"), 80) else "no"],
        ["connect to MLflow's API / the hub API", " · ".join(
            "yes" if net.can_connect(pod, Pod(ns, {}), port) else "no"
            for ns, port in ((p.ml.mlflow.namespace, 5000), (p.ml.jupyterhub.namespace, 8081)))],
        ["connect to Prometheus (9090) / MLflow's database (5432)", " · ".join(
            "yes" if net.can_connect(pod, Pod(ns, {}), port) else "no"
            for ns, port in (("monitoring", 9090), (p.ml.mlflow.namespace, 5432)))],
        ["reach the internet (443)", "yes" if net.can_connect(pod, Address("151.101.0.223"), 443) else "no"],
    ]
    return ["## What a team member can do", "",
            f"Computed from this render for `{person.name}` in `{own}` (the authorizer's and NetworkPolicies' rules; "
            "`mlcluster check` and the tests use the same evaluators).", "",
            *_table(["request", "allowed"], rows + reach), ""]


def _short(value: Any) -> str:
    import json

    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 80 else text[:77] + "..."
