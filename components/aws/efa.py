"""The EFA device plugin: offers a node's Elastic Fabric Adapter interfaces to pods as `vpc.amazonaws.com/efa`,
so multi-node training on p4d/p5-class pools gets RDMA (NCCL over libfabric) instead of TCP. A DaemonSet on
the EFA pools only (they carry `vpc.amazonaws.com/efa.present`), tolerating the GPU taint. Written as plain
objects (the eks-charts chart has no upstream copy to pin against here); image as AWS publishes it per region.
"""

from __future__ import annotations

from typing import Any

from mlcluster.components import k8s as objects
from mlcluster.components.cluster import EFA_LABEL, GPU_TAINT_KEY

NAME = "aws-efa-k8s-device-plugin"
NAMESPACE = "kube-system"
VERSION = "v0.5.8"


def image(region: str) -> str:
    return f"602401143452.dkr.ecr.{region}.amazonaws.com/eks/{NAME}:{VERSION}"


def manifest(region: str) -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": NAME}
    host_path = lambda name, path: {"name": name, "hostPath": {"path": path}}  # noqa: E731
    return {
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": objects.metadata(NAME, NAMESPACE, labels),
        "spec": {
            "selector": {"matchLabels": labels},
            "updateStrategy": {"type": "RollingUpdate"},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "priorityClassName": "system-node-critical",
                    "hostNetwork": True,
                    "nodeSelector": {EFA_LABEL: "true"},
                    "tolerations": [{"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"},
                                    {"key": "CriticalAddonsOnly", "operator": "Exists"}],
                    "containers": [{
                        "name": NAME, "image": image(region),
                        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
                        "resources": {"requests": {"cpu": "10m", "memory": "20Mi"},
                                      "limits": {"cpu": "100m", "memory": "64Mi"}},
                        "volumeMounts": [{"name": "device-plugin", "mountPath": "/var/lib/kubelet/device-plugins"},
                                         {"name": "infiniband", "mountPath": "/dev/infiniband"}],
                    }],
                    "volumes": [host_path("device-plugin", "/var/lib/kubelet/device-plugins"),
                                host_path("infiniband", "/dev/infiniband")],
                },
            },
        },
    }
