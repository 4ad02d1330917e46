"""The chart catalog pins exactly the versions the upstream copies were taken from."""

from __future__ import annotations

import pytest

from mlcluster.addons.catalog import catalog, chart
from tests.upstream import versions


def test_every_catalog_chart_is_pinned_to_the_upstream_version():
    upstream = versions()
    for name, entry in catalog().items():
        assert name in upstream, f"{name} has no upstream copy to check its values against"
        assert entry.version == str(upstream[name]["version"]), name
        assert entry.repository == upstream[name]["repository"], name


def test_versions_are_exact_pins():
    for entry in catalog().values():
        assert entry.version and not any(c in entry.version for c in "^~*x><=, "), entry


def test_unknown_chart_is_a_clear_error():
    with pytest.raises(KeyError, match=r"catalog\.yaml"):
        chart("nope")
