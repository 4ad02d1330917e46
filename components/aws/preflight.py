"""Checks of an eks stack that run before anything is registered (and in `mlcluster validate`, which imports no
provider SDK): an admin, a way in for the runner, and the caller among the admins."""

from __future__ import annotations

from mlcluster.errors import ConfigError
from mlcluster.profiles.model import EksSubstrate, ProfileBase
from mlcluster.stackconfig import StackSettings


def check_stack(profile: ProfileBase, stack: StackSettings) -> None:
    """Before anything is registered: someone (at least the identity running Pulumi) must be admin, and the
    runner must have a way to the API, or `pulumi up` builds the AWS side and then times out on the first
    Kubernetes object (EKS user guide, "Cluster API server endpoint": the private endpoint answers only inside
    the VPC, through the cluster security group, which admits only itself)."""
    substrate = profile.substrate
    assert isinstance(substrate, EksSubstrate)
    if not substrate.admin_principals:
        raise ConfigError.one(
            stack.source, "mlcluster:overrides.substrate.admin_principals", [],
            "list the IAM role ARNs that administer the cluster, including the one `pulumi up` runs as: there "
            "is no implicit creator admin, so with none nobody (not even Pulumi) could reach the cluster",
        )
    if not substrate.api.public_cidrs and not substrate.api.runner_cidrs:
        raise ConfigError.one(
            stack.source, "mlcluster:overrides.substrate.api.runner_cidrs", [],
            "the API endpoint is private, and `pulumi up` must reach it to create the Kubernetes objects: list "
            "the networks it runs from (VPN, Direct Connect, a peered CI network or a runner subnet inside the "
            "VPC) in api.runner_cidrs, or allow them on a public endpoint in api.public_cidrs",
        )


def principal_of(caller_arn: str) -> tuple[str, str, str]:
    """(account, kind, name) of a caller: an assumed-role session (`arn:…:sts::A:assumed-role/R/session`) is the role
    R; an access entry names the role's IAM ARN, whose path the session ARN leaves out, so names are compared."""
    parts = caller_arn.split(":", 5)
    account, resource = parts[4], parts[5]
    kind, _, rest = resource.partition("/")
    if kind == "assumed-role":
        return account, "role", rest.split("/")[0]
    return account, kind, rest.rsplit("/", 1)[-1]


def check_caller(caller_arn: str, principals: list[str], source: str) -> None:
    """14: the identity running `pulumi up` must be one of the admins, or it builds the whole AWS side and is then
    refused (Unauthorized) on the first Kubernetes object, with no implicit creator admin to fall back on."""
    caller = principal_of(caller_arn)
    if any(principal_of(p) == caller for p in principals):
        return
    raise ConfigError.one(
        source, "mlcluster:overrides.substrate.admin_principals", principals,
        f"`pulumi up` runs as {caller_arn}, which is not in the list, so it could create the AWS resources but not "
        f"one Kubernetes object: add its role (arn:aws:iam::{caller[0]}:{caller[1]}/{caller[2]}) or run as one "
        "of the listed principals",
    )
