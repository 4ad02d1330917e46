"""Substrate `eks`: the whole AWS side, from the VPC to a Kubernetes provider add-ons can use.

Secure by default (checks 1–17): private API endpoint (public only from an allow-list, never 0.0.0.0/0),
secrets envelope-encrypted with the platform KMS key, all five control-plane log types into a retained,
encrypted log group, authentication mode API with explicit access entries and no implicit creator admin,
deletion protection in production, the VPC CNI enforcing NetworkPolicies, add-on IAM via Pod Identity.
"""

from __future__ import annotations

import json
from typing import Any

from mlcluster.components import k8s as objects
from mlcluster.components.aws import efa
from mlcluster.components.aws.autoscaler import ClusterAutoscaler, autoscaled
from mlcluster.components.aws.iam import ServiceAccountRole
from mlcluster.components.aws.karpenter import Karpenter
from mlcluster.components.aws.kms import platform_key
from mlcluster.components.aws.network import Network
from mlcluster.components.aws.nodepools import NodePools
from mlcluster.components.aws.preflight import check_caller
from mlcluster.components.aws.storage import (
    DEFAULT_CLASS,
    EFS_CLASS,
    RETAIN_CLASS,
    ArtifactsBucket,
    SharedFileSystem,
    efs_class_manifest,
    storage_class_manifests,
)
from mlcluster.components.cluster import AwsFacts, ClusterHandle, PoolFacts
from mlcluster.deferred import Component, aws, k8s, pulumi
from mlcluster.profiles.model import EksSubstrate, ProfileBase
from mlcluster.stackconfig import StackSettings

LOG_TYPES = ["api", "audit", "authenticator", "controllerManager", "scheduler"]
ADMIN_POLICY = "arn:{partition}:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"


def cluster_name(stack: str) -> str:
    return f"mlcluster-{stack}"


def kubeconfig(name: str, endpoint: str, ca_data: str, region: str) -> str:
    """Exec-based kubeconfig: short-lived tokens from `aws eks get-token`, no long-lived credential inside."""
    return json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": name,
        "clusters": [{"name": name, "cluster": {"server": endpoint, "certificate-authority-data": ca_data}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "users": [{"name": name, "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1", "command": "aws",
            "args": ["eks", "get-token", "--cluster-name", name, "--region", region, "--output", "json"]}}}],
    }, sort_keys=True)


def _role(name: str, service: str, policies: list[str], partition: str, child: pulumi.ResourceOptions) -> aws.iam.Role:
    role = aws.iam.Role(f"{name}-role", assume_role_policy=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["sts:AssumeRole", "sts:TagSession"],
                       "Principal": {"Service": service}}]}), opts=child)
    for policy in policies:
        aws.iam.RolePolicyAttachment(f"{name}-{policy}", role=role.name,
                                     policy_arn=f"arn:{partition}:iam::aws:policy/{policy}", opts=child)
    return role


class EksCluster(Component):
    def __init__(self, name: str, profile: ProfileBase, stack: StackSettings,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlcluster:cluster:Eks", name, None, opts)
        s: EksSubstrate = profile.substrate  # type: ignore[assignment]
        self.aws_provider = aws.Provider(f"{name}-aws", region=s.region,
                                         default_tags={"tags": {"mlcluster:stack": stack.stack,
                                                                "mlcluster:profile": profile.name}},
                                         opts=pulumi.ResourceOptions(parent=self))
        invoke = pulumi.InvokeOptions(provider=self.aws_provider, parent=self)
        self._invoke, self._kubernetes_version = invoke, profile.kubernetes.version
        identity = aws.get_caller_identity(opts=invoke)
        check_caller(identity.arn, list(s.admin_principals), stack.source)  # before any resource is registered
        partition = aws.get_partition(opts=invoke).partition
        azs = sorted(aws.get_availability_zones(state="available", opts=invoke).names)[: s.vpc.az_count]
        account = identity.account_id
        name_ = cluster_name(stack.stack)
        child = pulumi.ResourceOptions(parent=self, providers={"aws": self.aws_provider})

        key = platform_key(name_, account, partition, s.region, child)
        network = Network(f"{name}-network", name_, s.vpc, azs, s.region, key.arn, opts=child)

        cluster_role = _role(f"{name}-cluster", "eks.amazonaws.com", ["AmazonEKSClusterPolicy"], partition, child)
        aws.iam.RolePolicy(f"{name}-cluster-kms", role=cluster_role.id, policy=key.arn.apply(lambda arn: json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Resource": arn,
                           "Action": ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey", "kms:CreateGrant"]}]})),
            opts=child)
        log_group = aws.cloudwatch.LogGroup(f"{name}-control-plane-logs", name=f"/aws/eks/{name_}/cluster",
                                            retention_in_days=s.log_retention_days, kms_key_id=key.arn, opts=child)
        public = bool(s.api.public_cidrs)
        cluster = aws.eks.Cluster(
            f"{name}-eks",
            name=name_,
            version=profile.kubernetes.version,
            role_arn=cluster_role.arn,
            vpc_config={"subnet_ids": network.facts.private_subnet_ids, "endpoint_private_access": True,
                        "endpoint_public_access": public,
                        **({"public_access_cidrs": list(s.api.public_cidrs)} if public else {})},
            kubernetes_network_config={"service_ipv4_cidr": s.service_cidr},
            encryption_config={"provider": {"key_arn": key.arn}, "resources": ["secrets"]},
            enabled_cluster_log_types=LOG_TYPES,
            access_config={"authentication_mode": "API", "bootstrap_cluster_creator_admin_permissions": False},
            bootstrap_self_managed_addons=False,  # the managed add-ons below replace them
            deletion_protection=s.production,
            upgrade_policy={"support_type": "STANDARD"},
            opts=pulumi.ResourceOptions(parent=self, providers={"aws": self.aws_provider}, depends_on=[log_group],
                                        protect=s.production),
        )
        admin_links = self._admins(name, s.admin_principals, cluster, partition, child)
        admin_links += self._runner_access(name, s.api.runner_cidrs, cluster, child)
        core = self._core_addons(name, cluster, partition, child)
        pools = NodePools(f"{name}-pools", cluster_name=cluster.name, kubernetes_version=profile.kubernetes.version,
                          pools=list(profile.node_pools), subnet_ids=network.facts.private_subnet_ids,
                          vpc_id=network.facts.vpc_id,
                          cluster_security_group_id=cluster.vpc_config.cluster_security_group_id,
                          kms_key_arn=key.arn, partition=partition,
                          opts=pulumi.ResourceOptions(parent=self, providers={"aws": self.aws_provider},
                                                      depends_on=core))
        after_nodes = self._node_addons(name, cluster, key, partition, pools, child)

        config = pulumi.Output.all(cluster.name, cluster.endpoint, cluster.certificate_authority.data).apply(
            lambda args: kubeconfig(args[0], args[1], args[2], s.region))
        secret_config = pulumi.Output.secret(config)
        provider = k8s.Provider(f"{name}-k8s", kubeconfig=secret_config, enable_server_side_apply=True,
                                opts=pulumi.ResourceOptions(parent=self, depends_on=admin_links))
        classes = [objects.apply(f"storageclass-{m['metadata']['name']}", m, provider,
                                 pulumi.ResourceOptions(parent=self, depends_on=after_nodes))
                   for m in storage_class_manifests(key.arn)]
        if s.efs:
            efs = SharedFileSystem(f"{name}-efs", vpc_id=network.facts.vpc_id, vpc_cidr=s.vpc.cidr,
                                   subnet_ids=network.facts.private_subnet_ids, kms_key_arn=key.arn, opts=child)
            efs_role = ServiceAccountRole(
                f"{name}-efs-csi", cluster_name=cluster.name, cluster_arn=cluster.arn, namespace="kube-system",
                service_account="efs-csi-controller-sa", associate=False,
                managed_policy_arns=[f"arn:{partition}:iam::aws:policy/service-role/AmazonEFSCSIDriverPolicy"],
                opts=child)
            efs_driver = self._addon(name, "aws-efs-csi-driver", cluster,
                                     pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(
                                         depends_on=list(pools.groups.values()))),
                                     pod_identity_associations=[{"role_arn": efs_role.role.arn,
                                                                 "service_account": "efs-csi-controller-sa"}])
            classes.append(objects.apply("storageclass-efs", efs_class_manifest(efs.file_system.id), provider,
                                         pulumi.ResourceOptions(parent=self, depends_on=[efs_driver])))
        if autoscaled(list(profile.node_pools)):  # managed pools that may grow (from zero, too)
            system = next(p.name for p in profile.node_pools if p.role == "system")
            after_nodes.append(ClusterAutoscaler(
                f"{name}-autoscaler", cluster=cluster, cluster_name=name_, region=s.region, account=account,
                partition=partition, kubernetes_version=profile.kubernetes.version, system_pool=system,
                k8s_provider=provider, depends_on=[*after_nodes, *admin_links],
                opts=pulumi.ResourceOptions(parent=self, providers={"aws": self.aws_provider})).deployment)
        if any(p.efa for p in profile.node_pools):  # RDMA for multi-node training: vpc.amazonaws.com/efa
            after_nodes.append(objects.apply("efa-device-plugin", efa.manifest(s.region), provider,
                                             pulumi.ResourceOptions(parent=self, depends_on=list(after_nodes))))
        karpenter_pools = [p for p in profile.node_pools if p.provisioner == "karpenter"]
        if s.karpenter.enabled and s.vpc.vpc_id:
            # 11: Karpenter finds subnets by this tag, which only subnets this toolkit creates carry; tag yours
            # (removed again on destroy) rather than launch nothing.
            for i, subnet in enumerate(s.vpc.private_subnet_ids):
                aws.ec2.Tag(f"{name}-karpenter-subnet-{i}", resource_id=subnet, key="karpenter.sh/discovery",
                            value=name_, opts=child)
        if s.karpenter.enabled:
            after_nodes.append(Karpenter(
                f"{name}-karpenter", settings=s.karpenter, pools=karpenter_pools, cluster=cluster,
                cluster_name=name_, region=s.region, account=account, partition=partition,
                kms_key_arn=key.arn, k8s_provider=provider, kubernetes_version=profile.kubernetes.version,
                depends_on=[*after_nodes, *admin_links], opts=child))
        bucket = None
        if s.artifacts_bucket:
            bucket = ArtifactsBucket(f"{name}-artifacts", f"{name_}-artifacts-"[:37], key.arn, opts=child).bucket
        self.handle = ClusterHandle(
            name=name_, substrate="eks", kubernetes_version=profile.kubernetes.version, provider=provider,
            kubeconfig=secret_config, endpoint=cluster.endpoint,
            node_pools=tuple(PoolFacts.from_pool(p) for p in profile.node_pools),
            storage_class=DEFAULT_CLASS, user_data_storage_class=RETAIN_CLASS,
            portable_storage_class=EFS_CLASS if s.efs else None,  # EBS volumes stay in their AZ
            facts={"region": s.region, "access": "exec kubeconfig (aws eks get-token)",
                   "api": "private + " + (", ".join(s.api.public_cidrs) if public else "no public endpoint")},
            aws=AwsFacts(provider=self.aws_provider, region=s.region, account_id=account, partition=partition,
                         cluster_name=cluster.name,
                         cluster_arn=cluster.arn, kms_key_arn=key.arn,
                         artifacts_bucket=bucket.bucket if bucket else None,
                         vpc_id=network.facts.vpc_id, private_subnet_ids=tuple(network.facts.private_subnet_ids),
                         vpc_cidr=s.vpc.cidr, production=s.production),
            ready=(*after_nodes, *classes),
            private_cidrs=(s.vpc.cidr, s.service_cidr),  # pods take VPC addresses (VPC CNI)
            api_endpoints=((s.vpc.cidr, 443),),  # the control plane's ENIs in the VPC
        )
        self.register_outputs({"clusterName": cluster.name, "endpoint": cluster.endpoint,
                               "vpcId": network.facts.vpc_id})

    def _runner_access(self, name: str, cidrs: list[str], cluster: aws.eks.Cluster,
                       opts: pulumi.ResourceOptions) -> list[pulumi.Resource]:
        """HTTPS to the private endpoint from where `pulumi up` runs: the cluster security group (on the control
        plane's ENIs) admits only itself unless told otherwise (EKS user guide, "sec-group-reqs")."""
        return [aws.vpc.SecurityGroupIngressRule(
            f"{name}-api-runner-{i}", security_group_id=cluster.vpc_config.cluster_security_group_id,
            cidr_ipv4=cidr, ip_protocol="tcp", from_port=443, to_port=443,
            description="pulumi up: HTTPS to the cluster API", opts=opts) for i, cidr in enumerate(cidrs)]

    def _admins(self, name: str, principals: list[str], cluster: aws.eks.Cluster, partition: str,
                opts: pulumi.ResourceOptions) -> list[pulumi.Resource]:
        """Explicit access entries (checks 6): these principals, cluster-admin; nobody else implicitly."""
        links: list[pulumi.Resource] = []
        for i, arn in enumerate(principals):
            entry = aws.eks.AccessEntry(f"{name}-admin-{i}", cluster_name=cluster.name, principal_arn=arn,
                                        type="STANDARD", opts=opts)
            links.append(aws.eks.AccessPolicyAssociation(
                f"{name}-admin-{i}", cluster_name=cluster.name, principal_arn=arn,
                policy_arn=ADMIN_POLICY.format(partition=partition), access_scope={"type": "cluster"},
                opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[entry]))))
        return links

    def _addon(self, name: str, addon: str, cluster: aws.eks.Cluster, opts: pulumi.ResourceOptions,
               **kwargs: Any) -> aws.eks.Addon:
        """13: every managed add-on at an explicit version, the one EKS names the default for the cluster's
        Kubernetes minor (DescribeAddonVersions, `defaultVersion`; pulumi-aws eks.getAddonVersion with
        most_recent=false): a version bump moves the add-ons with it, in the same reviewed preview, instead of
        leaving them at their creation-time versions."""
        version = aws.eks.get_addon_version(addon_name=addon, kubernetes_version=self._kubernetes_version,
                                            most_recent=False, opts=self._invoke).version
        return aws.eks.Addon(f"{name}-{addon}", cluster_name=cluster.name, addon_name=addon, addon_version=version,
                             resolve_conflicts_on_create="OVERWRITE", resolve_conflicts_on_update="PRESERVE",
                             opts=opts, **kwargs)

    def _core_addons(self, name: str, cluster: aws.eks.Cluster, partition: str,
                     opts: pulumi.ResourceOptions) -> list[pulumi.Resource]:
        """What nodes need to become Ready: pod networking (policy enforcement on), kube-proxy, Pod Identity."""
        agent = self._addon(name, "eks-pod-identity-agent", cluster, opts)
        cni_role = ServiceAccountRole(f"{name}-vpc-cni", cluster_name=cluster.name, cluster_arn=cluster.arn,
                                      namespace="kube-system", service_account="aws-node",
                                      managed_policy_arns=[f"arn:{partition}:iam::aws:policy/AmazonEKS_CNI_Policy"],
                                      associate=False, opts=opts)
        cni = self._addon(name, "vpc-cni", cluster, opts,
                          # Checks 8: without this, NetworkPolicies (team default-deny) do nothing on EKS.
                          configuration_values=json.dumps({"enableNetworkPolicy": "true"}),
                          pod_identity_associations=[{"role_arn": cni_role.role.arn, "service_account": "aws-node"}])
        proxy = self._addon(name, "kube-proxy", cluster, opts)
        return [agent, cni, proxy]

    def _node_addons(self, name: str, cluster: aws.eks.Cluster, key: aws.kms.Key, partition: str,
                     pools: NodePools, opts: pulumi.ResourceOptions) -> list[pulumi.Resource]:
        after = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=list(pools.groups.values())))
        coredns = self._addon(name, "coredns", cluster, after)
        ebs_role = ServiceAccountRole(
            f"{name}-ebs-csi", cluster_name=cluster.name, cluster_arn=cluster.arn, namespace="kube-system",
            service_account="ebs-csi-controller-sa", associate=False,
            managed_policy_arns=[f"arn:{partition}:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"],
            # Encrypted volumes with the platform key need these on that key only.
            statements=key.arn.apply(lambda arn: [
                {"Effect": "Allow", "Action": ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"],
                 "Resource": arn, "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}}},
                {"Effect": "Allow", "Resource": arn, "Action": [
                    "kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]}]),
            opts=opts)
        ebs = self._addon(name, "aws-ebs-csi-driver", cluster, after,
                          pod_identity_associations=[{"role_arn": ebs_role.role.arn,
                                                      "service_account": "ebs-csi-controller-sa"}])
        # The resource metrics API (metrics.k8s.io) that HorizontalPodAutoscalers read, e.g. KServe predictors
        # scaled on CPU; EKS does not run it by default (EKS user guide, "metrics-server": a community add-on).
        metrics = self._addon(name, "metrics-server", cluster, after)
        return [coredns, ebs, metrics]
