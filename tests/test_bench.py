"""One tiny run of the render benchmark keeps the script working (it reports numbers; nothing here times
them). The full benchmarks, and the diff benchmark, run with `make bench`."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def test_render_benchmark_runs():
    done = subprocess.run([sys.executable, "bench/render.py", "--profiles", "local", "--teams", "2", "--pools", "2"],
                          cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| profile | resources | render (s) |" in done.stdout and "| local |" in done.stdout
    assert "| eks node pools |" in done.stdout and "\n| 2 |" in done.stdout
    assert "| peak RSS render / floor (MB) |" in done.stdout
