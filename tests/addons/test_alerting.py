"""Alert rules, dashboards and receivers: every expression parses (promtool), uses only metrics the exporters
expose, and receiver URLs stay secret."""

from __future__ import annotations

import functools
import json

import pytest
import yaml

from mlcluster.addons.gpu.config import dcgm_fields
from mlcluster.addons.monitoring import dashboards
from mlcluster.addons.monitoring.metrics import known_metrics
from mlcluster.errors import ConfigError
from mlcluster.render import engine, render
from tests.conftest import rendered_profile, rendered_stack
from tests.promql import as_recording_rules, check_rules, metric_names
from tests.upstream import validate_custom_resource

RENDERS = {"local": lambda: rendered_profile("local"), "aws-gpu": lambda: rendered_profile("aws-gpu"),
           "lab": lambda: rendered_stack("lab"), "aws-dev": lambda: rendered_profile("aws-dev")}
RECEIVERS = ('addons.monitoring.receivers=[{name: oncall, kind: pagerduty, severities: [critical]}, '
             '{name: ml-platform, kind: slack, channel: "#ml-platform"}]')


def rule_file(rendered):
    return yaml.safe_load(rendered.files["manifests/monitoring/prometheusrule-mlcluster.yaml"])


def boards(rendered):
    return {p: json.loads(next(iter(yaml.safe_load(t)["data"].values())))
            for p, t in rendered.files.items() if "/configmap-dashboard-" in p}


def test_metric_name_extraction():
    expr = ('max by (namespace, pod) (kube_pod_status_phase{phase="Pending"} == 1) and on (namespace, pod) '
            'sum(rate(DCGM_FI_DEV_XID_ERRORS{pod!=""}[5m])) * on (node) group_left () max by (node) (x_total)')
    assert metric_names(expr) == {"kube_pod_status_phase", "DCGM_FI_DEV_XID_ERRORS", "x_total"}


@pytest.mark.parametrize("name", sorted(RENDERS))
def test_rules_parse_validate_and_use_exported_metrics(name, tmp_path):
    rule = rule_file(RENDERS[name]())
    validate_custom_resource(rule)
    check_rules(rule["spec"]["groups"], tmp_path)
    for group in rule["spec"]["groups"]:
        for r in group["rules"]:
            assert metric_names(r["expr"]) <= known_metrics(), (r["alert"], metric_names(r["expr"]) - known_metrics())
            assert r["labels"]["severity"] in ("critical", "warning") and r["annotations"]["summary"]


def test_the_alerts_the_issue_asks_for():
    gpu = {r["alert"] for g in rule_file(rendered_profile("aws-gpu"))["spec"]["groups"] for r in g["rules"]}
    assert {"GpuFatalXidError", "GpuXidError", "GpuDoubleBitEccErrors", "GpuTemperatureHigh", "GpuMemoryNearlyFull",
            "GpuAllocatedButIdle", "GpuPodPending", "GpuNodeNotReady", "TeamVolumeNearlyFull"} <= gpu
    cpu_only = {r["alert"] for g in rule_file(rendered_profile("local"))["spec"]["groups"] for r in g["rules"]}
    assert cpu_only == {"TeamVolumeNearlyFull"}  # no GPUs, no DCGM: no GPU rules that could never fire


def test_idle_and_pending_thresholds():
    rules = {r["alert"]: r for g in rule_file(rendered_profile("aws-gpu"))["spec"]["groups"] for r in g["rules"]}
    assert "[1h]" in rules["GpuAllocatedButIdle"]["expr"] and 'pod!=""' in rules["GpuAllocatedButIdle"]["expr"]
    assert rules["GpuPodPending"]["for"] == "15m"
    assert 'resource="nvidia_com_gpu"' in rules["GpuPodPending"]["expr"]


@pytest.mark.parametrize("name", ["aws-gpu", "lab"])
def test_dashboards_are_valid_and_query_exported_metrics(name, tmp_path):
    found = boards(RENDERS[name]())
    assert set(found) == {"manifests/monitoring/configmap-dashboard-gpu-fleet.yaml",
                          "manifests/monitoring/configmap-dashboard-gpu-teams.yaml"}
    exprs = []
    for board in found.values():
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)) and board["uid"].startswith("mlcluster-")
        assert board["templating"]["list"][0]["type"] == "datasource"
        for query in dashboards.queries(board):
            assert metric_names(query) <= known_metrics(), (board["uid"], metric_names(query) - known_metrics())
            exprs.append(query)
    check_rules(as_recording_rules(exprs), tmp_path)
    used = set().union(*(metric_names(e) for e in exprs))
    assert {"DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_POWER_USAGE", "DCGM_FI_DEV_GPU_TEMP",
            "kube_pod_container_resource_requests"} <= used
    assert used & set(dcgm_fields())


def test_dashboards_are_labelled_for_the_grafana_sidecar():
    r = rendered_profile("aws-gpu")
    for path in boards(r):
        assert yaml.safe_load(r.files[path])["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert not boards(rendered_profile("local"))  # no GPU metrics, no GPU dashboards


@functools.cache
def with_receivers():
    return render(profile="aws-gpu", sets=(RECEIVERS,))


def test_receivers_route_by_severity_and_read_urls_from_mounted_files():
    r = with_receivers()
    values = yaml.safe_load(r.files["helm/kube-prometheus-stack.yaml"])["values"]["alertmanager"]
    config = values["config"]
    assert values["alertmanagerSpec"]["secrets"] == ["alertmanager-receivers"]
    receivers = {x["name"]: x for x in config["receivers"]}
    assert receivers["oncall"]["pagerduty_configs"][0]["routing_key_file"] == \
        "/etc/alertmanager/secrets/alertmanager-receivers/oncall"
    slack = receivers["ml-platform"]["slack_configs"][0]
    assert slack["api_url_file"].endswith("/ml-platform") and slack["channel"] == "#ml-platform"
    routes = {x["receiver"]: x for x in config["route"]["routes"]}
    assert routes["oncall"]["matchers"] == ['severity =~ "critical"'] and routes["oncall"]["continue"] is True
    # On eks the URLs travel through Secrets Manager; the synced secret keeps only the names.
    assert "manifests/monitoring/externalsecret-alertmanager-receivers.yaml" in r.files
    assert "mlcluster:alertReceivers={\"ml-platform\": \"[secret]\", \"oncall\": \"[secret]\"}" in r.files["SUMMARY.md"]


def test_receiver_urls_never_reach_values_or_the_render(tmp_path):
    url = "https://hooks.slack.com/services/T000/B000/very-secret-token"
    config = {"mlcluster:profile": "local", "mlcluster:kubeContext": "kind",
              "mlcluster:alertReceivers": json.dumps({"ml-platform": url, "oncall": "pd-routing-key-42"})}
    from mlcluster.render import writer

    result = engine.run("t", config, ["mlcluster:alertReceivers"], "stacks/Pulumi.t.yaml", sets=(RECEIVERS,))
    files = writer.build_tree(result, [])
    text = "\n".join(files.values())
    assert url not in text and "pd-routing-key-42" not in text
    secret = yaml.safe_load(files["manifests/monitoring/secret-alertmanager-receivers.yaml"])
    assert secret["stringData"] == {"ml-platform": "[secret]", "oncall": "[secret]"}


def test_receivers_need_their_secret_in_the_stack():
    base = {"mlcluster:profile": "local", "mlcluster:kubeContext": "kind"}
    with pytest.raises(ConfigError) as err:
        engine.run("t", base, [], "stacks/Pulumi.t.yaml", sets=(RECEIVERS,))
    (problem,) = err.value.problems
    assert problem.field == "mlcluster:alertReceivers" and "--secret --path" in problem.allowed
    with pytest.raises(ConfigError) as err:
        engine.run("t", {**base, "mlcluster:alertReceivers": json.dumps({"oncall": "k"})},
                   ["mlcluster:alertReceivers"], "stacks/Pulumi.t.yaml", sets=(RECEIVERS,))
    assert "ml-platform" in err.value.problems[0].allowed


def test_plain_text_receiver_urls_are_refused_in_stack_files(tmp_path):
    from mlcluster.stackconfig import read_stack_file

    stack = tmp_path / "Pulumi.x.yaml"
    stack.write_text("config:\n  mlcluster:alertReceivers:\n    oncall: https://example.org/hook\n")
    with pytest.raises(ConfigError) as err:
        read_stack_file(stack, "stacks/Pulumi.x.yaml")
    assert "--secret" in err.value.problems[0].allowed
