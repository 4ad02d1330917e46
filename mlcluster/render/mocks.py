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


def fake_secret(name: str) -> str:
    """A stand-in for a generated secret: deterministic, recognisable, and never in a render."""
    return "mock-" + hashlib.sha256(name.encode()).hexdigest()[:27]


# Data sources (invokes) by token → their answer given the call's args. Answers use wire (camelCase)
# names and carry every required field. Substrates that call data sources add their answers here.
DATA_SOURCES: dict[str, Any] = {}


class PlatformMocks(pulumi.runtime.Mocks):
    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        state = dict(args.inputs)
        if args.typ == RANDOM_PASSWORD:
            # The real provider marks `result` secret; so do we.
            state["result"] = rpc.wrap_rpc_secret(fake_secret(args.name))
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        answer = DATA_SOURCES.get(args.token)
        if answer is None:
            raise KeyError(f"render has no illustrative answer for data source {args.token}; "
                           "add one to mlcluster/render/mocks.py")
        return answer(args.args) if callable(answer) else answer
