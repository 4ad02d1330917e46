"""Every kind of bad profile gets one clear problem: file, field path, line, value, what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlcluster.errors import ConfigError
from mlcluster.profiles.effective import load_profile

GPU_POOL = """
  - name: gpu
    role: gpu
    gpu: {product: NVIDIA-A10G, count: 1}
    min: 0
    max: 2
"""


def problems_for(tmp_path: Path, body: str) -> list:
    path = tmp_path / "p.yaml"
    path.write_text("extends: local\n" + body)
    with pytest.raises(ConfigError) as err:
        load_profile(path)
    return err.value.problems


def one(tmp_path: Path, body: str):
    found = problems_for(tmp_path, body)
    assert len(found) == 1, [p.render() for p in found]
    return found[0]


def test_shipped_profiles_are_valid():
    from mlcluster.profiles.loader import shipped_profiles

    for name in shipped_profiles():
        assert load_profile(name).name == name


def test_unknown_key_lists_the_allowed_keys(tmp_path):
    p = one(tmp_path, "tenancy:\n  egres: open\n")
    assert (p.field, p.value, p.line) == ("tenancy.egres", "open", 3)
    assert "egress" in p.allowed and "unknown key" in p.allowed


def test_unknown_addon_names_the_known_ones(tmp_path):
    p = one(tmp_path, "addons:\n  grafana: {enabled: true}\n")
    assert p.field == "addons.grafana"
    assert "unknown add-on" in p.allowed and "monitoring" in p.allowed


def test_wrong_type(tmp_path):
    p = one(tmp_path, "addons:\n  monitoring:\n    prometheus_storage_gib: lots\n")
    assert (p.field, p.value, p.line) == ("addons.monitoring.prometheus_storage_gib", "lots", 4)
    assert "integer" in p.allowed


def test_bad_dns_name(tmp_path):
    p = one(tmp_path, "teams:\n  - name: Data_Science\n    quota: {cpu: '1', memory: 1Gi}\n")
    assert p.field == "teams[2].name" and p.value == "Data_Science"
    assert "DNS-1123" in p.allowed


def test_min_greater_than_max(tmp_path):
    p = one(tmp_path, "node_pools:\n  - name: default\n    min: 3\n    max: 2\n")
    assert (p.field, p.value) == ("node_pools[0].min", 3)
    assert "at most max (2)" in p.allowed


def test_gpu_pool_without_gpu_product(tmp_path):
    p = one(tmp_path, "node_pools:\n  - name: gpu\n    role: gpu\n    max: 2\n")
    assert p.field == "node_pools[1].gpu"
    assert "product" in p.allowed


def test_mig_on_a_gpu_without_mig(tmp_path):
    body = "node_pools:" + GPU_POOL + "    sharing: {mode: mig, mig_strategy: single, mig_layout: all-1g.10gb}\n"
    p = one(tmp_path, body)
    assert p.field == "node_pools[1].sharing.mode"
    assert "NVIDIA-A10G has no MIG" in p.allowed


def test_time_slicing_needs_replicas(tmp_path):
    p = one(tmp_path, "node_pools:" + GPU_POOL + "    sharing: {mode: time-slicing}\n")
    assert p.field == "node_pools[1].sharing.replicas"


def test_team_gpu_quota_beyond_cluster_capacity(tmp_path):
    body = "node_pools:" + GPU_POOL + "teams:\n  - name: vision\n    quota: {gpu: 3}\n"
    p = one(tmp_path, body)
    assert (p.field, p.value) == ("teams[0].quota.gpu", 3)
    assert "(2 at their max size)" in p.allowed


def test_duplicate_team_names_in_one_file(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text("substrate: {kind: existing}\nteams:\n  - {name: a, quota: {cpu: 1, memory: 1Gi}}\n"
                    "  - {name: a, quota: {cpu: 2, memory: 2Gi}}\n")
    with pytest.raises(ConfigError) as err:
        load_profile(path)
    (p,) = err.value.problems
    assert (p.field, p.value, p.line) == ("teams[1].name", "a", 4)
    assert "already teams[0]" in p.allowed


def test_unknown_tier_and_duplicate_lead(tmp_path):
    body = "teams:\n  - name: vision\n    tiers: [gpu-8]\n  - name: nlp\n    leads: [carol@example.com]\n"
    found = {p.field: p for p in problems_for(tmp_path, body)}
    assert "unknown tier" in found["teams[0].tiers[0]"].allowed
    assert "already leads `vision`" in found["teams[1].leads[0]"].allowed


def test_tier_that_fits_no_node(tmp_path):
    body = "tiers:\n  - {name: gpu-8, cpu: '32', memory: 256Gi, gpu: 8}\n"
    found = {p.field: p for p in problems_for(tmp_path, body)}
    assert "a tier must fit on one node" in found["tiers[2].gpu"].allowed
    # Both local teams may use every tier, and 32 CPUs exceed their 8-CPU quota: reported on each team.
    assert set(found) == {"tiers[2].gpu", "teams[0].quota.cpu", "teams[1].quota.cpu"}


def test_tier_that_fits_no_team_quota(tmp_path):
    found = {p.field: p for p in problems_for(tmp_path, "tiers:\n  - {name: big, cpu: '4', memory: 64Gi}\n")}
    assert set(found) == {"teams[0].quota.memory", "teams[1].quota.memory"}  # 64Gi > each team's 32Gi
    assert "tier `big`" in found["teams[0].quota.memory"].allowed
    # A team that does not offer the tier is fine: only nlp is reported once vision lists its tiers.
    restricted = problems_for(tmp_path, "tiers:\n  - {name: big, cpu: '4', memory: 64Gi}\n"
                                        "teams:\n  - {name: vision, tiers: [cpu-small], quota: {cpu: '8', "
                                        "memory: 32Gi}}\n")
    assert [p.field for p in restricted] == ["teams[1].quota.memory"]


def test_unsupported_kubernetes_version(tmp_path):
    p = one(tmp_path, "kubernetes: {version: '1.20'}\n")
    assert p.field == "kubernetes.version"
    assert "1.35" in p.allowed


def test_unknown_substrate_kind(tmp_path):
    p = one(tmp_path, "substrate: {kind: gke}\n")
    assert (p.field, p.value, p.line) == ("substrate.kind", "gke", 2)
    assert "'existing', 'eks'" in p.allowed


def test_substrate_without_kind():
    with pytest.raises(ConfigError) as err:
        load_profile("local", sets=("substrate={}",))  # --set replaces, where a profile layer would merge
    (p,) = err.value.problems
    assert (p.file, p.field, p.has_value) == ("--set", "substrate.kind", False)
    assert "'existing', 'eks'" in p.allowed


def test_several_problems_are_reported_together(tmp_path):
    found = problems_for(tmp_path, "tenancy: {egres: open}\naddons: {foo: {}}\n")
    assert {p.field for p in found} == {"tenancy.egres", "addons.foo"}


def test_missing_required_field(tmp_path):
    p = one(tmp_path, "teams:\n  - name: extra\n")
    assert p.field == "teams[2].quota" and not p.has_value
    assert p.render().startswith(f"{tmp_path / 'p.yaml'}:3: field 'teams[2].quota' is missing")


def test_an_unquoted_version_is_read_as_written(tmp_path):
    """`version: 1.36` is the float 1.36 to YAML; it used to be refused with "has the value 1.36; allowed:
    '1.36'", and `1.30` read as 1.3. The number is now taken exactly as the user typed it."""
    path = tmp_path / "p.yaml"
    path.write_text("extends: local\nkubernetes: {version: 1.36}\n")
    assert load_profile(path).kubernetes.version == "1.36"
    p = one(tmp_path, "kubernetes: {version: 1.30}\n")
    assert (p.field, p.line) == ("kubernetes.version", 2)
    assert "1.30" in p.render() and "1.3;" not in p.render() and "'1.32'" in p.allowed
    assert load_profile("local", sets=("kubernetes.version=1.37",)).kubernetes.version == "1.37"
