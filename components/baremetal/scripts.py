"""Host scripts, rendered from the jinja2 templates in `scripts/` (StrictUndefined), one per host and step.

Every script starts with `set -euo pipefail`, converges (a second run changes nothing), passes shellcheck and is
run by the tests against fake system commands (tests/components/baremetal/harness.py). Secrets never appear in a
script: tokens arrive on stdin. Paths are under `$root` (empty on a host) so the tests can run them in a scratch
root.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any

import yaml

from mlcluster.components.baremetal.inventory import Host, Inventory
from mlcluster.components.cluster import PoolFacts
from mlcluster.deferred import jinja2
from mlcluster.profiles.gpu_products import needs_fabric_manager
from mlcluster.profiles.model import BaremetalSubstrate, NodePool

TEMPLATES = Path(__file__).resolve().parent / "scripts"
TOOLKIT_VERSION = "1.18.0-1"  # nvidia-container-toolkit, pinned
KUBE_VIP_IMAGE = "ghcr.io/kube-vip/kube-vip:v0.8.9"
MIRRORED_REGISTRIES = ("docker.io", "quay.io", "registry.k8s.io", "ghcr.io", "nvcr.io", "public.ecr.aws")

def _single_quoted(text: str) -> str:
    """A shell single-quoted word holding `text` exactly."""
    return "'" + text.replace("'", "'\\''") + "'"


@functools.cache
def _environment() -> jinja2.Environment:
    """Built on first use, so importing this module (the substrate table does) does not import Jinja. Template
    comments are `{#- ... -#}`, so bash's `${#array[@]}` stays literal."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True, autoescape=False, comment_start_string="{#-",
                             comment_end_string="-#}")
    env.filters["sq"] = _single_quoted
    return env


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


def node_config(host: Host, pool: NodePool, inventory: Inventory, substrate: BaremetalSubstrate,
                first: bool) -> dict[str, Any]:
    """`/etc/rancher/<dist>/config.yaml` for one host."""
    labels = node_labels(host, pool)
    token = "cluster-token" if host.role == "server" else "agent-token"
    config: dict[str, Any] = {
        "token-file": f"/etc/rancher/{substrate.distribution}/{token}",
        "node-name": host.name,
        "node-ip": host.address,
        "node-label": [f"{k}={v}" for k, v in sorted(labels.items())],
    }
    if taints := node_taints(pool):  # at registration, so no pod lands before the taint; later: node-config
        config["node-taint"] = taints
    if host.driver is not None:
        # The distribution still owns containerd's config; this only makes the nvidia runtime it detected the
        # default on GPU hosts, so GPU pods (and the device plugin) need no runtimeClassName.
        config["default-runtime"] = "nvidia"
    port = 6443 if substrate.distribution == "k3s" else 9345
    if not first:
        config["server"] = f"https://{inventory.api_address()}:{port}"
    if host.role == "server":
        # Agents join with the agent token only (docs.k3s.io/cli/token: an agent token joins agents, not servers;
        # RKE2 has the same option); the server token stays on the servers.
        config["agent-token-file"] = f"/etc/rancher/{substrate.distribution}/agent-token"
        config["tls-san"] = sorted({inventory.api_address(), host.address})
        config["cluster-cidr"] = substrate.cluster_cidr
        config["service-cidr"] = substrate.service_cidr
        config["secrets-encryption"] = True
        config["write-kubeconfig-mode"] = "0600"
        if substrate.distribution == "k3s":
            if first:
                config["cluster-init"] = True  # embedded etcd; RKE2 has no such flag (etcd is its only datastore)
            config["disable"] = ["traefik", "servicelb"]
            if inventory.bastion is not None:  # co-location: the pod network crosses a public block
                config["flannel-backend"] = "wireguard-native"
        else:
            # The gateway add-on brings its own Traefik: neither packaged ingress (RKE2 v1.36 made Traefik the
            # default for new clusters, docs.rke2.io/reference/ingress_migration).
            config["disable"] = ["rke2-ingress-nginx", "rke2-traefik"]
    return config


def node_labels(host: Host, pool: NodePool) -> dict[str, str]:
    return {**PoolFacts.from_pool(pool).labels, **host.labels}


def node_taints(pool: NodePool) -> list[str]:
    return [f"{t['key']}={t['value']}:{t['effect']}" for t in PoolFacts.from_pool(pool).taints]


def registries(substrate: BaremetalSubstrate) -> str | None:
    """registries.yaml (docs.k3s.io/installation/private-registry): per-registry mirrors with rewrites, or one
    pre-populated mirror for all of them."""
    air_gap = substrate.air_gap
    mirrors: dict[str, Any] = {}
    if air_gap.registry_mirror:
        mirrors = {name: {"endpoint": [f"https://{air_gap.registry_mirror}"]} for name in MIRRORED_REGISTRIES}
    for name, mirror in air_gap.registries.items():
        mirrors[name] = {"endpoint": [mirror.endpoint], **({"rewrite": dict(mirror.rewrite)} if mirror.rewrite else {})}
    return _yaml({"mirrors": mirrors}) if mirrors else None


def kube_vip_manifest(inventory: Inventory, substrate: BaremetalSubstrate) -> dict[str, Any]:
    """A static pod that announces the registration address (ARP) from whichever server leads."""
    image = KUBE_VIP_IMAGE
    if substrate.air_gap.registry_mirror:
        image = image.replace("ghcr.io", substrate.air_gap.registry_mirror, 1)
    kubeconfig = f"/etc/rancher/{substrate.distribution}/{substrate.distribution}.yaml"
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "kube-vip", "namespace": "kube-system"},
        "spec": {
            "hostNetwork": True,
            "containers": [{
                "name": "kube-vip", "image": image, "args": ["manager"],
                "env": [{"name": k, "value": v} for k, v in (
                    ("vip_arp", "true"), ("port", "6443"), ("cp_enable", "true"), ("vip_leaderelection", "true"),
                    ("address", inventory.api_address()),
                    *((("vip_interface", inventory.vip_interface),) if inventory.vip_interface else ()))],
                "securityContext": {"capabilities": {"add": ["NET_ADMIN", "NET_RAW"]}},
                "volumeMounts": [{"name": "kubeconfig", "mountPath": "/etc/kubernetes/admin.conf"}],
                "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
            }],
            "volumes": [{"name": "kubeconfig", "hostPath": {"path": kubeconfig, "type": "File"}}],
        },
    }


def _context(substrate: BaremetalSubstrate, host: Host, **extra: Any) -> dict[str, Any]:
    return {"distribution": substrate.distribution, "version": substrate.version, "host": host,
            "artifact_url": substrate.air_gap.artifact_url, **extra}


# Cluster ports open only to the host networks behind a bastion (docs.k3s.io/installation/requirements "Inbound
# Rules"): API, supervisor, kubelet, etcd, flannel wireguard-native; SSH from the networks and the bastion.
FIREWALL_PORTS = (("6443", "tcp"), ("9345", "tcp"), ("10250", "tcp"), ("2379:2380", "tcp"), ("51820:51821", "udp"),
                  ("22", "tcp"))


def firewall_rules(inventory: Inventory) -> list[dict[str, str]]:
    if inventory.bastion is None:
        return []
    sources = [*inventory.networks, f"{inventory.bastion.address}/32"]
    return [{"source": source, "port": port, "proto": proto} for source in sources for port, proto in FIREWALL_PORTS
            if port == "22" or source in inventory.networks]


def host_packages(storage: str | None, inventory: Inventory) -> tuple[list[str], bool]:
    """Packages the host needs for the storage provider (Longhorn: open-iscsi, nfs-common; NFS: nfs-common) and
    the firewall; and whether multipathd must leave Longhorn's devices alone."""
    packages = []
    if storage == "longhorn":
        packages += ["open-iscsi", "nfs-common"]
    elif storage == "nfs":
        packages += ["nfs-common"]
    if inventory.bastion is not None:
        packages += ["ufw", "wireguard-tools"]
    return packages, storage == "longhorn"


def host_driver(host: Host) -> str | None:
    """The driver version mlcluster manages on this host (install mode), else None."""
    return host.driver.version if host.driver is not None and host.driver.mode == "install" else None


def fabric_manager(pool: NodePool) -> bool:
    return pool.gpu is not None and needs_fabric_manager(pool.gpu.product, pool.gpu.count)


def install_script(host: Host, pool: NodePool, inventory: Inventory, substrate: BaremetalSubstrate,
                   first: bool, storage: str | None = None) -> str:
    vip = None
    if host.role == "server" and substrate.kube_vip and len(inventory.servers) > 1:
        vip = _yaml(kube_vip_manifest(inventory, substrate))
    static_dir = f"/var/lib/rancher/{substrate.distribution}/agent/pod-manifests"
    packages, multipath = host_packages(storage, inventory)
    context = _context(substrate, host, first=first,
                       config_yaml=_yaml(node_config(host, pool, inventory, substrate, first)),
                       registries_yaml=registries(substrate), kube_vip_manifest=vip,
                       registration_address=inventory.api_address(), static_pod_dir=static_dir,
                       packages=packages, multipath_blacklist=multipath, firewall=firewall_rules(inventory),
                       join_wait=not first, join_port=6443 if substrate.distribution == "k3s" else 9345)
    return _environment().get_template("install.sh.j2").render(**context)


def gpu_script(host: Host, pool: NodePool, substrate: BaremetalSubstrate) -> str:
    return _environment().get_template("gpu-host.sh.j2").render(
        **_context(substrate, host, toolkit_version=TOOLKIT_VERSION, package_mirror=substrate.air_gap.package_mirror,
                   package_mirror_key=substrate.air_gap.package_mirror_key or "", fabric_manager=fabric_manager(pool),
                   driver=host_driver(host)))


def upgrade_script(host: Host, pool: NodePool, substrate: BaremetalSubstrate, step: str) -> str:
    return _environment().get_template("upgrade.sh.j2").render(**_context(
        substrate, host, step=step, driver=host_driver(host), fabric_manager=fabric_manager(pool)))


def node_config_script(host: Host, pool: NodePool, substrate: BaremetalSubstrate) -> str:
    labels = sorted(node_labels(host, pool).items())
    taints = node_taints(pool)
    return _environment().get_template("node-config.sh.j2").render(**_context(
        substrate, host, labels=labels, taints=taints, label_keys=[k for k, _ in labels],
        taint_keys=sorted({t.split("=", 1)[0].split(":", 1)[0] for t in taints}), driver=host_driver(host)))


def uninstall_script(host: Host, substrate: BaremetalSubstrate) -> str:
    return _environment().get_template("uninstall.sh.j2").render(**_context(substrate, host))


def kubeconfig_script(inventory: Inventory, substrate: BaremetalSubstrate) -> str:
    return _environment().get_template("kubeconfig.sh.j2").render(
        distribution=substrate.distribution, api_address=inventory.api_address(), api_proxy=inventory.api_proxy)
