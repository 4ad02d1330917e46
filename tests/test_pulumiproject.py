"""Pulumi.yaml and every stack file, merged the way the Pulumi CLI merges them (pulumi v3.274.1:
sdk/go/common/workspace/project.go `Project.Validate`, pkg/workspace/config.go `mergeConfig` and
`validateStackConfigValue`). The mocks never read Pulumi.yaml: before this, `mlcluster:kubeconfig` was declared
with a type and no default, no stack set it, and every shipped stack would have failed `pulumi preview` with
"Stack 'dev' is missing configuration value 'mlcluster:kubeconfig'". The real CLI runs the same check in the
e2e loop (tests/e2e)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlcluster.cli import app
from mlcluster.errors import ConfigError
from mlcluster.pulumiproject import applied_defaults, check_stack, read_project
from tests.conftest import ROOT

STACKS = sorted((ROOT / "stacks").glob("Pulumi.*.yaml"))


@pytest.mark.parametrize("stack", STACKS, ids=lambda p: p.name)
def test_the_cli_accepts_every_shipped_stack(stack):
    assert check_stack(ROOT / "Pulumi.yaml", stack) == []


def project(tmp_path: Path, config: str) -> Path:
    path = tmp_path / "Pulumi.yaml"
    path.write_text("name: mlcluster\nruntime: python\nconfig:\n" + config)
    return path


def stack(tmp_path: Path, config: str, name: str = "dev") -> Path:
    path = tmp_path / f"Pulumi.{name}.yaml"
    path.write_text("config:\n" + config if config else "{}\n")
    return path


def test_the_old_declaration_is_refused_as_the_cli_refuses_it(tmp_path):
    old = project(tmp_path, "  mlcluster:kubeconfig:\n    type: string\n    secret: true\n")
    assert check_stack(old, stack(tmp_path, "  mlcluster:profile: local\n")) == [
        "Stack 'dev' is missing configuration value 'mlcluster:kubeconfig'"]


def test_a_secret_key_needs_an_encrypted_value_and_a_default_does_not_count(tmp_path):
    declared = project(tmp_path, "  token:\n    type: string\n    secret: true\n    default: ''\n")
    assert check_stack(declared, stack(tmp_path, "")) == [
        "Stack 'dev' with configuration key 'mlcluster:token' must be encrypted as it's secret"]
    assert check_stack(declared, stack(tmp_path, "  mlcluster:token: plain\n")) != []
    assert check_stack(declared, stack(tmp_path, "  mlcluster:token:\n    secure: v1:abc\n")) == []


def test_types_are_checked_like_validate_config_value(tmp_path):
    declared = project(tmp_path, "  count: {type: integer, default: 1}\n  flag: {type: boolean, default: false}\n"
                                 "  things: {type: object, default: {}}\n")
    assert check_stack(declared, stack(tmp_path, "  mlcluster:count: 3\n  mlcluster:flag: true\n")) == []
    assert check_stack(declared, stack(tmp_path, "  mlcluster:count: three\n")) == [
        "Stack 'dev' with configuration key 'mlcluster:count' must be of type 'integer'"]
    assert check_stack(declared, stack(tmp_path, "  mlcluster:things: [a]\n")) == [
        "Stack 'dev' with configuration key 'mlcluster:things' must be of type 'object'"]


def test_project_file_rules(tmp_path):
    with pytest.raises(ConfigError, match="takes only a 'value'"):
        read_project(project(tmp_path, "  aws:region:\n    type: string\n"))
    with pytest.raises(ConfigError, match="both a 'default' and 'value'"):
        read_project(project(tmp_path, "  x:\n    default: 1\n    value: 2\n"))
    with pytest.raises(ConfigError, match="'items'"):
        read_project(project(tmp_path, "  x:\n    type: array\n"))
    name, declared = read_project(ROOT / "Pulumi.yaml")
    assert name == "mlcluster"
    ours = [d for d in declared if d.key.startswith("mlcluster:")]
    assert ours and all(d.has_default for d in ours), "what a stack needs depends on its substrate"
    assert not any(d.secret for d in declared), "a declared secret key cannot be optional"


def test_render_sees_the_declared_defaults_like_the_program_does():
    merged = applied_defaults(ROOT / "Pulumi.yaml", {"mlcluster:profile": "local"})
    assert merged["mlcluster:kubeContext"] == "" and merged["mlcluster:inventory"] == "{}"
    assert merged["pulumi:disable-default-providers"] == '["kubernetes", "aws"]'


def test_validate_reports_what_the_cli_would_refuse(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "Pulumi.yaml").write_text((ROOT / "Pulumi.yaml").read_text() +
                                          "  mlcluster:region:\n    type: string\n")
    (tmp_path / "stacks").mkdir()
    bad = tmp_path / "stacks" / "Pulumi.dev.yaml"
    bad.write_text("config:\n  mlcluster:profile: local\n  mlcluster:kubeContext: kind\n")
    result = CliRunner().invoke(app, ["validate", str(bad)])
    assert result.exit_code == 2, result.output
    assert "the Pulumi CLI would refuse this stack: Stack 'dev' is missing configuration value " \
           "'mlcluster:region'" in result.output
