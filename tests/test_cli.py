"""The command line: what users type, what they see, and exit status 2 for bad input with nothing written."""

from __future__ import annotations

import subprocess
import sys

import yaml
from typer.testing import CliRunner

from mlcluster.cli import app
from tests.conftest import ROOT

runner = CliRunner()


def run(*args):
    return runner.invoke(app, list(args))


def test_render_without_arguments_renders_local_into_build_local(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("render")
    assert result.exit_code == 0, result.output
    assert "build/local" in result.output
    for name in ("resources.json", "SUMMARY.md"):
        assert (tmp_path / "build" / "local" / name).is_file()
    assert (tmp_path / "build" / "local" / "helm" / "kube-prometheus-stack.yaml").is_file()


def test_render_stack_with_set_and_out(tmp_path):
    result = run("render", "--stack", "shared", "--set", "addons.monitoring.retention=60d",
                 "--out", str(tmp_path / "o"))
    assert result.exit_code == 0, result.output
    values = yaml.safe_load((tmp_path / "o" / "helm" / "kube-prometheus-stack.yaml").read_text())["values"]
    assert values["prometheus"]["prometheusSpec"]["retention"] == "60d"


def test_bad_input_exits_2_and_writes_nothing(tmp_path):
    out = tmp_path / "o"
    for args in (["--profile", "nope"], ["--stack", "nope"], ["--set", "tenancy.egress=sideways"],
                 ["--set", "broken"], ["--profile", "local", "--stack", "dev"]):
        result = run("render", *args, "--out", str(out))
        assert result.exit_code == 2, (args, result.output)
        assert "error: bad input" in result.output
        assert not out.exists()
        assert not list(tmp_path.iterdir()), "no temporary folder left behind"


def test_set_error_names_the_flag_field_value_and_allowed():
    result = run("render", "--set", "tenancy.egress=sideways")
    assert "--set: field 'tenancy.egress' has the value \"sideways\"; allowed: input should be 'open' or " \
           "'restricted'" in result.output


def test_profiles_list_and_show():
    listing = run("profiles")
    assert listing.exit_code == 0 and "local" in listing.output and "existing" in listing.output
    shown = run("profiles", "show", "local")
    assert shown.exit_code == 0
    data = yaml.safe_load(shown.output)
    assert data["name"] == "local" and data["addons"]["monitoring"]["enabled"] is True
    assert data["tenancy"]["namespace_prefix"] == "team-"  # inherited from _base and defaulted


def test_validate_reports_every_bad_file(tmp_path):
    bad1 = tmp_path / "a.yaml"
    bad1.write_text("extends: local\ntenancy: {egres: open}\n")
    bad2 = tmp_path / "Pulumi.x.yaml"
    bad2.write_text("config:\n  mlcluster:profile: local\n")  # no way to reach the cluster
    result = run("validate", str(ROOT / "profiles" / "local.yaml"), str(bad1), str(bad2))
    assert result.exit_code == 2
    assert "ok  profiles/local.yaml" in result.output
    assert "field 'tenancy.egres'" in result.output
    assert "field 'mlcluster:kubeContext' is missing" in result.output


def test_validate_shipped_files():
    files = sorted(str(p) for p in [*(ROOT / "profiles").glob("*.yaml"), *(ROOT / "stacks").glob("Pulumi.*.yaml")])
    result = run("validate", *files)
    assert result.exit_code == 0, result.output


def test_no_traceback_from_the_real_entry_point(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "mlcluster.cli", "render", "--profile", "nope", "--out",
                           str(tmp_path / "o")], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("\n\n") == 1  # one header line, one paragraph
    expected = '--profile: the value "nope" is not accepted; no such profile; the shipped profiles are: aws-dev, '
    assert expected in proc.stderr and "local" in proc.stderr


def test_check_passes_shipped_profiles_and_fails_on_a_high_finding(tmp_path):
    import json

    assert run("check", "--profile", "local").exit_code == 0
    assert run("render", "--profile", "local", "--out", str(tmp_path / "r")).exit_code == 0
    resources = tmp_path / "r" / "resources.json"
    data = json.loads(resources.read_text())
    for record in data["resources"]:
        if record["type"] == "kubernetes:helm.sh/v3:Release":
            record["inputs"]["version"] = "~88"  # an unpinned chart
    resources.write_text(json.dumps(data))
    failing = run("check", "--render", str(tmp_path / "r"), "--markdown")
    assert failing.exit_code == 1
    assert "❌" in failing.output and "`pinned-versions`" in failing.output
    assert run("check", "--render", str(tmp_path / "r"), "--fail-on", "none").exit_code == 0
    assert run("check", "--render", str(tmp_path / "nowhere")).exit_code == 2
    assert run("check", "--profile", "local", "--fail-on", "sometimes").exit_code == 2


def test_check_lists_rules_with_their_public_ids():
    result = run("check", "--rules")
    assert result.exit_code == 0 and "nodes-imdsv2" in result.output and "CKV_AWS_79" in result.output


def test_policy_config_carries_the_profile_overrides():
    import json

    result = run("policy-config", "--profile", "local", "--set",
                 'policy.overrides=[{rule: team-default-deny, reason: "shared lab namespace until the audit", '
                 'resources: ["vision-*"]}]')
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"team-default-deny": {"overrides": [
        {"reason": "shared lab namespace until the audit", "resources": ["vision-*"]}]}}


def test_version_and_help_on_every_option():
    from importlib.metadata import version

    shown = run("--version")
    assert shown.exit_code == 0 and shown.output.strip() == f"mlcluster {version('mlcluster')}"
    import click
    import typer.main

    command = typer.main.get_command(app)
    undocumented = []
    for name, sub in command.commands.items():
        subs = sub.commands.items() if isinstance(sub, click.Group) else [(name, sub)]
        for sub_name, leaf in subs:
            undocumented += [f"{sub_name} {p.name}" for p in leaf.params
                             if isinstance(p, click.Option) and not p.help]
    assert undocumented == []


def test_render_a_stack_given_as_a_path(tmp_path):
    stack = tmp_path / "site" / "Pulumi.site.yaml"
    stack.parent.mkdir()
    stack.write_text("config:\n  mlcluster:profile: local\n  mlcluster:kubeContext: site-admin\n")
    result = run("render", "--stack", str(stack), "--out", str(tmp_path / "o"))
    assert result.exit_code == 0, result.output
    assert "rendered site" in result.output
    assert "stack `site`" in (tmp_path / "o" / "SUMMARY.md").read_text()
    wrong = tmp_path / "site.yaml"
    wrong.write_text("config: {}\n")
    assert "named Pulumi.<stack>.yaml" in run("render", "--stack", str(wrong)).output


def test_render_names_its_stages():
    result = run("render", "--out", "/tmp/mlcluster-test-stages")
    assert result.exit_code == 0, result.output
    for stage in ("loading the profile", "running the Pulumi program under mocks", "validating",
                  "writing /tmp/mlcluster-test-stages"):
        assert f"· {stage}" in result.output


def test_read_only_commands_do_not_claim_nothing_was_written():
    result = run("check", "--profile", "nope")
    assert result.exit_code == 2 and "error: bad input.\n" in result.output
    assert "nothing was written" not in result.output


def test_an_override_naming_no_resource_is_an_error(tmp_path):
    profile = tmp_path / "mine.yaml"
    profile.write_text("extends: local\npolicy:\n  overrides:\n    - rule: team-default-deny\n"
                       "      reason: the lab runs privileged benchmarks here (ticket OPS-1)\n"
                       "      resources: [team-visoin-*]\n")
    result = run("render", "--profile", str(profile), "--out", str(tmp_path / "o"))
    assert result.exit_code == 2, result.output
    assert "mine.yaml:6: field 'policy.overrides[0].resources[0]' has the value \"team-visoin-*\"" in result.output
    assert "matches no resource" in result.output and not (tmp_path / "o").exists()


def test_rule_ids_are_never_cut_and_references_resolve_in_the_checkout():
    from mlcluster.policy import rules

    listing = run("check", "--rules")
    assert listing.exit_code == 0
    for rule_id in rules():
        assert rule_id in listing.output
    assert "checks.md" not in listing.output and "issue#" not in listing.output
    assert "docs/guardrails.md" in listing.output and (ROOT / "docs" / "guardrails.md").is_file()
    help_text = run("check", "--help").output
    assert "docs/guardrails.md" in help_text and "../shared" not in help_text
    for path in ("README.md", "policies/PulumiPolicy.yaml"):
        assert "checks.md" not in (ROOT / path).read_text(), path


def test_the_command_keeps_the_cyclic_collector_off_after_a_render(tmp_path):
    """Issue 18: switched back on after a render, the collector's first pass walked every object the render had
    allocated (2.8 s of an 18.6 s 300-team render) only to free what the exit frees. The command keeps it off."""
    code = ("import gc, sys\nfrom mlcluster import cli\nseen = []\n"
            "real = cli.app\n"
            "def app():\n    try:\n        real()\n    finally:\n        seen.append(gc.isenabled())\n"
            "cli.app = app\nsys.argv = ['mlcluster', 'render', '--profile', 'local', '--out', sys.argv[1]]\n"
            "try:\n    cli.main()\nexcept SystemExit as exit:\n    print('EXIT', exit.code, 'COLLECTOR', seen)\n")
    run = subprocess.run([sys.executable, "-c", code, str(tmp_path / "out")], capture_output=True, text=True,
                         cwd=ROOT, timeout=300)
    assert "EXIT 0 COLLECTOR [False]" in run.stdout, run.stdout[-2000:] + run.stderr[-2000:]
    assert (tmp_path / "out" / "SUMMARY.md").is_file()
