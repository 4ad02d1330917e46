"""The benchmark scripts still run on the current profiles (they report numbers; nothing here times them)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def run(*args):
    done = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_render_benchmark_runs():
    out = run("bench/render.py", "--teams", "2", "--pools", "3")
    assert "| profile | resources | render (s) |" in out and "| aws-gpu |" in out
    assert "| eks node pools |" in out and "\n| 3 |" in out


def test_diff_benchmark_runs():
    out = run("bench/diff.py", "--repeat", "1")
    assert "two git revisions" in out and "two render folders" in out
