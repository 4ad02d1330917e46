"""The controllers behind a data scientist's journey, on the local control plane: Kueue (the newest version the Go
module proxy serves, run as a local process with the configuration our add-on renders, its webhooks pointed at
127.0.0.1), kube-scheduler (started with the cluster) and kwok, which keeps fake nodes Ready and runs the pods
bound to them. Nodes carry each pool's labels, taints and GPU capacity exactly as the profile's pools advertise
them (components/cluster.py `PoolFacts`).

Kueue's CRDs and webhook definitions and kwok's stages are read from the modules the toolchain was built from
(Go's module cache), never copied into the project.
"""

from __future__ import annotations

import contextlib
import copy
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml

from mlcluster.components.cluster import PoolFacts
from mlcluster.profiles.gpu_products import pool_resource
from mlcluster.profiles.instance_types import GPU_INSTANCES
from tests.e2e.cluster import LocalCluster, free_port

KUEUE_MODULE = ("sigs.k8s.io/kueue", "v0.17.0")
KWOK_MODULE = ("sigs.k8s.io/kwok", "v0.8.0")
FAKE = "kwok.x-k8s.io/node"


def module_dir(module: tuple[str, str]) -> Path:
    root = subprocess.run(["go", "env", "GOMODCACHE"], capture_output=True, text=True, check=True).stdout.strip()
    path = Path(root) / f"{module[0]}@{module[1]}"
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: the module the toolchain was built from is not in Go's module cache")
    return path


def api_path(obj: dict[str, Any], collection: bool = False) -> str:
    group_version = obj["apiVersion"]
    base = f"/api/{group_version}" if "/" not in group_version else f"/apis/{group_version}"
    irregular = {"NetworkPolicy": "networkpolicies", "WorkloadPriorityClass": "workloadpriorityclasses",
                 "PriorityClass": "priorityclasses", "MutatingWebhookConfiguration": "mutatingwebhookconfigurations",
                 "ValidatingWebhookConfiguration": "validatingwebhookconfigurations"}
    kind = obj["kind"].lower()
    plural = irregular.get(obj["kind"]) or (kind[:-1] + "ies" if kind.endswith("y") else
                                            kind + ("es" if kind.endswith("s") else "s"))
    ns = obj["metadata"].get("namespace")
    path = f"{base}{f'/namespaces/{ns}' if ns else ''}/{plural}"
    return path if collection else f"{path}/{obj['metadata']['name']}"


def create(cluster: LocalCluster, obj: dict[str, Any]) -> dict[str, Any]:
    status, body = cluster.request("POST", api_path(obj, collection=True), obj)
    if status not in (200, 201):
        raise AssertionError(f"creating {obj['kind']} {obj['metadata']['name']}: {status} {body}")
    return body


def install_crds(cluster: LocalCluster, folder: Path) -> None:
    for path in sorted(folder.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        create(cluster, crd)
    deadline = time.time() + 60
    for path in sorted(folder.glob("*.yaml")):
        name = yaml.safe_load(path.read_text())["metadata"]["name"]
        while time.time() < deadline:
            _, body = cluster.request("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
            if any(c["type"] == "Established" and c["status"] == "True" for c in body.get("status", {}).get(
                    "conditions", [])):
                break
            time.sleep(0.2)


def _webhook_certificate(cluster: LocalCluster) -> Path:
    """A serving certificate for 127.0.0.1 from the cluster's CA, where Kueue's webhook server reads it."""
    folder = cluster.home / "kueue-certs"
    folder.mkdir(exist_ok=True)
    subprocess.run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=kueue-webhook", "-keyout",
                    str(folder / "tls.key"), "-out", str(folder / "tls.csr")], check=True, capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", str(folder / "tls.csr"), "-CA", str(cluster.home / "ca.crt"),
                    "-CAkey", str(cluster.home / "ca.key"), "-CAcreateserial", "-days", "2", "-extfile",
                    str(cluster.home / "san.cnf"), "-out", str(folder / "tls.crt")], check=True, capture_output=True)
    return folder


METRICS_CERTS = Path("/etc/kueue/metrics/certs")


def _metrics_certificates(cluster: LocalCluster) -> None:
    """Kueue v0.17.0 reads metrics certificates from a fixed path when its internal certificate management is
    off (cmd/kueue/main.go), even with metrics disabled. The harness puts the webhook's there only when the
    folder does not exist yet, and `remove_metrics_certificates` takes exactly what it made away again."""
    if METRICS_CERTS.exists():
        return
    METRICS_CERTS.mkdir(parents=True)
    for name in ("tls.crt", "tls.key"):
        (METRICS_CERTS / name).write_bytes((cluster.home / "kueue-certs" / name).read_bytes())
    (METRICS_CERTS / ".made-by-mlcluster-journey").write_text("removed when the journey ends\n")


def remove_metrics_certificates() -> None:
    marker = METRICS_CERTS / ".made-by-mlcluster-journey"
    if marker.exists():
        for name in ("tls.crt", "tls.key", marker.name):
            (METRICS_CERTS / name).unlink(missing_ok=True)
        for folder in (METRICS_CERTS, METRICS_CERTS.parent, METRICS_CERTS.parent.parent):
            with contextlib.suppress(OSError):
                folder.rmdir()


def start_kueue(cluster: LocalCluster, manager_config: str) -> subprocess.Popen:
    """Kueue with our rendered configuration; only where it listens and how it gets certificates change."""
    source = module_dir(KUEUE_MODULE)
    install_crds(cluster, source / "config" / "components" / "crd" / "bases")
    create(cluster, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kueue-system"}})
    port = free_port()
    config = yaml.safe_load(manager_config)
    config["namespace"] = "kueue-system"
    config["webhook"] = {"port": port, "host": "127.0.0.1", "certDir": str(_webhook_certificate(cluster))}
    config["internalCertManagement"] = {"enable": False}
    config["leaderElection"] = {"leaderElect": False}
    config["health"] = {"healthProbeBindAddress": f"127.0.0.1:{free_port()}"}
    config["metrics"] = {"bindAddress": "0"}
    (cluster.home / "kueue.yaml").write_text(yaml.safe_dump(config))
    ca = cluster.home.joinpath("ca.crt").read_bytes()
    import base64

    bundle = base64.b64encode(ca).decode()
    for doc in yaml.safe_load_all((source / "config" / "components" / "webhook" / "manifests.yaml").read_text()):
        if not doc:
            continue
        doc = copy.deepcopy(doc)
        doc["metadata"]["name"] = "kueue-" + doc["metadata"]["name"]
        for hook in doc["webhooks"]:
            path = hook["clientConfig"]["service"]["path"]
            hook["clientConfig"] = {"url": f"https://127.0.0.1:{port}{path}", "caBundle": bundle}
            if hook["name"].startswith(("mpod", "vpod", "mdeployment", "vdeployment", "mstatefulset",
                                        "vstatefulset")):
                hook["namespaceSelector"] = {"matchExpressions": [
                    {"key": "kubernetes.io/metadata.name", "operator": "NotIn",
                     "values": ["kube-system", "kueue-system"]}]}
        create(cluster, doc)
    _metrics_certificates(cluster)
    # The visibility API server needs certificates at a fixed path too; nothing here uses it.
    cluster._spawn("kueue", ["kueue", f"--config={cluster.home / 'kueue.yaml'}",
                             "--feature-gates=VisibilityOnDemand=false", f"--kubeconfig={cluster.kubeconfig_path}"])
    deadline = time.time() + 120
    while time.time() < deadline:  # the webhook answers once Kueue serves: a dry-run create goes through it
        status, _ = cluster.request("POST", "/apis/kueue.x-k8s.io/v1beta2/resourceflavors?dryRun=All", {
            "apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ResourceFlavor", "metadata": {"name": "probe"}})
        if status in (200, 201):
            return cluster.processes["kueue"]
        if cluster.processes["kueue"].poll() is not None:
            raise RuntimeError(f"kueue exited: {(cluster.home / 'kueue.log').read_text()[-4000:]}")
        time.sleep(1)
    raise TimeoutError(f"kueue's webhook never answered: {(cluster.home / 'kueue.log').read_text()[-4000:]}")


def start_kwok(cluster: LocalCluster) -> None:
    """kwok keeping nodes labelled `kwok.x-k8s.io/node=fake` Ready and running what is bound to them."""
    stages = module_dir(KWOK_MODULE) / "kustomize" / "stage"
    docs = [(stages / "node" / "fast" / "node-initialize.yaml").read_text(),
            *[(stages / "pod" / "fast" / name).read_text() for name in ("pod-ready.yaml", "pod-delete.yaml")]]
    (cluster.home / "kwok.yaml").write_text("\n---\n".join(docs))
    cluster._spawn("kwok", ["kwok", f"--kubeconfig={cluster.kubeconfig_path}", f"--config={cluster.home / 'kwok.yaml'}",
                            f"--manage-nodes-with-label-selector={FAKE}=fake", "--server-address=127.0.0.1:0",
                            "--node-lease-duration-seconds=40"])


def nodes_for(profile: Any) -> list[dict[str, Any]]:
    """Every node of every pool at its max size, as its pool advertises itself."""
    made = []
    for pool in profile.node_pools:
        facts = PoolFacts.from_pool(pool)
        capacity = {"cpu": "192", "memory": "2048Gi", "pods": "250", "ephemeral-storage": "2Ti"}
        resource = pool_resource(pool)
        if resource is not None:
            capacity[resource] = str(facts.gpus_per_node)
        efa = max((GPU_INSTANCES[t].efa_interfaces for t in pool.instance_types if t in GPU_INSTANCES
                   and GPU_INSTANCES[t].efa), default=0) if pool.efa else 0
        if efa:
            capacity["vpc.amazonaws.com/efa"] = str(efa)
        for i in range(max(pool.max, 1)):
            name = f"{pool.name}-{i}"
            made.append({"apiVersion": "v1", "kind": "Node", "metadata": {
                "name": name, "labels": {**facts.labels, "kubernetes.io/hostname": name, FAKE: "fake",
                                         "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"},
                "annotations": {"node.alpha.kubernetes.io/ttl": "0", "kwok.x-k8s.io/node": "fake"}},
                "spec": {"taints": [dict(t) for t in facts.taints]},
                "status": {"capacity": capacity, "allocatable": capacity}})
    return made


def wait_for(condition: Any, timeout: float = 60, every: float = 0.5) -> Any:
    deadline = time.time() + timeout
    while time.time() < deadline:
        with contextlib.suppress(KeyError, IndexError, TypeError):
            value = condition()
            if value:
                return value
        time.sleep(every)
    return None


def dump(obj: Any) -> str:
    return json.dumps(obj, indent=1, sort_keys=True)[:3000]
