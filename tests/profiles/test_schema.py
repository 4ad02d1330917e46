"""profiles/schema.json is generated from the model and must not go stale; profiles conform to it."""

from __future__ import annotations

import json

import jsonschema
import pytest
import yaml

from mlcluster.profiles.loader import PROFILES_DIR
from mlcluster.profiles.schema import SCHEMA_FILE, profile_schema, schema_text


def test_schema_file_is_current():
    assert SCHEMA_FILE.read_text() == schema_text(), "profiles/schema.json is stale: run `mlcluster schema`"


def test_reference_file_is_current():
    from mlcluster.profiles.reference import REFERENCE_FILE, reference_text

    assert REFERENCE_FILE.read_text() == reference_text(), "profiles/REFERENCE.md is stale: run `mlcluster schema`"
    assert "| `retention` |" in reference_text() and "## `node_pools[]` — NodePool" in reference_text()


def test_schema_covers_every_addon_and_section():
    props = profile_schema()["properties"]
    assert {"substrate", "kubernetes", "node_pools", "tiers", "teams", "tenancy", "addons", "extends"} <= set(props)
    assert "monitoring" in profile_schema()["$defs"]["Addons"]["properties"]


@pytest.mark.parametrize("path", sorted(PROFILES_DIR.glob("*.yaml")), ids=lambda p: p.name)
def test_profile_files_conform_to_schema(path):
    jsonschema.validate(yaml.safe_load(path.read_text()), json.loads(SCHEMA_FILE.read_text()))


def test_schema_rejects_what_the_model_rejects():
    schema = json.loads(SCHEMA_FILE.read_text())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"tenancy": {"egres": "open"}}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"node_pools": [{"name": "a", "role": "tpu", "max": 1}]}, schema)
