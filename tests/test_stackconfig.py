"""Stack files: wire-format config for the runtime, with clear errors for bad keys and plain-text secrets."""

from __future__ import annotations

import json

import pytest

from mlcluster.errors import ConfigError
from mlcluster.stackconfig import SECRET_PLACEHOLDER, read_stack_file
from tests.conftest import ROOT


def write(tmp_path, text):
    path = tmp_path / "Pulumi.test.yaml"
    path.write_text(text)
    return path


def test_shipped_stack_files_load():
    lab = read_stack_file(ROOT / "stacks" / "Pulumi.shared.yaml", "stacks/Pulumi.shared.yaml")
    assert lab.stack == "shared"
    assert lab.config["mlcluster:profile"] == "local"
    overrides = json.loads(lab.config["mlcluster:overrides"])
    assert overrides["tenancy"]["egress"] == "restricted"
    assert lab.override_lines[("tenancy", "egress")] > 1


def test_encrypted_values_become_marked_placeholders(tmp_path):
    stack = read_stack_file(write(tmp_path, "config:\n  mlcluster:kubeconfig:\n    secure: v1:abc\n"))
    assert stack.config["mlcluster:kubeconfig"] == SECRET_PLACEHOLDER
    assert stack.secret_keys == ["mlcluster:kubeconfig"]


def test_unknown_project_key(tmp_path):
    with pytest.raises(ConfigError) as err:
        read_stack_file(write(tmp_path, "config:\n  mlcluster:profle: local\n"), "stacks/Pulumi.test.yaml")
    p = err.value.problems[0]
    assert (p.file, p.field, p.line) == ("stacks/Pulumi.test.yaml", "config.mlcluster:profle", 2)
    assert "mlcluster:profile" in p.allowed


def test_plain_text_kubeconfig_is_refused(tmp_path):
    with pytest.raises(ConfigError) as err:
        read_stack_file(write(tmp_path, "config:\n  mlcluster:kubeconfig: apiVersion...\n"))
    assert "--secret" in err.value.problems[0].allowed
    assert "apiVersion" not in err.value.render()  # the credential is not echoed back


def test_other_namespaces_pass_through(tmp_path):
    stack = read_stack_file(write(tmp_path, "config:\n  aws:region: eu-west-1\n  mlcluster:profile: local\n"))
    assert stack.config["aws:region"] == "eu-west-1"
