"""Commands that write check their target first: `render --out` replaces only an earlier render (or writes a
new or empty folder); anything else is exit 2 with nothing touched. Before this, `write_tree` removed whatever
was at the path: `--out .` deleted the checkout, `.git` included."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlcluster.cli import app
from mlcluster.errors import ConfigError
from mlcluster.safewrite import RENDER_MARKER, check_generated_file, check_render_target

runner = CliRunner()


def render_to(target: str | Path):
    return runner.invoke(app, ["render", "--out", str(target)])


def snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): p.read_text() for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_refused(result, *words: str) -> None:
    assert result.exit_code == 2, result.output
    assert "error: bad input, nothing was written." in result.output
    for word in words:
        assert word in result.output, result.output
    assert "Traceback" not in result.output


def test_a_folder_with_a_users_file_is_left_alone(tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("buy GPUs")
    result = render_to(notes)
    assert_refused(result, "--out", "not a render", "todo.txt")
    assert snapshot(notes) == {"todo.txt": "buy GPUs"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes"], "no temporary folder left behind"


def test_a_non_empty_foreign_folder_with_render_like_names_is_refused(tmp_path):
    folder = tmp_path / "out"
    (folder / "manifests").mkdir(parents=True)
    (folder / "thesis.tex").write_text("\\begin{document}")
    assert_refused(render_to(folder), "thesis.tex")
    assert (folder / "thesis.tex").read_text() == "\\begin{document}"


def test_a_file_path_is_refused(tmp_path):
    target = tmp_path / "report.pdf"
    target.write_bytes(b"%PDF")
    assert_refused(render_to(target), "it is a file")
    assert target.read_bytes() == b"%PDF"


def test_dot_the_working_directory_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".git").mkdir()
    (tmp_path / "Pulumi.yaml").write_text("name: mine\n")
    before = snapshot(tmp_path)
    assert_refused(render_to("."), "working directory")
    assert snapshot(tmp_path) == before and (tmp_path / ".git").is_dir()


def test_a_parent_of_the_working_directory_is_refused(tmp_path, monkeypatch):
    inner = tmp_path / "a" / "b"
    inner.mkdir(parents=True)
    monkeypatch.chdir(inner)
    assert_refused(render_to(tmp_path / "a"), "working directory or one of its parents")
    assert inner.is_dir()


def test_the_root_and_home_are_refused(tmp_path, monkeypatch):
    assert_refused(render_to("/"), "root")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir("/")
    assert_refused(render_to("~"), "home folder")


def test_a_symlink_to_elsewhere_is_refused_and_its_target_untouched(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("mine")
    link = tmp_path / "out"
    link.symlink_to(elsewhere, target_is_directory=True)
    assert_refused(render_to(link), "symlink")
    assert link.is_symlink() and snapshot(elsewhere) == {"keep.txt": "mine"}


def test_a_new_folder_then_the_same_render_again_is_fine(tmp_path):
    out = tmp_path / "deep" / "out"
    first = render_to(out)
    assert first.exit_code == 0, first.output
    assert (out / RENDER_MARKER).is_file() and (out / "SUMMARY.md").is_file()
    (out / "stale.yaml").write_text("from an old render")  # inside a render: ours to replace
    again = render_to(out)
    assert again.exit_code == 0, again.output
    assert not (out / "stale.yaml").exists() and (out / "resources.json").is_file()


def test_an_empty_folder_and_an_older_render_without_marker_are_replaced(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert check_render_target(empty) == empty
    older = tmp_path / "older"
    (older / "manifests").mkdir(parents=True)
    (older / "resources.json").write_text("{}")
    (older / "SUMMARY.md").write_text("#")
    assert check_render_target(older) == older


def test_render_checks_the_target_before_it_renders(tmp_path, monkeypatch):
    """The refusal comes first: a slow render never ends in a refusal (and a crash cannot leave half a tree)."""
    import mlcluster.render

    def boom(**_):
        raise AssertionError("rendered before checking the target")

    monkeypatch.setattr(mlcluster.render, "render", boom)
    (tmp_path / "x.txt").write_text("x")
    assert_refused(render_to(tmp_path), "x.txt")


def test_generated_files_are_only_overwritten_when_they_are_ours(tmp_path):
    mine = tmp_path / "schema.json"
    mine.write_text('{"title": "my own schema"}')
    with pytest.raises(ConfigError, match="not the file"):
        check_generated_file(mine, '"title": "mlcluster profile"', "mlcluster schema")
    ours = tmp_path / "REFERENCE.md"
    ours.write_text("# Profile reference\n\nGenerated from the profile model by `mlcluster schema`; …")
    check_generated_file(ours, "Generated from the profile model by `mlcluster schema`", "mlcluster schema")
    check_generated_file(tmp_path / "new.md", "anything", "mlcluster schema")  # missing: fine


def test_schema_refuses_outside_a_checkout(tmp_path, monkeypatch):
    from mlcluster.safewrite import source_checkout

    with pytest.raises(ConfigError, match="not one"):
        source_checkout(tmp_path, "mlcluster schema")


def test_diff_scratch_renders_go_to_fresh_temporary_folders(tmp_path, monkeypatch):
    """`diff` renders into folders it creates itself (never a user's path): the scratch targets do not exist."""
    import mlcluster.review.revisions as revisions

    seen = []

    def fake(root, revision, args, out):
        seen.append(out)
        assert not out.exists() and out.parent.is_dir() and str(out.parent).startswith(os.path.realpath("/tmp"))
        raise ConfigError.one("test", "", "", "stop here")

    monkeypatch.setattr(revisions, "render_revision", fake)
    result = runner.invoke(app, ["diff", "-p", "local", "--base", "HEAD"])
    assert result.exit_code == 2 and seen
