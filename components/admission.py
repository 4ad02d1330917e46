"""What the API server refuses in team namespaces, whoever asks: a ValidatingAdmissionPolicy (CEL, GA since
Kubernetes 1.30) bound to every namespace with the team label. RBAC says which kinds a member may create; this
says which objects of those kinds are not acceptable there:

- **No pod priority.** A pod naming a PriorityClass (`system-node-critical`, or any class a chart installed) would
  preempt other teams' and the platform's pods and skip the queue's order; team work is ordered by Kueue's
  WorkloadPriorityClasses (`kueue.x-k8s.io/priority-class`), which never change a pod's priority.
- **No `externalIPs` on Services** (CVE-2020-8554: a Service claiming another's address captures its traffic).
- **Several whole GPUs need a node that has them.** Kueue places a workload on a pool by quota, and only an
  explicit `nvidia.com/gpu.count` node selector or affinity keeps a 2- or 8-GPU pod off pools of smaller nodes
  (it would be admitted there and never scheduled). The policy refuses such a pod or Job template without one,
  with a message that shows the line to add; notebooks and the docs' examples carry it.
"""

from __future__ import annotations

from typing import Any

from mlcluster.components import k8s as objects

POLICY = "mlcluster-team-workloads"
TEAM_LABEL = "mlcluster.io/team"
GPU = "'nvidia.com/gpu'"
GPU_COUNT = "nvidia.com/gpu.count"

# A pod spec `s` that asks for more than one whole GPU in some container must select nodes by GPU count.
_MULTI_GPU = (
    f"s.containers.all(c, !has(c.resources) || !has(c.resources.limits) || !({GPU} in c.resources.limits) || "
    f"!quantity(c.resources.limits[{GPU}]).isGreaterThan(quantity('1'))) || "
    f"(has(s.nodeSelector) && '{GPU_COUNT}' in s.nodeSelector) || "
    "(has(s.affinity) && has(s.affinity.nodeAffinity) && "
    "has(s.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution) && "
    "s.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms.all(t, "
    f"has(t.matchExpressions) && t.matchExpressions.exists(e, e.key == '{GPU_COUNT}')))"
)
MULTI_GPU_MESSAGE = ("a container asks for more than one whole GPU, so the pod must select nodes that have them: "
                     "add node affinity `nvidia.com/gpu.count Gt <GPUs-1>` (docs/data-scientists.md)")


def _spec(kind: str) -> str:
    return "object.spec" if kind == "Pod" else "object.spec.template.spec"


def policy_manifests() -> list[dict[str, Any]]:
    rules = [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
              "resources": ["pods", "services"]},
             {"apiGroups": ["batch"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
              "resources": ["jobs"]}]
    validations = [
        {"expression": "request.kind.kind != 'Pod' || !has(object.spec.priorityClassName) || "
                       "object.spec.priorityClassName == ''",
         "message": "pods in team namespaces run at the default priority; order work with the queue's priority "
                    "classes (label kueue.x-k8s.io/priority-class: interactive, training or batch)",
         "reason": "Forbidden"},
        {"expression": "request.kind.kind != 'Service' || !has(object.spec.externalIPs) || "
                       "size(object.spec.externalIPs) == 0",
         "message": "Services in team namespaces may not claim externalIPs", "reason": "Forbidden"},
        *[{"expression": f"request.kind.kind != '{kind}' || [{_spec(kind)}].all(s, {_MULTI_GPU})",
           "message": MULTI_GPU_MESSAGE, "reason": "Invalid"} for kind in ("Pod", "Job")],
    ]
    return [
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
         "metadata": objects.metadata(POLICY),
         "spec": {"failurePolicy": "Fail", "matchConstraints": {"resourceRules": rules},
                  "validations": validations}},
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
         "metadata": objects.metadata(POLICY),
         "spec": {"policyName": POLICY, "validationActions": ["Deny"],
                  "matchResources": {"namespaceSelector": {"matchExpressions": [
                      {"key": TEAM_LABEL, "operator": "Exists"}]}}}},
    ]
