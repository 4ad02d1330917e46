"""Cross-references a render must satisfy, computed on its resources.json — what the objects do together:

- **CRDs before use.** Every custom resource, and every Helm release whose templates create custom resources
  (a ServiceMonitor, an HTTPRoute…) or whose controller needs them at start, waits — through its own
  dependencies, or its parents' — for the release or bundle that installs the CRDs of that API group (the
  catalog's `crds`). Otherwise the API server answers "no matches for kind", or a chart that checks
  `.Capabilities.APIVersions` silently renders nothing.
- **Namespaces before their contents.** Every namespaced object (and Helm release) whose namespace this stack
  creates waits for that Namespace; otherwise the API server answers "namespaces ... not found" on the first
  `pulumi up` (the engine creates resources as soon as their own dependencies are done).
- **Routes are served over TLS.** Every HTTPRoute (ours, and the ones charts render from our values) attaches
  to an HTTPS listener whose hostname, if any, matches, and whose certificate names the route's host; the
  plain-HTTP listener carries only the redirect (and ACME's solver routes).

A Pulumi resource waits for its explicit dependencies and, since its parent's URN resolves only after the
parent's own dependencies, for its parents' dependencies too (pulumi/runtime/resource.py).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from mlcluster.addons.catalog import catalog

HELM = "kubernetes:helm.sh/v3:Release"
CONFIG_FILE = "kubernetes:yaml/v2:ConfigFile"
BUILTIN_SUFFIXES = (".k8s.io",)
BUILTIN_GROUPS = {"", "v1", "apps", "batch", "policy", "autoscaling"}

# Custom resources a chart's templates create, by the values that turn them on (chart → [(values path, group)]).
# Each is the chart's own switch at the version we pin (the chart's values.yaml in ../shared/upstream/charts).
CHART_USES: dict[str, list[tuple[tuple[str, ...], str]]] = {
    "mlflow": [(("serviceMonitor", "enabled"), "monitoring.coreos.com")],
    "kueue": [(("enablePrometheus",), "monitoring.coreos.com")],
    "jupyterhub": [(("httpRoute", "enabled"), "gateway.networking.k8s.io")],
    "opencost": [(("opencost", "metrics", "serviceMonitor", "enabled"), "monitoring.coreos.com")],
    "cloudnative-pg": [(("monitoring", "podMonitorEnabled"), "monitoring.coreos.com")],
    "dcgm-exporter": [(("serviceMonitor", "enabled"), "monitoring.coreos.com")],
    "gpu-operator": [(("dcgmExporter", "serviceMonitor", "enabled"), "monitoring.coreos.com")],
    "kserve-resources": [(("kserve", "certManager", "enabled"), "cert-manager.io"),
                         (("kserve", "controller", "gateway", "ingressGateway", "enableGatewayApi"),
                          "gateway.networking.k8s.io")],
    "cert-manager": [(("config", "enableGatewayAPI"), "gateway.networking.k8s.io")],
    "traefik": [(("providers", "kubernetesGateway", "enabled"), "gateway.networking.k8s.io")],
    "gateway-helm": [((), "gateway.networking.k8s.io")],
}


@dataclass(frozen=True)
class Finding:
    name: str  # the Pulumi resource name
    message: str


def _group(api_version: str) -> str:
    return api_version.rpartition("/")[0]


def is_custom_group(group: str) -> bool:
    return (bool(group) and group not in BUILTIN_GROUPS and not group.endswith(BUILTIN_SUFFIXES)) or \
        group == "gateway.networking.k8s.io"


def _chart_name(inputs: dict[str, Any]) -> str:
    return str(inputs.get("chart", "")).rstrip("/").rsplit("/", 1)[-1]


def _get(values: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(values, dict) or key not in values:
            return None
        values = values[key]
    return values


def provided_groups(record: dict[str, Any]) -> tuple[str, ...]:
    """API groups whose CRDs this resource installs."""
    if record["type"] == HELM:
        entry = catalog().get(_chart_name(record["inputs"]))
        return entry.crds if entry else ()
    if record["type"] == CONFIG_FILE:
        return next((c.crds for c in catalog().values() if c.manifests and c.repository == record["inputs"].get(
            "file")), ())
    return ()


def used_groups(record: dict[str, Any]) -> set[str]:
    """API groups of the custom resources this resource is, or its chart creates with its values."""
    inputs = record.get("inputs") or {}
    if record["type"] == HELM:
        values = inputs.get("values") or {}
        return {group for path, group in CHART_USES.get(_chart_name(inputs), []) if not path or _get(values, path)}
    if record.get("custom") and record["type"].startswith("kubernetes:") and "apiVersion" in inputs:
        group = _group(inputs["apiVersion"])
        return {group} if is_custom_group(group) else set()
    return set()


class Graph:
    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.records = {r["urn"]: r for r in records}
        # dependents[b] ∋ a: a waits for b (b is a dependency or the parent of a).
        self.dependents: dict[str, list[str]] = {}
        for urn, record in self.records.items():
            direct = set(record.get("dependencies") or [])
            if record.get("parent") in self.records:
                direct.add(record["parent"])
            for dep in direct:
                self.dependents.setdefault(dep, []).append(urn)
        self._after: dict[frozenset[str], set[str]] = {}

    def after(self, sources: frozenset[str]) -> set[str]:
        """Every resource created after one of `sources`: whatever waits for it through its dependencies, its
        parents' and theirs, transitively. Walked forward from the sources (one set per question, not one closure
        per resource: at 1,000 teams the closures took hundreds of megabytes)."""
        if sources not in self._after:
            found: set[str] = set()
            stack = [d for s in sources for d in self.dependents.get(s, ())]
            while stack:
                urn = stack.pop()
                if urn not in found:
                    found.add(urn)
                    stack.extend(self.dependents.get(urn, ()))
            self._after[sources] = found
        return self._after[sources]

    def waits_for(self, urn: str, sources: frozenset[str]) -> bool:
        """Whether `urn` is created after at least one of `sources`."""
        return urn in self.after(sources)

    def crds_before_use(self) -> Iterator[Finding]:
        providers: dict[str, list[str]] = {}
        for urn, record in self.records.items():
            for group in provided_groups(record):
                providers.setdefault(group, []).append(urn)
        for urn, record in sorted(self.records.items()):
            for group in sorted(used_groups(record) - set(provided_groups(record))):
                sources = providers.get(group)
                if not sources:
                    yield Finding(record["name"], f"uses {group}, whose CRDs nothing in this stack installs")
                elif not self.waits_for(urn, frozenset(sources)):
                    yield Finding(record["name"], f"uses {group} but does not wait for its CRDs "
                                  f"({', '.join(self.records[s]['name'] for s in sources)})")


    def namespaces_before_contents(self) -> Iterator[Finding]:
        created: dict[str, str] = {}
        for urn, record in self.records.items():
            inputs = record.get("inputs") or {}
            if record["type"] == "kubernetes:core/v1:Namespace":
                created[(inputs.get("metadata") or {}).get("name", "")] = urn
        for urn, record in sorted(self.records.items()):
            inputs = record.get("inputs") or {}
            if record["type"] == HELM:
                namespace = inputs.get("namespace")
            elif record["type"].startswith("kubernetes:") and isinstance(inputs.get("metadata"), dict):
                namespace = inputs["metadata"].get("namespace")
            else:
                continue
            if namespace in created and not self.waits_for(urn, frozenset({created[namespace]})):
                yield Finding(record["name"], f"is created in namespace {namespace} but does not wait for it "
                              f"({self.records[created[namespace]]['name']})")


def _routes_and_gateways(records: list[dict[str, Any]]) -> tuple[list[dict], list[dict], dict[tuple[str, str], list]]:
    routes, gateways = [], []
    certificates: dict[tuple[str, str], list[str]] = {}  # (namespace, secret) → dnsNames
    for record in records:
        inputs = record.get("inputs") or {}
        kind = inputs.get("kind")
        if kind == "HTTPRoute":
            routes.append({"name": record["name"], **inputs})
        elif kind == "Gateway":
            gateways.append(inputs)
        elif kind == "Certificate":
            meta = inputs["metadata"]
            certificates[(meta.get("namespace", ""), inputs["spec"]["secretName"])] = inputs["spec"].get("dnsNames", [])
        elif record["type"] == HELM and _chart_name(inputs) == "jupyterhub":
            route = (inputs.get("values") or {}).get("httpRoute") or {}
            if route.get("enabled"):
                routes.append({"name": record["name"], "metadata": {"namespace": inputs["namespace"]},
                               "spec": {"parentRefs": [{"kind": "Gateway", **route.get("gateway", {})}],
                                        "hostnames": route.get("hostnames", [])}})
    return routes, gateways, certificates


def _host_matches(pattern: str, host: str) -> bool:
    return pattern == host or (pattern.startswith("*.") and fnmatch.fnmatchcase(host, pattern) and
                               host.count(".") == pattern.count("."))


def routes_served_over_tls(records: list[dict[str, Any]]) -> Iterator[Finding]:
    routes, gateways, certificates = _routes_and_gateways(records)
    by_name = {(g["metadata"].get("namespace", ""), g["metadata"]["name"]): g for g in gateways}
    for route in routes:
        namespace = route["metadata"].get("namespace", "")
        for ref in route["spec"].get("parentRefs", []):
            gateway = by_name.get((ref.get("namespace", namespace), ref["name"]))
            if gateway is None:
                yield Finding(route["name"], f"attaches to Gateway {ref['name']}, which this stack does not have")
                continue
            gw_ns = gateway["metadata"].get("namespace", "")
            listeners = [listener for listener in gateway["spec"]["listeners"]
                         if ref.get("sectionName") in (None, listener["name"])
                         and (listener.get("allowedRoutes", {}).get("namespaces", {}).get("from") == "All"
                              or namespace == gw_ns)]
            redirect = any(f.get("type") == "RequestRedirect" for rule in route["spec"].get("rules", [])
                           for f in rule.get("filters", []))
            if redirect:
                continue
            if any(listener["protocol"] == "HTTP" for listener in listeners):
                yield Finding(route["name"], "is served over plain HTTP (it attaches to an HTTP listener); attach "
                              "it to the HTTPS listener (sectionName: https)")
            secure = [listener for listener in listeners if listener["protocol"] == "HTTPS"]
            for host in route["spec"].get("hostnames", []):
                matching = [listener for listener in secure
                            if "hostname" not in listener or _host_matches(listener["hostname"], host)]
                if not matching:
                    yield Finding(route["name"], f"host {host} matches no HTTPS listener, so the route is not "
                                  "accepted")
                    continue
                names = [n for listener in matching for ref_ in listener["tls"]["certificateRefs"]
                         for n in certificates.get((gw_ns, ref_["name"]), [])]
                if not any(_host_matches(n, host) for n in names):
                    yield Finding(route["name"], f"host {host} is not named by the HTTPS listener's certificate")


def cross_references(records: list[dict[str, Any]]) -> list[Finding]:
    graph = Graph(records)
    return [*graph.crds_before_use(), *graph.namespaces_before_contents(), *routes_served_over_tls(records)]
