"""`mlcluster render`: the program under the mocks, written out as a reviewable tree."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlcluster import stackconfig
from mlcluster.errors import ConfigError
from mlcluster.profiles.model import ProfileBase
from mlcluster.render import engine, writer

DEFAULT_PROFILE = "local"


def project_root() -> Path:
    """The folder with Pulumi.yaml: the working directory or an ancestor, else this checkout."""
    for folder in [Path.cwd(), *Path.cwd().parents]:
        if (folder / "Pulumi.yaml").is_file():
            return folder
    return Path(__file__).resolve().parents[2]


def stack_file(stack: str) -> Path:
    return project_root() / "stacks" / f"Pulumi.{stack}.yaml"


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


def render(profile: str | None = None, stack: str | None = None, sets: tuple[str, ...] = ()) -> Rendered:
    """Run the program for a stack file, or for a profile with an illustrative stack config."""
    import json

    from mlcluster.components.substrates import SUBSTRATES
    from mlcluster.profiles.effective import load_profile

    if profile and stack:
        raise ConfigError.one("--profile/--stack", "", f"--profile {profile} --stack {stack}",
                              "give one: a stack file already names its profile")
    notes: list[str] = []
    if stack:
        path = stack_file(stack)
        if not path.is_file():
            raise ConfigError.one("--stack", "", stack, "no stacks/Pulumi.<stack>.yaml by that name; "
                                  f"the stacks are: {', '.join(available_stacks()) or 'none'}")
        loaded = stackconfig.read_stack_file(path, f"stacks/{path.name}")
        name, config, secret_keys, source = stack, dict(loaded.config), list(loaded.secret_keys), loaded.source
        lines, inventory_lines = loaded.override_lines, loaded.inventory_lines
        effective = load_profile(config.get("mlcluster:profile", DEFAULT_PROFILE), referrer=source,
                                 overrides=json.loads(config.get("mlcluster:overrides", "{}")),
                                 overrides_file=source, override_lines=lines, sets=sets)
        for key, stand_in in required_secrets(effective).items():
            if key not in config:
                config[key], secret_keys = stand_in, [*secret_keys, key]
                notes.append(f"{key} is not set in {source}; rendered with a placeholder "
                             f"(`pulumi up` needs it: pulumi config set --secret {key.split(':')[1]} …).")
        if loaded.secret_keys:
            notes.append(f"Encrypted stack values ({', '.join(sorted(loaded.secret_keys))}) are not decrypted "
                         "offline; they render as [secret].")
    else:
        name = profile or DEFAULT_PROFILE
        loaded_profile = load_profile(name, sets=sets, referrer="--profile")
        example = SUBSTRATES[loaded_profile.substrate.kind].example_config(loaded_profile)
        secrets = required_secrets(loaded_profile)
        example.update({k: v for k, v in secrets.items() if k not in example})
        config = {"mlcluster:profile": name, **example}
        secret_keys = [k for k, v in example.items() if v == stackconfig.SECRET_PLACEHOLDER or k in secrets]
        source, lines, inventory_lines = "--profile", {}, {}
        shown = ", ".join(f"{k}={v}" if len(v) <= 100 else f"{k}=<an example; its hosts are in the commands table>"
                          for k, v in example.items())
        notes.append(f"No stack given: rendered with an illustrative stack config ({shown}). "
                     "Render a stack file with --stack to see a real one.")
    notes.append("Rendered offline under the Pulumi mocks: IDs and generated values are stand-ins; "
                 "secrets are redacted.")
    result = engine.run(name if stack else "render", config, secret_keys, source, lines, sets, inventory_lines)
    files = writer.build_tree(result, notes)
    return Rendered(name=name, result=result, files=files)
