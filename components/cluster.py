"""The cluster handle: the one seam between where the platform runs and what runs on it.

Substrates (existing, and later EKS and bare metal) return a `ClusterHandle`; add-ons and tenancy only
ever read the handle. They never ask which substrate they are on: they ask for the provider, a storage
class, the GPU pools, the namespace for host-level agents.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mlcluster.deferred import k8s, pulumi
from mlcluster.profiles.gpu_products import advertised_product, gpus_per_node
from mlcluster.profiles.model import NodePool

GPU_RESOURCE = "nvidia.com/gpu"
GPU_TAINT_KEY = "nvidia.com/gpu"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
GPU_COUNT_LABEL = "nvidia.com/gpu.count"
POOL_LABEL = "mlcluster.io/pool"
DEVICE_PLUGIN_CONFIG_LABEL = "nvidia.com/device-plugin.config"
MIG_CONFIG_LABEL = "nvidia.com/mig.config"
EFA_LABEL = "vpc.amazonaws.com/efa.present"  # the EFA device plugin runs where this is "true"
EFA_RESOURCE = "vpc.amazonaws.com/efa"  # the interfaces it offers pods

# Host-level agents (node-exporter now; GPU device plugin / operator later) need host namespaces and
# host paths. They share this one namespace, the only one labelled Pod Security `privileged`.
NODE_AGENTS_NAMESPACE = "node-agents"


@dataclass(frozen=True)
class PoolFacts:
    """A node pool as add-ons see it: how to select its nodes and what they carry."""

    name: str
    role: str
    min: int
    max: int
    gpu_product: str | None  # as GPU Feature Discovery advertises it (`…-SHARED`, `…-MIG-1g.10gb`)
    gpus_per_node: int  # schedulable `nvidia.com/gpu` per node (replicas and MIG instances count)
    labels: dict[str, str]
    taints: tuple[dict[str, str], ...]

    @property
    def is_gpu(self) -> bool:
        return self.gpu_product is not None

    @classmethod
    def from_pool(cls, pool: NodePool) -> PoolFacts:
        """Labels are set at node registration with the values GPU Feature Discovery will write later, so
        the pool is schedulable (and scales from zero) before discovery runs, and discovery agrees with us."""
        labels = {POOL_LABEL: pool.name, **pool.labels}
        taints = [t.model_dump() for t in pool.taints]
        product = advertised_product(pool)
        if pool.gpu is not None and product is not None:
            labels.setdefault(GPU_PRODUCT_LABEL, product)
            mig_single = pool.sharing.mode == "mig" and pool.sharing.mig_strategy == "single"
            labels.setdefault(GPU_COUNT_LABEL, str(gpus_per_node(pool) if mig_single else pool.gpu.count))
            labels.setdefault(DEVICE_PLUGIN_CONFIG_LABEL, pool.name)  # the device plugin's per-pool config
            if pool.sharing.mode == "mig" and pool.sharing.mig_layout:  # the MIG manager partitions by it
                labels.setdefault(MIG_CONFIG_LABEL, pool.sharing.mig_layout)
            if pool.efa:
                labels.setdefault(EFA_LABEL, "true")
            if not any(t["key"] == GPU_TAINT_KEY for t in taints):
                taints.append({"key": GPU_TAINT_KEY, "value": "true", "effect": "NoSchedule"})
        return cls(
            name=pool.name, role=pool.role, min=pool.min, max=pool.max,
            gpu_product=product,
            gpus_per_node=gpus_per_node(pool),
            labels=labels, taints=tuple(taints),
        )


@dataclass(frozen=True)
class AwsFacts:
    """What AWS-aware add-ons need to give a service account a role or use the artifacts bucket."""

    provider: pulumi.ProviderResource  # the regional AWS provider every AWS resource must use
    region: str
    account_id: str
    partition: str
    cluster_name: pulumi.Input[str]
    cluster_arn: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    artifacts_bucket: pulumi.Input[str] | None
    vpc_id: pulumi.Input[str] | None = None
    private_subnet_ids: tuple[pulumi.Input[str], ...] = ()
    vpc_cidr: str | None = None
    production: bool = False  # Multi-AZ databases, deletion protection


@dataclass(frozen=True)
class ClusterHandle:
    """What every add-on may rely on, whichever substrate made the cluster."""

    name: str
    substrate: str
    kubernetes_version: str
    provider: k8s.Provider
    kubeconfig: pulumi.Output[str] | None  # always a secret Output when present
    endpoint: pulumi.Input[str] | None
    node_pools: tuple[PoolFacts, ...]
    storage_class: str | None  # for platform data; None = the cluster's default class
    user_data_storage_class: str | None  # Retain class for notebooks, tracking, databases
    facts: dict[str, str] = field(default_factory=dict)  # substrate-specific facts for SUMMARY/outputs
    aws: AwsFacts | None = None  # set on eks: identity for service accounts, the artifacts bucket
    ready: tuple[pulumi.Resource, ...] = ()  # what add-ons wait for (nodes, CSI driver, storage classes)
    chart_repository: str | None = None  # air-gapped: one Helm repository serving every pinned chart
    # A Retain class whose volumes any node, in any zone, can mount (EFS, NFS, Longhorn): notebooks' home volumes,
    # which must follow a user from a CPU notebook to one on any GPU pool. None: the substrate has none.
    portable_storage_class: str | None = None
    # The cluster's own addresses (pods, services, nodes): team pods reach them only through front doors.
    private_cidrs: tuple[str, ...] = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10")
    # Where the API server listens (after kube-proxy's DNAT of the `kubernetes` Service): team pods that use it
    # (Argo's executor, Ray's autoscaler) reach it, with only the rights their service accounts have.
    api_endpoints: tuple[tuple[str, int], ...] = (("10.0.0.0/8", 443), ("10.0.0.0/8", 6443),
                                                  ("172.16.0.0/12", 443), ("172.16.0.0/12", 6443),
                                                  ("192.168.0.0/16", 443), ("192.168.0.0/16", 6443))

    def gpu_pools(self) -> tuple[PoolFacts, ...]:
        return tuple(p for p in self.node_pools if p.is_gpu)

    def opts(self, parent: pulumi.Resource, **kwargs) -> pulumi.ResourceOptions:
        """Options for a Kubernetes resource: parented, and on this cluster's provider — never a default one."""
        return pulumi.ResourceOptions(parent=parent, provider=self.provider, **kwargs)
