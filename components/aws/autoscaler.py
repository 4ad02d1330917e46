"""Cluster Autoscaler for the managed node groups: what makes `min: 0` pools scale up when pods need them and
back down when they are idle (Karpenter pools scale themselves).

It finds the groups by the tags EKS puts on every managed node group's Auto Scaling group
(`k8s.io/cluster-autoscaler/<cluster>: owned`) and reads labels and taints of an empty group from the EKS API
(`eks:DescribeNodegroup`), so a GPU pool at zero is still known to carry GPUs. Its Pod Identity role may
resize and terminate only in this cluster's groups. Written as plain objects (no chart): one Deployment with
RBAC, hardened, on the system pool. Kueue keeps queued jobs suspended, so only admitted work creates pods,
and only admitted work scales GPU nodes.

Long training pods should carry `cluster-autoscaler.kubernetes.io/safe-to-evict: "false"`, so a scale-down
never evicts them from an under-used node.
"""

from __future__ import annotations

from typing import Any

from mlcluster.components import k8s as objects
from mlcluster.components.aws.iam import ServiceAccountRole
from mlcluster.components.cluster import POOL_LABEL
from mlcluster.deferred import Component, pulumi
from mlcluster.profiles.model import NodePool

NAME = "cluster-autoscaler"
NAMESPACE = "kube-system"
IMAGE = "registry.k8s.io/autoscaling/cluster-autoscaler"
LABELS = {"app.kubernetes.io/name": NAME}


def image(kubernetes_version: str) -> str:
    """The autoscaler release for the cluster's minor (its minors track Kubernetes'), pinned."""
    return f"{IMAGE}:v{kubernetes_version}.0"


def autoscaled(pools: list[NodePool]) -> list[NodePool]:
    return [p for p in pools if p.provisioner == "managed" and p.min < p.max]


def policy_statements(cluster_name: str, region: str, account: str, partition: str) -> list[dict[str, Any]]:
    """The AWS-documented permissions, writes limited to this cluster's groups by their ownership tag."""
    return [
        {"Sid": "ResizeOwnGroups", "Effect": "Allow",
         "Action": ["autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"],
         "Resource": "*",
         "Condition": {"StringEquals": {f"aws:ResourceTag/k8s.io/cluster-autoscaler/{cluster_name}": "owned"}}},
        {"Sid": "DescribeGroupsAndTypes", "Effect": "Allow",
         "Action": ["autoscaling:DescribeAutoScalingGroups", "autoscaling:DescribeAutoScalingInstances",
                    "autoscaling:DescribeLaunchConfigurations", "autoscaling:DescribeScalingActivities",
                    "autoscaling:DescribeTags", "ec2:DescribeImages", "ec2:DescribeInstanceTypes",
                    "ec2:DescribeLaunchTemplateVersions", "ec2:GetInstanceTypesFromInstanceRequirements"],
         "Resource": "*"},
        {"Sid": "ReadOwnNodegroups", "Effect": "Allow", "Action": "eks:DescribeNodegroup",
         "Resource": f"arn:{partition}:eks:{region}:{account}:nodegroup/{cluster_name}/*/*"},
    ]


def _rules(*entries: tuple[list[str], list[str], list[str], list[str] | None]) -> list[dict[str, Any]]:
    rules = []
    for groups, resources, verbs, names in entries:
        rule: dict[str, Any] = {"apiGroups": groups, "resources": resources, "verbs": verbs}
        if names:
            rule["resourceNames"] = names
        rules.append(rule)
    return rules


def manifests(cluster_name: str, region: str, kubernetes_version: str, system_pool: str) -> list[dict[str, Any]]:
    read = ["get", "list", "watch"]
    cluster_role = _rules(
        ([""], ["events", "endpoints"], ["create", "patch"], None),
        ([""], ["pods/eviction"], ["create"], None),
        ([""], ["pods/status"], ["update"], None),
        ([""], ["endpoints"], ["get", "update"], [NAME]),
        ([""], ["nodes"], [*read, "update"], None),
        ([""], ["namespaces", "pods", "services", "replicationcontrollers", "persistentvolumeclaims",
                "persistentvolumes"], read, None),
        (["apps"], ["statefulsets", "replicasets", "daemonsets"], read, None),
        (["policy"], ["poddisruptionbudgets"], read, None),
        (["storage.k8s.io"], ["storageclasses", "csinodes", "csidrivers", "csistoragecapacities",
                              "volumeattachments"], read, None),
        (["resource.k8s.io"], ["resourceclaims", "resourceslices", "deviceclasses"], read, None),
        (["batch"], ["jobs"], [*read, "patch"], None),
        (["coordination.k8s.io"], ["leases"], ["create"], None),
        (["coordination.k8s.io"], ["leases"], ["get", "update"], [NAME]),
    )
    role = _rules(
        ([""], ["configmaps"], ["create", "list", "watch"], None),
        ([""], ["configmaps"], ["delete", "get", "update", "watch"], ["cluster-autoscaler-status"]),
    )
    subject = [{"kind": "ServiceAccount", "name": NAME, "namespace": NAMESPACE}]
    rbac = "rbac.authorization.k8s.io"
    container = {
        "name": NAME, "image": image(kubernetes_version),
        # Flags of the pinned release only (cluster-autoscaler/config/flags/flags.go; klog's -v/-stderrthreshold):
        # pflag exits on an unknown flag. The region is not a flag: the AWS SDK reads AWS_REGION.
        "command": ["./cluster-autoscaler", "--cloud-provider=aws",
                    f"--node-group-auto-discovery=asg:tag=k8s.io/cluster-autoscaler/enabled,"
                    f"k8s.io/cluster-autoscaler/{cluster_name}",
                    "--balance-similar-node-groups", "--expander=least-waste", "--skip-nodes-with-local-storage=false",
                    "--scale-down-unneeded-time=10m", "--stderrthreshold=info", "--v=2"],
        # Nodes' metadata service is out of reach (IMDSv2, hop limit 1), so the SDK cannot find the region there.
        "env": [{"name": "AWS_REGION", "value": region}],
        "resources": {"requests": {"cpu": "100m", "memory": "300Mi"}, "limits": {"cpu": "500m", "memory": "1Gi"}},
        "ports": [{"name": "metrics", "containerPort": 8085}],
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]}},
    }
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": objects.metadata(NAME, NAMESPACE, LABELS)},
        {"apiVersion": f"{rbac}/v1", "kind": "ClusterRole", "metadata": objects.metadata(NAME, labels=LABELS),
         "rules": cluster_role},
        {"apiVersion": f"{rbac}/v1", "kind": "ClusterRoleBinding", "metadata": objects.metadata(NAME, labels=LABELS),
         "roleRef": {"apiGroup": rbac, "kind": "ClusterRole", "name": NAME}, "subjects": subject},
        {"apiVersion": f"{rbac}/v1", "kind": "Role", "metadata": objects.metadata(NAME, NAMESPACE, LABELS),
         "rules": role},
        {"apiVersion": f"{rbac}/v1", "kind": "RoleBinding", "metadata": objects.metadata(NAME, NAMESPACE, LABELS),
         "roleRef": {"apiGroup": rbac, "kind": "Role", "name": NAME}, "subjects": subject},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": objects.metadata(NAME, NAMESPACE, LABELS),
         "spec": {
             "replicas": 1,
             "selector": {"matchLabels": LABELS},
             "template": {
                 "metadata": {"labels": LABELS},
                 "spec": {
                     "serviceAccountName": NAME,
                     "priorityClassName": "system-cluster-critical",
                     "nodeSelector": {POOL_LABEL: system_pool},
                     "securityContext": {"runAsNonRoot": True, "runAsUser": 65534, "runAsGroup": 65534,
                                         "seccompProfile": {"type": "RuntimeDefault"}},
                     "containers": [container],
                 },
             },
         }},
    ]


class ClusterAutoscaler(Component):
    def __init__(self, name: str, *, cluster: Any, cluster_name: str, region: str, account: str, partition: str,
                 kubernetes_version: str, system_pool: str, k8s_provider: pulumi.ProviderResource,
                 depends_on: list[pulumi.Resource], opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlcluster:aws:ClusterAutoscaler", name, None, opts)
        role = ServiceAccountRole(f"{name}", cluster_name=cluster.name, cluster_arn=cluster.arn, namespace=NAMESPACE,
                                  service_account=NAME,
                                  statements=policy_statements(cluster_name, region, account, partition),
                                  opts=pulumi.ResourceOptions(parent=self))
        created: list[pulumi.Resource] = []
        for manifest in manifests(cluster_name, region, kubernetes_version, system_pool):
            kind = manifest["kind"].lower()
            after = [*depends_on, role, *created] if kind == "deployment" else depends_on
            created.append(objects.apply(f"{name}-{kind}", manifest, k8s_provider,
                                         pulumi.ResourceOptions(parent=self, depends_on=after)))
        self.deployment = created[-1]
        self.register_outputs({"roleArn": role.role.arn})
