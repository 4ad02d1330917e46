"""The render tree: four outputs, determinism, validation, redaction, explicit providers, atomic writes."""

from __future__ import annotations

import json

import pytest
import yaml

from mlcluster.errors import RenderError
from mlcluster.profiles.loader import shipped_profiles
from mlcluster.render import available_stacks, render, writer
from mlcluster.render.kubevalidate import validate_manifests
from mlcluster.render.mocks import fake_secret
from mlcluster.safewrite import RENDER_MARKER
from tests.conftest import ROOT, rendered_profile, rendered_stack

# Every shipped profile and every stack file: what users can render is what the tests render.
RENDERS = [("profile", p) for p in shipped_profiles()] + [("stack", s) for s in available_stacks()]


def get(kind, name):
    return rendered_profile(name) if kind == "profile" else rendered_stack(name)


@pytest.mark.parametrize(("kind", "name"), RENDERS)
def test_render_writes_the_four_outputs(kind, name, tmp_path):
    files = get(kind, name).files
    writer.write_tree(files, tmp_path / "out")
    out = tmp_path / "out"
    assert (out / "resources.json").is_file() and (out / "SUMMARY.md").is_file()
    assert list((out / "manifests").rglob("*.yaml")) and list((out / "helm").glob("*.yaml"))
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == sorted([*files, RENDER_MARKER]), "the render, and the marker that lets the next render replace it"


def test_render_is_byte_identical_run_to_run():
    first = render(profile="local").files
    second = render(profile="local").files
    assert first == second


def test_every_manifest_is_a_valid_kubernetes_object():
    files = rendered_stack("shared").files
    manifests = {p: yaml.safe_load(c) for p, c in files.items() if p.startswith("manifests/")}
    assert len(manifests) > 20
    validate_manifests(manifests, "1.35")  # raises on any invalid one


def test_invalid_object_fails_the_render():
    bad = {"x.yaml": {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a", "labelz": {}}}}
    with pytest.raises(RenderError, match="labelz"):
        validate_manifests(bad, "1.35")


@pytest.mark.parametrize(("kind", "name"), RENDERS)
def test_no_generated_secret_appears_anywhere_in_the_tree(kind, name):
    rendered = get(kind, name)
    passwords = [r for r in rendered.result.resources if r.type == "random:index/randomPassword:RandomPassword"]
    if name == "e2e":  # the real-engine stack keeps generated secrets out (no pulumi-random provider there)
        assert not passwords
        return
    assert passwords, "the profile generates at least the Grafana admin password"
    for reg in passwords:
        secret = fake_secret(reg.name)
        assert not [path for path, text in rendered.files.items() if secret in text]
    if "manifests/monitoring/secret-grafana-admin.yaml" in rendered.files:
        assert "[secret]" in rendered.files["manifests/monitoring/secret-grafana-admin.yaml"]
    else:  # eks: synced from Secrets Manager; the value only ever appears (redacted) in the SecretVersion
        versions = [r for r in json.loads(rendered.files["resources.json"])["resources"]
                    if r["type"] == "aws:secretsmanager/secretVersion:SecretVersion"]
        assert versions and all(v["inputs"]["secretString"] == "[secret]" for v in versions)


@pytest.mark.parametrize(("kind", "name"), RENDERS)
def test_every_kubernetes_and_aws_resource_names_an_explicit_provider(kind, name):
    resources = json.loads(get(kind, name).files["resources.json"])["resources"]
    checked = [r for r in resources if r["custom"] and r["type"].startswith(("kubernetes:", "aws:"))]
    assert checked
    for r in checked:
        assert r["provider"], f"{r['urn']} has no provider"
        _, _, provider_type, provider_name = r["provider"].split("::")
        package = r["type"].split(":")[0]
        assert provider_type.endswith(f"pulumi:providers:{package}"), r["urn"]
        assert not provider_name.startswith("default"), f"{r['urn']} uses a default provider"


def test_pulumi_yaml_disables_default_kubernetes_provider():
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert project["config"]["pulumi:disable-default-providers"]["value"] == ["kubernetes", "aws"]
    assert project["stackConfigDir"] == "stacks" and project["main"] == "stacks/"


def test_helm_file_carries_chart_repository_version_namespace_values():
    release = yaml.safe_load(rendered_profile("local").files["helm/kube-prometheus-stack.yaml"])
    assert release["chart"] == "kube-prometheus-stack"
    assert release["version"] == "88.5.3"
    assert release["repository"].startswith("https://")
    assert release["namespace"] == "monitoring"
    assert release["values"]["grafana"]["admin"]["existingSecret"] == "grafana-admin"


def test_summary_names_substrate_pools_addons_teams_and_counts():
    summary = rendered_stack("shared").files["SUMMARY.md"]
    assert "profile `local`, stack `shared`" in summary
    assert "| speech | team-speech |" in summary  # the team the lab stack adds
    assert "| vision | team-vision | 16 |" in summary  # the quota the lab stack raises
    assert "DNS and only 10.20.0.0/16 outside the cluster" in summary
    assert "| kube-prometheus-stack | kube-prometheus-stack | 88.5.3 |" in summary
    assert "| grafanaAdminPassword | [secret] |" in summary


def test_failed_render_leaves_previous_output_untouched(tmp_path, monkeypatch):
    out = tmp_path / "out"
    writer.write_tree({"a.txt": "old"}, out)

    def broken(*_args, **_kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("pathlib.Path.write_text", broken)
    with pytest.raises(OSError):
        writer.write_tree({"a.txt": "new", "b.txt": "new"}, out)
    monkeypatch.undo()
    assert (out / "a.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temp folder left behind


def test_urn_snapshot_of_the_local_profile():
    """A renamed resource is a replaced resource: the URN list is a reviewed snapshot (tests/snapshots/), and a
    URN that leaves it must be an alias of a resource that is still here (the engine then moves it in place)."""
    resources = json.loads(rendered_profile("local").files["resources.json"])["resources"]
    urns = "\n".join(r["urn"] for r in resources) + "\n"
    snapshot = ROOT / "tests" / "snapshots" / "local.urns.txt"
    aliases = {a for r in resources for a in r.get("options", {}).get("aliases", [])}
    gone = set(snapshot.read_text().split()) - set(urns.split()) - aliases
    assert not gone, f"resources would be replaced (no alias names their old URN): {sorted(gone)}"
    assert urns == snapshot.read_text(), (
        "resource URNs changed: a rename replaces live infrastructure. Add `aliases` for renames, then "
        "review and update tests/snapshots/local.urns.txt"
    )


@pytest.mark.parametrize(("kind", "name"), RENDERS)
def test_custom_resources_validate_against_upstream_crds(kind, name):
    from mlcluster.components.k8s import is_custom
    from tests.upstream import validate_custom_resource

    for path, text in get(kind, name).files.items():
        if path.startswith("manifests/"):
            manifest = yaml.safe_load(text)
            if is_custom(manifest):
                validate_custom_resource(manifest)


def test_summary_counts_physical_gpus_and_schedulable_slices_apart():
    """SUMMARY.md said "GPU capacity at max size: 104" for onprem-gpu's 32 physical GPUs (slices counted as GPUs)."""
    from tests.conftest import rendered_profile

    summary = rendered_profile("onprem-gpu").files["SUMMARY.md"]
    assert "**GPUs at max size:** 32 physical, offered as" in summary
    assert "| gpu-h100-mig | gpu | NVIDIA-H100-80GB-HBM3 | 8 | 56 | mig |" in summary


def test_summary_says_what_a_team_member_can_do_from_the_evaluators():
    summary = rendered_profile("aws-gpu").files["SUMMARY.md"]
    section = summary[summary.index("## What a team member can do"):summary.index("## Data safety")]
    assert "| change NetworkPolicies, quotas, LimitRanges, RoleBindings | no · no · no · no |" in section
    assert "| connect to another team's pods | no |" in section
    assert "| connect to MLflow's API / the hub API | yes · yes |" in section
    exec_on = render(profile="local", sets=("tenancy.member_exec=true",)).files["SUMMARY.md"]
    assert "| exec / port-forward into pods (`tenancy.member_exec`) | yes |" in exec_on
