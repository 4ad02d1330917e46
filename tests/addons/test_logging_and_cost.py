"""Logging (Loki + Fluent Bit) and cost (OpenCost): wired to each other and to the platform's Prometheus.
(Their values are checked against the charts with every other release in tests/addons/test_chart_values.py.)"""

from __future__ import annotations

import json

import pytest
import yaml

from mlcluster.errors import ConfigError
from mlcluster.profiles.effective import load_profile
from tests.conftest import rendered_profile, rendered_stack


def release(rendered, name):
    return yaml.safe_load(rendered.files[f"helm/{name}.yaml"])


def test_loki_keeps_logs_for_the_retention_on_a_volume():
    values = release(rendered_profile("aws-gpu"), "loki")["values"]
    assert values["deploymentMode"] == "Monolithic"
    assert values["loki"]["limits_config"]["retention_period"] == "720h"  # 30 days
    assert values["loki"]["compactor"]["retention_enabled"] is True
    assert values["singleBinary"]["persistence"] == {"enabled": True, "size": "200Gi", "storageClass": "gp3"}
    assert values["gateway"]["enabled"] is False and values["chunksCache"]["enabled"] is False


def test_fluent_bit_reads_every_node_and_ships_to_loki():
    r = rendered_profile("aws-gpu")
    bit = release(r, "fluent-bit")
    assert bit["namespace"] == "node-agents"  # host paths: the privileged namespace
    assert bit["values"]["tolerations"] == [{"operator": "Exists"}]
    output = bit["values"]["config"]["outputs"]
    assert "Name loki" in output and "Host loki.logging.svc.cluster.local" in output and "Port 3100" in output
    source = yaml.safe_load(r.files["manifests/monitoring/configmap-datasource-loki.yaml"])
    assert source["metadata"]["labels"]["grafana_datasource"] == "1"
    (datasource,) = yaml.safe_load(source["data"]["loki.yaml"])["datasources"]
    assert datasource["url"] == "http://loki.logging.svc.cluster.local:3100" and datasource["type"] == "loki"


def test_opencost_reads_the_platform_prometheus_and_prices_by_substrate():
    monitoring = release(rendered_profile("aws-gpu"), "kube-prometheus-stack")["values"]
    eks = release(rendered_profile("aws-gpu"), "opencost")["values"]["opencost"]
    internal = eks["prometheus"]["internal"]
    assert (internal["serviceName"], internal["namespaceName"], internal["port"]) == (
        f"{monitoring['fullnameOverride']}-prometheus", "monitoring", 9090)
    assert "customPricing" not in eks  # AWS public prices
    onprem = release(rendered_stack("lab"), "opencost")["values"]["opencost"]
    assert onprem["customPricing"]["enabled"] is True and onprem["customPricing"]["costModel"]["GPU"] == 1.8
    assert onprem["metrics"]["serviceMonitor"]["enabled"] is True


def test_team_dashboard_shows_spend_only_with_opencost():
    def titles(rendered):
        text = rendered.files["manifests/monitoring/configmap-dashboard-gpu-teams.yaml"]
        board = json.loads(next(iter(yaml.safe_load(text)["data"].values())))
        return {p["title"] for p in board["panels"]}

    assert "GPU spend by team (per hour)" in titles(rendered_profile("aws-gpu"))
    assert not any("spend" in t for t in titles(rendered_profile("aws-dev")))


def test_logging_and_cost_need_monitoring():
    with pytest.raises(ConfigError) as err:
        load_profile("aws-gpu", sets=("addons.monitoring.enabled=false",))
    fields = {p.field for p in err.value.problems}
    assert {"addons.logging.enabled", "addons.cost.enabled"} <= fields
