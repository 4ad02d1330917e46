"""Helm releases of catalog charts, with values rendered from jinja2 templates.

Values templates are rendered with `StrictUndefined` and parsed with pyyaml before they reach Pulumi, so
a typo fails the render, not the cluster. Secrets never go into values: callers write a Kubernetes Secret
and point the chart at it.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml

from mlcluster.addons.catalog import chart as catalog_chart
from mlcluster.deferred import jinja2, k8s, pulumi

# libyaml's parser with PyYAML's safe constructors: the same values as yaml.safe_load (every shipped render is
# byte-identical), several times faster on the large values (JupyterHub's grows with the number of teams).
_LOADER: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@functools.cache
def _environment(folder: Path) -> jinja2.Environment:
    """One environment per folder, so each template is compiled once per process (Jinja's loader still reloads a
    template whose file changed)."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(folder)), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True, autoescape=False)  # YAML, not HTML
    env.filters["yaml"] = lambda value: yaml.safe_dump(value, default_flow_style=True, sort_keys=True).strip()
    return env


def render_values(template: Path, **context: Any) -> dict[str, Any]:
    """Render a values template beside its module and parse it; the result is what the release gets."""
    text = _environment(template.parent).get_template(template.name).render(**context)
    values = yaml.load(text, Loader=_LOADER)  # a safe loader
    if not isinstance(values, dict):
        raise ValueError(f"{template.name} must render to a YAML mapping")
    return values


def release(logical_name: str, *, name: str, chart_name: str, namespace: str, values: dict[str, Any],
            provider: pulumi.ProviderResource, opts: pulumi.ResourceOptions,
            repository_override: str | None = None, local_chart: str | None = None) -> k8s.helm.v3.Release:
    """A pinned catalog chart. `helm.v3.Release` (not `v4.Chart`): these charts use Helm hooks and CRDs
    that only a real Helm install handles. `repository_override` (air-gapped sites) serves every chart."""
    chart = catalog_chart(chart_name)
    source: dict[str, Any]
    if local_chart:  # the e2e stack only: a stub chart of the pinned CRDs, on a control plane with no nodes
        source = {"chart": local_chart}
    elif repository_override:
        source = {"chart": chart.name, "repository_opts": k8s.helm.v3.RepositoryOptsArgs(repo=repository_override)}
    elif chart.repository.startswith("oci://"):
        source = {"chart": f"{chart.repository}/{chart.name}"}
    else:
        source = {"chart": chart.name, "repository_opts": k8s.helm.v3.RepositoryOptsArgs(repo=chart.repository)}
    return k8s.helm.v3.Release(
        logical_name,
        name=name,
        version=chart.version,
        namespace=namespace,
        create_namespace=False,  # callers create namespaces, with Pod Security labels
        values=values,
        atomic=True,
        cleanup_on_fail=True,
        max_history=10,
        timeout=900,
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(provider=provider)),
        **source,
    )
