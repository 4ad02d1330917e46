"""The Pulumi program: stack config → effective profile → Platform → stack outputs.

`stacks/__main__.py` calls `main()` under `pulumi up`; `mlcluster render` and the tests call `build()`
under the mocks. Everything that can be wrong with the input is checked before the first resource is
registered, so bad input deploys nothing.
"""

from __future__ import annotations

import sys
from typing import Any

import pulumi

from mlcluster.addons import registry, settings_of
from mlcluster.components.platform import Platform, enabled_addons
from mlcluster.components.substrates import SUBSTRATES
from mlcluster.errors import EXIT_BAD_INPUT, ConfigError
from mlcluster.profiles.effective import load_profile
from mlcluster.profiles.model import ProfileBase
from mlcluster.stackconfig import StackSettings


def effective_profile(stack: StackSettings, sets: tuple[str, ...] = ()) -> ProfileBase:
    return load_profile(stack.profile, overrides=stack.overrides, overrides_file=stack.source,
                        override_lines=stack.override_lines, sets=sets, referrer=stack.source)


def build(sets: tuple[str, ...] = ()) -> tuple[ProfileBase, dict[str, Any]]:
    """Read the stack config, validate everything, then create the platform. Returns its stack outputs."""
    stack = StackSettings.from_pulumi_config()
    profile = effective_profile(stack, sets)
    SUBSTRATES[profile.substrate.kind].check_stack(profile, stack)
    for key in enabled_addons(profile):
        registry()[key].check_stack(profile, settings_of(profile, key), stack)  # type: ignore[arg-type]
    if stack.e2e is not None and stack.e2e.skip_await:
        pulumi.runtime.register_stack_transformation(_skip_await)
    platform = Platform("mlcluster", profile, stack)
    return profile, platform.stack_outputs


def _skip_await(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
    """The e2e stack's control plane has no nodes: nothing would ever become ready, so the Kubernetes provider is
    told not to wait (`pulumi.com/skipAwait`, and `skip_await` on Helm releases). Only the e2e stack turns it on."""
    if not args.type_.startswith("kubernetes:"):
        return None
    props = dict(args.props)
    if args.type_ == "kubernetes:helm.sh/v3:Release":
        props["skip_await"] = True
    elif isinstance(props.get("metadata"), dict):
        metadata = dict(props["metadata"])
        metadata["annotations"] = {**(metadata.get("annotations") or {}), "pulumi.com/skipAwait": "true"}
        props["metadata"] = metadata
    else:
        return None
    return pulumi.ResourceTransformationResult(props, args.opts)


NOT_UNDER_PULUMI = ("mlcluster: this is the Pulumi program of mlcluster; it runs under the Pulumi engine, not on its "
                    "own. Deploy it with `pulumi up` (from the project root, with a stack selected), or see what it "
                    "would deploy, offline, with `mlcluster render --stack <name>`.")


def main() -> None:
    """Entry point under the Pulumi engine: bad input is one clear message, not a traceback."""
    from pulumi.runtime import settings

    if settings.get_monitor() is None:  # `python stacks/__main__.py`: no engine, no stack, no config
        print(NOT_UNDER_PULUMI, file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)
    try:
        _, outputs = build()
    except ConfigError as err:
        raise pulumi.RunError(f"mlcluster: bad input, nothing was deployed.\n\n{err.render()}") from None
    for key, value in outputs.items():
        pulumi.export(key, value)
