"""The workflow templates: valid GitHub Actions (SchemaStore's schema, as vendored by check-jsonschema), the
review script shellcheck-clean, and its exit status right: changes are fine, guardrail failures are not."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess

import pytest
import yaml

from tests.conftest import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"
SCRIPT = ROOT / ".github" / "scripts" / "pr-review.sh"


def test_workflows_are_valid_github_actions():
    checker = shutil.which("check-jsonschema") or str(ROOT / ".venv" / "bin" / "check-jsonschema")
    if not os.path.exists(checker):
        pytest.skip("check-jsonschema is not installed (test extra)")
    done = subprocess.run([checker, "--builtin-schema", "vendor.github-workflows",
                           *map(str, sorted(WORKFLOWS.glob("*.yml")))], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_review_needs_no_credentials_and_comments_once():
    review = yaml.safe_load((WORKFLOWS / "review.yml").read_text())
    assert review["permissions"] == {"contents": "read"}
    steps = review["jobs"]["review"]["steps"]
    assert steps[0]["with"]["fetch-depth"] == 0  # the merge-base with main
    assert any("pr-review.sh" in s.get("run", "") for s in steps)
    comment = next(s for s in steps if s.get("uses", "").startswith("marocchino/sticky-pull-request-comment@"))
    assert comment["if"] == "always()" and comment["with"]["path"] == "review.md"
    assert "bash .ci/run" in [s.get("run") for s in review["jobs"]["test"]["steps"]]
    assert not [s for s in steps if "secrets." in str(s)]


def test_preview_is_gated_on_the_policy_pack():
    preview = yaml.safe_load((WORKFLOWS / "preview.yml").read_text())
    job = preview["jobs"]["preview"]
    pulumi = next(s for s in job["steps"] if s.get("uses", "").startswith("pulumi/actions@"))
    assert pulumi["with"]["policyPacks"] == "policies" and pulumi["with"]["policyPackConfigs"] == "policy-config.json"
    assert pulumi["with"]["command"] == "preview" and pulumi["with"]["comment-on-pr"] is True
    assert any("mlcluster policy-config" in s.get("run", "") for s in job["steps"])
    assert job["permissions"]["id-token"] == "write"  # OIDC, no stored AWS keys
    for step in job["steps"]:
        if "uses" in step:
            assert "@" in step["uses"] and not step["uses"].endswith(("@main", "@master"))


def test_review_script_is_shellcheck_clean():
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (Debian package `shellcheck`; .ci/run installs it)")
    done = subprocess.run(["shellcheck", str(SCRIPT)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout


def _stub(tmp_path, check_status, diff_status):
    stub = tmp_path / "mlcluster"
    stub.write_text(f"""#!/usr/bin/env bash
case "$1" in
  profiles) printf 'profile  substrate  description\\nlocal  existing  x\\n' ;;
  diff) echo "diff $2 $3"; exit {diff_status} ;;
  check) echo "check $2 $3"; exit {check_status} ;;
esac
""")
    stub.chmod(stub.stat().st_mode | stat.S_IEXEC)
    return stub


@pytest.mark.parametrize(("check_status", "diff_status", "expected"), [(0, 0, 0), (0, 1, 0), (1, 0, 1), (0, 2, 1)])
def test_review_script_fails_only_on_guardrails_or_broken_renders(tmp_path, check_status, diff_status, expected):
    stub = _stub(tmp_path, check_status, diff_status)
    done = subprocess.run(["bash", str(SCRIPT)], cwd=ROOT, env={**os.environ, "MLCLUSTER": str(stub)},
                          capture_output=True, text=True, check=False)
    assert done.returncode == expected, done.stderr
    assert "diff --profile local" in done.stdout and "check --stack prod" in done.stdout
