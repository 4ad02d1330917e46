"""The alert rules mlcluster ships, as PrometheusRule objects: GPU health and cost, and the platform signals
ML teams feel. kube-prometheus-stack's own default rules stay on beside them; these add what it lacks (GPU
errors, idle-but-allocated GPUs, GPU work stuck pending) or scope it to what matters here (GPU nodes, team
volumes).

Every expression is checked by `promtool check rules` and against the metrics the exporters expose
(metrics.py). Labels: `severity` (critical pages, warning tickets) and `component`; alerts about a team's
pods or volumes keep their `namespace`, so Alertmanager can route them to that team.
"""

from __future__ import annotations

from typing import Any

from mlcluster.addons.monitoring.metrics import GPU_RESOURCE_LABEL
from mlcluster.components import k8s as objects

# XIDs that mean the GPU or its memory is failing, not the application (NVIDIA's XID catalogue): double-bit
# ECC (48), row-remap failure (64), GPU fallen off the bus (79), uncontained ECC (95), GSP errors (119, 120).
FATAL_XIDS = (48, 64, 79, 95, 119, 120)
IDLE_PERCENT = 5  # a GPU busier than this at some point in the hour is not idle


def _rule(alert: str, expr: str, severity: str, summary: str, description: str, for_: str | None = None,
          component: str = "gpu") -> dict[str, Any]:
    rule: dict[str, Any] = {"alert": alert, "expr": expr,
                            "labels": {"severity": severity, "component": component},
                            "annotations": {"summary": summary, "description": description}}
    if for_:
        rule["for"] = for_
    return rule


def gpu_rules() -> list[dict[str, Any]]:
    """Rules on DCGM metrics: need the GPU add-on's exporter."""
    fatal = " or ".join(f"DCGM_FI_DEV_XID_ERRORS == {x}" for x in FATAL_XIDS)
    gpu = "Hostname, gpu, modelName"
    return [
        _rule("GpuFatalXidError", fatal, "critical", "GPU {{ $labels.gpu }} on {{ $labels.Hostname }} reports XID "
              "{{ $value }}", "A hardware XID (ECC, row remap, off the bus or GSP): drain the node and reset or "
              "replace the GPU; jobs on it will fail."),
        _rule("GpuXidError", f"DCGM_FI_DEV_XID_ERRORS != 0 unless ({fatal})", "warning",
              "GPU {{ $labels.gpu }} on {{ $labels.Hostname }} reported XID {{ $value }}",
              "Usually an application fault (e.g. XID 13/31/43); repeated XIDs on one GPU point at the hardware.",
              for_="5m"),
        _rule("GpuDoubleBitEccErrors", f"sum by ({gpu}) (increase(DCGM_FI_DEV_ECC_DBE_VOL_TOTAL[10m])) > 0",
              "critical", "Uncorrectable ECC errors on GPU {{ $labels.gpu }} ({{ $labels.Hostname }})",
              "Double-bit ECC errors corrupt results: drain the node; the GPU needs a reset (row remap) or RMA."),
        _rule("GpuRowRemapFailed", "DCGM_FI_DEV_ROW_REMAP_FAILURE > 0", "critical",
              "GPU {{ $labels.gpu }} on {{ $labels.Hostname }} could not remap failing memory rows",
              "The GPU has run out of spare rows: replace it."),
        _rule("GpuTemperatureHigh", "DCGM_FI_DEV_GPU_TEMP > 85", "warning",
              "GPU {{ $labels.gpu }} on {{ $labels.Hostname }} at {{ $value }}°C",
              "Above 85°C for 10 minutes: the GPU throttles. Check cooling and fan/airflow of the node.",
              for_="10m"),
        _rule("GpuMemoryNearlyFull",
              "DCGM_FI_DEV_FB_USED / (DCGM_FI_DEV_FB_USED + DCGM_FI_DEV_FB_FREE) > 0.95", "warning",
              "GPU {{ $labels.gpu }} on {{ $labels.Hostname }} ({{ $labels.namespace }}/{{ $labels.pod }}) has "
              "over 95% of its memory in use",
              "The next allocation may fail with CUDA out of memory: lower the batch size or use a larger tier.",
              for_="15m"),
        # Graphics-engine activity rather than GPU_UTIL: DCGM reports it for MIG instances too.
        _rule("GpuAllocatedButIdle",
              f'max by (namespace, pod, {gpu}) (max_over_time(DCGM_FI_PROF_GR_ENGINE_ACTIVE{{pod!=""}}[1h])) '
              f"< {IDLE_PERCENT / 100}", "warning",
              "{{ $labels.namespace }}/{{ $labels.pod }} holds a GPU it has not used for an hour",
              f"GPU utilisation stayed under {IDLE_PERCENT}% for an hour while the pod kept the GPU: stop the "
              "notebook or job so the queue can admit someone else (this is the cost alert).", for_="10m"),
    ]


def platform_rules(gpu_pools: bool, team_namespace_pattern: str | None) -> list[dict[str, Any]]:
    """Rules on kube-state-metrics and kubelet metrics: GPU work stuck, GPU nodes down, team volumes full."""
    rules: list[dict[str, Any]] = []
    if gpu_pools:
        rules += [
            _rule("GpuPodPending",
                  'max by (namespace, pod) (kube_pod_status_phase{phase="Pending"} == 1) and on (namespace, pod) '
                  f'sum by (namespace, pod) (kube_pod_container_resource_requests{{resource="{GPU_RESOURCE_LABEL}"}}) '
                  "> 0", "warning", "GPU pod {{ $labels.namespace }}/{{ $labels.pod }} pending for 15 minutes",
                  "Admitted but not scheduled: no GPU node fits (pool at max size, taint/toleration or selector "
                  "mismatch, or the autoscaler cannot get capacity). `kubectl describe pod` says which.",
                  for_="15m", component="scheduling"),
            _rule("GpuNodeNotReady",
                  'kube_node_status_condition{condition="Ready",status="true"} == 0 and on (node) '
                  f'kube_node_status_capacity{{resource="{GPU_RESOURCE_LABEL}"}} > 0', "critical",
                  "GPU node {{ $labels.node }} is not Ready",
                  "Its GPUs are out of the pool and the jobs on it are stuck or lost.", for_="5m",
                  component="nodes"),
        ]
    if team_namespace_pattern:
        rules.append(_rule(
            "TeamVolumeNearlyFull",
            f'kubelet_volume_stats_used_bytes{{namespace=~"{team_namespace_pattern}"}} / '
            f'kubelet_volume_stats_capacity_bytes{{namespace=~"{team_namespace_pattern}"}} > 0.9', "warning",
            "Volume {{ $labels.persistentvolumeclaim }} of {{ $labels.namespace }} is over 90% full",
            "Notebooks and jobs writing to it will fail soon: clean up or ask for a bigger volume.", for_="15m",
            component="storage"))
    return rules


def prometheus_rule(name: str, namespace: str, groups: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
            "metadata": objects.metadata(name, namespace),
            "spec": {"groups": [{"name": group, "rules": rules} for group, rules in groups.items() if rules]}}
