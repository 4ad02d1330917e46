"""Loading, `extends` merging, named-list merging, overrides and --set, with file/line provenance."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlcluster.errors import ConfigError
from mlcluster.profiles.effective import layered_profile, load_profile
from mlcluster.profiles.loader import load_layers, shipped_profiles
from mlcluster.yamlsource import parse


def write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(text)
    return path


def test_shipped_profiles_exclude_abstract_bases():
    names = set(shipped_profiles())
    assert "local" in names
    assert not any(n.startswith("_") for n in names)


def test_extends_chain_merges_deeply_and_child_wins(tmp_path):
    write(tmp_path, "base.yaml", "kubernetes: {version: '1.33'}\ntenancy: {egress: restricted, namespace_prefix: t-}\n")
    child = write(tmp_path, "child.yaml", "extends: base\ntenancy: {egress: open}\n")
    data = load_layers(child).data
    assert data["kubernetes"] == {"version": "1.33"}
    assert data["tenancy"] == {"egress": "open", "namespace_prefix": "t-"}
    assert "extends" not in data


def test_named_lists_merge_by_name_and_other_lists_replace(tmp_path):
    write(tmp_path, "base.yaml", """
teams:
  - {name: a, quota: {cpu: "1", memory: 1Gi}}
  - {name: b, quota: {cpu: "2", memory: 2Gi}}
tenancy: {egress_cidrs: [10.0.0.0/8]}
""")
    child = write(tmp_path, "child.yaml", """
extends: base.yaml
teams:
  - {name: b, quota: {cpu: "9"}}
  - {name: c, quota: {cpu: "3", memory: 3Gi}}
tenancy: {egress_cidrs: [192.168.0.0/16]}
""")
    data = load_layers(child).data
    assert [t["name"] for t in data["teams"]] == ["a", "b", "c"]
    assert data["teams"][1]["quota"] == {"cpu": "9", "memory": "2Gi"}
    assert data["tenancy"]["egress_cidrs"] == ["192.168.0.0/16"]


def test_origins_point_at_the_layer_that_set_a_value(tmp_path):
    write(tmp_path, "base.yaml", "tenancy:\n  egress: open\n")
    child = write(tmp_path, "child.yaml", "extends: base\n\ntenancy:\n  egress: restricted\n")
    layered = load_layers(child)
    origin = layered.origin(("tenancy", "egress"))
    assert origin.file.endswith("child.yaml")
    assert origin.line == 4


def test_extends_cycle_is_an_error(tmp_path):
    write(tmp_path, "a.yaml", "extends: b\n")
    write(tmp_path, "b.yaml", "extends: a\n")
    with pytest.raises(ConfigError) as err:
        load_layers(tmp_path / "a.yaml")
    problem = err.value.problems[0]
    assert problem.field == "extends"
    assert "cycle" in problem.allowed
    assert "a.yaml → b.yaml → a.yaml" in str(problem.value)


def test_unknown_extends_names_the_shipped_profiles(tmp_path):
    child = write(tmp_path, "child.yaml", "extends: nowhere\n")
    with pytest.raises(ConfigError) as err:
        load_layers(child)
    problem = err.value.problems[0]
    assert (problem.field, problem.value, problem.line) == ("extends", "nowhere", 1)
    assert "local" in problem.allowed


def test_malformed_yaml_names_file_and_line():
    with pytest.raises(ConfigError) as err:
        parse("teams:\n  - name: a\n    quota: {cpu: 1\n", "broken.yaml")
    problem = err.value.problems[0]
    assert problem.file == "broken.yaml"
    assert problem.line is not None and problem.line >= 3
    assert "not valid YAML" in problem.allowed


def test_duplicate_keys_are_reported_not_collapsed():
    with pytest.raises(ConfigError) as err:
        parse("tenancy:\n  egress: open\n  egress: restricted\n", "dup.yaml")
    assert (err.value.problems[0].field, err.value.problems[0].line) == ("tenancy.egress", 3)


def test_overrides_and_set_flags_apply_in_order():
    layered = layered_profile(
        "local",
        overrides={"teams": [{"name": "vision", "quota": {"cpu": "16"}}]},
        overrides_file="stacks/Pulumi.x.yaml",
        sets=("teams[0].quota.cpu=32", "addons.monitoring.retention=30d"),
    )
    assert layered.data["teams"][0]["quota"]["cpu"] == 32  # YAML-typed: validated (and rejected) later
    assert layered.data["addons"]["monitoring"]["retention"] == "30d"
    assert layered.origin(("addons", "monitoring", "retention")).file == "--set"


def test_set_value_is_yaml_typed_and_validated():
    profile = load_profile("local", sets=("addons.monitoring.prometheus_storage_gib=75",))
    assert profile.addons.monitoring.prometheus_storage_gib == 75


@pytest.mark.parametrize("flag", ["novalue", "teams[9].quota.cpu=1", "a..b=1"])
def test_bad_set_flags(flag):
    with pytest.raises(ConfigError) as err:
        load_profile("local", sets=(flag,))
    assert err.value.problems[0].file == "--set"


def test_profile_name_comes_from_the_file(tmp_path):
    child = write(tmp_path, "mine.yaml", "extends: local\nname: other\n")
    with pytest.raises(ConfigError) as err:
        load_profile(child)
    assert err.value.problems[0].field == "name"
    assert load_profile(write(tmp_path, "mine2.yaml", "extends: local\n")).name == "mine2"


def test_a_misspelt_team_in_overrides_says_which_team_was_meant():
    """An override item whose name matches no team used to report the missing fields of a new team."""
    from mlcluster.errors import ConfigError
    from mlcluster.profiles.effective import load_profile

    with pytest.raises(ConfigError) as caught:
        load_profile("local", overrides={"teams": [{"name": "visoin", "quota": {"gpu": 2}}]},
                     overrides_file="stacks/Pulumi.site.yaml")
    assert len(caught.value.problems) == 1
    message = caught.value.render()
    assert "stacks/Pulumi.site.yaml" in message and "teams[2].name" in message
    assert "no team 'visoin'" in message and "did you mean 'vision'?" in message and "vision, nlp" in message


def test_a_complete_new_team_in_overrides_is_still_a_new_team():
    from mlcluster.profiles.effective import load_profile

    profile = load_profile("local", overrides={"teams": [{"name": "speech", "quota": {"cpu": "8", "memory": "32Gi"}}]})
    assert [t.name for t in profile.teams] == ["vision", "nlp", "speech"]
