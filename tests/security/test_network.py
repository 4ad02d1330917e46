"""From a team pod's seat: whom can it open a connection to, and who can open one to it?

The render's NetworkPolicies are evaluated with the API's rules (mlcluster.semantics.netpol, which cites
kubernetes.io/docs/concepts/services-networking/network-policies): another team's pods, the platform's data stores
(Prometheus, Grafana, the MLflow database, the object store, the hub's own database), nodes' kubelets and the
instance metadata service are out of reach; the platform's front doors (MLflow's API, the hub API) and, for
platform components, exactly the ports they need on team pods are in reach.
"""

from __future__ import annotations

import functools

import pytest
import yaml

from mlcluster.semantics.netpol import Address, Network, Pod, selects
from tests.conftest import rendered_profile, rendered_stack

# Ports platform components listen on (the pinned charts' defaults): data stores, UIs and controllers.
PLATFORM_PORTS = [22, 80, 443, 2049, 3000, 5000, 5432, 6379, 8000, 8080, 8081, 8265, 8333, 8888, 9090, 9093, 9333,
                  9443, 10250]
TEAM_PORTS = {"metrics": 9400, "http-metrics": 8080, "notebook": 8888, "http": 8080, "dashboard": 8265, "ssh": 22}


def renders():
    return {"local": lambda: rendered_profile("local"), "aws-gpu": lambda: rendered_profile("aws-gpu"),
            "onprem-gpu": lambda: rendered_profile("onprem-gpu"), "shared": lambda: rendered_stack("shared")}


@functools.cache
def world(name):
    r = renders()[name]()
    manifests = [yaml.safe_load(text) for path, text in r.files.items()
                 if path.startswith("manifests/") and not path.endswith(".patch.yaml")]
    releases = [yaml.safe_load(text) for path, text in r.files.items() if path.startswith("helm/")]
    teams = [m["metadata"]["name"] for m in manifests if m["kind"] == "Namespace"
             and "mlcluster.io/team" in m["metadata"].get("labels", {})]
    platform = sorted({rel["namespace"] for rel in releases} | {m["metadata"]["namespace"] for m in manifests
                                                                   if m["metadata"].get("namespace")} - set(teams))
    return r, Network(manifests), teams, platform


def team_pod(ns, ip=None):
    return Pod(ns, {"app": "anything", "mlcluster.io/team": ns}, TEAM_PORTS, ip)


@pytest.mark.parametrize("name", list(renders()))
def test_teams_cannot_reach_each_other_either_way(name):
    _, net, teams, _ = world(name)
    assert len(teams) >= 2
    for a in teams:
        for b in teams:
            if a != b:
                open_ = [p for p in [*TEAM_PORTS.values(), *PLATFORM_PORTS]
                         if net.can_connect(team_pod(a), team_pod(b, ip="10.42.3.4"), p)]
                assert open_ == [], f"{a} reaches {b} on {open_}"


@pytest.mark.parametrize("name", list(renders()))
def test_team_pods_reach_only_the_platforms_front_doors(name):
    _, net, teams, platform = world(name)
    reached = {(ns, port) for ns in platform for port in PLATFORM_PORTS
               if net.can_connect(team_pod(teams[0]), Pod(ns, {"app.kubernetes.io/name": "anything"}, {}), port)}
    expected = set()
    if "jupyterhub" in platform:
        expected.add(("jupyterhub", 8081))  # the hub API (notebook servers report activity)
    if "mlflow" in platform:
        expected.add(("mlflow", 5000))  # the tracking server (which proxies the artifact store)
    assert reached == expected
    # DNS, and nothing else in kube-system.
    dns = Pod("kube-system", {"k8s-app": "kube-dns"}, {})
    assert net.can_connect(team_pod(teams[0]), dns, 53, "UDP")
    assert not net.can_connect(team_pod(teams[0]), Pod("kube-system", {"k8s-app": "metrics-server"}, {}), 443)


ADDRESSES = {  # (a node's kubelet, a private data store, the API server) per substrate
    "aws-gpu": ("10.0.12.7", "10.0.40.5", ("10.0.1.9", 443)),
    "onprem-gpu": ("192.0.2.21", "192.0.2.30", ("192.0.2.10", 6443)),
    "local": ("192.168.49.2", "10.96.0.20", None),
    "shared": ("10.30.0.5", "172.20.0.9", None),  # 10.20/16 is the stack's egress allow-list
}


@pytest.mark.parametrize("name", list(renders()))
def test_no_path_to_nodes_metadata_or_private_stores(name):
    _, net, teams, _ = world(name)
    kubelet, store, api = ADDRESSES[name]
    pod = team_pod(teams[0])
    assert not net.can_connect(pod, Address(kubelet), 10250)
    assert not net.can_connect(pod, Address(store), 5432)  # RDS / a database on the site network
    assert not net.can_connect(pod, Address(store), 2049)  # EFS / NFS
    assert not net.can_connect(pod, Address("169.254.169.254"), 80)  # node credentials (IMDS)
    if api:  # through RBAC, with the pod's own service account only
        assert net.can_connect(pod, Address(api[0]), api[1])


def test_pod_identity_agent_is_reachable_on_eks_only():
    for name, expected in (("aws-gpu", True), ("onprem-gpu", False)):
        _, net, teams, _ = world(name)
        assert net.can_connect(team_pod(teams[0]), Address("169.254.170.23"), 80) is expected


def test_egress_to_the_internet_follows_the_tenancy_setting():
    _, open_net, open_teams, _ = world("onprem-gpu")
    assert open_net.can_connect(team_pod(open_teams[0]), Address("151.101.0.223"), 443)  # pip, Hugging Face…
    r, restricted, teams, _ = world("shared")
    assert r.result.profile.tenancy.egress == "restricted"
    assert not restricted.can_connect(team_pod(teams[0]), Address("151.101.0.223"), 443)
    allowed = r.result.profile.tenancy.egress_cidrs[0].split("/")[0]
    assert restricted.can_connect(team_pod(teams[0]), Address(allowed), 443)


@pytest.mark.parametrize("name", ["aws-gpu", "onprem-gpu"])
def test_platform_components_reach_team_pods_on_their_ports_only(name):
    _, net, teams, _ = world(name)
    pod = team_pod(teams[0])
    scraper = Pod("monitoring", {"app.kubernetes.io/name": "prometheus"}, {})
    assert net.can_connect(scraper, pod, TEAM_PORTS["metrics"])
    assert not net.can_connect(scraper, pod, TEAM_PORTS["notebook"])
    assert not net.can_connect(scraper, pod, 22)
    proxy = Pod("jupyterhub", {"component": "proxy"}, {})
    assert net.can_connect(proxy, pod, 8888) and not net.can_connect(proxy, pod, 8265)
    mlflow = Pod("mlflow", {"app": "mlflow"}, {})
    assert not any(net.can_connect(mlflow, pod, p) for p in [*TEAM_PORTS.values(), *PLATFORM_PORTS])
    if name == "onprem-gpu":  # the gateway routes to served models (KServe's predictor port)
        gateway = Pod("gateway", {"app": "traefik"}, {})
        assert net.can_connect(gateway, pod, 8080) and not net.can_connect(gateway, pod, 8888)


def test_the_evaluator_follows_the_api_rules():
    """Each rule of the API the evaluator relies on, on a hand-written policy set (the docs' examples)."""
    assert selects({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["x"]}]}, {})
    assert not selects({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {"b": "1"})
    policies = [
        {"kind": "NetworkPolicy", "metadata": {"name": "db", "namespace": "default"},
         "spec": {"podSelector": {"matchLabels": {"role": "db"}}, "policyTypes": ["Ingress"],
                  "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"project": "myproject"}},
                                         "podSelector": {"matchLabels": {"role": "frontend"}}},
                                        {"ipBlock": {"cidr": "172.17.0.0/16", "except": ["172.17.1.0/24"]}}],
                               "ports": [{"protocol": "TCP", "port": 6379}, {"port": "metrics"}]}]}},
        {"kind": "Namespace", "metadata": {"name": "myproject", "labels": {"project": "myproject"}}},
    ]
    net = Network(policies)
    db = Pod("default", {"role": "db"}, {"metrics": 9121})
    frontend = Pod("myproject", {"role": "frontend"})
    assert net.can_connect(frontend, db, 6379) and net.can_connect(frontend, db, 9121)
    assert not net.can_connect(frontend, db, 6380)
    assert not net.can_connect(Pod("myproject", {"role": "other"}), db, 6379)  # AND within one peer
    assert not net.can_connect(Pod("default", {"role": "frontend"}), db, 6379)  # wrong namespace
    assert net.can_connect(Address("172.17.0.5"), db, 6379) and not net.can_connect(Address("172.17.1.5"), db, 6379)
    assert not net.can_connect(frontend, db, 6379, "UDP")
    assert net.can_connect(frontend, Pod("default", {"role": "web"}), 1)  # not selected: not isolated
