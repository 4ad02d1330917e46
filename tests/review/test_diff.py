"""`mlcluster diff`: what a change does, from two renders or two git revisions, with data at risk made loud."""

from __future__ import annotations

import subprocess

import pytest
from typer.testing import CliRunner

from mlcluster.cli import app
from mlcluster.review import report
from mlcluster.review.compare import compare
from tests.conftest import ROOT

runner = CliRunner()


def record(type_, name, inputs, **options):
    return {"urn": f"urn:pulumi:s::mlcluster::{type_}::{name}", "type": type_, "name": name, "custom": True,
            "inputs": inputs, "dependencies": [],
            "options": {"protect": False, "ignoreChanges": [], "replaceOnChanges": [], **options}}


def doc(*records, policy=None):
    return {"resources": list(records), "policy": policy or {"overrides": []}}


def test_add_remove_change_replace_and_chart_bumps():
    base = doc(record("aws:eks/nodeGroup:NodeGroup", "gpu", {"instanceTypes": ["g5.2xlarge"], "scalingConfig": {
                   "maxSize": 4}}),
               record("aws:iam/role:Role", "old-role", {"description": "x"}),
               record("kubernetes:helm.sh/v3:Release", "kueue", {"name": "kueue", "chart": "kueue", "version": "0.19.2",
                                                                 "values": {"a": 1}}))
    head = doc(record("aws:eks/nodeGroup:NodeGroup", "gpu", {"instanceTypes": ["g5.4xlarge"], "scalingConfig": {
                   "maxSize": 8}}),
               record("aws:iam/role:Role", "new-role", {"description": "x"}),
               record("kubernetes:helm.sh/v3:Release", "kueue", {"name": "kueue", "chart": "kueue", "version": "0.19.3",
                                                                 "values": {"a": 2}}))
    diff = compare(base, head, "a", "b")
    assert {(c.action, c.name) for c in diff.changes} == {
        ("replace", "gpu"), ("remove", "old-role"), ("add", "new-role"), ("change", "kueue")}
    gpu = next(c for c in diff.changes if c.name == "gpu")
    assert [(p.path, p.replaces) for p in gpu.paths] == [("instanceTypes[0]", True), ("scalingConfig.maxSize", False)]
    (bump,) = diff.chart_bumps
    assert (bump.chart, bump.old, bump.new) == ("kueue", "0.19.2", "0.19.3")
    assert not diff.loud  # nothing that holds data


def test_data_at_risk_is_loud_and_ignored_properties_are_not_changes():
    pvc = {"kind": "PersistentVolumeClaim", "apiVersion": "v1", "metadata": {"name": "mlflow-artifacts"},
           "spec": {"storageClassName": "standard", "resources": {"requests": {"storage": "10Gi"}}}}
    moved = {**pvc, "spec": {**pvc["spec"], "storageClassName": "fast"}}
    command = {"create": "install.sh v1", "connection": {"host": "10.0.0.1"}, "triggers": ["abc"]}
    base = doc(record("kubernetes:core/v1:PersistentVolumeClaim", "artifacts", pvc, protect=True),
               record("aws:s3/bucket:Bucket", "bucket", {"bucket": "b"}, protect=True),
               record("command:remote:Command", "host-install", command, ignoreChanges=["connection", "create"],
                      replaceOnChanges=["triggers[*]"]))
    head = doc(record("kubernetes:core/v1:PersistentVolumeClaim", "artifacts", moved, protect=True),
               record("command:remote:Command", "host-install", {**command, "connection": {"host": "10.0.0.2"}},
                      ignoreChanges=["connection", "create"], replaceOnChanges=["triggers[*]"]),
               policy={"overrides": [{"rule": "nodes-imdsv2", "reason": "legacy nodes until March", "resources": []}]})
    diff = compare(base, head, "a", "b")
    assert {(c.action, c.name) for c in diff.changes} == {("replace", "artifacts"), ("remove", "bucket")}
    assert {c.name for c in diff.loud} == {"artifacts", "bucket"}
    assert diff.policy  # a new accepted exception is part of the review
    comment = report.markdown(diff, "t")
    assert "[!CAUTION]" in comment and "**replaces** `artifacts`" in comment and "**removes** `bucket`" in comment
    # The command's new SSH address is ignored by design; a new trigger re-runs it.
    rerun = doc(record("command:remote:Command", "host-install", {**command, "triggers": ["def"]},
                       ignoreChanges=["connection", "create"], replaceOnChanges=["triggers[*]"]))
    (change,) = compare(doc(base["resources"][2]), rerun, "a", "b").changes
    assert change.action == "replace" and change.paths[0].path == "triggers[0]"


def test_no_change_says_so():
    same = doc(record("aws:iam/role:Role", "r", {"description": "x"}))
    diff = compare(same, same, "a", "b")
    assert diff.empty and "no change" in report.text(diff)


def test_render_folders_and_exit_status(tmp_path):
    for name, retention in (("a", "7d"), ("b", "14d")):
        assert runner.invoke(app, ["render", "-p", "local", "--set", f"addons.monitoring.retention={retention}",
                                   "--out", str(tmp_path / name)]).exit_code == 0
    changed = runner.invoke(app, ["diff", "--from", str(tmp_path / "a"), "--to", str(tmp_path / "b")])
    assert changed.exit_code == 1
    assert "values.prometheus.prometheusSpec.retention: 7d → 14d" in changed.output
    same = runner.invoke(app, ["diff", "--from", str(tmp_path / "a"), "--to", str(tmp_path / "a")])
    assert same.exit_code == 0 and "no change" in same.output
    assert runner.invoke(app, ["diff", "--from", str(tmp_path / "a")]).exit_code == 2
    assert runner.invoke(app, ["diff", "--from", str(tmp_path), "--to", str(tmp_path / "a")]).exit_code == 2


@pytest.fixture
def repository(tmp_path):
    """A copy of this project (tracked and new files) as a git repository with one commit on main."""
    from mlcluster.review.revisions import export

    repo = tmp_path / "repo"
    export(ROOT, None, repo)  # the working tree, as `mlcluster diff` exports it

    def git(*args):
        subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    git("-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-qam", "base", "--allow-empty")
    git("add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-qm", "base")
    return repo, git


def test_diff_between_two_git_revisions(repository, monkeypatch):
    repo, git = repository
    profile = repo / "profiles" / "local.yaml"
    text = profile.read_text()
    text = text.replace("    artifacts_storage_gib: 10", "    artifacts_storage_gib: 20")  # change: volume grows
    text = text.replace("  storage_class: null ", "  storage_class: fast ")  # replace: the artifact volume moves
    assert "storage_class: fast" in text and "artifacts_storage_gib: 20" in text
    profile.write_text(text)
    catalog = repo / "addons" / "catalog.yaml"
    catalog.write_text(catalog.read_text().replace('version: "0.19.2"', 'version: "0.19.3"'))  # a Kueue bump
    git("checkout", "-qb", "change")
    git("-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-qam", "change")
    monkeypatch.chdir(repo)
    result = runner.invoke(app, ["diff", "--profile", "local", "--base", "main", "--head", "change", "--markdown"])
    assert result.exit_code == 1, result.output
    lines = result.output
    assert "0 to add, 0 to remove, 4 to change, 1 to replace · 1 chart version bump(s)" in lines
    assert "[!CAUTION]" in lines and "**replaces** `mlflow-artifacts`" in lines  # protected, holds data
    assert "`kueue` (kueue): 0.19.2 → **0.19.3**" in lines
    # The new class reaches Prometheus/Grafana volumes, notebook homes and the database; MLflow's chart values
    # never name the artifact volume's class, so its release does not change.
    for changed in ("monitoring-kube-prometheus-stack", "jupyterhub-jupyterhub", "mlflow-db", "kueue-kueue"):
        assert f"| ✏️ change | `{changed}` |" in lines
    assert "`spec.resources.requests.storage`: `10Gi` → `20Gi`" in lines
    assert "`spec.storageClassName`: `∅` → `fast` **replaces**" in lines
    # Same answer from the branch checked out, comparing with its merge-base on main by default.
    git("checkout", "-q", "change")
    default = runner.invoke(app, ["diff", "--profile", "local"])
    assert default.exit_code == 1 and "4 to change, 1 to replace" in default.output
    assert runner.invoke(app, ["diff", "--profile", "local", "--base", "no-such-branch"]).exit_code == 2


def test_multi_line_values_show_every_changed_line():
    """Both sides of a multi-line value (Kueue's controller config, a host script) used to be cut at the same
    60-character prefix, so the change was invisible, and raw newlines broke the markdown."""
    config = "apiVersion: config.kueue.x-k8s.io/v1beta2\nkind: Configuration\nwaitForPodsReady:\n  timeout: {}\n"
    base = doc(record("kubernetes:helm.sh/v3:Release", "kueue", {"values": {"config": config.format("10m")}}))
    head = doc(record("kubernetes:helm.sh/v3:Release", "kueue", {"values": {"config": config.format("30m")}}))
    diff = compare(base, head, "a", "b")
    text = report.text(diff)
    assert "-  timeout: 10m" in text and "+  timeout: 30m" in text
    md = report.markdown(diff, "t")
    assert "```diff" in md and "    -  timeout: 10m" in md and "    +  timeout: 30m" in md
    assert "`10m" not in md.split("```diff")[0], "no raw multi-line value inside inline code"
    fenced = report.markdown(compare(doc(record("kubernetes:helm.sh/v3:Release", "x", {"v": "a\n```\nb\n"})),
                                     doc(record("kubernetes:helm.sh/v3:Release", "x", {"v": "a\n```\nc\n"})), "a", "b"),
                             "t")
    assert "````diff" in fenced, "a fence longer than any backtick run inside"


def test_diff_renders_the_checkout_you_stand_in_with_its_own_code(repository, monkeypatch):
    """The installed CLI, run from another checkout, renders that checkout's code (here a changed template)."""
    repo, _ = repository
    template = repo / "addons" / "ml" / "kueue.values.yaml.j2"
    template.write_text(template.read_text().replace("cpu: 250m, memory: 256Mi", "cpu: 300m, memory: 256Mi"))
    monkeypatch.chdir(repo)
    result = runner.invoke(app, ["diff", "--profile", "local", "--base", "main"])
    assert result.exit_code == 1, result.output
    assert "values.controllerManager.manager.resources.requests.cpu: 250m → 300m" in result.output
