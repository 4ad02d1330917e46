"""On-prem add-ons: MetalLB, storage, cert-manager, the Gateway API and the object store."""

from __future__ import annotations

import functools

import pytest
import yaml

from mlcluster.errors import ConfigError
from mlcluster.profiles.effective import load_profile
from mlcluster.render import render
from tests.conftest import rendered_profile, rendered_stack
from tests.upstream import unknown_value_keys


@functools.cache
def variant(*sets):
    return render(profile="onprem-gpu", sets=sets)


def release(rendered, name):
    return yaml.safe_load(rendered.files[f"helm/{name}.yaml"])


def manifest(rendered, path):
    return yaml.safe_load(rendered.files[path])


@pytest.mark.parametrize(("rendered", "release_name", "chart"), [
    (lambda: rendered_profile("onprem-gpu"), "metallb", "metallb"),
    (lambda: rendered_profile("onprem-gpu"), "cert-manager", "cert-manager"),
    (lambda: rendered_profile("onprem-gpu"), "traefik", "traefik"),
    (lambda: variant("addons.gateway.controller=envoy-gateway"), "envoy-gateway", "gateway-helm"),
    (lambda: variant("addons.storage.provider=nfs", "addons.storage.nfs_server=192.0.2.50"), "nfs",
     "nfs-subdir-external-provisioner"),
    (lambda: variant("addons.storage.provider=longhorn"), "longhorn", "longhorn"),
    (lambda: rendered_profile("onprem-gpu"), "seaweedfs", "seaweedfs"),
], ids=["metallb", "cert-manager", "traefik", "envoy-gateway", "nfs", "longhorn", "seaweedfs"])
def test_values_keys_exist_in_the_pinned_charts(rendered, release_name, chart):
    values = release(rendered(), release_name)["values"]
    assert unknown_value_keys(chart, values) == []


def test_metallb_l2_pool_and_bgp():
    r = rendered_profile("onprem-gpu")
    pool = manifest(r, "manifests/node-agents/ipaddresspool-mlcluster.yaml")
    assert pool["spec"]["addresses"] == ["192.0.2.200-192.0.2.220"]
    assert "manifests/node-agents/l2advertisement-mlcluster.yaml" in r.files
    bgp = variant("addons.metallb.mode=bgp", "addons.metallb.my_asn=64512",
                  "addons.metallb.peers=[{address: 192.0.2.1, asn: 64513}]")
    peer = manifest(bgp, "manifests/node-agents/bgppeer-peer-0.yaml")
    assert peer["spec"] == {"myASN": 64512, "peerASN": 64513, "peerAddress": "192.0.2.1"}


def test_gateway_with_tls_from_cert_manager():
    r = rendered_profile("onprem-gpu")
    gateway = manifest(r, "manifests/gateway/gateway-mlcluster.yaml")["spec"]
    https = next(listener for listener in gateway["listeners"] if listener["name"] == "https")
    assert https["tls"]["certificateRefs"] == [{"kind": "Secret", "name": "mlcluster-gateway-tls"}]
    assert https["port"] == 8443  # Traefik's websecure entrypoint
    cert = manifest(r, "manifests/gateway/certificate-mlcluster-gateway-tls.yaml")["spec"]
    # Every routed host, and the wildcard KServe's run-time names need (the private CA can issue it).
    assert cert["dnsNames"] == ["argo.ml.lab.example", "jupyter.ml.lab.example", "ml.lab.example",
                                "mlflow.ml.lab.example", "*.ml.lab.example"]
    envoy = manifest(variant("addons.gateway.controller=envoy-gateway"), "manifests/gateway/gateway-mlcluster.yaml")
    assert {listener["port"] for listener in envoy["spec"]["listeners"]} == {80, 443}


def test_self_signed_ca_and_acme_issuers():
    r = rendered_profile("onprem-gpu")
    assert manifest(r, "manifests/_cluster/clusterissuer-mlcluster.yaml")["spec"] == {
        "ca": {"secretName": "mlcluster-ca"}}
    colo = rendered_stack("colo")
    acme = manifest(colo, "manifests/_cluster/clusterissuer-mlcluster.yaml")["spec"]["acme"]
    assert acme["email"] == "platform@example.org"
    assert acme["solvers"][0]["http01"]["gatewayHTTPRoute"]["parentRefs"][0]["name"] == "mlcluster"


def test_team_namespaces_accept_the_gateway_and_monitoring_on_their_ports():
    policy = manifest(rendered_profile("onprem-gpu"), "manifests/team-vision/networkpolicy-allow-ingress.yaml")
    sources = {rule["from"][0]["namespaceSelector"]["matchExpressions"][0]["values"][0]:
               [p["port"] for p in rule["ports"]] for rule in policy["spec"]["ingress"][1:]}
    # Route to served models, reach notebooks and Ray dashboards, scrape named metrics ports.
    assert sources == {"gateway": [8080], "jupyterhub": [8888], "kuberay": [8265],
                       "monitoring": ["metrics", "http-metrics"]}


def test_storage_classes_flow_into_the_cluster_handle():
    r = variant("addons.storage.provider=longhorn")
    spec = release(r, "kube-prometheus-stack")["values"]["prometheus"]["prometheusSpec"]
    assert spec["storageSpec"]["volumeClaimTemplate"]["spec"]["storageClassName"] == "longhorn"
    retain = manifest(r, "manifests/_cluster/storageclass-longhorn-retain.yaml")
    assert retain["reclaimPolicy"] == "Retain" and retain["parameters"]["numberOfReplicas"] == "3"
    seaweed = release(rendered_profile("onprem-gpu"), "seaweedfs")["values"]
    assert seaweed["volume"]["dataDirs"][0]["storageClass"] == "longhorn-retain"


def test_object_store_credentials_are_secret():
    r = rendered_profile("onprem-gpu")
    outputs = r.result.outputs
    assert outputs["objectStoreAccessKey"][1] and outputs["objectStoreSecretKey"][1]
    secret = manifest(r, "manifests/object-store/secret-seaweedfs-s3-config.yaml")
    assert secret["stringData"] == {"seaweedfs_s3_config": "[secret]"}
    assert release(r, "seaweedfs")["values"]["s3"]["existingConfigSecret"] == "seaweedfs-s3-config"


@pytest.mark.parametrize(("profile", "sets", "field", "message"), [
    ("onprem-gpu", ("addons.metallb.addresses=[nonsense]",), "addons.metallb.addresses[0]", "a range"),
    ("onprem-gpu", ("addons.metallb.mode=bgp",), "addons.metallb.peers", "my_asn"),
    ("onprem-gpu", ("addons.storage.provider=nfs",), "addons.storage.nfs_server", "NFS server"),
    ("onprem-gpu", ("substrate.distribution=rke2", "substrate.version=v1.35.1+rke2r1",
                    "addons.storage.provider=local-path"), "addons.storage.provider",
     "only k3s bundles local-path"),
    ("onprem-gpu", ("addons.cert_manager.enabled=false",), "addons.gateway.enabled", "turn on addons.cert_manager"),
    ("onprem-gpu", ("addons.cert_manager.issuer=acme",), "addons.cert_manager.acme_email", "email"),
    ("aws-dev", ("addons.metallb.enabled=true", "addons.metallb.addresses=[10.0.0.1/32]"), "addons.metallb.enabled",
     "AWS load balancers"),
    ("aws-dev", ("addons.object_store.enabled=true",), "addons.object_store.enabled", "artifacts bucket"),
])
def test_bad_onprem_settings(profile, sets, field, message):
    with pytest.raises(ConfigError) as err:
        load_profile(profile, sets=sets)
    found = {p.field: p for p in err.value.problems}
    assert message in found[field].allowed
