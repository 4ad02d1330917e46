"""Monitoring add-on: values keys exist upstream, no secret in values, storage and retention from the profile."""

from __future__ import annotations

import jinja2
import pytest
import yaml

from mlcluster.addons.base import render_values
from tests.conftest import rendered_profile, rendered_stack
from tests.upstream import unknown_value_keys


def values(rendered):
    return yaml.safe_load(rendered.files["helm/kube-prometheus-stack.yaml"])["values"]


@pytest.mark.parametrize("rendered", [lambda: rendered_profile("local"), lambda: rendered_stack("shared")],
                         ids=["local", "shared"])
def test_every_value_key_exists_in_the_chart(rendered):
    assert unknown_value_keys("kube-prometheus-stack", values(rendered())) == []


def test_key_checker_catches_a_typo():
    typo = {"grafana": {"persistance": {"enabled": True}}, "prometheus": {"prometheusSpec": {"retension": "1d"}}}
    assert unknown_value_keys("kube-prometheus-stack", typo) == [
        "grafana.persistance", "prometheus.prometheusSpec.retension"]


def test_profile_settings_reach_the_values():
    lab = values(rendered_stack("shared"))
    spec = lab["prometheus"]["prometheusSpec"]
    assert spec["retention"] == "30d"
    assert spec["storageSpec"]["volumeClaimTemplate"]["spec"]["resources"]["requests"]["storage"] == "100Gi"
    assert spec["storageSpec"]["volumeClaimTemplate"]["spec"]["storageClassName"] == "standard-retain"
    local = values(rendered_profile("local"))
    assert "storageClassName" not in local["prometheus"]["prometheusSpec"]["storageSpec"]["volumeClaimTemplate"]["spec"]


def test_grafana_password_never_in_values():
    v = values(rendered_profile("local"))
    assert "adminPassword" not in v["grafana"]
    assert v["grafana"]["admin"] == {"existingSecret": "grafana-admin", "userKey": "admin-user",
                                     "passwordKey": "admin-password"}


def test_node_exporter_runs_in_the_privileged_namespace_only():
    r = rendered_profile("local")
    assert values(r)["prometheus-node-exporter"]["namespaceOverride"] == "node-agents"
    privileged = [p for p, t in r.files.items() if p.startswith("manifests/_cluster/namespace-")
                  and yaml.safe_load(t)["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"]
    assert privileged == ["manifests/_cluster/namespace-node-agents.yaml"]


def test_workloads_have_requests_and_limits():
    v = values(rendered_profile("local"))
    for path in (("prometheusOperator",), ("prometheus", "prometheusSpec"), ("alertmanager", "alertmanagerSpec"),
                 ("grafana",), ("kube-state-metrics",), ("prometheus-node-exporter",)):
        node = v
        for key in path:
            node = node[key]
        assert node["resources"]["requests"] and node["resources"]["limits"], path


def test_template_typo_fails_the_render_not_the_cluster():
    with pytest.raises(jinja2.UndefinedError):
        render_values("monitoring/values.yaml.j2", settings=object(), cluster=object(), profile=object())


def test_grafana_loads_dashboards_from_the_platforms_namespace_only():
    """17.7: kube-prometheus-stack sets the Grafana sidecar's searchNamespace to ALL (its values.yaml), so a team's
    ConfigMap labelled grafana_dashboard became a platform dashboard."""
    for name in ("aws-gpu", "onprem-gpu"):
        r = rendered_profile(name)
        grafana = yaml.safe_load(r.files["helm/kube-prometheus-stack.yaml"])["values"]["grafana"]
        assert grafana["sidecar"]["dashboards"]["searchNamespace"] == "monitoring"
        dashboards = [yaml.safe_load(t) for p, t in r.files.items() if p.startswith("manifests/")
                      and "grafana_dashboard" in (yaml.safe_load(t)["metadata"].get("labels") or {})]
        assert dashboards and {d["metadata"]["namespace"] for d in dashboards} == {"monitoring"}
