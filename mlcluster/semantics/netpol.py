"""Who can open a connection to whom, computed from the NetworkPolicies a render writes — the rules of the API
(kubernetes.io/docs/concepts/services-networking/network-policies, reference networking.k8s.io/v1 NetworkPolicy):

- a pod is isolated for ingress (egress) when some policy in its namespace selects it with `Ingress` (`Egress`) in
  `policyTypes`; an isolated pod admits only what some selecting policy's rules allow, and policies add up;
- a connection needs both: the client's egress allows it and the server's ingress allows it;
- a peer with only `podSelector` means pods of the policy's own namespace, only `namespaceSelector` every pod of
  matching namespaces, both: matching pods in matching namespaces; `ipBlock` addresses (`except` carved out);
- a rule's `ports` empty means every port; a named port matches the server pod's container port of that name;
  `protocol` defaults to TCP, `endPort` makes a range;
- every namespace carries `kubernetes.io/metadata.name` (set by the API server since 1.22).

Whether an `ipBlock` applies to pod addresses is left to the network plugin, so the evaluator counts an ipBlock
that covers a pod's address as reaching it (it never under-reports reach). Traffic from the pod's own node is
always allowed by the API's rules; that path (host-network pods) is outside what policies can fence.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

NAMESPACE_NAME = "kubernetes.io/metadata.name"


@dataclass(frozen=True)
class Pod:
    namespace: str
    labels: dict[str, str] = field(default_factory=dict, hash=False)
    ports: dict[str, int] = field(default_factory=dict, hash=False)  # named container ports
    ip: str | None = None


@dataclass(frozen=True)
class Address:
    """Something outside the pod network: a node, the API server, the metadata service, the internet."""

    ip: str


Endpoint = Pod | Address


def selects(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """A LabelSelector: matchLabels and matchExpressions all hold; the empty selector selects everything."""
    selector = selector or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        present = key in labels
        if op == "In" and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


def _in_block(block: dict[str, Any], ip: str | None) -> bool:
    if ip is None:
        return False
    address = ipaddress.ip_address(ip)
    if address not in ipaddress.ip_network(block["cidr"]):
        return False
    return not any(address in ipaddress.ip_network(cidr) for cidr in block.get("except") or [])


class Network:
    def __init__(self, manifests: list[dict[str, Any]], namespace_labels: dict[str, dict[str, str]] | None = None):
        self.policies = [m for m in manifests if m.get("kind") == "NetworkPolicy"]
        self.namespaces: dict[str, dict[str, str]] = {}
        for m in manifests:
            if m.get("kind") == "Namespace":
                name = m["metadata"]["name"]
                self.namespaces[name] = {**(m["metadata"].get("labels") or {}), NAMESPACE_NAME: name}
        for name, labels in (namespace_labels or {}).items():
            self.namespaces.setdefault(name, {NAMESPACE_NAME: name}).update(labels)

    def _ns_labels(self, name: str) -> dict[str, str]:
        return self.namespaces.get(name, {NAMESPACE_NAME: name})

    def _selecting(self, pod: Pod, direction: str) -> list[dict[str, Any]]:
        found = []
        for policy in self.policies:
            spec = policy.get("spec") or {}
            if policy["metadata"].get("namespace") != pod.namespace or not selects(spec.get("podSelector"), pod.labels):
                continue
            types = spec.get("policyTypes") or (["Ingress", *(["Egress"] if spec.get("egress") else [])])
            if direction in types:
                found.append(policy)
        return found

    def _peer(self, peer: dict[str, Any], policy_ns: str, other: Endpoint) -> bool:
        if "ipBlock" in peer:
            return _in_block(peer["ipBlock"], other.ip)
        if not isinstance(other, Pod):
            return False
        if "namespaceSelector" in peer:
            if not selects(peer["namespaceSelector"], self._ns_labels(other.namespace)):
                return False
        elif other.namespace != policy_ns:
            return False
        return selects(peer.get("podSelector"), other.labels)

    @staticmethod
    def _port(rule: dict[str, Any], server: Endpoint, port: int, protocol: str) -> bool:
        entries = rule.get("ports") or []
        if not entries:
            return True
        for entry in entries:
            if entry.get("protocol", "TCP") != protocol:
                continue
            wanted = entry.get("port")
            if wanted is None:
                return True
            if isinstance(wanted, str):
                if isinstance(server, Pod) and server.ports.get(wanted) == port:
                    return True
                continue
            if wanted <= port <= entry.get("endPort", wanted):
                return True
        return False

    def _allowed(self, pod: Pod, direction: str, other: Endpoint, server: Endpoint, port: int, protocol: str) -> bool:
        policies = self._selecting(pod, direction)
        if not policies:
            return True  # not isolated in this direction
        key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
        for policy in policies:
            for rule in (policy.get("spec") or {}).get(key) or []:
                peers = rule.get(peers_key)
                peer_ok = not peers or any(self._peer(p, pod.namespace, other) for p in peers)
                if peer_ok and self._port(rule, server, port, protocol):
                    return True
        return False

    def can_connect(self, client: Endpoint, server: Endpoint, port: int, protocol: str = "TCP") -> bool:
        """Both ends' policies allow `client` to open `protocol`/`port` to `server`."""
        if isinstance(client, Pod) and not self._allowed(client, "Egress", server, server, port, protocol):
            return False
        return not isinstance(server, Pod) or self._allowed(server, "Ingress", client, server, port, protocol)
