"""Benchmark: render time per shipped profile, and scaling with the number of teams.

For N teams (10 / 100 / 1,000) it renders a synthetic profile (the `local` profile with N teams) and,
as the floor, a bare Pulumi program that registers the same number of plain resources under the same
mocks and recording monitor. The ratio says how much the toolkit adds over Pulumi's own cost.

    .venv/bin/python bench/render.py [--teams 10,100,1000] [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teams", default="10,100,1000")
    parser.add_argument("--pools", default="5,50", help="node pools in the synthetic eks profile")
    parser.add_argument("--repeat", type=int, default=1, help="best of N runs")
    parser.add_argument("--profiles", default="", help="comma-separated shipped profiles (default: all)")
    args = parser.parse_args()

    render(profile="local")  # warm-up: imports, schema caches
    print("| profile | resources | render (s) |")
    print("|---|---|---|")
    for name in args.profiles.split(",") if args.profiles else shipped_profiles():
        seconds = min(timed(lambda n=name: render(profile=n))[0] for _ in range(args.repeat))
        count = len(render(profile=name).result.resources)
        print(f"| {name} | {count} | {seconds:.2f} |")

    scaling("teams", "local", {int(t): synthetic_sets(int(t)) for t in args.teams.split(",")}, args.repeat)
    scaling("eks node pools", "aws-gpu", {int(p): synthetic_pools(int(p)) for p in args.pools.split(",")},
            args.repeat)


def scaling(label: str, profile: str, cases: dict[int, tuple[str, ...]], repeat: int) -> None:
    """Render `profile` with each case's --set flags; compare with the bare-Pulumi floor of the same size."""
    print()
    print(f"| {label} | resources | render (s) | bare Pulumi floor (s) | ratio |")
    print("|---|---|---|---|---|")
    for size, sets in cases.items():
        runs = [timed(lambda s=sets: render(profile=profile, sets=s)) for _ in range(repeat)]
        seconds, rendered = min(runs, key=lambda r: r[0])
        count = len(rendered.result.resources)
        base = min(floor(count) for _ in range(repeat))
        print(f"| {size} | {count} | {seconds:.2f} | {base:.2f} | {seconds / base:.2f}× |")


if __name__ == "__main__":
    main()
