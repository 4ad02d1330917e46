"""Substrate kinds → the component that makes (or wraps) the cluster and the checks run before it.

A new substrate (EKS, bare metal, GKE…) is one module with a component exposing `.handle`
(a `ClusterHandle`) and a `check_stack(profile, stack)` function, plus one line here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mlcluster.components import existing
from mlcluster.components.aws import eks
from mlcluster.components.baremetal import cluster as baremetal


@dataclass(frozen=True)
class Substrate:
    component: Callable[..., Any]
    check_stack: Callable[..., None]
    # Stack config `render --profile` uses when no stack is given (illustrative, shown in SUMMARY.md).
    example_config: Callable[[Any], dict[str, str]]
    # Secret config keys a render of a stack file may stand in for when the file does not set them.
    render_secrets: tuple[str, ...] = ()


SUBSTRATES: dict[str, Substrate] = {
    "existing": Substrate(existing.ExistingCluster, existing.check_stack,
                          lambda _: {"mlcluster:kubeContext": "kind-mlcluster"}),
    "eks": Substrate(eks.EksCluster, eks.check_stack,
                     lambda _: {"mlcluster:overrides": '{"substrate": {"admin_principals": '
                                '["arn:aws:iam::111122223333:role/mlcluster-admin"], '
                                '"api": {"runner_cidrs": ["10.100.0.0/24"]}}}'}),
    "baremetal": Substrate(baremetal.BaremetalCluster, baremetal.check_stack, baremetal.example_config,
                           render_secrets=("mlcluster:sshPrivateKey",)),
}
