"""What every add-on has in common: a component, a namespace, a pinned Helm release with templated values.

Subclasses set the class attributes and implement `build()`. Values templates are rendered with jinja2
`StrictUndefined` and parsed with pyyaml before they reach Pulumi, so a typo fails the render, not the
cluster. Secrets never go into values: add-ons write a Kubernetes Secret and point the chart at it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import jinja2
import pulumi
import pulumi_kubernetes as k8s
import yaml

from mlcluster.addons.catalog import chart as catalog_chart
from mlcluster.components import k8s as objects
from mlcluster.components.cluster import ClusterHandle
from mlcluster.profiles.model import AddonSettings, ProfileBase

_TEMPLATES = Path(__file__).resolve().parent
_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(_TEMPLATES)),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    autoescape=False,  # YAML, not HTML
)
_ENV.filters["yaml"] = lambda value: yaml.safe_dump(value, default_flow_style=True, sort_keys=True).strip()


def render_values(template: str, **context: Any) -> dict[str, Any]:
    """Render `addons/<template>` and parse it; the result is what the Helm release gets."""
    text = _ENV.get_template(template).render(**context)
    values = yaml.safe_load(text)
    if not isinstance(values, dict):
        raise ValueError(f"addons/{template} must render to a YAML mapping")
    return values


class Addon(pulumi.ComponentResource):
    """Base class; see `addons/monitoring.py` for the shape of a real one."""

    key: ClassVar[str]  # profile key: `addons.<key>`
    type_name: ClassVar[str]  # type token `mlcluster:addons:<type_name>`
    description: ClassVar[str]
    Settings: ClassVar[type[AddonSettings]]
    requires: ClassVar[tuple[str, ...]] = ()
    # Network roles the tenancy layer opens team namespaces to (e.g. "monitoring" may scrape team pods).
    network_roles: ClassVar[tuple[str, ...]] = ()
    uses_node_agents: ClassVar[bool] = False  # deploys host-level agents into the privileged namespace

    def __init__(self, cluster: ClusterHandle, settings: AddonSettings, profile: ProfileBase,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"mlcluster:addons:{self.type_name}", self.key, None, opts)
        self.cluster = cluster
        self.settings = settings
        self.profile = profile
        self.charts: dict[str, str] = {}  # release → "chart@version", for stack outputs and SUMMARY
        self.outputs: dict[str, Any] = self.build()
        self.register_outputs({"charts": self.charts, **self.outputs})

    # --- to implement ------------------------------------------------------------------------------

    def build(self) -> dict[str, Any]:
        """Create the add-on's resources; return the outputs to register."""
        raise NotImplementedError

    @classmethod
    def namespaces(cls, settings: AddonSettings) -> tuple[str, ...]:
        """Namespaces this add-on runs in (tenancy uses them to open team namespaces to its roles)."""
        namespace = getattr(settings, "namespace", None)
        return (namespace,) if namespace else ()

    # --- helpers -----------------------------------------------------------------------------------

    def k8s_opts(self, **kwargs: Any) -> pulumi.ResourceOptions:
        return self.cluster.opts(self, **kwargs)

    def apply(self, logical_name: str, manifest: dict[str, Any], **opts: Any) -> pulumi.CustomResource:
        return objects.apply(f"{self.key}-{logical_name}", manifest, self.cluster.provider, self.k8s_opts(**opts))

    def namespace(self, name: str, enforce: str = "baseline") -> pulumi.CustomResource:
        manifest = objects.namespace_manifest(name, self.cluster.kubernetes_version, enforce)
        return self.apply(f"ns-{name}", manifest)

    def values(self, **context: Any) -> dict[str, Any]:
        return render_values(f"{self.key}.values.yaml.j2", settings=self.settings, cluster=self.cluster,
                             profile=self.profile, **context)

    def helm_release(self, release: str, chart_name: str, namespace: str, values: dict[str, Any],
                     depends_on: list[pulumi.Resource] | None = None) -> k8s.helm.v3.Release:
        """A Helm release of a catalog chart. `helm.v3.Release` (not `v4.Chart`) because these charts use
        Helm hooks and CRDs that only a real Helm install handles."""
        chart = catalog_chart(chart_name)
        self.charts[release] = f"{chart.name}@{chart.version}"
        return k8s.helm.v3.Release(
            f"{self.key}-{release}",
            name=release,
            chart=chart.name,
            version=chart.version,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=chart.repository),
            namespace=namespace,
            create_namespace=False,  # the add-on creates it, with Pod Security labels
            values=values,
            atomic=True,
            cleanup_on_fail=True,
            max_history=10,
            timeout=900,
            opts=self.k8s_opts(depends_on=depends_on or []),
        )
