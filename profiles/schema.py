"""JSON Schema of profile files, for YAML editors (`# yaml-language-server: $schema=schema.json`).

Generated from the model (add-ons included) by `mlcluster schema`; a test fails when `schema.json` is
stale. Profile files may be partial (they `extends:` a base), so the top level requires nothing; the
full check is `mlcluster validate`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlcluster.profiles.effective import profile_model

SCHEMA_FILE = Path(__file__).resolve().parent / "schema.json"
SIGNATURE = '"title": "mlcluster profile"'  # what marks schema.json as ours


def profile_schema() -> dict[str, Any]:
    schema = profile_model().model_json_schema(mode="validation")
    properties = schema["properties"]
    properties.pop("name", None)  # set from the file name
    properties["extends"] = {
        "type": "string",
        "description": "Profile this one builds on: a shipped name (e.g. _base) or a path to a YAML file.",
    }
    schema.pop("required", None)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "mlcluster profile"
    return schema


def schema_text() -> str:
    return json.dumps(profile_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
