"""What every LimitRange we write does to a container that asks for nothing, and to the shapes our docs, notebooks
and jobs use — with the API server's defaulting and LimitRanger's admission applied (mlcluster.semantics.limits,
mirroring kubernetes v1.36.3 and Kueue v0.19.2). Before the fix the team LimitRange set `max` for
nvidia.com/gpu without a `default`: the API server turns that `max` into the default, and every CPU container
(notebooks, jobs, sidecars, KServe's storage-initializer) was given the team's largest GPU count."""

from __future__ import annotations

import pytest
import yaml

from mlcluster.components import quantity
from mlcluster.profiles.loader import shipped_profiles
from mlcluster.semantics.limits import admitted, defaulted_item, kueue_refusal, kueue_requests, violations
from tests.conftest import rendered_profile

NOTHING: dict = {}


def limit_ranges(files: dict[str, str], namespace: str) -> list[dict]:
    return [yaml.safe_load(text) for path, text in files.items()
            if path.startswith(f"manifests/{namespace}/limitrange-")]


def team_namespaces(files: dict[str, str]) -> set[str]:
    return {path.split("/")[1] for path in files if path.endswith("/resourcequota-team-quota.yaml")}


def test_the_defaulting_rule_we_mirror():
    """SetDefaults_LimitRangeItem: a max without a default becomes the default (and the default request)."""
    item = defaulted_item({"type": "Container", "max": {"nvidia.com/gpu": "8"}})
    assert item["default"] == {"nvidia.com/gpu": "8"} and item["defaultRequest"] == {"nvidia.com/gpu": "8"}
    old = [{"spec": {"limits": [{"type": "Container", "max": {"nvidia.com/gpu": "8", "cpu": "4"},
                                 "default": {"cpu": "2"}}]}}]
    assert admitted(NOTHING, old)["limits"]["nvidia.com/gpu"] == "8", "the old LimitRange: 8 GPUs for nothing"


@pytest.mark.parametrize("name", list(shipped_profiles()))
def test_a_container_that_asks_for_nothing_gets_no_gpu_and_small_defaults(name):
    files = rendered_profile(name).files
    namespaces = team_namespaces(files)
    assert namespaces or not rendered_profile(name).result.profile.teams
    for ns in namespaces:
        ranges = limit_ranges(files, ns)
        got = admitted(NOTHING, ranges)
        assert not any("gpu" in key or "/" in key for key in got["limits"]), (ns, got)
        assert not any("gpu" in key or "/" in key for key in got["requests"]), (ns, got)
        assert quantity.value(got["requests"]["cpu"]) <= 0.25 and violations(got, ranges) == []


@pytest.mark.parametrize("name", ["aws-gpu", "onprem-gpu"])
def test_every_tier_shape_is_admitted_and_counted_alike_by_kueue_and_the_pod(name):
    """KubeSpawner and our examples set requests = limits: LimitRanger admits it, and Kueue counts what the
    pod really requests."""
    r = rendered_profile(name)
    for team in r.result.profile.teams:
        ns = f"{r.result.profile.tenancy.namespace_prefix}{team.name}"
        ranges = limit_ranges(r.files, ns)
        for tier in r.result.profile.tiers:
            if team.tiers is not None and tier.name not in team.tiers:
                continue
            resources = {"cpu": tier.cpu, "memory": tier.memory}
            shape = {"requests": dict(resources), "limits": dict(resources)}
            pod = admitted(shape, ranges)
            assert violations(pod, ranges) == [], (team.name, tier.name)
            assert kueue_refusal(shape, ranges) is None
            assert kueue_requests(shape, ranges) == pod["requests"]


def test_a_limits_only_gpu_job_is_not_refused_by_kueue():
    """Kueue merges LimitRange defaults before copying limits to requests (kueue#15020); with a GPU default
    in the LimitRange a limits-only GPU job failed "requests must not exceed its limits"."""
    files = rendered_profile("aws-gpu").files
    ranges = limit_ranges(files, "team-vision")
    job = {"limits": {"nvidia.com/gpu": "2", "cpu": "16", "memory": "60Gi"}}
    assert kueue_refusal(job, ranges) is None
    assert kueue_requests(job, ranges)["nvidia.com/gpu"] == "2"
    old = [{"spec": {"limits": [{"type": "Container", "max": {"nvidia.com/gpu": "8"}}]}}]
    assert kueue_refusal(job, old) is not None
