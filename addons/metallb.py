"""MetalLB: LoadBalancer services on bare metal, announced over L2 (ARP) or BGP from an address pool.

The speaker needs host networking, so the release runs in the privileged node-agents namespace. The pool and
advertisements are MetalLB custom resources (validated against the upstream CRDs in the tests).
"""

from __future__ import annotations

import ipaddress
from typing import Any, Literal

from pydantic import Field

from mlcluster.addons.base import Addon
from mlcluster.components import k8s as objects
from mlcluster.components.cluster import NODE_AGENTS_NAMESPACE
from mlcluster.profiles.model import AddonSettings, ProfileBase, Strict

POOL = "mlcluster"


class BgpPeer(Strict):
    address: str
    asn: int = Field(ge=1, le=4294967295)


class MetalLBSettings(AddonSettings):
    addresses: list[str] = Field(default_factory=list, description="CIDRs or ranges (first-last) to hand out.")
    mode: Literal["l2", "bgp"] = "l2"
    my_asn: int | None = Field(None, ge=1, le=4294967295, description="bgp: this cluster's ASN.")
    peers: list[BgpPeer] = Field(default_factory=list, description="bgp: the routers to peer with.")


def _valid_range(text: str) -> bool:
    try:
        if "-" in text:
            first, last = (ipaddress.ip_address(p.strip()) for p in text.split("-", 1))
            return first.version == last.version and first <= last
        ipaddress.ip_network(text, strict=True)
        return True
    except ValueError:
        return False


def contains(text: str, address: str) -> bool:
    """Whether the pool entry `text` (a CIDR or first-last range) hands out `address`."""
    ip = ipaddress.ip_address(address)
    if "-" in text:
        first, last = (ipaddress.ip_address(p.strip()) for p in text.split("-", 1))
        return first.version == ip.version and first <= ip <= last  # type: ignore[operator]
    return ip in ipaddress.ip_network(text, strict=True)


def manifests(settings: MetalLBSettings, namespace: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{
        "apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool", "metadata": objects.metadata(POOL, namespace),
        "spec": {"addresses": list(settings.addresses)}}]
    if settings.mode == "l2":
        out.append({"apiVersion": "metallb.io/v1beta1", "kind": "L2Advertisement",
                    "metadata": objects.metadata(POOL, namespace), "spec": {"ipAddressPools": [POOL]}})
    else:
        for i, peer in enumerate(settings.peers):
            out.append({"apiVersion": "metallb.io/v1beta2", "kind": "BGPPeer",
                        "metadata": objects.metadata(f"peer-{i}", namespace),
                        "spec": {"myASN": settings.my_asn, "peerASN": peer.asn, "peerAddress": peer.address}})
        out.append({"apiVersion": "metallb.io/v1beta1", "kind": "BGPAdvertisement",
                    "metadata": objects.metadata(POOL, namespace), "spec": {"ipAddressPools": [POOL]}})
    return out


class MetalLB(Addon):
    key = "metallb"
    type_name = "MetalLB"
    description = "MetalLB: LoadBalancer addresses on bare metal (L2 or BGP)."
    Settings = MetalLBSettings
    installs = ("metallb",)
    uses_node_agents = True

    @classmethod
    def check(cls, profile: ProfileBase, settings: MetalLBSettings) -> list[tuple[tuple, object, str]]:  # type: ignore[override]
        at = ("addons", "metallb")
        found: list[tuple[tuple, object, str]] = []
        if profile.substrate.kind == "eks":
            found.append(((*at, "enabled"), True, "on eks, AWS load balancers serve LoadBalancer services; "
                                                  "MetalLB is for baremetal and existing clusters"))
        if not settings.addresses:
            found.append(((*at, "addresses"), [], "list the addresses to hand out, e.g. [192.0.2.200-192.0.2.220]"))
        for i, text in enumerate(settings.addresses):
            if not _valid_range(text):
                found.append(((*at, "addresses", i), text, "allowed is a CIDR (192.0.2.192/27) or a range "
                                                           "(192.0.2.200-192.0.2.220)"))
        if settings.mode == "bgp" and (settings.my_asn is None or not settings.peers):
            found.append(((*at, "peers"), [p.model_dump() for p in settings.peers],
                          "mode bgp needs my_asn and at least one peer {address, asn}"))
        return found

    def build(self) -> dict[str, Any]:
        settings: MetalLBSettings = self.settings  # type: ignore[assignment]
        release = self.helm_release("metallb", "metallb", NODE_AGENTS_NAMESPACE, self.values())
        for manifest in manifests(settings, NODE_AGENTS_NAMESPACE):
            self.apply(f"{manifest['kind'].lower()}-{manifest['metadata']['name']}", manifest, depends_on=[release])
        return {"loadBalancerAddresses": list(settings.addresses)}


ADDON = MetalLB
