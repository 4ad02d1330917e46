"""The Platform: substrate → cluster handle → add-ons → team spaces → outputs. The whole data path.

`stacks/__main__.py` builds one `Platform` from the effective profile; `mlcluster render` and the tests
build the very same one under the Pulumi mocks.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from mlcluster.addons import enabled_addons, registry, settings_of
from mlcluster.addons.base import Addon
from mlcluster.addons.catalog import chart as catalog_chart
from mlcluster.components import k8s as objects
from mlcluster.components.cluster import NODE_AGENTS_NAMESPACE, ClusterHandle
from mlcluster.components.secrets import SecretDelivery
from mlcluster.components.substrates import SUBSTRATES
from mlcluster.components.tenancy import Reach, TeamSpace, team_namespace
from mlcluster.deferred import Component, pulumi
from mlcluster.profiles import quotas
from mlcluster.profiles.model import ProfileBase
from mlcluster.stackconfig import StackSettings


def gateway_api_crds(cluster: ClusterHandle, parent: pulumi.Resource,
                     depends_on: list[pulumi.Resource]) -> pulumi.Resource:
    """The Gateway API's standard-channel CRDs at the catalog's pinned release, applied before every add-on (the
    gateway controller, cert-manager's gateway support, JupyterHub's and KServe's routes all need them)."""
    import pulumi_kubernetes as k8s

    bundle = catalog_chart("gateway-api")
    return k8s.yaml.v2.ConfigFile("gateway-api-crds", file=bundle.repository,
                                  opts=cluster.opts(parent, depends_on=depends_on))


def team_reach(profile: ProfileBase, classes: dict[str, type[Addon]], cluster: ClusterHandle) -> Reach:
    """Who reaches team pods on which ports, and which platform front doors team pods may call."""
    reaching, doors = [], []
    for key, cls in classes.items():
        namespaces = tuple(sorted(cls.namespaces(settings_of(profile, key))))  # type: ignore[arg-type]
        if cls.reaches_teams and namespaces:
            reaching.append((namespaces, tuple(cls.reaches_teams)))
        doors += [(ns, tuple(cls.front_door)) for ns in namespaces if cls.front_door]
    by_port: dict[int, list[str]] = {}
    for cidr, port in cluster.api_endpoints:
        by_port.setdefault(port, []).append(cidr)
    extra = [{"to": [{"ipBlock": {"cidr": c}} for c in sorted(cidrs)], "ports": [{"protocol": "TCP", "port": port}]}
             for port, cidrs in sorted(by_port.items())]
    if cluster.aws is not None:  # Pod Identity: the node's agent hands pods their credentials (link-local)
        extra.append({"to": [{"ipBlock": {"cidr": "169.254.170.23/32"}}], "ports": [{"protocol": "TCP", "port": 80}]})
    # Link-local: the instance metadata service (node credentials) stays out of reach; Pod Identity is allowed above.
    return Reach(tuple(reaching), tuple(sorted(doors)), (*cluster.private_cidrs, "169.254.0.0/16"), tuple(extra))


class Platform(Component):
    def __init__(self, name: str, profile: ProfileBase, stack: StackSettings,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlcluster:index:Platform", name, None, opts)
        self.profile = profile
        substrate = SUBSTRATES[profile.substrate.kind]
        cluster_component = substrate.component(name, profile, stack, opts=pulumi.ResourceOptions(parent=self))
        keys = enabled_addons(profile)
        classes = {key: registry()[key] for key in keys}
        cluster: ClusterHandle = cluster_component.handle
        for key, cls in classes.items():  # a storage add-on's classes replace the substrate's
            settings = settings_of(profile, key)
            provided = cls.storage_classes(settings)  # type: ignore[arg-type]
            if provided:
                cluster = dataclasses.replace(cluster, storage_class=provided[0], user_data_storage_class=provided[1],
                                              portable_storage_class=cls.portable_storage_class(settings))  # type: ignore[arg-type]
        self.cluster = cluster
        # Everything on the cluster waits for it to be usable (nodes, CSI driver, storage classes), so a
        # `pulumi destroy` removes workloads, and the load balancers and volumes they own, before the nodes.
        base_deps: list[pulumi.Resource] = list(cluster.ready)
        if any(cls.uses_node_agents for cls in classes.values()):
            manifest = objects.namespace_manifest(NODE_AGENTS_NAMESPACE, cluster.kubernetes_version, "privileged")
            base_deps.append(objects.apply(f"ns-{NODE_AGENTS_NAMESPACE}", manifest, cluster.provider,
                                           cluster.opts(self, depends_on=list(cluster.ready))))

        secrets = SecretDelivery(cluster)  # the secrets add-on, when on, upgrades it (External Secrets)
        shared: dict[str, Any] = {"crd_providers": {}}
        if any(group == "gateway.networking.k8s.io" for cls in classes.values() for chart in cls.installs
               for group in catalog_chart(chart).crds) or "gateway" in classes:
            bundle = gateway_api_crds(cluster, self, base_deps)
            shared["crd_providers"]["gateway.networking.k8s.io"] = bundle
            base_deps.append(bundle)
        self.addons: dict[str, Addon] = {}
        for key, cls in classes.items():
            deps = base_deps + [self.addons[r] for r in cls.requires if r in self.addons]
            self.addons[key] = cls(cluster, settings_of(profile, key), profile, secrets, stack,  # type: ignore[arg-type]
                                   opts=pulumi.ResourceOptions(parent=self, depends_on=deps,
                                                               providers={"kubernetes": cluster.provider}),
                                   shared=shared)

        roles: list[pulumi.Resource] = []
        if profile.teams:
            from mlcluster.components.admission import policy_manifests
            from mlcluster.components.team_roles import role_manifests

            roles = [objects.apply(f"{m['kind'].lower()}-{m['metadata']['name']}", m, cluster.provider,
                                   cluster.opts(self, depends_on=list(cluster.ready)))
                     for m in [*role_manifests(profile.tenancy.member_exec), *policy_manifests()]]
        reach = team_reach(profile, classes, cluster)
        # A team's space waits for the add-ons' releases (their CRDs, controllers and webhooks; on destroy the
        # team's objects go first, while the controllers that finalize them still run), never for whole add-on
        # components, which hold every team's children: that was a fan-out of teams x teams dependencies.
        releases = [release for addon in self.addons.values() for release in addon.releases]
        self.teams = {}
        for team in profile.teams:
            namespace = team_namespace(team, profile.tenancy)
            extras = [(addon, name, manifest) for addon in self.addons.values()
                      for name, manifest in addon.team_objects(team, namespace)]
            self.teams[team.name] = TeamSpace(
                team, profile.tenancy, cluster, reach, list(profile.tiers), local_queue="kueue" in self.addons,
                gpu_reach=quotas.reach(profile, team), extras=extras, efa=quotas.efa_reach(profile, team),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[*cluster.ready, *roles, *base_deps, *releases]))
        self.stack_outputs = self._outputs()
        self.register_outputs(self.stack_outputs)

    def _outputs(self) -> dict[str, Any]:
        profile, cluster = self.profile, self.cluster
        outputs: dict[str, Any] = {
            "profile": profile.name,
            "substrate": cluster.substrate,
            "kubernetesVersion": cluster.kubernetes_version,
            "nodePools": [
                {"name": p.name, "role": p.role, "min": p.min, "max": p.max,
                 "gpuProduct": p.gpu_product, "gpusPerNode": p.gpus_per_node}
                for p in cluster.node_pools
            ],
            "addons": {key: dict(sorted(addon.charts.items())) for key, addon in self.addons.items()},
            "teamNamespaces": {name: space.namespace for name, space in self.teams.items()},
        }
        if cluster.kubeconfig is not None:
            outputs["kubeconfig"] = pulumi.Output.secret(cluster.kubeconfig)
        if cluster.endpoint is not None:
            outputs["endpoint"] = cluster.endpoint
        for addon in self.addons.values():
            for key, value in addon.outputs.items():
                if key not in ("namespace",):
                    outputs[key] = value
        return outputs
