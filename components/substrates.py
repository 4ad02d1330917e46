"""Substrate kinds → the component that makes (or wraps) the cluster and the checks run before it.

A new substrate (EKS, bare metal, GKE…) is one module with a component exposing `.handle`
(a `ClusterHandle`) and a `check_stack(profile, stack)` function, plus one line here. Both are named, not
imported: `mlcluster validate` runs the checks without importing any provider SDK (pulumi_aws and
pulumi_kubernetes' typed modules take most of a second), and only the chosen substrate's component is loaded.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def _load(target: str) -> Any:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


@dataclass(frozen=True)
class Substrate:
    component_path: str  # "module:Class" of the component
    check_path: str  # "module:function" run before anything is registered
    # Stack config `render --profile` uses when no stack is given (illustrative, shown in SUMMARY.md).
    example_config: Callable[[Any], dict[str, str]]
    # Secret config keys a render of a stack file may stand in for when the file does not set them.
    render_secrets: tuple[str, ...] = ()

    @property
    def component(self) -> Callable[..., Any]:
        return _load(self.component_path)  # type: ignore[no-any-return]

    @property
    def check_stack(self) -> Callable[..., None]:
        return _load(self.check_path)  # type: ignore[no-any-return]


def _baremetal_example(profile: Any) -> dict[str, str]:
    return _load("mlcluster.components.baremetal.preflight:example_config")(profile)  # type: ignore[no-any-return]


SUBSTRATES: dict[str, Substrate] = {
    "existing": Substrate("mlcluster.components.existing:ExistingCluster",
                          "mlcluster.components.existing_preflight:check_stack",
                          lambda _: {"mlcluster:kubeContext": "kind-mlcluster"}),
    "eks": Substrate("mlcluster.components.aws.eks:EksCluster", "mlcluster.components.aws.preflight:check_stack",
                     lambda _: {"mlcluster:overrides": '{"substrate": {"admin_principals": '
                                '["arn:aws:iam::111122223333:role/mlcluster-admin"], '
                                '"api": {"runner_cidrs": ["10.100.0.0/24"]}}}'}),
    "baremetal": Substrate("mlcluster.components.baremetal.cluster:BaremetalCluster",
                           "mlcluster.components.baremetal.preflight:check_stack", _baremetal_example,
                           render_secrets=("mlcluster:sshPrivateKey",)),
}
