"""What every add-on has in common: a component, a namespace, a pinned Helm release with templated values.

Subclasses set the class attributes and implement `build()`. Values templates sit beside the add-on: a
module add-on has `<module>.values.yaml.j2`; a package add-on (several charts or data files) has
`values.yaml.j2` or `<chart>.values.yaml.j2` in its folder.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, ClassVar

from mlcluster.addons.catalog import chart as catalog_chart
from mlcluster.components import helm
from mlcluster.components import k8s as objects
from mlcluster.components.cluster import ClusterHandle
from mlcluster.components.secrets import SecretDelivery
from mlcluster.deferred import Component, pulumi
from mlcluster.profiles.model import AddonSettings, ProfileBase, Team
from mlcluster.stackconfig import StackSettings

_TEMPLATES = Path(__file__).resolve().parent


def render_values(template: str, **context: Any) -> dict[str, Any]:
    """Render `addons/<template>` and parse it."""
    return helm.render_values(_TEMPLATES / template, **context)


class Addon(Component):
    """Base class; see `addons/monitoring.py` for the shape of a real one."""

    key: ClassVar[str]  # profile key: `<section>.<key>`
    section: ClassVar[str] = "addons"  # `addons` (platform) or `ml` (the ML tool bundle)
    type_name: ClassVar[str]  # type token `mlcluster:addons:<type_name>`
    description: ClassVar[str]
    Settings: ClassVar[type[AddonSettings]]
    requires: ClassVar[tuple[str, ...]] = ()  # installed after these when they are on
    needs: ClassVar[dict[str, str]] = {}  # add-ons that must be on, with the reason (checked with the profile)
    # The ports of team pods this add-on's namespace may reach (e.g. Prometheus the pods' `metrics` port, the
    # JupyterHub proxy the notebooks' 8888): team namespaces open ingress to exactly these, nothing else.
    reaches_teams: ClassVar[tuple[int | str, ...]] = ()
    # The ports of this add-on's namespace team pods may call (MLflow's API): with every other platform port,
    # platform data stores included, out of a team pod's reach.
    front_door: ClassVar[tuple[int | str, ...]] = ()
    uses_node_agents: ClassVar[bool] = False  # deploys host-level agents into the privileged namespace
    # A bucket this add-on keeps data in, on the site's S3-compatible store (object_store add-on), which then
    # creates it with credentials for this add-on only, delivered as the Secret `<key>-s3` in its namespace.
    object_store_bucket: ClassVar[str | None] = None
    # Catalog charts that install CustomResourceDefinitions this add-on may deploy (see catalog.yaml `crds`).
    installs: ClassVar[tuple[str, ...]] = ()

    def __init__(self, cluster: ClusterHandle, settings: AddonSettings, profile: ProfileBase,
                 secrets: SecretDelivery, stack: StackSettings, opts: pulumi.ResourceOptions | None = None,
                 shared: dict[str, Any] | None = None) -> None:
        super().__init__(f"mlcluster:addons:{self.type_name}", self.key, None, opts)
        self.cluster = cluster
        self.settings = settings
        self.profile = profile
        self.secrets = secrets
        self.stack = stack
        # What add-ons earlier in install order offer later ones (e.g. the object store's per-add-on access).
        self.shared: dict[str, Any] = shared if shared is not None else {}
        self.charts: dict[str, str] = {}  # release → "chart@version", for stack outputs and SUMMARY
        self.releases: list[pulumi.Resource] = []  # what team spaces wait for (controllers, CRDs, webhooks)
        self.outputs: dict[str, Any] = self.build()
        self.register_outputs({"charts": self.charts, **self.outputs})

    # --- to implement ------------------------------------------------------------------------------

    def build(self) -> dict[str, Any]:
        """Create the add-on's resources; return the outputs to register."""
        raise NotImplementedError

    def team_objects(self, team: Team, namespace: str) -> list[tuple[str, dict[str, Any]]]:
        """Objects this add-on needs in a team's namespace, as (logical name, manifest). The team's space creates
        them after its namespace, so they never race it (mlcluster.semantics.graph checks every render)."""
        return []

    @classmethod
    def check(cls, profile: ProfileBase, settings: AddonSettings) -> list[tuple[tuple, object, str]]:
        """Rules that relate this add-on's settings to the rest of the profile: (path, value, allowed)."""
        return []

    @classmethod
    def stack_secrets(cls, profile: ProfileBase, settings: AddonSettings) -> dict[str, str]:
        """Secret stack config this add-on needs with these settings: key → an offline stand-in (wire format)
        that `render` uses, and says so, when a stack does not set it."""
        return {}

    @classmethod
    def check_stack(cls, profile: ProfileBase, settings: AddonSettings, stack: StackSettings) -> None:
        """Raise ConfigError when the stack config lacks what these settings need (before anything deploys)."""

    @classmethod
    def required_by(cls, profile: ProfileBase) -> str | None:
        """Why this profile cannot do without the add-on (checked when it is off), or None."""
        return None

    @classmethod
    def storage_classes(cls, settings: AddonSettings) -> tuple[str, str] | None:
        """(default, retain) StorageClass names this add-on provides, if it provides storage."""
        return None

    @classmethod
    def portable_storage_class(cls, settings: AddonSettings) -> str | None:
        """A provided Retain class any node can mount (network storage), if this add-on provides one."""
        return None

    @classmethod
    def namespaces(cls, settings: AddonSettings) -> tuple[str, ...]:
        """Namespaces this add-on runs in (tenancy uses them to open team namespaces to its roles)."""
        namespace = getattr(settings, "namespace", None)
        return (namespace,) if namespace else ()

    # --- helpers -----------------------------------------------------------------------------------

    def k8s_opts(self, **kwargs: Any) -> pulumi.ResourceOptions:
        return self.cluster.opts(self, **kwargs)

    # --- custom resource definitions: who installs a group, and everything that uses it waits for that -------

    @property
    def crd_providers(self) -> dict[str, pulumi.Resource]:
        """API group → the resource that installs its CRDs (a Helm release, or the Gateway API bundle)."""
        return self.shared.setdefault("crd_providers", {})

    def _crd_dependencies(self, groups: tuple[str, ...]) -> list[pulumi.Resource]:
        """The installers of `groups`. A group whose installer comes later in install order is a bug in the
        add-on's `requires` (the object would be refused, or a chart would silently skip its template)."""
        from mlcluster.addons import registry, settings_of

        found = []
        for group in groups:
            if group in self.crd_providers:
                found.append(self.crd_providers[group])
                continue
            later = [key for key, cls in registry().items() if settings_of(self.profile, key).enabled  # type: ignore[attr-defined]
                     and any(group in catalog_chart(chart).crds for chart in cls.installs)]
            if later:
                raise RuntimeError(f"add-on {self.key} uses {group}, whose CRDs add-on {later[0]} installs later: "
                                   f"add {later[0]!r} to {type(self).__name__}.requires")
        return found

    def apply(self, logical_name: str, manifest: dict[str, Any], **opts: Any) -> pulumi.CustomResource:
        """A Kubernetes object of this add-on; a custom resource waits for the release that installs its CRD."""
        group = manifest["apiVersion"].rpartition("/")[0]
        if objects.is_custom(manifest) and group:
            needed = self._crd_dependencies((group,))
            opts["depends_on"] = [*opts.get("depends_on", []), *needed]
        return objects.apply(f"{self.key}-{logical_name}", manifest, self.cluster.provider, self.k8s_opts(**opts))


    def platform_secret(self, logical_name: str, name: str, namespace: str, data: dict[str, pulumi.Input[str]],
                        depends_on: list[pulumi.Resource], type_: str = "Opaque") -> pulumi.Resource:
        """A generated secret delivered into `namespace` (ExternalSecret from Secrets Manager, or a Secret)."""
        return self.secrets.deliver(self, f"{self.key}-{logical_name}", name, namespace, data, depends_on, type_)

    def namespace(self, name: str, enforce: str = "baseline") -> pulumi.CustomResource:
        manifest = objects.namespace_manifest(name, self.cluster.kubernetes_version, enforce)
        return self.apply(f"ns-{name}", manifest)

    @classmethod
    def folder(cls) -> Path:
        """Where the add-on's own files live: its package folder, or the folder of its module."""
        return Path(sys.modules[cls.__module__].__file__ or "").resolve().parent

    @classmethod
    def template(cls, chart: str | None = None) -> Path:
        module = Path(sys.modules[cls.__module__].__file__ or "")
        if module.name == "__init__.py":
            return module.parent / (f"{chart}.values.yaml.j2" if chart else "values.yaml.j2")
        return module.parent / f"{module.stem}.values.yaml.j2"

    def values(self, chart: str | None = None, **context: Any) -> dict[str, Any]:
        """The rendered values template (`chart` picks one of a package add-on's templates)."""
        return helm.render_values(self.template(chart), settings=self.settings, cluster=self.cluster,
                                  profile=self.profile, **context)

    def helm_release(self, release: str, chart_name: str, namespace: str, values: dict[str, Any],
                     depends_on: list[pulumi.Resource] | None = None, uses: tuple[str, ...] = ()
                     ) -> pulumi.CustomResource:
        """A pinned catalog chart. `uses`: API groups of custom resources its templates create with these values
        (a ServiceMonitor, an HTTPRoute…) or that the controller needs at start: the release waits for them, since
        a chart that checks `.Capabilities.APIVersions` silently skips what it cannot see."""
        chart = catalog_chart(chart_name)
        self.charts[release] = f"{chart.name}@{chart.version}"
        made = helm.release(f"{self.key}-{release}", name=release, chart_name=chart_name, namespace=namespace,
                            values=values, provider=self.cluster.provider,
                            opts=self.k8s_opts(depends_on=[*(depends_on or []), *self._crd_dependencies(uses)]),
                            repository_override=self.cluster.chart_repository,
                            local_chart=self.stack.e2e.chart(chart_name) if self.stack.e2e else None)
        for group in chart.crds:
            self.crd_providers.setdefault(group, made)
        self.releases.append(made)
        return made
