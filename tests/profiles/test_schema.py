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


def test_the_reference_documents_every_field_of_every_substrate_and_add_on():
    """The generator used to follow only the first member of a union: eks and baremetal fields were missing."""
    from mlcluster.profiles.reference import reference_text

    text = reference_text()
    schema = profile_schema()
    sections = {line.split(" — ")[-1]: [] for line in text.splitlines() if line.startswith("## ")}
    current = None
    for line in text.splitlines():
        if line.startswith("## "):
            current = line.split(" — ")[-1]
        elif line.startswith("| `") and current:
            sections[current].append(line.split("`")[1])
    missing = [f"{name}.{field}" for name, definition in schema["$defs"].items()
               for field in definition.get("properties", {}) if field not in sections.get(name, [])]
    assert missing == []
    assert "## `substrate` (kind: eks) — EksSubstrate" in text
    assert "## `substrate.air_gap` (kind: baremetal) — AirGap" in text
