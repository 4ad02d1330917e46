"""Benchmark: `mlcluster diff --profile aws-gpu` between two git revisions (a pool's instance type changed) with
an empty render cache (cold) and with the base revision rendered before (warm), the comparison alone on two
render folders, and one render for scale. Wall time, median of --repeat runs.

    .venv/bin/python bench/diff.py [--profile aws-gpu] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlcluster.review.revisions import export

ROOT = Path(__file__).resolve().parents[1]
MLCLUSTER = [sys.executable, "-c", "from mlcluster.cli import main; main()"]


def timed(args: list[str], cwd: Path, cache: Path | None = None) -> float:
    env = {**os.environ, **({"MLCLUSTER_CACHE": str(cache)} if cache else {})}
    start = time.perf_counter()
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False, env=env)
    if done.returncode not in (0, 1):
        raise SystemExit(done.stderr)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--profile", default="aws-gpu")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "repo"
        export(ROOT, None, repo)  # the working tree, as `mlcluster diff` exports it

        def git(*a: str) -> None:
            subprocess.run(["git", "-C", str(repo), "-c", "user.name=b", "-c", "user.email=b@example.org", *a],
                           check=True, capture_output=True)

        git("init", "-q", "-b", "main")
        git("add", "-A")
        git("commit", "-qm", "base")
        profile = repo / "profiles" / f"{args.profile}.yaml"
        profile.write_text(profile.read_text().replace("[g6.12xlarge]", "[g6.24xlarge]"))
        git("checkout", "-qb", "change")
        git("commit", "-qam", "change")
        diff = [*MLCLUSTER, "diff", "--profile", args.profile, "--base", "main", "--head", "change"]
        cold = [timed(diff, repo, Path(tempfile.mkdtemp(dir=tmp))) for _ in range(args.repeat)]
        warm = []
        for _ in range(args.repeat):  # a cache holding the base revision's render only
            cache = Path(tempfile.mkdtemp(dir=tmp))
            timed([*MLCLUSTER, "diff", "--profile", args.profile, "--base", "main", "--head", "main"], repo, cache)
            warm.append(timed(diff, repo, cache))
        git("checkout", "-q", "main")
        one = [timed([*MLCLUSTER, "render", "--profile", args.profile, "--out", str(Path(tmp) / f"one-{i}")], repo)
               for i in range(args.repeat)]
        for name, rev in (("a", "main"), ("b", "change")):
            git("checkout", "-q", rev)
            subprocess.run([*MLCLUSTER, "render", "--profile", args.profile, "--out", str(Path(tmp) / name)],
                           cwd=repo, check=True, capture_output=True)
        folders = [timed([*MLCLUSTER, "diff", "--from", str(Path(tmp) / "a"), "--to", str(Path(tmp) / "b")], repo)
                   for _ in range(args.repeat)]
    print(f"| mlcluster diff --profile {args.profile} | median wall time (s) |")
    print("|---|---|")
    print(f"| one render | {statistics.median(one):.2f} |")
    print(f"| two git revisions, cold cache (render both side by side + compare) | {statistics.median(cold):.2f} |")
    print(f"| two git revisions, base rendered before (render head + compare) | {statistics.median(warm):.2f} |")
    print(f"| two render folders (compare only) | {statistics.median(folders):.2f} |")


if __name__ == "__main__":
    main()
