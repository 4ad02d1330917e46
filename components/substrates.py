"""Substrate kinds → the component that makes (or wraps) the cluster and the checks run before it.

A new substrate (EKS, bare metal, GKE…) is a component module exposing `.handle` (a `ClusterHandle`) and a
preflight module with `check_stack(profile, stack)`, plus one line here. Both import no provider SDK (they take
them from mlcluster.deferred), so `mlcluster validate` runs the checks without loading one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mlcluster.components import existing, existing_preflight
from mlcluster.components.aws import eks
from mlcluster.components.aws import preflight as eks_preflight
from mlcluster.components.baremetal import cluster as baremetal
from mlcluster.components.baremetal import preflight as baremetal_preflight


@dataclass(frozen=True)
class Substrate:
    component: Callable[..., Any]
    check_stack: Callable[..., None]  # run before anything is registered
    # Stack config `render --profile` uses when no stack is given (illustrative, shown in SUMMARY.md).
    example_config: Callable[[Any], dict[str, str]]
    # Secret config keys a render of a stack file may stand in for when the file does not set them.
    render_secrets: tuple[str, ...] = ()


SUBSTRATES: dict[str, Substrate] = {
    "existing": Substrate(existing.ExistingCluster, existing_preflight.check_stack,
                          lambda _: {"mlcluster:kubeContext": "kind-mlcluster"}),
    "eks": Substrate(eks.EksCluster, eks_preflight.check_stack,
                     lambda _: {"mlcluster:overrides": '{"substrate": {"admin_principals": '
                                '["arn:aws:iam::111122223333:role/mlcluster-admin"], '
                                '"api": {"runner_cidrs": ["10.100.0.0/24"]}}}'}),
    "baremetal": Substrate(baremetal.BaremetalCluster, baremetal_preflight.check_stack,
                           baremetal_preflight.example_config, render_secrets=("mlcluster:sshPrivateKey",)),
}
