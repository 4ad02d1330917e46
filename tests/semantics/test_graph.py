"""The render's cross-reference pass (mlcluster.semantics.graph), over every shipped profile and stack, and on
the fragments that break it. On the code before this change it found: nothing installed the Gateway API CRDs
(the Gateway, its class, every HTTPRoute, Traefik and cert-manager's enableGatewayAPI needed them), Kueue's
ServiceMonitor did not wait for the Prometheus operator's CRDs, JupyterHub's route attached to the plain HTTP
listener, and the co-lo HTTPS listener and certificate named only the base host, so no tool route was accepted."""

from __future__ import annotations

import json

import pytest

from mlcluster.profiles.loader import shipped_profiles
from mlcluster.render import available_stacks
from mlcluster.semantics.graph import Graph, cross_references, routes_served_over_tls
from tests.conftest import rendered_profile, rendered_stack

RENDERS = [("profile", n) for n in shipped_profiles()] + [("stack", s) for s in available_stacks()]


def records(kind, name):
    rendered = rendered_profile(name) if kind == "profile" else rendered_stack(name)
    return json.loads(rendered.files["resources.json"])["resources"]


@pytest.mark.parametrize(("kind", "name"), RENDERS)
def test_every_render_passes_the_cross_reference_pass(kind, name):
    assert cross_references(records(kind, name)) == []


def test_a_custom_resource_that_does_not_wait_for_its_crds_is_found():
    found = records("profile", "local")
    queue = next(r for r in found if r["type"].endswith(":ClusterQueue"))
    queue = {**queue, "dependencies": [], "parent": None}
    broken = [queue if r["urn"] == queue["urn"] else r for r in found]
    messages = [f.message for f in Graph(broken).crds_before_use()]
    assert any("kueue.x-k8s.io but does not wait for its CRDs (kueue-kueue)" in m for m in messages)


def test_an_object_that_does_not_wait_for_its_namespace_is_found():
    """The hub's spawner Role used to be a child of the JupyterHub add-on, which team spaces waited for: on the
    first real `pulumi up` it was created before its team namespace existed."""
    found = records("profile", "local")
    role = next(r for r in found if r["name"] == "jupyterhub-role-vision")
    hub = next(r for r in found if r["type"] == "mlcluster:addons:JupyterHub")
    moved = {**role, "dependencies": [], "parent": hub["urn"]}
    broken = [moved if r["urn"] == role["urn"] else r for r in found]
    messages = [f"{f.name}: {f.message}" for f in Graph(broken).namespaces_before_contents()]
    assert messages == ["jupyterhub-role-vision: is created in namespace team-vision but does not wait for it "
                        "(vision-namespace)"]


def test_plain_http_routes_and_uncovered_hosts_are_found():
    found = records("stack", "colo")
    route = next(r for r in found if r["name"] == "mlflow-route")
    plain = json.loads(json.dumps(route))
    plain["inputs"]["spec"]["parentRefs"][0]["sectionName"] = "http"
    plain["inputs"]["metadata"]["namespace"] = "gateway"
    stranger = json.loads(json.dumps(route))
    stranger["name"] = "stranger"
    stranger["inputs"]["spec"]["hostnames"] = ["grafana.ml.colo.example"]
    messages = [f.message for f in routes_served_over_tls([*found, plain, stranger])]
    assert any("plain HTTP" in m for m in messages)
    assert any("grafana.ml.colo.example is not named by the HTTPS listener's certificate" in m for m in messages)


def test_http_only_redirects_and_acme_names_every_routed_host():
    import yaml

    files = rendered_stack("colo").files
    gateway = yaml.safe_load(files["manifests/gateway/gateway-mlcluster.yaml"])["spec"]
    http = next(listener for listener in gateway["listeners"] if listener["protocol"] == "HTTP")
    assert http["allowedRoutes"] == {"namespaces": {"from": "Same"}}  # other namespaces' routes cannot attach
    redirect = yaml.safe_load(files["manifests/gateway/httproute-https-redirect.yaml"])["spec"]
    assert redirect["rules"][0]["filters"][0]["requestRedirect"]["scheme"] == "https"
    names = yaml.safe_load(files["manifests/gateway/certificate-mlcluster-gateway-tls.yaml"])["spec"]["dnsNames"]
    assert not any(n.startswith("*") for n in names), "ACME's HTTP-01 cannot issue a wildcard"
    assert {"jupyter.ml.colo.example", "mlflow.ml.colo.example", "argo.ml.colo.example"} <= set(names)


def _closure(found, urn, memo):
    """The definition, written the slow way: everything `urn` waits for (dependencies, parent, transitively)."""
    if urn not in memo:
        memo[urn] = set()
        record = found.get(urn)
        direct = set(record.get("dependencies") or []) if record else set()
        if record and record.get("parent") in found:
            direct.add(record["parent"])
        memo[urn] = direct.union(*(_closure(found, d, memo) for d in direct))
    return memo[urn]


@pytest.mark.parametrize(("kind", "name"), [("profile", "local"), ("stack", "colo"), ("profile", "aws-gpu")])
def test_waits_for_answers_what_the_transitive_closure_answers(kind, name):
    """Graph walks forward from the resources asked about; it must agree with the closure of each resource."""
    found = {r["urn"]: r for r in records(kind, name)}
    graph, memo = Graph(list(found.values())), {}
    namespaces = [u for u, r in found.items() if r["type"] == "kubernetes:core/v1:Namespace"]
    releases = [u for u, r in found.items() if r["type"] == "kubernetes:helm.sh/v3:Release"]
    questions = [frozenset({u}) for u in namespaces + releases] + [frozenset(releases[:3])]
    checked = 0
    for urn in found:
        for sources in questions:
            assert graph.waits_for(urn, sources) == bool(sources & _closure(found, urn, memo)), (urn, sources)
            checked += 1
    assert checked > 1000


def test_the_cross_reference_pass_needs_memory_per_resource_not_per_team_squared():
    """Issue 18: the pass kept every resource's transitive closure; team resources wait for shared releases whose
    closures grow with the team count, so at 300 teams it held ~210 MB (33 KB per resource; 3 KB at 10 teams,
    6 KB at 40). Walking forward from the few resources asked about keeps it flat and small."""
    import tracemalloc

    from mlcluster.render import render

    per_resource = {}
    for teams in (10, 40):
        team_list = [{"name": f"team{i:03d}", "members": [f"u{i}@example.com"], "quota": {"cpu": "4", "memory": "16Gi"}}
                     for i in range(teams)]
        rendered = render(profile="local", sets=(f"teams={json.dumps(team_list)}",))
        found = json.loads(rendered.files["resources.json"])["resources"]
        tracemalloc.start()
        try:
            assert cross_references(found) == []
            per_resource[teams] = tracemalloc.get_traced_memory()[1] / len(found)
        finally:
            tracemalloc.stop()
    assert per_resource[40] < 1500, per_resource
    assert per_resource[40] < 1.25 * per_resource[10], per_resource
