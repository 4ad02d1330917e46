"""The team namespaces' admission policy (components/admission.py). The real API server evaluates its CEL in the
e2e loop (tests/e2e/test_engine_loop.py: a system-priority pod, a Service with externalIPs and a 2-GPU Job without
node affinity are refused; the same Job with it is accepted). Here: what it binds to, and that every example the
docs give passes the multi-GPU rule it enforces."""

from __future__ import annotations

import yaml

from mlcluster.components.admission import GPU_COUNT, POLICY, policy_manifests
from tests.conftest import ROOT, rendered_profile


def test_bound_to_every_team_namespace_and_nothing_else():
    policy, binding = policy_manifests()
    assert binding["spec"] == {"policyName": POLICY, "validationActions": ["Deny"], "matchResources": {
        "namespaceSelector": {"matchExpressions": [{"key": "mlcluster.io/team", "operator": "Exists"}]}}}
    assert policy["spec"]["failurePolicy"] == "Fail"
    kinds = {r for rule in policy["spec"]["matchConstraints"]["resourceRules"] for r in rule["resources"]}
    assert kinds == {"pods", "services", "jobs"}
    files = rendered_profile("aws-gpu").files
    assert "manifests/_cluster/validatingadmissionpolicy-mlcluster-team-workloads.yaml" in files


def multi_gpu_ok(spec: dict) -> bool:
    """The policy's rule, in Python: a container with more than one GPU needs a gpu.count selector."""
    many = any(int(str(c.get("resources", {}).get("limits", {}).get("nvidia.com/gpu", 0))) > 1
               for c in spec.get("containers", []))
    if not many:
        return True
    if GPU_COUNT in (spec.get("nodeSelector") or {}):
        return True
    terms = (((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution") or {}).get("nodeSelectorTerms") or []
    return bool(terms) and all(any(e["key"] == GPU_COUNT for e in t.get("matchExpressions", [])) for t in terms)


def test_every_docs_example_passes_the_multi_gpu_rule():
    job = yaml.safe_load((ROOT / "docs" / "examples" / "team-job.yaml").read_text())
    assert multi_gpu_ok(job["spec"]["template"]["spec"])
    for name in ("trainjob-2gpu.yaml", "trainjob-efa.yaml"):
        trainjob = list(yaml.safe_load_all((ROOT / "docs" / "examples" / name).read_text()))[-1]
        pod = trainjob["spec"]["runtimePatches"][0]["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"][0][
            "template"]["spec"]["template"]["spec"]
        gpus = trainjob["spec"]["trainer"]["resourcesPerNode"]["limits"]["nvidia.com/gpu"]
        assert multi_gpu_ok({**pod, "containers": [{"resources": {"limits": {"nvidia.com/gpu": gpus}}}]}), name
    assert not multi_gpu_ok({"containers": [{"resources": {"limits": {"nvidia.com/gpu": "2"}}}]})
