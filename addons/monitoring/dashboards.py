"""Grafana dashboards mlcluster writes itself: the GPU fleet, and GPUs by team (allocation against use, and
spend when OpenCost runs). Each is a ConfigMap labelled for the Grafana sidecar of kube-prometheus-stack.

Queries only use metrics the exporters expose (checked against metrics.py, and parsed by promtool in the
tests). `namespace` on DCGM series is the workload's namespace (the GPU add-on keeps it), so team
namespaces tell teams apart.
"""

from __future__ import annotations

import json
from typing import Any

from mlcluster.addons.monitoring.metrics import GPU_RESOURCE_LABEL
from mlcluster.components import k8s as objects

DASHBOARD_LABEL = {"grafana_dashboard": "1"}  # the sidecar's default label and value
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
RUNNING = '(kube_pod_status_phase{phase="Running"} == 1)'


def allocated(selector: str = "") -> str:
    """GPUs requested by running pods (completed pods keep their request series, so join on Running)."""
    extra = f", {selector}" if selector else ""
    return (f'kube_pod_container_resource_requests{{resource="{GPU_RESOURCE_LABEL}"{extra}}} '
            f"* on (namespace, pod) group_left () {RUNNING}")


def _target(expr: str, legend: str, ref: str) -> dict[str, Any]:
    return {"datasource": DATASOURCE, "expr": expr, "legendFormat": legend, "refId": ref}


def _panel(kind: str, title: str, targets: list[tuple[str, str]], grid: tuple[int, int, int, int],
           unit: str = "short", description: str = "") -> dict[str, Any]:
    x, y, w, h = grid
    return {
        "type": kind, "title": title, "description": description, "datasource": DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [_target(expr, legend, chr(ord("A") + i)) for i, (expr, legend) in enumerate(targets)],
    }


def _dashboard(uid: str, title: str, description: str, panels: list[dict[str, Any]]) -> dict[str, Any]:
    for number, panel in enumerate(panels, start=1):
        panel["id"] = number
    return {
        "uid": uid, "title": title, "description": description, "tags": ["mlcluster", "gpu"],
        "schemaVersion": 39, "version": 1, "editable": False, "timezone": "browser", "refresh": "1m",
        "time": {"from": "now-24h", "to": "now"},
        "templating": {"list": [{"name": "datasource", "label": "Data source", "type": "datasource",
                                 "query": "prometheus", "current": {"text": "Prometheus", "value": "prometheus"}}]},
        "panels": panels,
    }


def gpu_fleet() -> dict[str, Any]:
    memory = "100 * DCGM_FI_DEV_FB_USED / (DCGM_FI_DEV_FB_USED + DCGM_FI_DEV_FB_FREE)"
    return _dashboard("mlcluster-gpu-fleet", "mlcluster / GPU fleet",
                      "Every GPU: utilisation, memory, power, temperature and errors.", [
        _panel("stat", "GPUs allocated", [(f"sum({allocated()})", "allocated")], (0, 0, 6, 4)),
        _panel("stat", "GPUs schedulable", [(f'sum(kube_node_status_allocatable{{resource="{GPU_RESOURCE_LABEL}"}})',
                                            "schedulable")], (6, 0, 6, 4)),
        _panel("stat", "Mean GPU utilisation", [("avg(DCGM_FI_DEV_GPU_UTIL)", "utilisation")], (12, 0, 6, 4),
               "percent"),
        _panel("stat", "Power draw", [("sum(DCGM_FI_DEV_POWER_USAGE)", "power")], (18, 0, 6, 4), "watt"),
        _panel("timeseries", "GPU utilisation by node", [("avg by (Hostname) (DCGM_FI_DEV_GPU_UTIL)", "{{Hostname}}")],
               (0, 4, 12, 8), "percent"),
        _panel("timeseries", "Tensor core activity by node",
               [("avg by (Hostname) (DCGM_FI_PROF_PIPE_TENSOR_ACTIVE)", "{{Hostname}}")], (12, 4, 12, 8),
               "percentunit", "Share of cycles the tensor cores are busy: low values on training nodes mean "
                              "the GPUs wait on data or communication."),
        _panel("timeseries", "GPU memory used", [(memory, "{{Hostname}} GPU {{gpu}}")], (0, 12, 12, 8), "percent"),
        _panel("timeseries", "Power draw by node", [("sum by (Hostname) (DCGM_FI_DEV_POWER_USAGE)", "{{Hostname}}")],
               (12, 12, 12, 8), "watt"),
        _panel("timeseries", "Hottest GPU by node", [("max by (Hostname) (DCGM_FI_DEV_GPU_TEMP)", "{{Hostname}}")],
               (0, 20, 12, 8), "celsius"),
        _panel("table", "GPU errors", [
            ("DCGM_FI_DEV_XID_ERRORS != 0", "XID {{Hostname}} GPU {{gpu}}"),
            ("increase(DCGM_FI_DEV_ECC_DBE_VOL_TOTAL[1d]) > 0", "ECC DBE {{Hostname}} GPU {{gpu}}"),
            ("DCGM_FI_DEV_ROW_REMAP_FAILURE > 0", "row remap failed {{Hostname}} GPU {{gpu}}"),
        ], (12, 20, 12, 8), description="Last XID per GPU, double-bit ECC errors in the last day, row-remap "
                                        "failures. Anything here deserves a look."),
    ])


def gpu_by_team(team_pattern: str, cost: bool) -> dict[str, Any]:
    team = f'namespace=~"{team_pattern}"'
    busy = f'sum by (namespace) (DCGM_FI_PROF_GR_ENGINE_ACTIVE{{{team}, pod!=""}})'
    alloc = f"sum by (namespace) ({allocated(team)})"
    panels = [
        _panel("timeseries", "GPUs allocated by team", [(alloc, "{{namespace}}")], (0, 0, 12, 8)),
        _panel("timeseries", "GPUs busy by team", [(busy, "{{namespace}}")], (12, 0, 12, 8),
               description="Sum of graphics-engine activity of the team's GPUs: GPUs' worth of real work."),
        _panel("bargauge", "Use of allocated GPUs", [(f"{busy} / {alloc}", "{{namespace}}")], (0, 8, 12, 8),
               "percentunit", "Busy over allocated: low means GPUs held but idle (see the idle table)."),
        _panel("timeseries", "GPU quota used", [
            (f'kube_resourcequota{{resource="requests.nvidia.com/gpu", type="used", {team}}}', "{{namespace}} used"),
            (f'kube_resourcequota{{resource="requests.nvidia.com/gpu", type="hard", {team}}}', "{{namespace}} quota"),
        ], (12, 8, 12, 8)),
        _panel("table", "GPUs idle for an hour", [
            (f'max by (namespace, pod) (max_over_time(DCGM_FI_PROF_GR_ENGINE_ACTIVE{{{team}, pod!=""}}[1h])) < 0.05',
             "{{namespace}}/{{pod}}")], (0, 16, 12, 8), "percentunit"),
        _panel("timeseries", "GPU memory by team", [(f"sum by (namespace) (DCGM_FI_DEV_FB_USED{{{team}}})",
                                                     "{{namespace}}")], (12, 16, 12, 8), "decmbytes"),
    ]
    if cost:
        hourly = (f"sum by (namespace) (container_gpu_allocation{{{team}}} * on (node) group_left () "
                  "max by (node) (node_gpu_hourly_cost))")
        panels.append(_panel("timeseries", "GPU spend by team (per hour)", [(hourly, "{{namespace}}")],
                             (0, 24, 12, 8), "currencyUSD", "OpenCost's GPU price times each team's GPU "
                                                            "allocation."))
        panels.append(_panel("stat", "GPU spend by team (last 30 days)",
                             [(f"sum by (namespace) (sum_over_time(({hourly})[30d:1h]))", "{{namespace}}")],
                             (12, 24, 12, 8), "currencyUSD"))
    return _dashboard("mlcluster-gpu-teams", "mlcluster / GPUs by team",
                      "Per team namespace: GPUs allocated, used, idle, quota" + (" and spend." if cost else "."),
                      panels)


def config_map(name: str, namespace: str, dashboard: dict[str, Any]) -> dict[str, Any]:
    meta = objects.metadata(f"dashboard-{name}", namespace, labels=dict(DASHBOARD_LABEL))
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta,
            "data": {f"{name}.json": json.dumps(dashboard, indent=2, sort_keys=True) + "\n"}}


def queries(dashboard: dict[str, Any]) -> list[str]:
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
