"""The retained camera state, derived from real face events, and its JSON Schema."""

import json
from importlib import resources

import jsonschema
import pytest

from edge_fer.outputs.mqtt.state import CameraState, dominant
from tests import factories
from tests.outputs.mqtt.face_events import LEFT, RIGHT, happy_then_sad, play


@pytest.fixture(scope="module")
def validator():
    schema = json.loads((resources.files("edge_fer") / "schema" / "state.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def run(events, state: CameraState, validator, clock: Clock | None = None):
    payloads = [state.current("2026-11-30T05:50:19.000Z")]
    for i, e in events:
        if clock is not None:
            clock.t = i / 10.0
        p = state.observe(e)
        if p is not None:
            payloads.append(p)
    for p in payloads:
        validator.validate(p)
    return payloads


def test_a_face_arrives_changes_emotion_and_leaves(validator):
    payloads = run(play(happy_then_sad()), CameraState("kiosk-1", "cam0", "a1b2c3d4e5f6"), validator)
    assert [(p["faces"], p["dominant_emotion"]) for p in payloads] == [(0, None), (1, "happy"), (1, "sad"), (0, None)]
    assert payloads[1]["emotions"] == {"happy": 1} and payloads[-1]["emotions"] == {}
    # `since` moves when the dominant emotion changes and is the capture time of the event that changed it
    assert payloads[2]["since"] == payloads[2]["updated"] != payloads[1]["since"]
    assert payloads[1]["run_id"] == "a1b2c3d4e5f6" and payloads[1]["camera"] == "cam0"


def test_two_faces_count_and_the_majority_wins(validator):
    a, b, c = factories.face(LEFT, "happy", 0.6), factories.face(RIGHT, "sad", 0.95), factories.face(RIGHT, "happy")
    frames = [[a, b]] * 15 + [[a, c]] * 15
    payloads = run(play(frames), CameraState("kiosk-1", "cam0", "r"), validator)
    two = [p for p in payloads if p["faces"] == 2]
    assert two[0]["emotions"] == {"happy": 1, "sad": 1} and two[0]["dominant_emotion"] == "sad"  # tie: confidence
    assert two[-1]["emotions"] == {"happy": 2} and two[-1]["dominant_emotion"] == "happy"


def test_a_face_edge_fer_abstains_on_is_present_but_shows_no_emotion(validator):
    sure = factories.face(LEFT, "happy", 0.9, quality=0.8)
    unsure = factories.face(RIGHT, "sad", 0.95, quality=0.01, claim=False)
    payloads = run(play([[sure, unsure]] * 5, mode="every_frame"), CameraState("k", "cam0", "r"), validator)
    assert payloads[-1]["faces"] == 2 and payloads[-1]["emotions"] == {"happy": 1}
    assert payloads[-1]["dominant_emotion"] == "happy"  # not sad, although sad is the surer answer
    alone = run(play([[unsure]] * 5, mode="every_frame"), CameraState("k", "cam0", "r"), validator)
    assert (alone[-1]["faces"], alone[-1]["dominant_emotion"], alone[-1]["emotions"]) == (1, None, {})


def test_every_frame_mode_uses_the_latest_frame_and_expires_without_end_events(validator):
    clock = Clock()
    state = CameraState("kiosk-1", "cam0", "r", stale_after=2.0, clock=clock)
    a, b = factories.face(LEFT, "happy", 0.9), factories.face(RIGHT, "neutral", 0.9)
    payloads = run(play([[a, b]] * 5 + [[a]] * 5, mode="every_frame", flush=False), state, validator, clock)
    assert [p["faces"] for p in payloads] == [0, 1, 2, 1]  # the first frame's events arrive one by one
    clock.t += 1.0
    assert state.expire("2026-11-30T05:50:30.000Z") is None
    clock.t += 1.5
    gone = state.expire("2026-11-30T05:50:31.500Z")
    validator.validate(gone)
    assert gone["faces"] == 0 and gone["dominant_emotion"] is None and gone["updated"] == "2026-11-30T05:50:31.500Z"


def test_a_lost_end_event_does_not_leave_a_phantom_face():
    clock = Clock()
    state = CameraState("kiosk-1", "cam0", "r", stale_after=3.0, clock=clock)
    events = [e for _, e in play(happy_then_sad()) if e.type != "end"]
    for e in events:
        state.observe(e)
    assert state.current("2026-11-30T05:50:30.000Z")["faces"] == 1
    clock.t = 3.5
    assert state.expire("2026-11-30T05:50:33.500Z")["faces"] == 0


def test_dominant():
    assert dominant([]) is None
    assert dominant([("happy", 0.5), ("sad", 0.9), ("happy", 0.5)]) == "happy"
    assert dominant([("happy", 0.5), ("sad", 0.9)]) == "sad"
    assert dominant([("happy", 0.5), ("sad", 0.5)]) == dominant([("sad", 0.5), ("happy", 0.5)])


def test_stale_after_must_be_positive():
    with pytest.raises(ValueError, match="stale_after"):
        CameraState("d", "c", "r", stale_after=0)
