"""The real engine loop (`make e2e`): the Pulumi CLI and the Kubernetes provider, built from their Go modules,
deploy stacks/Pulumi.e2e.yaml to a local kube-apiserver (etcd, kube-controller-manager) and take it away again:

1. `pulumi preview --diff` with the project's CrossGuard pack (the real analyzer);
2. `pulumi up`, then every object the render shows is read back from the API server, field by field;
3. `pulumi up --expect-no-changes`: no perpetual diffs;
4. a profile change (a new team, a bigger quota): `pulumi preview` plans exactly what `mlcluster diff` predicted;
5. `pulumi destroy` leaves nothing of ours; RBAC invariants are asked of the real API server first
   (SubjectAccessReview).

Skipped, with one line saying how to build it, when the toolchain is not in its cache (e2e/toolchain/key.py).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.e2e import charts
from tests.e2e.cluster import local_cluster, toolchain_bin
from tests.e2e.controllers import api_path
from tests.e2e.engine import STACK, Project

pytestmark = pytest.mark.e2e

PART_OF = "app.kubernetes.io/part-of=mlcluster"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    bin_dir = toolchain_bin()
    if bin_dir is None:
        pytest.skip("e2e toolchain not built: run `make e2e-toolchain` (tens of minutes once), then `make e2e`")
    tmp = tmp_path_factory.mktemp("e2e")
    with local_cluster(tmp / "cluster", bin_dir) as cluster:
        project = Project.copy(tmp, bin_dir, cluster.kubeconfig_path)
        charts.write_stub_charts(project.path / "build" / "e2e" / "charts", ["kueue", "sealed-secrets"])
        project.init()
        yield cluster, project


def manifests_of(render_dir: Path) -> dict[str, dict]:
    return {str(p.relative_to(render_dir)): yaml.safe_load(p.read_text())
            for p in sorted((render_dir / "manifests").rglob("*.yaml"))}


def subset_mismatches(want, have, path="") -> list[str]:
    """Every field of `want` (the render) that the live object does not hold with the same value."""
    if isinstance(want, dict):
        if not isinstance(have, dict):
            return [f"{path}: {have!r}"]
        return [m for k, v in want.items() for m in subset_mismatches(v, have.get(k), f"{path}.{k}")]
    if isinstance(want, list):
        if not isinstance(have, list) or len(want) != len(have):
            return [f"{path}: {have!r}"]
        pairs = enumerate(zip(want, have, strict=True))
        return [m for i, (a, b) in pairs for m in subset_mismatches(a, b, f"{path}[{i}]")]
    if str(want) != str(have) and not (isinstance(want, int | float) and str(float(want)) == str(have)):
        return [f"{path}: render {want!r}, live {have!r}"]
    return []


def test_1_preview_with_the_policy_pack(world):
    _, project = world
    launcher = project.path / "build" / "e2e" / "policy-pack"
    launcher.write_text(f"#!/bin/sh\nexec {sys.executable} -u {project.path / 'policies' / '__main__.py'} \"$@\"\n")
    launcher.chmod(0o755)
    done = project.run("preview", "--diff", "--policy-pack", str(launcher))
    assert "Policies:" in done.stdout or "mlcluster" in done.stdout, done.stdout[-3000:]
    assert "error" not in done.stderr.lower(), done.stderr[-3000:]


def test_2_up_creates_what_the_render_shows(world, tmp_path):
    cluster, project = world
    project.run("up", "--yes", "--skip-preview")
    rendered = project.mlcluster("render", "--stack", STACK, "--out", str(tmp_path / "render"))
    assert rendered.returncode == 0, rendered.stderr
    manifests = manifests_of(tmp_path / "render")
    assert any(m["kind"] == "ClusterQueue" for m in manifests.values())
    problems = []
    for path, manifest in manifests.items():
        if path.endswith(".patch.yaml"):
            continue
        status, live = cluster.request("GET", api_path(manifest))
        if status != 200:
            problems.append(f"{path}: HTTP {status}")
            continue
        body = {k: v for k, v in manifest.items() if k not in ("apiVersion", "kind")}
        body["metadata"] = {k: v for k, v in manifest["metadata"].items() if k in ("name", "namespace", "labels")}
        problems += [f"{path}{m}" for m in subset_mismatches(body, live)]
    assert problems == []
    status, sa = cluster.request("GET", "/api/v1/namespaces/team-vision/serviceaccounts/default")
    assert status == 200 and sa.get("automountServiceAccountToken") is False  # the server-side-apply patch


def test_3_a_second_up_changes_nothing(world):
    _, project = world
    done = project.run("up", "--yes", "--expect-no-changes", check=False)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def test_4_preview_plans_what_mlcluster_diff_predicted(world, tmp_path):
    _, project = world
    assert project.mlcluster("render", "--stack", STACK, "--out", str(tmp_path / "before")).returncode == 0
    stack_file = project.path / "stacks" / f"Pulumi.{STACK}.yaml"
    config = yaml.safe_load(stack_file.read_text())
    overrides = config["config"]["mlcluster:overrides"]
    overrides["teams"] = [{"name": "vision", "quota": {"cpu": "12"}},
                          {"name": "speech", "members": ["erin@example.com"],
                           "quota": {"cpu": "8", "memory": "32Gi", "storage": "50Gi", "pvcs": 10}}]
    stack_file.write_text(yaml.safe_dump(config, sort_keys=False))
    assert project.mlcluster("render", "--stack", STACK, "--out", str(tmp_path / "after")).returncode == 0
    predicted = project.mlcluster("diff", "--from", str(tmp_path / "before"), "--to", str(tmp_path / "after"))
    assert predicted.returncode == 1, predicted.stderr
    from mlcluster.review.compare import compare

    diff = compare(json.loads((tmp_path / "before" / "resources.json").read_text()),
                   json.loads((tmp_path / "after" / "resources.json").read_text()), "before", "after")
    expected = {(c.urn.replace("urn:pulumi:e2e::", f"urn:pulumi:{STACK}::"), c.action) for c in diff.changes}
    plan = json.loads(project.run("preview", "--json").stdout)
    ops = {"create": "add", "delete": "remove", "update": "change", "replace": "replace",
           "create-replacement": "replace", "delete-replaced": "replace"}
    planned = {(step["urn"], ops[step["op"]]) for step in plan["steps"] if step["op"] in ops}
    assert planned == expected, {"only pulumi": sorted(planned - expected), "only diff": sorted(expected - planned)}
    assert any(a == "add" and "speech" in u for u, a in expected)
    project.run("up", "--yes", "--skip-preview")


def test_5_rbac_holds_on_the_real_api_server(world):
    """A team member (from the render's RoleBinding) may not weaken their namespace's isolation, nor read other
    namespaces' secrets: asked of the API server's authorizer with SubjectAccessReviews."""
    cluster, _ = world
    from tests.security.rbac_invariants import FORBIDDEN_FOR_MEMBERS

    for (verb, group, resource, namespace) in FORBIDDEN_FOR_MEMBERS("team-vision", "team-nlp"):
        status, review = cluster.request("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", {
            "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": {"user": "alice@example.com", "groups": ["system:authenticated"],
                     "resourceAttributes": {"verb": verb, "group": group, "resource": resource,
                                            "namespace": namespace}}})
        assert status == 201, review
        assert review["status"]["allowed"] is False, (verb, group, resource, namespace)
    status, review = cluster.request("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", {
        "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {"user": "alice@example.com", "groups": ["system:authenticated"], "resourceAttributes": {
            "verb": "create", "group": "batch", "resource": "jobs", "namespace": "team-vision"}}})
    assert review["status"]["allowed"] is True, "members still run jobs in their namespace"


def test_5b_the_api_server_refuses_what_the_admission_policy_forbids(world):
    """The ValidatingAdmissionPolicy evaluated by the real API server's CEL (components/admission.py)."""
    cluster, _ = world
    container = {"name": "c", "image": "registry.example/x:1"}
    gpu2 = {**container, "resources": {"limits": {"nvidia.com/gpu": "2"}, "requests": {"nvidia.com/gpu": "2"}}}
    refused = {
        "priority": ("/api/v1/namespaces/team-vision/pods", {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "vip"},
            "spec": {"priorityClassName": "system-node-critical", "containers": [container]}}),
        "externalIPs": ("/api/v1/namespaces/team-vision/services", {
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": "capture"},
            "spec": {"externalIPs": ["10.0.0.1"], "ports": [{"port": 80}]}}),
        "two GPUs anywhere": ("/apis/batch/v1/namespaces/team-vision/jobs", {
            "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "two"},
            "spec": {"suspend": True, "template": {"spec": {"restartPolicy": "Never", "containers": [gpu2]}}}}),
    }
    for what, (path, body) in refused.items():
        status, answer = cluster.request("POST", path, body)
        assert status in (403, 422), (what, status, answer)
        assert "mlcluster-team-workloads" in answer.get("message", ""), (what, answer)
    pinned = json.loads(json.dumps(refused["two GPUs anywhere"][1]))
    terms = [{"matchExpressions": [{"key": "nvidia.com/gpu.count", "operator": "Gt", "values": ["1"]}]}]
    pinned["spec"]["template"]["spec"]["affinity"] = {
        "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}}
    status, answer = cluster.request("POST", "/apis/batch/v1/namespaces/team-vision/jobs", pinned)
    assert status == 201, answer
    cluster.request("DELETE", "/apis/batch/v1/namespaces/team-vision/jobs/two?propagationPolicy=Background")


def test_6_destroy_leaves_nothing_of_ours(world):
    cluster, project = world
    project.run("destroy", "--yes", "--skip-preview")
    leftovers = []
    for path in ("/api/v1/namespaces", "/apis/kueue.x-k8s.io/v1beta2/clusterqueues",
                 "/apis/rbac.authorization.k8s.io/v1/clusterroles", "/apis/kueue.x-k8s.io/v1beta2/resourceflavors"):
        status, listing = cluster.request("GET", f"{path}?labelSelector={PART_OF}")
        if status == 200:
            leftovers += [f"{path}/{i['metadata']['name']}" for i in listing.get("items", [])
                          if i["metadata"].get("deletionTimestamp") is None]
    assert leftovers == []
    assert "resources" not in json.loads(project.cli("stack", "export", "--stack", STACK).stdout).get(
        "deployment", {}) or len(json.loads(project.cli("stack", "export", "--stack", STACK).stdout)[
            "deployment"].get("resources", [])) <= 1  # only the stack itself


def test_7_cleanup(world):
    _, project = world
    shutil.rmtree(project.home, ignore_errors=True)
    subprocess.run(["true"], check=True)
