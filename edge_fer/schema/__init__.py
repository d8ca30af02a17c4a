"""The JSON Schemas of edge-fer's payloads, generated from :mod:`edge_fer.schema.payloads`.

``python -m edge_fer.schema`` rewrites ``face_event``, ``state`` and ``stats.schema.json`` next to this
file; ``python -m edge_fer.schema --check`` exits 1 when a shipped file differs from what the models
generate (the test suite runs the same comparison).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BASE_ID = "https://github.com/edge-fer/edge-fer/schema/"
NAMES = ("face_event", "state", "stats")


def _models() -> dict[str, Any]:
    from edge_fer.schema.payloads import CameraStatePayload, FaceEventPayload, StatsPayload

    return {"face_event": FaceEventPayload, "state": CameraStatePayload, "stats": StatsPayload}


def generate(name: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of payload ``name``, as it is shipped."""
    from pydantic.json_schema import GenerateJsonSchema

    class Generator(GenerateJsonSchema):
        # Titles pydantic derives from field names ("Seq") and defaults it copies from the models say nothing
        # a consumer needs; the descriptions do.
        def field_title_should_be_set(self, schema) -> bool:
            return False

        def default_schema(self, schema):
            return self.generate_inner(schema["schema"])

    body = _models()[name].model_json_schema(by_alias=True, schema_generator=Generator)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{BASE_ID}{name}.schema.json",
        **body,
    }


def render(name: str) -> str:
    return json.dumps(generate(name), indent=2, ensure_ascii=False) + "\n"


def path(name: str) -> Path:
    return HERE / f"{name}.schema.json"
