"""The profile model: what a platform is made of, independent of where it runs.

A profile is loaded from YAML (see `loader.py`), merged along its `extends:` chain and the stack's
overrides, then validated here. The result is immutable and fully defaulted; everything downstream
(substrates, add-ons, tenancy) reads it and nothing else. Shapes and types live here; rules that relate
several fields (capacity, uniqueness, tier references) live in `rules.py` so each error can name the exact
field it is about.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from mlcluster.yamlsource import as_written

# Kubernetes minor versions the toolkit renders and validates for (kubernetes-validate has schemas for each).
KUBERNETES_VERSIONS = ("1.32", "1.33", "1.34", "1.35", "1.36", "1.37")

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# Kubernetes resource.Quantity: a decimal number with an optional binary or decimal SI suffix.
_QUANTITY = re.compile(r"^([0-9]+(\.[0-9]+)?|\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)?$")
_LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"  # optional DNS-subdomain prefix
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def _dns_label(value: str) -> str:
    if len(value) > 63 or not _DNS_LABEL.match(value):
        raise ValueError(
            "allowed is a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a "
            "letter or digit, at most 63 characters"
        )
    return value


def _quantity(value: str) -> str:
    if not _QUANTITY.match(value):
        raise ValueError("allowed is a Kubernetes quantity such as '500m', '4', '16Gi' or '1Ti'")
    return value


def _labels(value: dict[str, str]) -> dict[str, str]:
    for key, val in value.items():
        if not _LABEL_KEY.match(key):
            raise ValueError(f"label key {key!r} is not a valid Kubernetes label key (prefix/name)")
        if len(val) > 63 or not _LABEL_VALUE.match(val):
            raise ValueError(f"label value {val!r} is not a valid Kubernetes label value "
                             "(at most 63 characters: letters, digits, '-', '_', '.')")
    return value


def _cidr(value: str) -> str:
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"allowed is a CIDR block such as '10.0.0.0/16' ({exc})") from None
    return value


def _region(value: str) -> str:
    if not re.match(r"^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", value):
        raise ValueError("allowed is an AWS region name such as us-east-1 or eu-west-1")
    return value


def _pinned_image(value: str) -> str:
    match = re.match(r"^[a-z0-9][-a-z0-9._/]*(:[0-9]+)?/?[-a-z0-9._/]*:([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})$", value)
    if not match or match.group(2) == "latest":
        raise ValueError("allowed is an image with a pinned tag, e.g. quay.io/jupyter/pytorch-notebook:2025-06-30 "
                         "(never `latest`)")
    return value


DnsLabel = Annotated[str, AfterValidator(_dns_label)]
PinnedImage = Annotated[str, AfterValidator(_pinned_image)]
# `cpu: 4` in YAML is an int, `cpu: 0.50` a float; Kubernetes quantities are strings: take them as written.
Quantity = Annotated[str, BeforeValidator(as_written), AfterValidator(_quantity)]
Labels = Annotated[dict[str, str], AfterValidator(_labels)]
Cidr = Annotated[str, AfterValidator(_cidr)]


class Strict(BaseModel):
    """Every profile type: unknown keys are errors, values are immutable once validated."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


# --- substrate -------------------------------------------------------------------------------------


class ExistingSubstrate(Strict):
    """A cluster that already runs (kind or k3d on a laptop, a cluster another team owns).

    The toolkit creates nothing below Kubernetes; the stack config says how to reach the cluster
    (`mlcluster:kubeconfig` as a secret, or `mlcluster:kubeContext`).
    """

    kind: Literal["existing"]
    storage_class: str | None = Field(
        None, description="StorageClass for platform data (Prometheus, Grafana); null uses the cluster default."
    )


class Vpc(Strict):
    """A new VPC (the default) or your own (`vpc_id` with subnet ids)."""

    cidr: Cidr = Field("10.0.0.0/16", description="VPC CIDR, /16 to /20; also the pod range (VPC CNI).")
    az_count: int = Field(3, ge=2, le=3, description="Availability zones to spread subnets over.")
    nat_gateways: Literal["per-az", "single"] = Field(
        "per-az", description="per-az survives an AZ outage; single is cheaper (dev).")
    endpoints: bool = Field(True, description="S3 gateway + ECR/STS interface endpoints for private nodes.")
    flow_log_retention_days: int = Field(90, ge=1, le=3653)
    vpc_id: str | None = Field(None, description="Bring your own VPC: its id (then the subnet ids are required).")
    private_subnet_ids: list[str] = Field(default_factory=list)
    public_subnet_ids: list[str] = Field(default_factory=list)


class ApiEndpoint(Strict):
    """The cluster API is always reachable privately; publicly only from an explicit allow-list."""

    public_cidrs: list[Cidr] = Field(
        default_factory=list, description="CIDRs allowed to reach the public endpoint; empty turns it off.")
    runner_cidrs: list[Cidr] = Field(
        default_factory=list, description="Where `pulumi up` runs (VPN, Direct Connect, a peered CI network, or a "
                                          "runner subnet inside your own VPC): HTTPS to the private endpoint from "
                                          "these, as rules on the cluster security group (EKS admits only itself).")


class Karpenter(Strict):
    """Karpenter provisions the node pools marked `provisioner: karpenter` (instead of managed node groups)."""

    enabled: bool = False
    ami_alias: str = Field("al2023@latest", pattern=r"^[a-z0-9]+@(latest|v[0-9]+)$",
                           description="EC2NodeClass AMI alias; pin a version (al2023@v2026…) in production.")
    consolidate_after: str = Field("10m", pattern=r"^[0-9]+(s|m|h)$",
                                   description="How long a node must be empty before Karpenter removes it.")
    disruption_budget: str = Field("10%", pattern=r"^([0-9]+|[0-9]+%)$",
                                   description="At most this many nodes of a pool disrupted at once.")


class EksSubstrate(Strict):
    """Amazon EKS in a VPC the toolkit creates (or yours), secure by default."""

    kind: Literal["eks"]
    region: Annotated[str, AfterValidator(_region)] = Field(description="AWS region, e.g. eu-west-1.")
    production: bool = Field(False, description="Deletion protection, NAT per AZ, protected cluster.")
    vpc: Vpc = Vpc()
    service_cidr: Cidr = Field("172.20.0.0/16", description="Kubernetes service range; must not overlap the VPC.")
    api: ApiEndpoint = ApiEndpoint()
    admin_principals: list[str] = Field(
        default_factory=list, description="IAM role/user ARNs given cluster-admin through access entries.")
    log_retention_days: int = Field(90, ge=1, le=3653, description="Control-plane log retention.")
    artifacts_bucket: bool = Field(True, description="An S3 bucket for ML artifacts (versioned, SSE-KMS, protected).")
    karpenter: Karpenter = Karpenter()
    efs: bool = Field(False, description="An encrypted EFS file system, its CSI driver and an `efs` "
                                         "StorageClass (ReadWriteMany: shared datasets, notebooks).")


class RegistryMirror(Strict):
    """One upstream registry's mirror (k3s/RKE2 registries.yaml `mirrors.<registry>`)."""

    endpoint: str = Field(description="https://host[:port] serving this registry's images.")
    rewrite: dict[str, str] = Field(default_factory=dict, description="Repository rewrites, regex → replacement, "
                                    "e.g. {'^(.*)$': 'dockerhub/$1'} for a mirror that keeps it under a project.")


class AirGap(Strict):
    """Where hosts and the cluster get software when they cannot reach the internet. Unset: upstream."""

    artifact_url: str | None = Field(None, description="Base URL serving the k3s/RKE2 install script and "
                                                         "binaries (mirrors the release assets).")
    package_mirror: str | None = Field(None, description="APT mirror URL for the NVIDIA driver and container "
                                                           "toolkit packages.")
    package_mirror_key: str | None = Field(None, description="The APT mirror's ASCII-armored public signing key; "
                                           "packages are verified against it (never `trusted=yes`).")
    registry_mirror: str | None = Field(None, description="host[:port] of one pre-populated registry mirroring "
                                                            "docker.io, quay.io, registry.k8s.io, ghcr.io, nvcr.io, "
                                                            "public.ecr.aws under the same repository names.")
    registries: dict[str, RegistryMirror] = Field(default_factory=dict, description="Per-registry mirrors with "
                                                  "rewrites (a proxy cache per upstream); wins over registry_mirror.")
    chart_repository: str | None = Field(None, description="A Helm repository serving every pinned chart.")


class BaremetalSubstrate(Strict):
    """A cluster the toolkit builds on servers reached over SSH (inventory in the stack config)."""

    kind: Literal["baremetal"]
    distribution: Literal["k3s", "rke2"] = "k3s"
    version: str = Field("v1.35.1+k3s1", pattern=r"^v1\.[0-9]+\.[0-9]+\+(k3s|rke2r)[0-9]+$",
                         description="Pinned release, e.g. v1.35.1+k3s1 or v1.35.1+rke2r1.")
    cluster_cidr: Cidr = "10.42.0.0/16"
    service_cidr: Cidr = "10.43.0.0/16"
    kube_vip: bool = Field(True, description="HA API address: kube-vip announces the inventory's registration "
                                             "address from the servers (false: an external load balancer owns it).")
    air_gap: AirGap = AirGap()


# --- node pools ------------------------------------------------------------------------------------


def _taint_key(value: str) -> str:
    if not _LABEL_KEY.match(value):
        raise ValueError("allowed is a Kubernetes qualified name like a label key: [prefix/]name, letters, digits, "
                         "'-', '_', '.', at most 63 characters in the name (e.g. nvidia.com/gpu)")
    return value


def _taint_value(value: str) -> str:
    if len(value) > 63 or not _LABEL_VALUE.match(value):
        raise ValueError("allowed is empty or a label value: at most 63 letters, digits, '-', '_', '.', starting "
                         "and ending with a letter or digit")
    return value


class Taint(Strict):
    """A node taint; key and value follow the API server's rules (ValidateTaintsInNodeAnnotations: a qualified name
    and a label value), or the node would be refused when it registers."""

    key: Annotated[str, AfterValidator(_taint_key)]
    value: Annotated[str, AfterValidator(_taint_value)] = ""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] = "NoSchedule"


class GpuSpec(Strict):
    """What one node of a GPU pool carries; feeds labels, quotas and queue flavors."""

    product: str = Field(
        description="GPU product as NVIDIA GPU Feature Discovery labels it (nvidia.com/gpu.product), e.g. NVIDIA-A10G."
    )
    count: int = Field(ge=1, le=16, description="GPUs per node.")
    memory_gib: int | None = Field(None, ge=1, description="Memory per GPU in GiB.")


class Sharing(Strict):
    """How one physical GPU is offered to pods."""

    mode: Literal["none", "time-slicing", "mig"] = "none"
    replicas: int | None = Field(None, ge=2, le=64, description="time-slicing: pods per physical GPU.")
    mig_strategy: Literal["single", "mixed"] | None = Field(None, description="mig: how MIG devices are advertised.")
    mig_layout: str | None = Field(None, description="mig: the MIG layout name, e.g. all-1g.10gb.")


class NodePool(Strict):
    """A group of like nodes. On `existing` it describes nodes that are there; elsewhere it creates them."""

    name: DnsLabel
    role: Literal["system", "cpu", "gpu"]
    instance_types: list[str] = Field(default_factory=list, description="Cloud instance types (eks).")
    gpu: GpuSpec | None = None
    sharing: Sharing = Sharing()
    capacity_type: Literal["on-demand", "spot", "capacity-block"] = Field(
        "on-demand", description="capacity-block: EC2 Capacity Blocks for ML (name the block in "
                                 "capacity_reservation_ids); on-demand may also target reservations.")
    capacity_reservation_ids: list[Annotated[str, StringConstraints(pattern=r"^cr-[0-9a-f]{8,17}$")]] = Field(
        default_factory=list, description="eks: On-Demand Capacity Reservations or a Capacity Block (cr-…) the "
                                          "pool launches into; GPU pools without one may fail for capacity.")
    min: int = Field(0, ge=0, le=1000)
    max: int = Field(ge=0, le=1000)
    labels: Labels = Field(default_factory=dict)
    taints: list[Taint] = Field(default_factory=list)
    disk_gib: int = Field(100, ge=20, le=16384, description="Root volume (eks: encrypted gp3).")
    efa: bool = Field(False, description="eks: EFA + a cluster placement group for multi-node training.")
    provisioner: Literal["managed", "karpenter"] = Field(
        "managed", description="eks: a managed node group, or a Karpenter NodePool (needs substrate.karpenter).")


# --- tiers and teams -------------------------------------------------------------------------------


class Tier(Strict):
    """A resource size data scientists pick (CPU, 1xGPU, 2xGPU, 8xGPU, a GPU slice): one definition reused by
    quotas, queues and notebook profiles."""

    name: DnsLabel
    description: str = ""
    cpu: Quantity
    memory: Quantity
    gpu: int = Field(0, ge=0, le=16)
    gpu_type: str = Field("whole", pattern=r"^(whole|shared|[1-7]g\.[0-9]+gb)$",
                          description="whole: whole GPUs (nvidia.com/gpu); shared: one time-sliced GPU "
                                      "(nvidia.com/gpu.shared); a MIG profile such as 1g.10gb: one MIG instance "
                                      "(nvidia.com/mig-1g.10gb).")


class TeamQuota(Strict):
    """What a team is guaranteed (its Kueue nominal quota). GPUs beyond it are borrowed from idle capacity in the
    cohort when `ml.kueue.borrowing` allows, and reclaimed by preemption when their owners need them; the
    namespace's ResourceQuota is derived from the same numbers, so the two never disagree."""

    cpu: Quantity
    memory: Quantity
    gpu: int = Field(0, ge=0, le=4096, description="Whole GPUs guaranteed to the team (nvidia.com/gpu).")
    shared_gpu: int = Field(0, ge=0, le=65536, description="Time-sliced GPU replicas guaranteed "
                                                           "(nvidia.com/gpu.shared); the rest are shared by all.")
    mig: dict[str, int] = Field(default_factory=dict, description="MIG instances guaranteed, by profile "
                                                                  "(e.g. {1g.10gb: 7}); the rest are shared by all.")
    storage: Quantity = "100Gi"
    pvcs: int = Field(20, ge=0, le=1000)
    pods: int = Field(200, ge=1, le=100000, description="Pods at once (running or pending).")
    jobs: int = Field(500, ge=1, le=100000, description="Job objects kept (finished ones count until cleaned up).")
    ephemeral_storage: Quantity = Field("500Gi", description="Node-local scratch space requested by all pods.")


class Team(Strict):
    name: DnsLabel
    description: str = ""
    members: list[str] = Field(default_factory=list, description="Users given the team-member role in the namespace.")
    groups: list[str] = Field(default_factory=list, description="Groups given the team-member role in the namespace.")
    leads: list[str] = Field(default_factory=list, description="Users given the team-lead role in the namespace.")
    quota: TeamQuota
    tiers: list[str] | None = Field(None, description="Tier names the team may use; null means all tiers.")


class Tenancy(Strict):
    """How team namespaces are fenced."""

    namespace_prefix: str = Field("team-", pattern=r"^[a-z0-9][-a-z0-9]{0,20}$")
    egress: Literal["open", "restricted"] = Field(
        "open", description="restricted: DNS, platform namespaces and egress_cidrs only."
    )
    egress_cidrs: list[Cidr] = Field(default_factory=list)
    bucket_access: bool = Field(
        True, description="eks: each team's `workload` service account gets a Pod Identity role for its prefix "
                          "`teams/<team>/` of the artifacts bucket.")
    member_exec: bool = Field(
        False, description="Let team members exec into, attach to and port-forward to pods in their namespace. Off: "
                            "RBAC cannot tell a member's own pods from a colleague's notebook.")


class Kubernetes(Strict):
    version: Annotated[Literal[KUBERNETES_VERSIONS], BeforeValidator(as_written)] = Field(  # type: ignore[valid-type]
        "1.35", description="Kubernetes minor version. Quoting is optional: an unquoted 1.30 is read as written.")


class AddonSettings(Strict):
    """Base of every add-on's settings block (`addons.<name>` in a profile)."""

    enabled: bool = False


class PolicyOverride(Strict):
    """An accepted exception to a guardrail (`mlcluster check`, the CrossGuard pack): the rule, why, and
    optionally which resources (glob patterns of Pulumi resource names; none: all)."""

    rule: str = Field(description="Rule id, as `mlcluster check --rules` lists them.")
    reason: str = Field(min_length=20, description="Why the exception is acceptable; shown in every report.")
    resources: list[str] = Field(default_factory=list)


class Policy(Strict):
    overrides: list[PolicyOverride] = Field(default_factory=list)


class ProfileBase(Strict):
    """Everything but the add-ons, whose settings types come from the add-on modules (see schema.py)."""

    name: str = Field(description="Set from the file name; not written in the YAML.")
    description: str = Field("", description="One line shown by `mlcluster profiles`.")
    substrate: Annotated[ExistingSubstrate | EksSubstrate | BaremetalSubstrate, Field(discriminator="kind")]
    kubernetes: Kubernetes = Kubernetes()
    node_pools: list[NodePool] = Field(default_factory=list)
    tiers: list[Tier] = Field(default_factory=list)
    teams: list[Team] = Field(default_factory=list)
    tenancy: Tenancy = Tenancy()
    policy: Policy = Field(Policy(), description="Guardrail exceptions, each with its reason.")
