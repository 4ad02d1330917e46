"""Kubeflow Trainer (v2): TrainJob for distributed PyTorch (and DeepSpeed, JAX…), with the PyTorch
ClusterTrainingRuntime installed. TrainJobs go through the team's Kueue queue (the trainjob integration is on).

On pools with EFA (p4d/p5), multi-node jobs set the NCCL/libfabric environment shown in the README's example
(`FI_PROVIDER=efa`, `FI_EFA_USE_DEVICE_RDMA=1`) and request the EFA devices of the node.
"""

from __future__ import annotations

from typing import Any

from mlcluster.addons.base import Addon
from mlcluster.profiles.model import AddonSettings, DnsLabel


class TrainerSettings(AddonSettings):
    namespace: DnsLabel = "kubeflow-system"


class Trainer(Addon):
    key = "trainer"
    section = "ml"
    type_name = "Trainer"
    description = "Kubeflow Trainer: TrainJob for distributed PyTorch, with its JobSet controller, via Kueue."
    Settings = TrainerSettings
    installs = ("kubeflow-trainer",)

    def build(self) -> dict[str, Any]:
        settings: TrainerSettings = self.settings  # type: ignore[assignment]
        ns = self.namespace(settings.namespace)
        self.helm_release("kubeflow-trainer", "kubeflow-trainer", settings.namespace, self.values(), depends_on=[ns])
        return {"trainingRuntime": "torch-distributed"}


ADDON = Trainer
