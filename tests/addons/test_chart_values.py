"""Every Helm release of every shipped profile and stack: each value key is one the pinned chart knows, and the
merged values pass the chart's own values schema (Helm refuses the install otherwise)."""

from __future__ import annotations

import pytest
import yaml

from mlcluster.addons.catalog import catalog
from tests.render.test_render import RENDERS, get
from tests.upstream import require_upstream, schema_errors, unknown_value_keys


def releases(kind, name):
    files = get(kind, name).files
    return [yaml.safe_load(text) for path, text in sorted(files.items()) if path.startswith("helm/")]


def chart_key(release):
    """The catalog key of a release's chart (OCI charts carry their repository in `chart`)."""
    name = release["chart"].rsplit("/", 1)[-1]
    assert name in catalog(), release["chart"]
    return name


@pytest.mark.parametrize(("kind", "name"), RENDERS)
def test_values_are_known_keys_and_pass_the_chart_schema(kind, name):
    require_upstream()
    for release in releases(kind, name):
        chart = chart_key(release)
        assert unknown_value_keys(chart, release["values"]) == [], (release["release"], chart)
        assert schema_errors(chart, release["values"]) == [], (release["release"], chart)


def test_schema_check_catches_a_wrong_type():
    require_upstream()
    errors = schema_errors("jupyterhub", {"cull": {"timeout": "an hour"}})
    assert errors and errors[0].startswith("cull.timeout")
