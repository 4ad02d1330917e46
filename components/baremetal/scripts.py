"""Host scripts, rendered from the jinja2 templates in `scripts/` (StrictUndefined), one per host and step.

Every script starts with `set -euo pipefail`, is idempotent (a second run changes nothing) and passes
shellcheck (tests). Secrets never appear in a script: the join token arrives on stdin.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import jinja2
import yaml

from mlcluster.components.baremetal.inventory import Host, Inventory
from mlcluster.components.cluster import PoolFacts
from mlcluster.profiles.model import BaremetalSubstrate, NodePool

TEMPLATES = Path(__file__).resolve().parent / "scripts"
TOOLKIT_VERSION = "1.18.0-1"  # nvidia-container-toolkit, pinned
KUBE_VIP_IMAGE = "ghcr.io/kube-vip/kube-vip:v0.8.9"
MIRRORED_REGISTRIES = ("docker.io", "quay.io", "registry.k8s.io", "ghcr.io", "nvcr.io", "public.ecr.aws")

_ENV = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), undefined=jinja2.StrictUndefined,
                          keep_trailing_newline=True, autoescape=False)


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


def node_config(host: Host, pool: NodePool, inventory: Inventory, substrate: BaremetalSubstrate,
                first: bool) -> dict[str, Any]:
    """`/etc/rancher/<dist>/config.yaml` for one host."""
    facts = PoolFacts.from_pool(pool)
    labels = {**facts.labels, **host.labels}
    config: dict[str, Any] = {
        "token-file": f"/etc/rancher/{substrate.distribution}/cluster-token",
        "node-name": host.name,
        "node-ip": host.address,
        "node-label": [f"{k}={v}" for k, v in sorted(labels.items())],
    }
    if facts.taints:
        config["node-taint"] = [f"{t['key']}={t['value']}:{t['effect']}" for t in facts.taints]
    if host.driver is not None:
        # The distribution still owns containerd's config; this only makes the nvidia runtime it detected the
        # default on GPU hosts, so GPU pods (and the device plugin) need no runtimeClassName.
        config["default-runtime"] = "nvidia"
    port = 6443 if substrate.distribution == "k3s" else 9345
    if not first:
        config["server"] = f"https://{inventory.api_address()}:{port}"
    if host.role == "server":
        config["tls-san"] = sorted({inventory.api_address(), host.address})
        config["cluster-cidr"] = substrate.cluster_cidr
        config["service-cidr"] = substrate.service_cidr
        config["secrets-encryption"] = True
        config["write-kubeconfig-mode"] = "0600"
        if first:
            config["cluster-init"] = True
        config["disable"] = ["traefik", "servicelb"] if substrate.distribution == "k3s" else ["rke2-ingress-nginx"]
    return config


def registries(substrate: BaremetalSubstrate) -> str | None:
    mirror = substrate.air_gap.registry_mirror
    if not mirror:
        return None
    return _yaml({"mirrors": {name: {"endpoint": [f"https://{mirror}"]} for name in MIRRORED_REGISTRIES}})


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


def install_script(host: Host, pool: NodePool, inventory: Inventory, substrate: BaremetalSubstrate,
                   first: bool, version: str | None = None) -> str:
    vip = None
    if host.role == "server" and substrate.kube_vip and len(inventory.servers) > 1:
        vip = _yaml(kube_vip_manifest(inventory, substrate))
    static_dir = f"/var/lib/rancher/{substrate.distribution}/agent/pod-manifests"
    context = _context(substrate, host, first=first,
                       config_yaml=_yaml(node_config(host, pool, inventory, substrate, first)),
                       registries_yaml=registries(substrate), kube_vip_manifest=vip,
                       registration_address=inventory.api_address(), static_pod_dir=static_dir)
    if version is not None:
        context["version"] = version
    return _ENV.get_template("install.sh.j2").render(**context)


def gpu_script(host: Host, substrate: BaremetalSubstrate) -> str:
    return _ENV.get_template("gpu-host.sh.j2").render(
        **_context(substrate, host, toolkit_version=TOOLKIT_VERSION, package_mirror=substrate.air_gap.package_mirror))


def upgrade_script(host: Host, substrate: BaremetalSubstrate, step: str) -> str:
    return _ENV.get_template("upgrade.sh.j2").render(**_context(substrate, host, step=step))


def kubeconfig_script(inventory: Inventory, substrate: BaremetalSubstrate) -> str:
    return _ENV.get_template("kubeconfig.sh.j2").render(distribution=substrate.distribution,
                                                        api_address=inventory.api_address())
