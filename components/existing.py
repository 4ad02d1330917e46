"""Substrate `existing`: a cluster that already runs; the toolkit only adds the platform on top.

The cluster is reached through a kubeconfig held as a Pulumi secret (`mlcluster:kubeconfig`) or a context
of the user's kubeconfig file (`mlcluster:kubeContext`). One of them is required: the provider is never
left to pick up whatever kubeconfig happens to be active.
"""

from __future__ import annotations

from mlcluster.components.cluster import ClusterHandle, PoolFacts
from mlcluster.deferred import Component, k8s, pulumi
from mlcluster.profiles.model import ProfileBase
from mlcluster.stackconfig import StackSettings


class ExistingCluster(Component):
    """Wraps the user's cluster in a `ClusterHandle`; creates only the Kubernetes provider."""

    def __init__(self, name: str, profile: ProfileBase, stack: StackSettings,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlcluster:cluster:Existing", name, None, opts)
        substrate = profile.substrate
        provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=stack.kubeconfig,
            context=stack.kube_context,
            enable_server_side_apply=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.handle = ClusterHandle(
            name=name,
            substrate="existing",
            kubernetes_version=profile.kubernetes.version,
            provider=provider,
            kubeconfig=stack.kubeconfig,
            endpoint=None,
            node_pools=tuple(PoolFacts.from_pool(p) for p in profile.node_pools),
            storage_class=substrate.storage_class,
            user_data_storage_class=substrate.storage_class,
            portable_storage_class=substrate.storage_class,  # your cluster's class: mlcluster cannot tell
            facts={"access": f"kube context `{stack.kube_context}`" if stack.kube_context else "kubeconfig (secret)"},
        )
        self.register_outputs({"substrate": "existing"})
