"""The chart catalog pins exactly the versions the upstream copies were taken from."""

from __future__ import annotations

import pytest

from mlcluster.addons.catalog import catalog, chart
from tests.upstream import versions


def test_every_catalog_chart_is_pinned_to_the_upstream_version():
    upstream = versions()
    for name, entry in catalog().items():
        if entry.manifests:
            continue  # a YAML bundle, not a chart: checked below against the CRDs it installs
        assert name in upstream, f"{name} has no upstream copy to check its values against"
        assert entry.version == str(upstream[name]["version"]), name
        assert entry.repository == upstream[name]["repository"], name


def test_versions_are_exact_pins():
    for entry in catalog().values():
        assert entry.version and not any(c in entry.version for c in "^~*x><=, "), entry


def test_unknown_chart_is_a_clear_error():
    with pytest.raises(KeyError, match=r"catalog\.yaml"):
        chart("nope")


def test_the_gateway_api_bundle_is_the_release_of_the_crds_we_validate_against():
    """The standard-channel CRDs in ../shared/upstream/crds carry their release in an annotation
    (kubernetes-sigs/gateway-api config/crd/standard at the tag): the bundle the platform applies is that release."""
    import yaml

    from tests.upstream import require_upstream

    bundle = catalog()["gateway-api"]
    assert bundle.manifests and bundle.crds == ("gateway.networking.k8s.io",)
    assert bundle.repository == (f"https://github.com/kubernetes-sigs/gateway-api/releases/download/{bundle.version}/"
                                 "standard-install.yaml")
    for path in sorted((require_upstream() / "crds" / "gateway.networking.k8s.io").glob("*.yaml")):
        annotations = yaml.safe_load(path.read_text())["metadata"]["annotations"]
        assert annotations["gateway.networking.k8s.io/bundle-version"] == bundle.version, path.name
        assert annotations["gateway.networking.k8s.io/channel"] == "standard", path.name
