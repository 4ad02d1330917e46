"""`mlcluster render`: the program under the mocks, written out as a reviewable tree."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mlcluster import pulumiproject, stackconfig
from mlcluster.errors import ConfigError, Problem
from mlcluster.profiles.model import ProfileBase
from mlcluster.project import project_root

if TYPE_CHECKING:
    from mlcluster.render import engine
# The engine and the writer (the Pulumi runtime, kubernetes-validate, the summary) load when a render runs:
# `validate` and `check --render` use this module's helpers without them.

DEFAULT_PROFILE = "local"


def stack_file(stack: str) -> Path:
    """`--stack lab` → stacks/Pulumi.lab.yaml of the checkout you stand in; `--stack path/Pulumi.site.yaml` → that
    file (like `-p` takes a profile path). A ConfigError when there is no such stack file."""
    if stack.endswith((".yaml", ".yml")) or os.sep in stack:
        path = Path(stack)
        if not (path.name.startswith("Pulumi.") and path.name.endswith(".yaml") and len(path.name) > 12):
            raise ConfigError.one("--stack", "", stack, "a stack file is named Pulumi.<stack>.yaml (the Pulumi CLI "
                                  "finds it by that name)")
        if not path.is_file():
            raise ConfigError.one("--stack", "", stack, "no such file")
        return path
    path = project_root() / "stacks" / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        raise ConfigError.one("--stack", "", stack, "no stacks/Pulumi.<stack>.yaml by that name; the stacks are: "
                              f"{', '.join(available_stacks()) or 'none'} (or give a path to a stack file)")
    return path


def stack_name(stack: str) -> str:
    """The stack a `--stack` value names: `lab`, or `site` for `path/Pulumi.site.yaml`."""
    return Path(stack).name.removeprefix("Pulumi.").removesuffix(".yaml") if stack.endswith(".yaml") else stack


def render_name(profile: str | None, stack: str | None) -> str:
    """The render's name (and default output folder, build/<name>), known before rendering."""
    if stack:
        return stack_name(stack)
    return Path(profile).stem if profile and profile.endswith((".yaml", ".yml")) else (profile or DEFAULT_PROFILE)


def available_stacks() -> list[str]:
    return sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml")
                  for p in (project_root() / "stacks").glob("Pulumi.*.yaml"))


def required_secrets(profile: ProfileBase) -> dict[str, str]:
    """Secret stack config this profile needs (substrate and enabled add-ons): key → the stand-in render uses
    when a stack does not set it (wire format)."""
    from mlcluster.addons import registry, settings_of
    from mlcluster.components.platform import enabled_addons
    from mlcluster.components.substrates import SUBSTRATES

    needed = {key: stackconfig.SECRET_PLACEHOLDER for key in SUBSTRATES[profile.substrate.kind].render_secrets}
    for key in enabled_addons(profile):
        needed.update(registry()[key].stack_secrets(profile, settings_of(profile, key)))  # type: ignore[arg-type]
    return needed


@dataclass
class Rendered:
    name: str  # the profile or stack rendered, also the default output folder name
    result: engine.RenderResult
    files: dict[str, str]


def _quiet(stage: str) -> None:
    return None


def _check_override_targets(result: engine.RenderResult, layers: dict) -> None:
    """An accepted exception that names resources must name some that exist: a typo would silently accept
    nothing (or, worse, stop covering what it was written for after a rename)."""
    import fnmatch

    from mlcluster.profiles.effective import layered_profile

    names = [r.name for r in result.resources]
    problems = []
    for i, override in enumerate(result.profile.policy.overrides):
        for j, pattern in enumerate(override.resources):
            if not any(fnmatch.fnmatchcase(n, pattern) for n in names):
                origin = layered_profile(**layers).origin(("policy", "overrides", i, "resources", j))
                close = sorted({n for n in names if pattern.strip("*?[]")[:4] in n})[:3]
                hint = f" (names like: {', '.join(close)})" if close else ""
                problems.append(Problem(origin.file, f"policy.overrides[{i}].resources[{j}]", pattern,
                                        "matches no resource of this render; allowed are Pulumi resource names or "
                                        f"globs (resources.json `name`){hint}", origin.line))
    if problems:
        raise ConfigError(problems)


def render(profile: str | None = None, stack: str | None = None, sets: tuple[str, ...] = (),
           progress: Callable[[str], None] = _quiet) -> Rendered:
    """Run the program for a stack file, or for a profile with an illustrative stack config. `progress` hears
    the name of each stage as it starts."""
    import json

    from mlcluster.components.substrates import SUBSTRATES
    from mlcluster.profiles.effective import load_profile

    if profile and stack:
        raise ConfigError.one("--profile/--stack", "", f"--profile {profile} --stack {stack}",
                              "give one: a stack file already names its profile")
    notes: list[str] = []
    progress("loading the profile")
    if stack:
        path = stack_file(stack)
        shown = f"stacks/{path.name}" if path.parent.resolve() == (project_root() / "stacks").resolve() else str(path)
        loaded = stackconfig.read_stack_file(path, shown)
        name, config, secret_keys, source = loaded.stack, dict(loaded.config), list(loaded.secret_keys), loaded.source
        lines, inventory_lines = loaded.override_lines, loaded.inventory_lines
        layers = {"ref": config.get("mlcluster:profile", DEFAULT_PROFILE), "referrer": source,
                  "overrides": json.loads(config.get("mlcluster:overrides", "{}")), "overrides_file": source,
                  "override_lines": lines, "sets": sets}
        effective = load_profile(**layers)
        for key, stand_in in required_secrets(effective).items():
            if key not in config:
                config[key], secret_keys = stand_in, [*secret_keys, key]
                notes.append(f"{key} is not set in {source}; rendered with a placeholder "
                             f"(`pulumi up` needs it: pulumi config set --secret {key.split(':')[1]} …).")
        if loaded.secret_keys:
            notes.append(f"Encrypted stack values ({', '.join(sorted(loaded.secret_keys))}) are not decrypted "
                         "offline; they render as [secret].")
    else:
        name = render_name(profile, None)
        layers = {"ref": Path(profile) if profile and profile.endswith((".yaml", ".yml")) else name, "sets": sets,
                  "referrer": "--profile"}
        loaded_profile = load_profile(**layers)
        example = SUBSTRATES[loaded_profile.substrate.kind].example_config(loaded_profile)
        secrets = required_secrets(loaded_profile)
        example.update({k: v for k, v in secrets.items() if k not in example})
        config = {"mlcluster:profile": profile or DEFAULT_PROFILE, **example}
        secret_keys = [k for k, v in example.items() if v == stackconfig.SECRET_PLACEHOLDER or k in secrets]
        source, lines, inventory_lines = "--profile", {}, {}
        shown = ", ".join(f"{k}={v}" if len(v) <= 100 else f"{k}=<an example; its hosts are in the commands table>"
                          for k, v in example.items())
        notes.append(f"No stack given: rendered with an illustrative stack config ({shown}). "
                     "Render a stack file with --stack to see a real one.")
    notes.append("Rendered offline under the Pulumi mocks: IDs and generated values are stand-ins; "
                 "secrets are redacted.")
    # What the CLI hands the program: the stack's values plus Pulumi.yaml's declared defaults.
    project_file = project_root() / "Pulumi.yaml"
    if project_file.is_file():
        config = pulumiproject.applied_defaults(project_file, config)
    progress("running the Pulumi program under mocks")
    from mlcluster.render import engine, writer

    with engine.cyclic_gc_paused():
        result = engine.run(name if stack else "render", config, secret_keys, source, lines, sets, inventory_lines)
        _check_override_targets(result, layers)
        files = writer.build_tree(result, notes, progress)
    return Rendered(name=name, result=result, files=files)
