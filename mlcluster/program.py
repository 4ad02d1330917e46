"""The Pulumi program: stack config → effective profile → Platform → stack outputs.

`stacks/__main__.py` calls `main()` under `pulumi up`; `mlcluster render` and the tests call `build()`
under the mocks. Everything that can be wrong with the input is checked before the first resource is
registered, so bad input deploys nothing.
"""

from __future__ import annotations

from typing import Any

import pulumi

from mlcluster.addons import registry, settings_of
from mlcluster.components.platform import Platform, enabled_addons
from mlcluster.components.substrates import SUBSTRATES
from mlcluster.errors import ConfigError
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
    platform = Platform("mlcluster", profile, stack)
    return profile, platform.stack_outputs


def main() -> None:
    """Entry point under the Pulumi engine: bad input is one clear message, not a traceback."""
    try:
        _, outputs = build()
    except ConfigError as err:
        raise pulumi.RunError(f"mlcluster: bad input, nothing was deployed.\n\n{err.render()}") from None
    for key, value in outputs.items():
        pulumi.export(key, value)
