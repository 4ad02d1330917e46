"""The metric names alerts and dashboards may use, by the exporter that exposes them.

An expression that names a metric nobody exports never fires and a panel that does stays empty, silently.
Tests parse every expression the toolkit writes and check each metric name against this list. The DCGM
names are the counters the GPU add-on configures (addons/gpu/dcgm-metrics.csv, itself checked against the
exporter's documented fields); the others are what the pinned kube-prometheus-stack's kube-state-metrics
(v2) and the kubelet expose, and what OpenCost exports.
"""

from __future__ import annotations

from mlcluster.addons.gpu.config import dcgm_fields

# kube-state-metrics v2 (resource names are sanitised: nvidia.com/gpu → nvidia_com_gpu).
KUBE_STATE_METRICS = frozenset({
    "kube_pod_status_phase",
    "kube_pod_container_resource_requests",
    "kube_node_status_condition",
    "kube_node_status_capacity",
    "kube_node_status_allocatable",
    "kube_resourcequota",
})
# The kubelet's volume statistics (scraped by kube-prometheus-stack's kubelet ServiceMonitor).
KUBELET = frozenset({
    "kubelet_volume_stats_used_bytes",
    "kubelet_volume_stats_capacity_bytes",
})
# OpenCost's cost-model exporter.
OPENCOST = frozenset({
    "node_gpu_hourly_cost",
    "node_cpu_hourly_cost",
    "node_ram_hourly_cost",
    "container_gpu_allocation",
    "container_cpu_allocation",
    "container_memory_allocation_bytes",
})

GPU_RESOURCE_LABEL = "nvidia_com_gpu"  # `resource` label value of nvidia.com/gpu in kube-state-metrics


def known_metrics() -> frozenset[str]:
    return frozenset(dcgm_fields()) | KUBE_STATE_METRICS | KUBELET | OPENCOST
