"""Benchmark: render time per shipped profile, and scaling with the number of teams.

For N teams (10 / 100 / 1,000) it renders a synthetic profile (the `local` profile with N teams) and,
as the floor, a bare Pulumi program that registers the same number of plain resources under the same
mocks and recording monitor. The ratio says how much the toolkit adds over Pulumi's own cost. Each scaling
measurement runs in a process of its own (after a small warm-up render in it), so its peak resident memory is
its own; ours and the floor alternate, and the table shows medians of --repeat runs. The floor runs as a bare
program does: Python's default garbage collection, the SDK's thread pool for monitor calls, a stack trace per
resource. A render spares itself all three (mlcluster.render.engine: cyclic_gc_paused, render_loop,
stack_traces_skipped; the `mlcluster` command keeps the collector off, mlcluster.cli.main), so the table also shows
the floor run the same way ("floor, render's engine"): the ratio to that column is what our program and writer
add over the SDK's work for as many resources.

    .venv/bin/python bench/render.py [--teams 10,100] [--big] [--repeat 1]
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import subprocess
import sys
import time

import pulumi
from pulumi.runtime import config as runtime_config
from pulumi.runtime import mocks as runtime_mocks
from pulumi.runtime import settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from mlcluster.profiles.loader import shipped_profiles
from mlcluster.render import render
from mlcluster.render.engine import RecordingMonitor
from mlcluster.render.mocks import PlatformMocks


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def synthetic_sets(teams: int) -> tuple[str, ...]:
    team_list = [{"name": f"team{i:04d}", "members": [f"user{i}@example.com"], "leads": [f"lead{i}@example.com"],
                  "quota": {"cpu": "4", "memory": "16Gi"}} for i in range(teams)]
    return (f"teams={json.dumps(team_list)}",)


def synthetic_pools(pools: int) -> tuple[str, ...]:
    """aws-gpu with `pools` node pools: the system pool plus alternating CPU and A10G pools."""
    items = [{"name": "system", "role": "system", "instance_types": ["m7i.xlarge"], "min": 2, "max": 4}]
    for i in range(1, pools):
        if i % 2:
            items.append({"name": f"cpu-{i:03d}", "role": "cpu", "instance_types": ["m7i.2xlarge"], "max": 5})
        else:
            items.append({"name": f"gpu-{i:03d}", "role": "gpu", "instance_types": ["g5.2xlarge"], "max": 5,
                          "gpu": {"product": "NVIDIA-A10G", "count": 1}})
    return (f"node_pools={json.dumps(items)}", "tiers=[]", "teams=[]", "ml.jupyterhub.enabled=false")


def floor(count: int) -> float:
    """The same number of plain Kubernetes objects (ConfigMaps on one explicit provider, with labels and a little
    data) registered under the same mocks and recording monitor: Pulumi's own cost for that many objects."""
    import pulumi_kubernetes as k8s

    settings.reset_options(project="mlcluster", stack="bench", preview=False)
    runtime_config.set_all_config({}, [])
    mocks = PlatformMocks()
    runtime_mocks.set_mocks(mocks, "mlcluster", "bench", preview=False, monitor=RecordingMonitor(mocks))
    settings.SETTINGS.rpc_manager.clear()
    settings.SETTINGS.outputs.clear()

    def program() -> None:
        provider = k8s.Provider("floor", kubeconfig="{}")
        opts = pulumi.ResourceOptions(provider=provider)
        for i in range(count - 1):
            k8s.core.v1.ConfigMap(f"thing-{i}", metadata={"name": f"thing-{i}", "namespace": f"ns-{i % 100}",
                                                         "labels": {"app.kubernetes.io/managed-by": "bench"}},
                                  data={"key": f"value-{i}"}, opts=opts)

    seconds, _ = timed(lambda: _sync_await(run_pulumi_func(program)))
    return seconds


CASES = {"teams": ("local", synthetic_sets), "eks node pools": ("aws-gpu", synthetic_pools)}


def measure(kind: str, label: str, size: int) -> None:
    """In a child process: one measurement, printed as JSON (seconds, resources, peak RSS in MB)."""
    profile, make_sets = CASES[label]
    sets = make_sets(size)
    if kind == "ours":
        render(profile=profile)  # warm-up: imports (pulumi_aws's modules for an eks profile), schema caches
        gc.collect()  # what the warm-up left: a command runs one render, with nothing of an earlier one around
        gc.disable()  # as `mlcluster render` runs (mlcluster.cli.main)
        seconds, rendered = timed(lambda: render(profile=profile, sets=sets))
        count = len(rendered.result.resources)
    else:
        floor(50)  # warm-up: imports
        count = size  # the floor's size is a number of resources
        if kind == "floor-engine":
            from mlcluster.render import engine

            gc.disable()
            with engine.stack_traces_skipped(), engine.render_loop():
                seconds = floor(count)
        else:
            seconds = floor(count)
    # VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss over from the parent across fork and exec.
    with open("/proc/self/status", encoding="ascii") as proc:
        status = dict(line.split(":", 1) for line in proc)
    peak = int(status["VmHWM"].split()[0]) // 1024
    print(json.dumps({"seconds": seconds, "resources": count, "rss_mb": peak}))


def child(kind: str, label: str, size: int) -> dict:
    """`size` is the case's size for our render, the number of resources for the floor."""
    done = subprocess.run([sys.executable, __file__, "--measure", kind, "--case", label, "--size", str(size)],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teams", default="10,100")
    parser.add_argument("--big", action="store_true", help="add 1,000 teams to --teams (minutes)")
    parser.add_argument("--pools", default="5,50", help="node pools in the synthetic eks profile")
    parser.add_argument("--repeat", type=int, default=1, help="median of N runs")
    parser.add_argument("--profiles", default="", help="comma-separated shipped profiles (default: all)")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(args.measure, args.case, args.size)
        return

    render(profile="local")  # warm-up: imports, schema caches
    print("| profile | resources | render (s) |")
    print("|---|---|---|")
    for name in args.profiles.split(",") if args.profiles else shipped_profiles():
        seconds = min(timed(lambda n=name: render(profile=n))[0] for _ in range(args.repeat))
        count = len(render(profile=name).result.resources)
        print(f"| {name} | {count} | {seconds:.2f} |")

    scaling("teams", [int(t) for t in args.teams.split(",")] + ([1000] if args.big else []), args.repeat)
    scaling("eks node pools", [int(p) for p in args.pools.split(",")], args.repeat)


def scaling(label: str, sizes: list[int], repeat: int) -> None:
    """Render the case's profile at each size; compare with the bare-Pulumi floor of as many resources."""
    print()
    print(f"| {label} | resources | render (s) | floor (s) | ratio | floor, render's engine (s) | ratio "
          "| peak RSS render / floor (MB) | ratio |")
    print("|---|---|---|---|---|---|---|---|---|")
    for size in sizes:
        ours, bare, same_engine = [], [], []
        for _ in range(repeat):
            ours.append(child("ours", label, size))
            count = ours[-1]["resources"]
            bare.append(child("floor", label, count))
            same_engine.append(child("floor-engine", label, count))
        seconds, base = statistics.median(r["seconds"] for r in ours), statistics.median(r["seconds"] for r in bare)
        rss, base_rss = statistics.median(r["rss_mb"] for r in ours), statistics.median(r["rss_mb"] for r in bare)
        engine_base = statistics.median(r["seconds"] for r in same_engine)
        print(f"| {size} | {count} | {seconds:.2f} | {base:.2f} | {seconds / base:.2f}× | {engine_base:.2f} "
              f"| {seconds / engine_base:.2f}× | {rss:.0f} / {base_rss:.0f} | {rss / base_rss:.2f}× |")


if __name__ == "__main__":
    main()
