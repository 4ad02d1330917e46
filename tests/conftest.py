"""Shared fixtures: renders are expensive-ish, so each profile/stack is rendered once per session."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from mlcluster.render import Rendered, render

ROOT = Path(__file__).resolve().parents[1]


@functools.cache
def rendered_profile(name: str) -> Rendered:
    return render(profile=name)


@functools.cache
def rendered_stack(name: str) -> Rendered:
    return render(stack=name)


@pytest.fixture(autouse=True)
def _project_cwd(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Run every test from the project root, as a user would run the CLI; renders `diff` caches go to a
    temporary folder, never the user's ~/.cache."""
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("MLCLUSTER_CACHE", str(tmp_path_factory.getbasetemp() / "render-cache"))
