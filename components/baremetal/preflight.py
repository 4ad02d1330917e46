"""Checks of a baremetal stack and its example inventory, importable without any provider SDK (see
components/substrates.py)."""

from __future__ import annotations

from mlcluster.components.baremetal.inventory import Inventory, example_inventory, load_inventory
from mlcluster.errors import ConfigError
from mlcluster.profiles.model import BaremetalSubstrate, ProfileBase
from mlcluster.stackconfig import StackSettings


def inventory_of(profile: ProfileBase, stack: StackSettings) -> Inventory:
    return load_inventory(stack.inventory, profile, stack.source, stack.inventory_lines)


def check_stack(profile: ProfileBase, stack: StackSettings) -> None:
    """Before anything runs: a valid inventory, an SSH key, and a version that matches the profile's."""
    substrate = profile.substrate
    assert isinstance(substrate, BaremetalSubstrate)
    inventory_of(profile, stack)
    if stack.ssh_private_key is None:
        raise ConfigError.one(stack.source, "mlcluster:sshPrivateKey", None,
                              "substrate baremetal needs the hosts' SSH key: "
                              "`pulumi config set --secret mlcluster:sshPrivateKey < ~/.ssh/id_ed25519`",
                              missing=True)


def example_config(profile: ProfileBase) -> dict[str, str]:
    """Stack config for `render --profile` of a baremetal profile: an inventory of documentation addresses
    (RFC 5737: 3 servers behind VIP 192.0.2.5, two hosts per GPU pool)."""
    import json

    return {"mlcluster:inventory": json.dumps(example_inventory(profile)),
            "mlcluster:sshPrivateKey": "[secret]"}
