"""Bad inventories get the foundation's clear error; a host step runs again exactly when its script changes."""

from __future__ import annotations

import itertools
import json

import pytest

from mlcluster.components.baremetal.inventory import example_host_key
from mlcluster.errors import ConfigError
from mlcluster.render import engine
from tests.conftest import rendered_stack

BASE = {"networks": ["192.0.2.0/24"], "registration_address": "192.0.2.10", "hosts": [
    {"name": "s1", "address": "192.0.2.11", "role": "server", "pool": "system", "host_key": example_host_key("s1")},
    {"name": "s2", "address": "192.0.2.12", "role": "server", "pool": "system", "host_key": example_host_key("s2")},
    {"name": "s3", "address": "192.0.2.13", "role": "server", "pool": "system", "host_key": example_host_key("s3")},
    {"name": "g1", "address": "192.0.2.21", "role": "agent", "pool": "gpu-a100",
     "host_key": example_host_key("g1"), "driver": {"mode": "preinstalled"}},
    {"name": "g2", "address": "192.0.2.22", "role": "agent", "pool": "gpu-a100",
     "host_key": example_host_key("g2"), "driver": {"mode": "preinstalled"}},
    {"name": "l1", "address": "192.0.2.31", "role": "agent", "pool": "gpu-l40s",
     "host_key": example_host_key("l1"), "driver": {"mode": "preinstalled"}},
    {"name": "l2", "address": "192.0.2.32", "role": "agent", "pool": "gpu-l40s",
     "host_key": example_host_key("l2"), "driver": {"mode": "preinstalled"}},
    {"name": "h1", "address": "192.0.2.41", "role": "agent", "pool": "gpu-h100-mig", "host_key": example_host_key("h1"),
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
                     "    hosts:\n      - {name: a, address: 192.0.2.1, role: server, pool: system, host_key: 'K'}\n"
                     "      - {name: b, address: 192.0.2.1, role: agent, pool: system, host_key: 'K'}\n"
                     .replace("K", example_host_key("a")))
    (tmp_path / "Pulumi.yaml").write_text("name: mlcluster\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as err:
        render(stack="bad")
    p = next(p for p in err.value.problems if p.field == "mlcluster:inventory.hosts[1].address")
    assert (p.file, p.line) == ("stacks/Pulumi.bad.yaml", 7)
    sizes = next(p for p in err.value.problems if p.field == "mlcluster:inventory.hosts[0].pool")
    assert "holds 3–3 hosts" in sizes.allowed and sizes.line == 6  # two hosts in the 3-server system pool
    stack.write_text(stack.read_text().replace(example_host_key("a"), "not-a-key", 1))
    with pytest.raises(ConfigError) as err:
        render(stack="bad")
    key = next(p for p in err.value.problems if p.field == "mlcluster:inventory.hosts[0].host_key")
    assert "ssh-keyscan" in key.allowed and key.line == 6


def _commands():
    return {r.name: r for r in rendered_stack("lab").result.resources if r.type == "command:remote:Command"}


def test_steps_rerun_on_their_script_and_never_on_connection_changes():
    """The engine resets ignored inputs to the state's values before it diffs and builds the step (pulumi/pulumi
    v3.259.0 step_generator.go processIgnoreChanges); pulumi-command v1.2.1 re-runs `create` as the update. So
    `create` must not be ignored (the old rule replayed the old script on a version bump), `connection` must be."""
    for name, cmd in _commands().items():
        assert cmd.options["ignoreChanges"] == ["connection"], name
        assert "triggers" not in cmd.inputs and "update" not in cmd.inputs, name
        assert cmd.options["replaceOnChanges"] == ["triggers[*]"], name  # the SDK's own; no triggers are set


def test_a_version_bump_carries_the_new_version_in_every_step_that_acts_on_it():
    """Render the lab stack at two versions and compare what the program registers: each maintenance step's
    `create` (what the update runs) holds the new target; the install steps, which only a fresh host uses, too."""
    from mlcluster.render import render

    old = {r.name: r for r in rendered_stack("lab").result.resources if r.type == "command:remote:Command"}
    new = {r.name: r for r in render(stack="lab", sets=("substrate.version=v1.35.4+k3s1",)).result.resources
           if r.type == "command:remote:Command"}
    changed = sorted(n for n in new if new[n].inputs["create"] != old[n].inputs["create"])
    assert all('target="v1.35.4+k3s1"' in new[n].inputs["create"] for n in changed)
    kinds = {n.rsplit("-", 1)[1] for n in changed}
    assert kinds == {"install", "drain", "upgrade", "uncordon"}  # not the GPU, driver, node-config or kubeconfig
    assert "mlcluster-a100-1-upgrade" in changed and "mlcluster-server-1-upgrade" in changed


def test_destroy_uninstalls_every_host():
    for name, cmd in _commands().items():
        if name.endswith("-install"):
            assert "-uninstall.sh" in cmd.inputs["delete"], name
        else:
            assert not cmd.inputs.get("delete"), name


def test_bootstrap_order_servers_in_sequence_agents_after_the_first():
    cmds = _commands()
    urn = {name: c.urn for name, c in cmds.items()}
    assert urn["mlcluster-server-1-install"] in cmds["mlcluster-server-2-install"].dependencies
    assert urn["mlcluster-server-2-install"] in cmds["mlcluster-server-3-install"].dependencies
    agent_deps = cmds["mlcluster-a100-1-install"].dependencies
    assert urn["mlcluster-server-1-install"] in agent_deps and urn["mlcluster-a100-1-gpu"] in agent_deps
    assert urn["mlcluster-server-3-install"] not in agent_deps  # agents join in parallel


def test_maintenance_is_one_chain_node_after_node():
    cmds = _commands()
    chain = ["server-1-drain", "server-1-upgrade", "server-1-uncordon", "server-2-drain", "server-3-uncordon",
             "a100-1-drain", "a100-1-upgrade", "a100-1-driver", "a100-1-uncordon", "a100-2-drain",
             "l40s-1-drain", "l40s-1-upgrade", "l40s-1-uncordon"]  # l40s: preinstalled driver, no driver step
    names = list(cmds)
    for before, after in itertools.pairwise(chain):
        i, j = names.index(f"mlcluster-{before}"), names.index(f"mlcluster-{after}")
        assert i < j
    for name in names:  # each link waits for the one before it
        if any(name.endswith(s) for s in ("-drain", "-upgrade", "-driver", "-uncordon")) and name != names[0]:
            assert len(cmds[name].dependencies) == 1
    assert "mlcluster-l40s-1-driver" not in cmds
    assert cmds["mlcluster-server-2-install"].urn in cmds["mlcluster-server-3-install"].dependencies


def test_token_on_stdin_and_kubeconfig_secret():
    from mlcluster.render.writer import clean

    cmds = _commands()
    assert clean(cmds["mlcluster-server-1-install"].inputs)["stdin"] == "[secret]"
    assert clean(cmds["mlcluster-a100-1-install"].inputs)["stdin"] == "[secret]"
    outputs = rendered_stack("lab").result.outputs
    assert outputs["kubeconfig"][1] is True
    assert "stdout" in cmds["mlcluster-server-1-kubeconfig"].options["additionalSecretOutputs"]


def test_every_connection_pins_the_host_key():
    """pulumi-command ignores the host key when none is given (ConnectionArgs.host_key docs, v1.2.1)."""
    from mlcluster.render.writer import _unwrap

    for cmd in [*_commands().values(), *(r for r in rendered_stack("colo").result.resources
                                         if r.type == "command:remote:Command")]:
        connection = _unwrap(cmd.inputs["connection"])
        assert connection["hostKey"].startswith("ssh-ed25519 "), cmd.name
        if connection.get("proxy"):
            assert _unwrap(connection["proxy"])["hostKey"].startswith("ssh-ed25519 ")


def test_bastion_is_used_for_every_connection():
    colo = rendered_stack("colo")
    assert "| via bastion |" in colo.files["SUMMARY.md"]
    assert colo.files["SUMMARY.md"].count("| 203.0.113.5 |") == len(
        [r for r in colo.result.resources if r.type == "command:remote:Command"])


def test_non_ubuntu_hosts_and_an_exposed_colo_api_are_refused():
    found = problems(edited(**{"hosts.3.os": "rhel"}))
    assert "only ubuntu hosts" in found["mlcluster:inventory.hosts[3].os"].allowed
    colo = edited()
    colo["bastion"] = {"address": "203.0.113.5", "user": "jump", "host_key": example_host_key("bastion")}
    assert "ssh -N -D" in problems(colo)["mlcluster:inventory.api_proxy"].allowed


def test_version_must_match_the_profile_kubernetes_version():
    from mlcluster.profiles.effective import load_profile

    with pytest.raises(ConfigError) as err:
        load_profile("onprem-gpu", sets=("substrate.version=v1.34.3+k3s1",))
    assert err.value.problems[0].field == "substrate.version"
