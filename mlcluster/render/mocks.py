"""What the mocks answer in place of the cloud and the providers — the one place render makes things up.

Everything here is illustrative: IDs, generated passwords and data-source answers are stand-ins so the
program can run to completion offline. They are deterministic (a render is byte-identical run to run) and
generated secrets are still marked secret, so they are redacted like real ones.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pulumi
from pulumi.runtime import rpc

RANDOM_PASSWORD = "random:index/randomPassword:RandomPassword"

# The illustrative AWS account: 111122223333 is the account id AWS documentation uses for examples.
ACCOUNT_ID = "111122223333"
PARTITION = "aws"
DEFAULT_REGION = "us-east-1"


def fake_secret(name: str) -> str:
    """A stand-in for a generated secret: deterministic, recognisable, and never in a render."""
    return "mock-" + hashlib.sha256(name.encode()).hexdigest()[:27]


def _azs(args: dict[str, Any], mocks: PlatformMocks) -> dict[str, Any]:
    region = args.get("region") or mocks.region()
    short = "".join(part[0] if not part.isdigit() else part for part in region.split("-"))  # eu-west-1 → ew1
    names = [f"{region}{suffix}" for suffix in "abc"]
    return {"id": region, "names": names, "zoneIds": [f"{short}-az{i}" for i in (1, 2, 4)],
            "groupNames": [region] * 3, "state": "available"}


def _caller(args: dict[str, Any], mocks: PlatformMocks) -> dict[str, Any]:
    """Who runs `pulumi up` cannot be known offline: the render runs as the last listed admin principal (the
    deployer, by the convention the shipped stacks follow), so the caller check passes exactly when the profile
    lists an admin at all; the check itself is tested against real caller ARNs."""
    from mlcluster.components.aws.preflight import principal_of

    principals = list(getattr(mocks.profile().substrate, "admin_principals", []) or [])
    account, _, role = principal_of(principals[-1]) if principals else (ACCOUNT_ID, "role", "mlcluster-render")
    return {"accountId": account, "arn": f"arn:aws:sts::{account}:assumed-role/{role}/render", "id": account,
            "userId": "AROAEXAMPLEEXAMPLE:render"}


# Data sources (invokes) by token → their answer: a dict, or a function of the call's args and the mocks (which
# know the stack's profile). Answers use wire (camelCase) names and carry every required field. Substrates that
# call data sources add their answers here.
DATA_SOURCES: dict[str, Any] = {
    "aws:index/getCallerIdentity:getCallerIdentity": _caller,
    # EKS names a default add-on version per Kubernetes minor; the stand-in says which minor it is for.
    "aws:eks/getAddonVersion:getAddonVersion": lambda args, _: {
        "id": args["addonName"], "addonName": args["addonName"], "kubernetesVersion": args["kubernetesVersion"],
        "mostRecent": bool(args.get("mostRecent")),
        "version": f"v0.0.0-default-for-{args['kubernetesVersion']}-eksbuild.1"},
    "aws:index/getPartition:getPartition": {
        "id": PARTITION, "partition": PARTITION, "dnsSuffix": "amazonaws.com", "reverseDnsPrefix": "com.amazonaws"},
    "aws:index/getAvailabilityZones:getAvailabilityZones": _azs,
}


def _digest(text: str, n: int = 17) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def _aws_state(typ: str, name: str, inputs: dict[str, Any], region: str = DEFAULT_REGION) -> dict[str, Any]:
    """Computed outputs the AWS provider would return that the program reads, in the stack's region."""
    service = typ.split(":")[1].split("/")[0]
    state: dict[str, Any] = {"arn": f"arn:aws:{service}:{region}:{ACCOUNT_ID}:{name}"}
    if typ == "aws:eks/cluster:Cluster":
        cluster = inputs.get("name", name)
        state.update(
            arn=f"arn:aws:eks:{region}:{ACCOUNT_ID}:cluster/{cluster}",
            endpoint=f"https://{_digest(cluster, 32).upper()}.gr7.{region}.eks.amazonaws.com",
            certificateAuthority={"data": "bW9jay1jYQ=="},
            vpcConfig={**inputs.get("vpcConfig", {}), "clusterSecurityGroupId": f"sg-{_digest(cluster)}"},
        )
    elif typ == "aws:iam/role:Role":
        role = inputs.get("name", name)
        state.update(arn=f"arn:aws:iam::{ACCOUNT_ID}:role/{role}", name=role)
    elif typ == "aws:kms/key:Key":
        key_id = f"{_digest(name, 8)}-mock-key"
        state.update(arn=f"arn:aws:kms:{region}:{ACCOUNT_ID}:key/{key_id}", keyId=key_id)
    elif typ == "aws:s3/bucket:Bucket":
        bucket = inputs.get("bucket") or f"{inputs.get('bucketPrefix', name)}{_digest(name, 26)}"
        state.update(arn=f"arn:aws:s3:::{bucket}", bucket=bucket)
    elif typ == "aws:cloudwatch/logGroup:LogGroup":
        state.update(arn=f"arn:aws:logs:{region}:{ACCOUNT_ID}:log-group:{inputs.get('name', name)}")
    elif typ == "aws:eks/nodeGroup:NodeGroup":  # EKS makes the Auto Scaling group and names it
        state.update(resources=[{"autoscalingGroups": [
            {"name": f"eks-{inputs.get('nodeGroupName', name)}-{_digest(name, 8)}"}]}])
    elif typ == "aws:ec2/launchTemplate:LaunchTemplate":
        state.update(latestVersion=1)
    elif typ == "aws:ec2/placementGroup:PlacementGroup":
        state.update(name=inputs.get("name", name))
    elif typ == "aws:rds/instance:Instance":
        identifier = inputs.get("identifier", name)
        address = f"{identifier}.{_digest(identifier, 12)}.{region}.rds.amazonaws.com"
        state.update(address=address, endpoint=f"{address}:{inputs.get('port', 5432)}")
    elif typ == "aws:secretsmanager/secret:Secret" and "namePrefix" in inputs:
        state.update(name=f"{inputs['namePrefix']}{_digest(name, 26)}")
    elif typ == "aws:rds/subnetGroup:SubnetGroup":
        state.update(name=inputs.get("name", name))
    return state


class PlatformMocks(pulumi.runtime.Mocks):
    """Offline answers, true to the stack: its region, its admins."""

    def __init__(self, sets: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.sets = sets
        self._effective: Any = None  # the effective profile, read from the stack config on first need

    def profile(self) -> Any:
        if self._effective is None:
            from mlcluster.program import effective_profile
            from mlcluster.stackconfig import StackSettings

            self._effective = effective_profile(StackSettings.from_pulumi_config(), self.sets)
        return self._effective

    def region(self) -> str:
        """12.10: answers are in the stack's region, so an eu-west-1 render shows eu-west-1 zones and ARNs."""
        return getattr(self.profile().substrate, "region", None) or DEFAULT_REGION

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        state = dict(args.inputs)
        if args.typ == RANDOM_PASSWORD:
            # The real provider marks `result` secret; so do we.
            state["result"] = rpc.wrap_rpc_secret(fake_secret(args.name))
        elif args.typ == "random:index/randomId:RandomId":
            state["hex"] = _digest(args.name, 2 * int(args.inputs.get("byteLength", 4)))
        elif args.typ.startswith("aws:") and args.custom:
            state = {**state, **_aws_state(args.typ, args.name, args.inputs, self.region())}
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        answer = DATA_SOURCES.get(args.token)
        if answer is None:
            raise KeyError(f"render has no illustrative answer for data source {args.token}; "
                           "add one to mlcluster/render/mocks.py")
        return answer(args.args, self) if callable(answer) else answer
