"""Bad inventories get the foundation's clear error; commands re-run only on their triggers."""

from __future__ import annotations

import itertools
import json

import pytest

from mlcluster.errors import ConfigError
from mlcluster.render import engine
from tests.conftest import rendered_stack

BASE = {"networks": ["192.0.2.0/24"], "registration_address": "192.0.2.10", "hosts": [
    {"name": "s1", "address": "192.0.2.11", "role": "server", "pool": "system"},
    {"name": "s2", "address": "192.0.2.12", "role": "server", "pool": "system"},
    {"name": "s3", "address": "192.0.2.13", "role": "server", "pool": "system"},
    {"name": "g1", "address": "192.0.2.21", "role": "agent", "pool": "gpu-a100", "driver": {"mode": "preinstalled"}},
    {"name": "g2", "address": "192.0.2.22", "role": "agent", "pool": "gpu-a100", "driver": {"mode": "preinstalled"}},
    {"name": "l1", "address": "192.0.2.31", "role": "agent", "pool": "gpu-l40s", "driver": {"mode": "preinstalled"}},
    {"name": "l2", "address": "192.0.2.32", "role": "agent", "pool": "gpu-l40s", "driver": {"mode": "preinstalled"}},
    {"name": "h1", "address": "192.0.2.41", "role": "agent", "pool": "gpu-h100-mig",
     "driver": {"mode": "preinstalled"}},
]}


def problems(inventory, key="[secret]"):
    config = {"mlcluster:profile": "onprem-gpu", "mlcluster:inventory": json.dumps(inventory)}
    if key:
        config["mlcluster:sshPrivateKey"] = key
    with pytest.raises(ConfigError) as err:
        engine.run("t", config, ["mlcluster:sshPrivateKey"], "stacks/Pulumi.t.yaml")
    return {p.field: p for p in err.value.problems}


def edited(**changes):
    inventory = json.loads(json.dumps(BASE))
    for path, value in changes.items():
        *keys, last = path.split(".")
        node = inventory
        for key in keys:
            node = node[int(key)] if key.isdigit() else node[key]
        if value is None:
            del node[int(last) if last.isdigit() else last]
        else:
            node[int(last) if last.isdigit() else last] = value
    return inventory


def test_duplicate_address():
    found = problems(edited(**{"hosts.1.address": "192.0.2.11"}))
    assert "addresses are unique" in found["mlcluster:inventory.hosts[1].address"].allowed


def test_even_server_count():
    found = problems(edited(**{"hosts.2": None}))
    assert "odd number of servers" in found["mlcluster:inventory.hosts"].allowed


def test_missing_ssh_key():
    found = problems(BASE, key=None)
    assert not found["mlcluster:sshPrivateKey"].has_value


def test_gpu_host_without_driver_mode():
    found = problems(edited(**{"hosts.3.driver": None}))
    assert "says how its driver arrives" in found["mlcluster:inventory.hosts[3].driver"].allowed


def test_vip_outside_host_networks():
    found = problems(edited(registration_address="10.9.9.9"))
    assert "inside a host network" in found["mlcluster:inventory.registration_address"].allowed


def test_several_servers_need_a_registration_address():
    found = problems(edited(registration_address=None))
    assert "fixed API address" in found["mlcluster:inventory.registration_address"].allowed


def test_unknown_pool_and_missing_field():
    found = problems(edited(**{"hosts.3.pool": "gpu-h100", "hosts.0.role": None}))
    assert "mlcluster:inventory.hosts[0].role" in found


def test_inventory_errors_point_into_the_stack_file(tmp_path, monkeypatch):
    from mlcluster.render import render

    stack = tmp_path / "stacks" / "Pulumi.bad.yaml"
    stack.parent.mkdir()
    stack.write_text("config:\n  mlcluster:profile: onprem-gpu\n  mlcluster:inventory:\n    networks: [192.0.2.0/24]\n"
                     "    hosts:\n      - {name: a, address: 192.0.2.1, role: server, pool: system}\n"
                     "      - {name: b, address: 192.0.2.1, role: agent, pool: system}\n")
    (tmp_path / "Pulumi.yaml").write_text("name: mlcluster\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as err:
        render(stack="bad")
    p = next(p for p in err.value.problems if p.field == "mlcluster:inventory.hosts[1].address")
    assert (p.file, p.line) == ("stacks/Pulumi.bad.yaml", 7)
    sizes = next(p for p in err.value.problems if p.field == "mlcluster:inventory.hosts[0].pool")
    assert "holds 3–3 hosts" in sizes.allowed and sizes.line == 6  # two hosts in the 3-server system pool


def _commands():
    return {r.name: r for r in rendered_stack("lab").result.resources if r.type == "command:remote:Command"}


def test_commands_rerun_only_on_triggers_and_ignore_connection_changes():
    for name, cmd in _commands().items():
        assert cmd.options["ignoreChanges"] == ["connection", "create"], name
        assert cmd.inputs["triggers"], name


def test_bootstrap_order_servers_in_sequence_agents_after_the_first():
    cmds = _commands()
    urn = {name: c.urn for name, c in cmds.items()}
    assert urn["mlcluster-server-1-install"] in cmds["mlcluster-server-2-install"].dependencies
    assert urn["mlcluster-server-2-install"] in cmds["mlcluster-server-3-install"].dependencies
    agent_deps = cmds["mlcluster-a100-1-install"].dependencies
    assert urn["mlcluster-server-1-install"] in agent_deps and urn["mlcluster-a100-1-gpu"] in agent_deps
    assert urn["mlcluster-server-3-install"] not in agent_deps  # agents join in parallel


def test_upgrades_are_one_chain_triggered_by_the_version():
    cmds = _commands()
    chain = ["server-1-upgrade", "server-2-upgrade", "server-3-upgrade", "a100-1-drain", "a100-1-upgrade",
             "a100-1-uncordon", "a100-2-drain"]
    for before, after in itertools.pairwise(chain):
        assert cmds[f"mlcluster-{before}"].urn in cmds[f"mlcluster-{after}"].dependencies
    assert cmds["mlcluster-a100-1-drain"].inputs["triggers"] == ["v1.35.1+k3s1"]


def test_token_on_stdin_and_kubeconfig_secret():
    from mlcluster.render.writer import clean

    cmds = _commands()
    assert clean(cmds["mlcluster-server-1-install"].inputs)["stdin"] == "[secret]"
    outputs = rendered_stack("lab").result.outputs
    assert outputs["kubeconfig"][1] is True
    assert "stdout" in cmds["mlcluster-server-1-kubeconfig"].options["additionalSecretOutputs"]


def test_bastion_is_used_for_every_connection():
    colo = rendered_stack("colo")
    assert "| via bastion |" in colo.files["SUMMARY.md"]
    assert colo.files["SUMMARY.md"].count("| 203.0.113.5 |") == len(
        [r for r in colo.result.resources if r.type == "command:remote:Command"])


def test_version_must_match_the_profile_kubernetes_version():
    from mlcluster.profiles.effective import load_profile

    with pytest.raises(ConfigError) as err:
        load_profile("onprem-gpu", sets=("substrate.version=v1.34.3+k3s1",))
    assert err.value.problems[0].field == "substrate.version"
