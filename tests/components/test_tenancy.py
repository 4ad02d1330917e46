"""Isolation by construction: every team namespace is fenced, capped and bound only inside itself."""

from __future__ import annotations

import pytest
import yaml

from mlcluster.components.tenancy import Reach, team_manifests
from mlcluster.profiles.effective import load_profile
from tests.conftest import rendered_profile, rendered_stack


def team_objects(files, ns):
    return [yaml.safe_load(text) for path, text in files.items() if path.startswith(f"manifests/{ns}/")]


@pytest.mark.parametrize("rendered", [lambda: rendered_profile("local"), lambda: rendered_stack("shared")],
                         ids=["local", "shared"])
def test_each_team_namespace_is_isolated(rendered):
    r = rendered()
    namespaces = [yaml.safe_load(t) for p, t in r.files.items() if p.startswith("manifests/_cluster/namespace-team-")]
    assert len(namespaces) == len(r.result.profile.teams) >= 2
    for ns in namespaces:
        name = ns["metadata"]["name"]
        labels = ns["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "baseline"
        assert labels["pod-security.kubernetes.io/warn"] == "restricted"
        assert labels["pod-security.kubernetes.io/audit"] == "restricted"
        assert labels["pod-security.kubernetes.io/enforce-version"] == "v1.35"
        objects = team_objects(r.files, name)
        by_kind: dict[str, list] = {}
        for obj in objects:
            by_kind.setdefault(obj["kind"], []).append(obj)
        deny = [p for p in by_kind["NetworkPolicy"] if p["metadata"]["name"] == "default-deny"]
        assert deny and deny[0]["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
        quotas = {q["metadata"]["name"]: q["spec"] for q in by_kind["ResourceQuota"]}
        hard = quotas["team-quota"]["hard"]
        assert "requests.cpu" in hard and "requests.memory" in hard and hard["services.loadbalancers"] == "0"
        assert quotas["no-system-priority"]["hard"] == {"pods": "0"}
        assert by_kind["LimitRange"][0]["spec"]["limits"][0]["default"]
        for binding in by_kind.get("RoleBinding", []):
            assert binding["metadata"]["namespace"] == name
            if binding["roleRef"]["kind"] == "ClusterRole":  # the team's people: their roles, here only
                assert binding["roleRef"]["name"] in ("mlcluster-team-member", "mlcluster-team-lead")
            else:  # the one platform binding: JupyterHub's hub may spawn notebooks here
                assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                              "name": "jupyterhub-spawner"}
                assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "hub", "namespace": "jupyterhub"}]
        for role in by_kind.get("Role", []):  # namespaced, and never secrets or wildcards
            for rule in role["rules"]:
                assert "secrets" not in rule["resources"] and "*" not in rule["verbs"] + rule["resources"]
        assert "ClusterRoleBinding" not in by_kind
        patch = yaml.safe_load(r.files[f"manifests/{name}/serviceaccount-default.patch.yaml"])
        assert patch["automountServiceAccountToken"] is False


def test_no_cluster_wide_binding_anywhere():
    for r in (rendered_profile("local"), rendered_stack("shared")):
        assert not [p for p in r.files if "clusterrolebinding" in p]


def test_restricted_egress_allows_dns_front_doors_and_cidrs_only():
    """What the restricted setting writes (what it lets a pod do: tests/security/test_network.py)."""
    files = rendered_stack("shared").files
    allow = yaml.safe_load(files["manifests/team-vision/networkpolicy-allow-egress.yaml"])["spec"]["egress"]
    assert {"protocol": "UDP", "port": 53} in allow[0]["ports"]
    assert {"to": [{"ipBlock": {"cidr": "10.20.0.0/16"}}]} in allow
    assert not [rule for rule in allow if rule["to"][0].get("ipBlock", {}).get("cidr") == "0.0.0.0/0"]
    doors = {rule["to"][0]["namespaceSelector"]["matchExpressions"][0]["values"][0]: rule["ports"]
             for rule in allow if "namespaceSelector" in rule["to"][0] and "podSelector" not in rule["to"][0]}
    assert doors == {"jupyterhub": [{"protocol": "TCP", "port": 8081}], "mlflow": [{"protocol": "TCP", "port": 5000}]}


def test_open_egress_excludes_the_clusters_own_addresses():
    files = rendered_profile("onprem-gpu").files
    allow = yaml.safe_load(files["manifests/team-vision/networkpolicy-allow-egress.yaml"])["spec"]["egress"]
    internet = next(rule for rule in allow if rule["to"][0].get("ipBlock", {}).get("cidr") == "0.0.0.0/0")
    # Pods, services, the hosts' network, link-local (the metadata service).
    assert internet["to"][0]["ipBlock"]["except"] == ["10.42.0.0/16", "10.43.0.0/16", "169.254.0.0/16", "192.0.2.0/24"]


def test_team_without_people_gets_no_empty_bindings():
    profile = load_profile("local", sets=("teams[0].members=[]", "teams[0].leads=[]"))
    manifests = team_manifests(profile.teams[0], profile.tenancy, "1.35", Reach())
    assert not [m for m in manifests if m["kind"] == "RoleBinding"]


def test_limit_range_ceiling_is_the_largest_allowed_tier():
    from mlcluster.components.tenancy import container_limits

    profile = load_profile("aws-gpu")
    nlp = profile.teams[1]
    ceiling = container_limits(nlp, list(profile.tiers))["max"]
    # No GPU line: a GPU `max` becomes every container's default (tests/semantics/test_limits.py).
    assert ceiling == {"cpu": "180", "memory": "1800Gi"}
    small = load_profile("aws-gpu", sets=("teams[1].tiers=[cpu, gpu-1]",)).teams[1]
    assert container_limits(small, list(profile.tiers))["max"] == {"cpu": "8", "memory": "30Gi"}
    tiny = load_profile("local", sets=("tiers[0].cpu=1", "tiers[1].cpu=1", "tiers[0].memory=1Gi",
                                       "tiers[1].memory=1Gi"))
    limits = container_limits(tiny.teams[0], list(tiny.tiers))
    assert limits["default"] == {"cpu": "1", "memory": "1Gi", "ephemeral-storage": "20Gi"}  # never above the ceiling
    assert limits["defaultRequest"] == {"cpu": "250m", "memory": "512Mi", "ephemeral-storage": "1Gi"}


def test_team_bucket_role_is_limited_to_its_prefix():
    import json

    resources = json.loads(rendered_profile("aws-gpu").files["resources.json"])["resources"]
    policies = {r["name"]: json.loads(r["inputs"]["policy"])["Statement"] for r in resources
                if r["type"] == "aws:iam/rolePolicy:RolePolicy" and r["name"].startswith("team-")}
    assert set(policies) == {"team-vision-policy", "team-nlp-policy"}
    vision = {s["Sid"]: s for s in policies["team-vision-policy"]}
    bucket, _, prefix = vision["ReadWriteOwnPrefix"]["Resource"].partition("/")
    assert bucket.startswith("arn:aws:s3:::mlcluster-render-artifacts-") and prefix == "teams/vision/*"
    assert vision["ListOwnPrefix"]["Condition"]["StringLike"]["s3:prefix"] == ["teams/vision/", "teams/vision/*"]
    associations = [r for r in resources if r["type"] == "aws:eks/podIdentityAssociation:PodIdentityAssociation"
                    and r["name"].startswith("team-")]
    assert {(a["inputs"]["namespace"], a["inputs"]["serviceAccount"]) for a in associations} == {
        ("team-vision", "workload"), ("team-nlp", "workload")}


def test_no_team_roles_without_bucket_access():
    from mlcluster.render import render

    rendered = render(profile="aws-dev", sets=("tenancy.bucket_access=false",))
    assert "team-sandbox-role" not in rendered.files["resources.json"]


def test_efa_interfaces_are_quota_d_by_the_nodes_a_team_can_reach():
    """17.9: Kueue does not count EFA (excludeResourcePrefixes), so the namespace quota bounds it: the team's whole
    GPU reach on EFA pools in nodes, times each node's interfaces (p5.48xlarge: 32); 0 without EFA pools."""
    from mlcluster.components.tenancy import resource_quota
    from mlcluster.profiles import quotas

    profile = load_profile("aws-gpu")
    vision = profile.teams[0]
    assert quotas.efa_reach(profile, vision) == 2 * 32  # the H100 pool's two nodes, borrowing on
    hard = resource_quota(vision, "team-vision", quotas.reach(profile, vision),
                          quotas.efa_reach(profile, vision))["spec"]["hard"]
    assert hard["requests.vpc.amazonaws.com/efa"] == "64"
    onprem = load_profile("onprem-gpu")
    assert quotas.efa_reach(onprem, onprem.teams[0]) == 0


def test_limit_range_floor_sits_below_every_default():
    """The API server refuses a LimitRange whose min exceeds defaultRequest/default/max (ValidateLimitRange)."""
    from mlcluster.components import quantity
    from mlcluster.components.tenancy import container_limits

    for name in ("local", "aws-gpu", "onprem-gpu", "colo-gpu", "aws-dev"):
        profile = load_profile(name)
        for team in profile.teams:
            limits = container_limits(team, list(profile.tiers))
            for key, floor in limits["min"].items():
                for level in ("defaultRequest", "default", "max"):
                    if key in limits.get(level, {}):
                        assert quantity.value(floor) <= quantity.value(limits[level][key]), (name, level, key)
