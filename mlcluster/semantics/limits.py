"""Container resources after the API server and its admission plugins have had their say, and what Kueue and
ResourceQuota count for them. Mirrors kubernetes v1.36.3:

- `SetDefaults_LimitRangeItem` (pkg/apis/core/v1/defaults.go): for a Container item, `default` takes `max`
  where unset, `defaultRequest` takes `default`, then `min`, where unset. So a `max` with no `default` is a
  default, given to every container that sets no limit for that resource.
- `SetDefaults_Pod` (same file): a container's requests default to its limits, key by key.
- LimitRanger (plugin/pkg/admission/limitranger/admission.go): `mergeContainerResources` fills the
  container's missing limits from the items' `default` and missing requests from `defaultRequest`;
  `minConstraint`/`maxConstraint` then refuse what is outside the item's bounds (a `max` needs a limit).

Kueue v0.19.2 (pkg/workload/resources.go `AdjustResources`) counts a workload's pod template differently: it
merges the LimitRange's `default`/`defaultRequest` *first*, then copies limits to the requests still missing
(kubernetes-sigs/kueue#15020). A template that sets only limits therefore gets the LimitRange's defaultRequest
where the real pod gets its limit — the two counts must agree for admission and quota to agree.
"""

from __future__ import annotations

import copy
from typing import Any

from mlcluster.components import quantity

Resources = dict[str, str]


def defaulted_item(item: dict[str, Any]) -> dict[str, Any]:
    """A LimitRange item as the API server stores it (`SetDefaults_LimitRangeItem`)."""
    item = copy.deepcopy(item)
    if item.get("type") != "Container":
        return item
    default = item.setdefault("default", {})
    default_request = item.setdefault("defaultRequest", {})
    for key, value in (item.get("max") or {}).items():
        default.setdefault(key, value)
    for key, value in default.items():
        default_request.setdefault(key, value)
    for key, value in (item.get("min") or {}).items():
        default_request.setdefault(key, value)
    return item


def container_items(limit_ranges: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [defaulted_item(item) for lr in limit_ranges for item in lr.get("spec", {}).get("limits", [])
            if item.get("type") == "Container"]


def pod_defaults(resources: dict[str, Resources]) -> dict[str, Resources]:
    """`SetDefaults_Pod` for one container: requests default to limits."""
    out = {"limits": dict(resources.get("limits") or {}), "requests": dict(resources.get("requests") or {})}
    for key, value in out["limits"].items():
        out["requests"].setdefault(key, value)
    return out


def admitted(resources: dict[str, Resources], limit_ranges: list[dict[str, Any]]) -> dict[str, Resources]:
    """A container's resources as the pod is stored: pod defaulting, then LimitRanger's defaults."""
    out = pod_defaults(resources)
    for item in container_items(limit_ranges):
        for key, value in item.get("default", {}).items():
            out["limits"].setdefault(key, value)
        for key, value in item.get("defaultRequest", {}).items():
            out["requests"].setdefault(key, value)
    return out


def violations(resources: dict[str, Resources], limit_ranges: list[dict[str, Any]]) -> list[str]:
    """LimitRanger's refusals for an admitted container (min/max constraints)."""
    found = []
    for item in container_items(limit_ranges):
        for key, bound in (item.get("max") or {}).items():
            limit = resources["limits"].get(key)
            if limit is None:
                found.append(f"maximum {key} usage per Container is {bound}.  No limit is specified")
            elif quantity.value(limit) > quantity.value(bound):
                found.append(f"maximum {key} usage per Container is {bound}, but limit is {limit}")
        for key, bound in (item.get("min") or {}).items():
            request = resources["requests"].get(key)
            if request is None or quantity.value(request) < quantity.value(bound):
                found.append(f"minimum {key} usage per Container is {bound}, but request is {request}")
    return found


def kueue_requests(resources: dict[str, Resources], limit_ranges: list[dict[str, Any]]) -> Resources:
    """What Kueue counts for one container of a workload's pod template (`AdjustResources`)."""
    limits = dict(resources.get("limits") or {})
    requests = dict(resources.get("requests") or {})
    for item in container_items(limit_ranges):
        for key, value in item.get("default", {}).items():
            limits.setdefault(key, value)
        for key, value in item.get("defaultRequest", {}).items():
            requests.setdefault(key, value)
    for key, value in limits.items():
        requests.setdefault(key, value)
    return requests


def kueue_refusal(resources: dict[str, Resources], limit_ranges: list[dict[str, Any]]) -> str | None:
    """Kueue's `ValidateResources` after `AdjustResources`: requests must not exceed limits."""
    limits = dict(resources.get("limits") or {})
    for item in container_items(limit_ranges):
        for key, value in item.get("default", {}).items():
            limits.setdefault(key, value)
    requests = kueue_requests(resources, limit_ranges)
    over = sorted(k for k, v in requests.items() if k in limits and quantity.value(v) > quantity.value(limits[k]))
    return f"requests must not exceed its limits ({', '.join(over)})" if over else None
