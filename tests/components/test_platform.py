"""The program's resource graph: parents, providers, dependencies and outputs."""

from __future__ import annotations

import json

import pytest

from mlcluster.addons import install_order, registry
from mlcluster.errors import ConfigError
from mlcluster.render import engine
from tests.conftest import rendered_profile


def resources():
    return json.loads(rendered_profile("local").files["resources.json"])["resources"]


def by_type(type_):
    return [r for r in resources() if r["type"] == type_]


def test_one_platform_parents_substrate_addons_and_teams():
    (platform,) = by_type("mlcluster:index:Platform")
    children = {r["type"] for r in resources() if r["parent"] == platform["urn"]}
    assert {"mlcluster:cluster:Existing", "mlcluster:addons:Monitoring", "mlcluster:tenancy:Team"} <= children
    for r in resources():
        if r["type"] != "mlcluster:index:Platform":
            assert r["parent"], f"{r['urn']} is not parented"


def test_team_objects_wait_for_their_namespace():
    checked = 0
    for r in resources():
        if "mlcluster:tenancy:Team$" in r["urn"] and not r["type"].endswith(":Namespace") and r.get("custom"):
            team = r["parent"].rsplit("::", 1)[1]
            assert any(d.endswith(f"::{team}-namespace") for d in r["dependencies"]), r["urn"]
            checked += 1
    assert checked > 20


def test_team_spaces_wait_for_add_on_releases_not_whole_add_ons():
    """The dependency fan-out (issue 18): a team waits for the releases (CRDs, controllers), never for add-on
    components and so never for other teams' objects those components hold."""
    records = resources()
    addons = {r["urn"] for r in records if r["type"].startswith("mlcluster:addons:")}
    releases = {r["urn"] for r in records if r["type"] == "kubernetes:helm.sh/v3:Release"}
    for team in by_type("mlcluster:tenancy:Team"):
        assert not set(team["dependencies"]) & addons
        assert releases <= set(team["dependencies"])  # on destroy, team objects go while controllers still run


def test_helm_release_waits_for_namespace_and_admin_secret():
    releases = by_type("kubernetes:helm.sh/v3:Release")
    (release,) = [r for r in releases if r["inputs"]["chart"] == "kube-prometheus-stack"]
    deps = release["dependencies"]
    assert any(d.endswith("::monitoring-ns-monitoring") for d in deps)
    assert any(d.endswith("::monitoring-grafana-admin") for d in deps)
    assert release["inputs"]["createNamespace"] is False


def test_provider_uses_the_stack_context_and_no_ambient_kubeconfig():
    (provider,) = by_type("pulumi:providers:kubernetes")
    assert provider["inputs"]["context"] == "kind-mlcluster"
    assert "kubeconfig" not in provider["inputs"]


def test_secret_kubeconfig_reaches_the_provider_redacted_and_is_exported_secret():
    result = engine.run("t", {"mlcluster:profile": "local", "mlcluster:kubeconfig": "apiVersion: v1"},
                        ["mlcluster:kubeconfig"], "test")
    (provider,) = [r for r in result.resources if r.type == "pulumi:providers:kubernetes"]
    from mlcluster.render.writer import clean

    assert clean(provider.inputs)["kubeconfig"] == "[secret]"
    value, secret = result.outputs["kubeconfig"]
    assert secret and value == "apiVersion: v1"


def test_existing_substrate_without_cluster_access_is_bad_input():
    with pytest.raises(ConfigError) as err:
        engine.run("t", {"mlcluster:profile": "local"}, [], "stacks/Pulumi.t.yaml")
    p = err.value.problems[0]
    assert (p.file, p.field) == ("stacks/Pulumi.t.yaml", "mlcluster:kubeContext")


def test_bad_overrides_in_config_name_the_stack_file():
    with pytest.raises(ConfigError) as err:
        engine.run("t", {"mlcluster:profile": "local", "mlcluster:kubeContext": "x",
                         "mlcluster:overrides": json.dumps({"tenancy": {"egress": "sideways"}})},
                   [], "stacks/Pulumi.t.yaml", {("tenancy", "egress"): 7})
    p = err.value.problems[0]
    assert (p.file, p.field, p.line, p.value) == ("stacks/Pulumi.t.yaml", "tenancy.egress", 7, "sideways")


def test_stack_outputs():
    outputs = rendered_profile("local").result.outputs
    assert outputs["addons"][0] == {"monitoring": {"kube-prometheus-stack": "kube-prometheus-stack@88.5.3"},
                                    "secrets": {"sealed-secrets": "sealed-secrets@2.18.5"},
                                    "postgres": {"cloudnative-pg": "cloudnative-pg@0.29.0"},
                                    "kueue": {"kueue": "kueue@0.19.2"},
                                    "jupyterhub": {"jupyterhub": "jupyterhub@4.4.0"},
                                    "mlflow": {"mlflow": "mlflow@1.11.5"}}
    assert outputs["jupyterhubPasswords"][1] is True  # the laptop's generated logins (one per user), a secret
    assert outputs["mlflowTrackingUri"][0] == "http://mlflow.mlflow.svc.cluster.local:5000"
    assert outputs["teamNamespaces"][0] == {"vision": "team-vision", "nlp": "team-nlp"}
    assert outputs["grafanaAdminPassword"][1] is True  # secret
    assert outputs["nodePools"][0][0]["name"] == "default"


def test_disabling_monitoring_removes_it_and_the_privileged_namespace():
    result = engine.run("t", {"mlcluster:profile": "local", "mlcluster:kubeContext": "x"}, [], "test",
                        sets=("addons.monitoring.enabled=false",))
    types = {r.type for r in result.resources}
    assert "mlcluster:addons:Monitoring" not in types
    assert not [r for r in result.resources if r.name == "ns-node-agents"]


def test_install_order_respects_requires(monkeypatch):
    class Fake:
        def __init__(self, key, requires=()):
            self.key, self.requires = key, requires

    fake = {"a": Fake("a", ("c",)), "b": Fake("b"), "c": Fake("c", ("b",))}
    monkeypatch.setattr("mlcluster.addons.registry", lambda: fake)
    assert install_order(["a", "b", "c"]) == ["b", "c", "a"]
    assert install_order(["a"]) == ["a"]


def test_registry_discovers_addon_modules():
    assert "monitoring" in registry()
    assert registry()["monitoring"].type_name == "Monitoring"
