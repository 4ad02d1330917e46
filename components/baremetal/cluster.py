"""Substrate `baremetal`: k3s (default) or RKE2 on SSH-reachable servers, built with pulumi-command.

Bootstrap: GPU hosts are prepared first (driver, container toolkit, CDI); the first server initialises
embedded etcd, the other servers join one after another, agents join in parallel after the first server.
The join token is a generated Pulumi secret passed on stdin. Secrets encryption is on; the registration
address (kube-vip VIP or external load balancer) is in every server's TLS SANs. The admin kubeconfig is read
back from the first server as a secret and feeds the Kubernetes provider.

Re-runs happen only on explicit triggers: install commands on their script's hash (without the version),
upgrade commands on the version. SSH connection details are ignored after creation, so a new bastion or key
never re-runs anything. A version change runs the upgrade chain: servers then agents, one node at a time,
each drained first and uncordoned after; the scripts refuse to skip a minor version or to downgrade.
"""

from __future__ import annotations

import pulumi
import pulumi_command as command
import pulumi_kubernetes as k8s
import pulumi_random as random

from mlcluster.components import k8s as objects
from mlcluster.components.baremetal import scripts
from mlcluster.components.baremetal.inventory import Host, Inventory, example_inventory, load_inventory
from mlcluster.components.cluster import ClusterHandle, PoolFacts
from mlcluster.errors import ConfigError
from mlcluster.profiles.model import BaremetalSubstrate, ProfileBase
from mlcluster.stackconfig import StackSettings

NO_RERUN_ON = ["connection", "create"]  # re-runs come from `triggers` only


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


class BaremetalCluster(pulumi.ComponentResource):
    def __init__(self, name: str, profile: ProfileBase, stack: StackSettings,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlcluster:cluster:Baremetal", name, None, opts)
        s: BaremetalSubstrate = profile.substrate  # type: ignore[assignment]
        inventory = inventory_of(profile, stack)
        pools = {p.name: p for p in profile.node_pools}
        self.scripts: dict[str, str] = {}
        token = random.RandomPassword(f"{name}-join-token", length=48, special=False,
                                      opts=pulumi.ResourceOptions(parent=self))
        secret_token = pulumi.Output.secret(token.result)

        def connection(host: Host) -> command.remote.ConnectionArgs:
            proxy = None
            if inventory.bastion is not None:
                proxy = command.remote.ProxyConnectionArgs(host=inventory.bastion.address, user=inventory.bastion.user,
                                                           port=inventory.bastion.port,
                                                           private_key=stack.ssh_private_key)
            return command.remote.ConnectionArgs(host=host.address, user=host.user, port=host.port,
                                                 private_key=stack.ssh_private_key, proxy=proxy)

        def run(step: str, host: Host, script: str, triggers: list[str], depends_on: list[pulumi.Resource],
                on: Host | None = None, stdin: pulumi.Input[str] | None = None) -> command.remote.Command:
            self.scripts[f"{host.name}/{step}"] = script
            return command.remote.Command(
                f"{name}-{host.name}-{step}", connection=connection(on or host), create=script, stdin=stdin,
                triggers=triggers,
                opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on, ignore_changes=NO_RERUN_ON,
                                            additional_secret_outputs=["stdout", "stderr"]))

        def prepare(host: Host) -> list[pulumi.Resource]:
            if host.driver is None:
                return []
            script = scripts.gpu_script(host, s)
            return [run("gpu", host, script, [scripts.digest(script)], [])]

        def install(host: Host, first: bool, after: list[pulumi.Resource]) -> command.remote.Command:
            pool = pools[host.pool]
            script = scripts.install_script(host, pool, inventory, s, first)
            unversioned = scripts.install_script(host, pool, inventory, s, first, version="(set by upgrades)")
            return run("install", host, script, [scripts.digest(unversioned)], [*prepare(host), *after],
                       stdin=secret_token)

        first, *other_servers = inventory.servers
        installed: list[pulumi.Resource] = [install(first, True, [])]
        for server in other_servers:  # etcd members join one at a time
            installed.append(install(server, False, [installed[-1]]))
        installed += [install(agent, False, [installed[0]]) for agent in inventory.agents]

        kubeconfig_cmd = run("kubeconfig", first, scripts.kubeconfig_script(inventory, s), [s.version], installed)
        kubeconfig = pulumi.Output.secret(kubeconfig_cmd.stdout)

        # Upgrades: one chain over every node; each link runs when the version changes.
        chain: list[pulumi.Resource] = [kubeconfig_cmd]
        for server in inventory.servers:
            chain.append(run("upgrade", server, scripts.upgrade_script(server, s, "upgrade"), [s.version], chain[-1:]))
        for agent in inventory.agents:
            for step, on in (("drain", first), ("upgrade", agent), ("uncordon", first)):
                chain.append(run(step, agent, scripts.upgrade_script(agent, s, step), [s.version], chain[-1:],
                                 on=on))

        provider = k8s.Provider(f"{name}-k8s", kubeconfig=kubeconfig, enable_server_side_apply=True,
                                opts=pulumi.ResourceOptions(parent=self, depends_on=chain))
        ready: list[pulumi.Resource] = []
        if any(h.driver is not None for h in inventory.hosts):
            # The distribution creates the `nvidia` RuntimeClass when it finds the runtime; assert its handler.
            ready.append(objects.apply("runtimeclass-nvidia", {
                "apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
                "metadata": objects.metadata("nvidia"), "handler": "nvidia"},
                provider, pulumi.ResourceOptions(parent=self), patch=True))
        hosts_by_pool = {p: [h.name for h in inventory.hosts if h.pool == p] for p in pools}
        self.handle = ClusterHandle(
            name=name, substrate="baremetal", kubernetes_version=profile.kubernetes.version, provider=provider,
            kubeconfig=kubeconfig, endpoint=f"https://{inventory.api_address()}:6443",
            node_pools=tuple(PoolFacts.from_pool(p) for p in profile.node_pools),
            storage_class="local-path" if s.distribution == "k3s" else None,
            user_data_storage_class="local-path" if s.distribution == "k3s" else None,
            facts={"distribution": f"{s.distribution} {s.version}", "api": inventory.api_address(),
                   "hosts": ", ".join(f"{p}: {len(h)}" for p, h in hosts_by_pool.items())},
            ready=tuple(ready),
            chart_repository=s.air_gap.chart_repository,
            private_cidrs=(s.cluster_cidr, s.service_cidr, *inventory.networks),
            api_endpoints=tuple((network, 6443) for network in inventory.networks),
        )
        self.register_outputs({"apiAddress": inventory.api_address(), "servers": len(inventory.servers),
                               "agents": len(inventory.agents)})


def example_config(profile: ProfileBase) -> dict[str, str]:
    """Stack config for `render --profile` of a baremetal profile: an inventory of documentation addresses
    (RFC 5737: 3 servers behind VIP 192.0.2.5, two hosts per GPU pool)."""
    import json

    return {"mlcluster:inventory": json.dumps(example_inventory(profile)),
            "mlcluster:sshPrivateKey": "[secret]"}
