"""The payload schemas are generated from one model, shipped as generated, and accept what they used to.

``tests/fixtures/schema_d9773ee`` holds the hand-written schemas as shipped before generation; every payload
of the corpus below (real tracker output through the real event policy, in both modes; the camera state
derived from it; stats with and without MQTT) must validate under the old and the new schema alike.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from edge_fer.outputs.mqtt.state import CameraState
from edge_fer.schema import NAMES, generate, path, render
from edge_fer.schema.__main__ import main as schema_main
from tests import factories
from tests.outputs.mqtt.face_events import LEFT, RIGHT, happy_then_sad, play

OLD = Path(__file__).parent / "fixtures" / "schema_d9773ee"


def validators(name: str) -> list[jsonschema.Draft202012Validator]:
    old = json.loads((OLD / f"{name}.schema.json").read_text())
    new = json.loads(path(name).read_text())
    for schema in (old, new):
        jsonschema.Draft202012Validator.check_schema(schema)
    return [jsonschema.Draft202012Validator(old), jsonschema.Draft202012Validator(new)]


def face_event_corpus() -> list[dict]:
    happy, sad = factories.face(LEFT, "happy", 0.9), factories.face(RIGHT, "sad", 0.7)
    frames = happy_then_sad() + [[happy, sad]] * 25 + [[sad]] * 15 + [[]] * 20
    events = [e for _, e in play(frames)] + [e for _, e in play(frames[:40], mode="every_frame")]
    events += factories.face_events(30, faces_per_frame=3)
    return [e.to_dict() for e in events]


def state_corpus() -> list[dict]:
    state = CameraState("kiosk-1", "cam0", "a1b2c3d4e5f6")
    payloads = [state.current("2026-11-30T05:50:19.000Z")]
    for _, event in play(happy_then_sad()):
        payload = state.observe(event)
        if payload is not None:
            payloads.append(payload)
    return payloads


def stats_corpus() -> list[dict]:
    camera = {
        "captured": 120, "processed": 100, "skipped": 15, "dropped": 5, "fps_capture": 12.0, "fps_processed": 10.0,
        "latency_ms_p50": 41.5, "latency_ms_p95": None, "faces": 1, "state": "connected", "queued": 0,
    }  # fmt: skip
    base = {"schema": 1, "device": "kiosk-1", "run_id": "a1b2c3d4e5f6", "ts": "2026-11-30T05:50:29.123Z"}
    base |= {"uptime_s": 10.4, "cameras": {"Front Door": camera, "idle": {**camera, "latency_ms_p50": None}}}
    mqtt = {"connected": False, "published": 3, "acked": 2, "buffered": 1, "inflight": 1, "dropped": 0}
    mqtt |= {"failed": 0, "resent": 1, "connects": 1, "connect_failures": 4, "last_error": "cannot connect"}
    return [{**base, "mqtt": None}, {**base, "mqtt": mqtt}, {**base, "mqtt": {**mqtt, "last_error": None}}]


CORPUS = {"face_event": face_event_corpus, "state": state_corpus, "stats": stats_corpus}


@pytest.mark.parametrize("name", NAMES)
def test_shipped_schema_is_the_generated_one(name):
    assert path(name).read_text(encoding="utf-8") == render(name), "run: python -m edge_fer.schema"


def test_check_mode_agrees(capsys):
    assert schema_main(["--check"]) == 0


# Optional fields added since the old schema: the new schema must accept events with and without them.
ADDED = {"face_event": ("quality", "claim"), "state": (), "stats": ()}


def _without_added(name: str, payload: dict) -> dict:
    return {k: v for k, v in payload.items() if k not in ADDED[name]}


@pytest.mark.parametrize("name", NAMES)
def test_every_payload_of_the_corpus_validates_under_old_and_new(name):
    """Without the added optional fields a payload is exactly what the old schema described; the new schema
    takes it with and without them, so producers and consumers can be upgraded in either order."""
    payloads = CORPUS[name]()
    assert len(payloads) > 2
    old, new = validators(name)
    for payload in payloads:
        new.validate(payload)
        new.validate(_without_added(name, payload))
        old.validate(_without_added(name, payload))


def test_face_events_carry_quality_and_claim():
    events = face_event_corpus()
    assert all(isinstance(e["claim"], bool) for e in events)
    assert any("quality" in e for e in events) and all(0 <= e.get("quality", 0) <= 1 for e in events)


@pytest.mark.parametrize("change", [{"quality": 1.5}, {"quality": -0.1}, {"claim": "yes"}, {"claim": None}])
def test_the_new_schema_refuses_bad_quality_and_claim(change):
    good = next(e for e in face_event_corpus() if e["type"] == "update")
    _, new = validators("face_event")
    assert not new.is_valid({**good, **change}), change


def test_the_corpus_covers_every_event_type_and_both_optional_fields():
    events = face_event_corpus()
    assert {e["type"] for e in events} == {"start", "update", "change", "end", "face"}
    assert all(("duration" in e) == (e["type"] == "end") for e in events)


@pytest.mark.parametrize(
    "change",
    [
        {"type": "begin"},
        {"seq": -1},
        {"ts": "2026-11-30 05:50:19"},
        {"scores": {}},
        {"model": {"name": "m", "sha256": "XYZ"}},
        {"extra": 1},
        {"duration": 1.0},
    ],
)
def test_old_and_new_refuse_the_same_broken_events(change):
    good = next(e for e in face_event_corpus() if e["type"] == "update")
    bad = {**good, **change}
    for validator in validators("face_event"):
        assert not validator.is_valid(_without_added("face_event", bad)), change


def test_the_event_type_enum_is_the_code_s():
    from edge_fer.events import EventType

    schema = generate("face_event")
    assert schema["$defs"]["EventType"]["enum"] == [t.value for t in EventType]


def test_python_m_edge_fer_schema_check_runs_as_documented():
    """In a fresh interpreter, so the entry point cannot lean on modules a test imported before it."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run(
        [sys.executable, "-m", "edge_fer.schema", "--check"], cwd=root, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
