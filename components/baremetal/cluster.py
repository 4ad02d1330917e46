"""Substrate `baremetal`: k3s (default) or RKE2 on SSH-reachable Ubuntu servers, built with pulumi-command.

Bootstrap: GPU hosts are prepared first (driver, Fabric Manager on NVSwitch systems, container toolkit, CDI); the
first server initialises embedded etcd, the other servers join one after another, agents join in parallel after
the first server. Servers hold the server token, agents only the agent token (both generated Pulumi secrets, on
stdin). Secrets encryption is on; the registration address (kube-vip VIP or external load balancer) is in every
server's TLS SANs. The admin kubeconfig is read back from the first server as a secret and feeds the Kubernetes
provider. `pulumi destroy` uninstalls the distribution from every host (agents first).

**The re-run rule.** A step runs again exactly when its script changes, and runs the new script: the engine
resets inputs listed in `ignore_changes` to their values in the state *before* it diffs and builds the step
(pulumi/pulumi v3.259.0 `pkg/resource/deploy/step_generator.go`, `processIgnoreChanges`), so ignoring `create`
would replay the old script; pulumi-command v1.2.1 runs `create` again as the update when an input changes and no
`update` command is given (`remote.Command` docs). So only `connection` is ignored — a new bastion, user or key is
inert — and nothing uses `triggers`. Every script converges from whatever state the host is in, so a re-run
applies what changed: config files (and restarts the service), labels and taints (through the API: the node-config
step), the version and driver (through the maintenance chain: drain, upgrade, driver, uncordon, node after node).
"""

from __future__ import annotations

from mlcluster.components import k8s as objects
from mlcluster.components.baremetal import scripts
from mlcluster.components.baremetal.inventory import Host
from mlcluster.components.baremetal.preflight import inventory_of
from mlcluster.components.cluster import ClusterHandle, PoolFacts
from mlcluster.deferred import Component, command, k8s, pulumi, random
from mlcluster.profiles.model import BaremetalSubstrate, ProfileBase
from mlcluster.stackconfig import StackSettings

# The only input whose change must not run anything (see the module docstring for the engine's rule).
INERT_INPUTS = ["connection"]
# pulumi-command retries the SSH dial this many times (per_dial_timeout 15 s): a host rebooting after its driver
# install is reached again by the next step.
DIAL_ATTEMPTS = 40


class BaremetalCluster(Component):
    def __init__(self, name: str, profile: ProfileBase, stack: StackSettings,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlcluster:cluster:Baremetal", name, None, opts)
        s: BaremetalSubstrate = profile.substrate  # type: ignore[assignment]
        inventory = inventory_of(profile, stack)
        pools = {p.name: p for p in profile.node_pools}
        self.scripts: dict[str, str] = {}
        opts = pulumi.ResourceOptions(parent=self)
        server_token = pulumi.Output.secret(random.RandomPassword(f"{name}-join-token", length=48, special=False,
                                                                  opts=opts).result)
        agent_token = pulumi.Output.secret(random.RandomPassword(f"{name}-agent-token", length=48, special=False,
                                                                 opts=opts).result)
        storage = storage_provider(profile)

        def connection(host: Host) -> command.remote.ConnectionArgs:
            proxy = None
            if inventory.bastion is not None:
                bastion = inventory.bastion
                proxy = command.remote.ProxyConnectionArgs(host=bastion.address, user=bastion.user, port=bastion.port,
                                                           host_key=bastion.host_key, private_key=stack.ssh_private_key)
            return command.remote.ConnectionArgs(host=host.address, user=host.user, port=host.port,
                                                 host_key=host.host_key, private_key=stack.ssh_private_key,
                                                 proxy=proxy, dial_error_limit=DIAL_ATTEMPTS)

        def run(step: str, host: Host, script: str, depends_on: list[pulumi.Resource], on: Host | None = None,
                stdin: pulumi.Input[str] | None = None, delete: str | None = None) -> command.remote.Command:
            self.scripts[f"{host.name}/{step}"] = script
            if delete is not None:
                self.scripts[f"{host.name}/{step}.delete"] = delete
            return command.remote.Command(
                f"{name}-{host.name}-{step}", connection=connection(on or host), create=script, stdin=stdin,
                delete=delete,
                opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on, ignore_changes=INERT_INPUTS,
                                            additional_secret_outputs=["stdout", "stderr"]))

        def prepare(host: Host) -> list[pulumi.Resource]:
            if host.driver is None:
                return []
            return [run("gpu", host, scripts.gpu_script(host, pools[host.pool], s), [])]

        def install(host: Host, first: bool, after: list[pulumi.Resource]) -> command.remote.Command:
            tokens = (pulumi.Output.all(server_token, agent_token).apply(lambda t: f"{t[0]}\n{t[1]}\n")
                      if host.role == "server" else agent_token.apply(lambda t: f"{t}\n"))
            return run("install", host, scripts.install_script(host, pools[host.pool], inventory, s, first, storage),
                       [*prepare(host), *after], stdin=pulumi.Output.secret(tokens),
                       delete=scripts.uninstall_script(host, s))

        first, *other_servers = inventory.servers
        installed: list[pulumi.Resource] = [install(first, True, [])]
        for server in other_servers:  # etcd members join one at a time
            installed.append(install(server, False, [installed[-1]]))
        installed += [install(agent, False, [installed[0]]) for agent in inventory.agents]

        kubeconfig_cmd = run("kubeconfig", first, scripts.kubeconfig_script(inventory, s), installed)
        kubeconfig = pulumi.Output.secret(kubeconfig_cmd.stdout)
        # Labels and taints through the API, on every change (registration applies them only once).
        configured = [run("node-config", host, scripts.node_config_script(host, pools[host.pool], s), [kubeconfig_cmd],
                          on=first) for host in inventory.hosts]

        # Maintenance: one chain over every node, servers first; each step acts only on what differs.
        chain: list[pulumi.Resource] = [kubeconfig_cmd, *configured]
        for host in [*inventory.servers, *inventory.agents]:
            steps = ["drain", "upgrade", *(["driver"] if scripts.host_driver(host) else []), "uncordon"]
            for step in steps:
                on = first if step in ("drain", "uncordon") else host
                chain.append(run(step, host, scripts.upgrade_script(host, pools[host.pool], s, step), chain[-1:],
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


def storage_provider(profile: ProfileBase) -> str | None:
    """The bare-metal storage add-on's provider when it is on (its host packages are installed by the hosts)."""
    storage = profile.addons.storage  # type: ignore[attr-defined]
    return storage.provider if storage.enabled else None
