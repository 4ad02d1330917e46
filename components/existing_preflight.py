"""Checks of an `existing` stack, importable without any provider SDK (see components/substrates.py)."""

from __future__ import annotations

from mlcluster.errors import ConfigError
from mlcluster.profiles.model import ProfileBase
from mlcluster.stackconfig import StackSettings


def check_stack(profile: ProfileBase, stack: StackSettings) -> None:
    """Before anything is registered: the stack must say how to reach the cluster."""
    if stack.kubeconfig is None and not stack.kube_context:
        raise ConfigError.one(
            stack.source, "mlcluster:kubeContext", None,
            "substrate `existing` needs the cluster's address: set `mlcluster:kubeContext` (a context in your "
            "kubeconfig file) or `mlcluster:kubeconfig` (with --secret)",
            missing=True,
        )
