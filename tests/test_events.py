"""Face events: emission policy over real tracker output, seq numbering, timestamps and the JSON Schema."""

import json
from importlib import resources

import jsonschema
import pytest

from edge_fer.config.settings import EventsSettings, TrackingSettings
from edge_fer.events import EventPolicy, FaceEvent, ModelInfo, iso_utc_ms, new_run_id
from edge_fer.tracking.tracker import Tracker
from edge_fer.vision.types import EMOTIONS, Box
from tests import factories

FPS = 10.0
T0_WALL = 1_796_017_819.123  # 2026-11-30T05:50:19.123Z
MODEL = ModelInfo("mini_xception_fer", "6a7c5d9f00b3")


@pytest.fixture(scope="module")
def validator():
    schema = json.loads((resources.files("edge_fer") / "schema" / "face_event.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def policy(mode="tracks", interval=1.0, camera="cam0"):
    return EventPolicy(
        EventsSettings(mode=mode, update_interval=interval),
        device="kiosk-1",
        camera=camera,
        run_id="a1b2c3d4e5f6",
        model=MODEL,
    )


def play(frames, mode="tracks", interval=1.0, tracker_config=None, flush=True):
    """Run frames (lists of faces) through a real tracker and the policy; returns all events."""
    tracker, pol, events = Tracker(tracker_config), policy(mode, interval), []
    for i, faces in enumerate(frames):
        update = tracker.update(faces, 50.0 + i / FPS, 1000 + i)
        events += pol.events(update, faces, T0_WALL + i / FPS)
    if flush:
        end = 50.0 + len(frames) / FPS
        events += pol.events(tracker.flush(end), [], T0_WALL + len(frames) / FPS)
    return events


def life_of_a_face():
    """3 s happy, 2 s sad, then 2 s of nothing: start, updates, one change, end."""
    happy, sad = factories.face(label="happy", confidence=0.9), factories.face(label="sad", confidence=0.9)
    return [[happy]] * 30 + [[sad]] * 20 + [[]] * 20


def test_a_track_says_start_updates_change_and_end():
    events = play(life_of_a_face())
    kinds = [e.type for e in events]
    assert kinds[0] == "start" and kinds[-1] == "end" and kinds.count("change") == 1
    assert set(kinds) == {"start", "update", "change", "end"} and kinds.count("start") == 1 and kinds.count("end") == 1
    assert {e.track_id for e in events} == {1}
    change = events[kinds.index("change")]
    assert change.emotion == "sad" and events[0].emotion == "happy"
    end = events[-1]
    assert end.dominant_emotion == "happy" and end.emotion == "sad"
    assert end.duration == pytest.approx(49 / FPS)
    # the end is decided max_age (1 s) after the last sighting, and stamped with that frame
    assert end.frame == 1000 + 49 + 11 and end.ts == iso_utc_ms(T0_WALL + 60 / FPS)


def test_updates_come_every_interval_while_present_and_any_event_restarts_the_timer():
    events = play([[factories.face()]] * 52, flush=False)  # confirmed at frame 2, present for 4.9 s
    times = [(e.frame - 1000) / FPS for e in events]
    assert [e.type for e in events] == ["start", "update", "update", "update", "update"]
    assert times == pytest.approx([0.2, 1.2, 2.2, 3.2, 4.2])
    every_frame = play([[factories.face()]] * 10, interval=0.01, flush=False)
    assert [e.type for e in every_frame] == ["start"] + ["update"] * 7


def test_coasting_tracks_send_no_updates():
    events = play([[factories.face()]] * 5 + [[]] * 8 + [[factories.face()]] * 5, interval=0.3, flush=False)
    coasting_frames = range(1005, 1013)
    assert not [e for e in events if e.frame in coasting_frames]


def test_seq_starts_at_zero_and_grows_by_one_per_event_per_camera():
    faces = [[factories.face((10, 10, 80, 80)), factories.face((300, 200, 90, 90), "sad")]] * 40
    events = play(faces, interval=0.25)
    assert [e.seq for e in events] == list(range(len(events)))
    other = policy(camera="cam1")
    update = Tracker(TrackingSettings(min_hits=1)).update(faces[0], 0.0, 0)
    assert [e.seq for e in other.events(update, faces[0], T0_WALL)] == [0, 1]


def test_every_frame_mode_reports_each_face_raw_with_its_track_id():
    noisy = [
        factories.face(probs={"happy": 0.45, "neutral": 0.40}),
        factories.face(probs={"neutral": 0.45, "happy": 0.4}),
    ]
    frames = [[noisy[i % 2], factories.face((300, 300, 60, 60), "sad")] for i in range(12)]
    events = play(frames, mode="every_frame")
    assert len(events) == 24 and {e.type for e in events} == {"face"}
    for i, faces in enumerate(frames):
        pair = events[2 * i : 2 * i + 2]
        assert [e.frame for e in pair] == [1000 + i] * 2
        for event, face in zip(pair, faces):
            assert event.emotion == face.emotion.label and dict(event.scores) == pytest.approx(face.emotion.scores)
            assert event.box == face.box
    # raw: the label flips with the input, no smoothing or hysteresis
    assert [e.emotion for e in events[0:8:2]] == ["happy", "neutral", "happy", "neutral"]
    # track ids: 0 until the tracker confirms the face (min_hits=3), then its id
    assert [e.track_id for e in events[0:8:2]] == [0, 0, 1, 1] and [e.track_id for e in events[1:8:2]] == [0, 0, 2, 2]


def test_every_event_type_validates_against_the_schema(validator):
    events = play(life_of_a_face()) + play([[factories.face()]] * 4, mode="every_frame")
    assert {e.type for e in events} == {"start", "update", "change", "end", "face"}
    for event in events:
        payload = json.loads(event.to_json())
        assert payload == event.to_dict()
        validator.validate(payload)


def test_schema_rejects_what_the_dataclass_never_produces(validator):
    end = next(e for e in play(life_of_a_face()) if e.type == "end").to_dict()
    start = play([[factories.face()]] * 3, flush=False)[0].to_dict()
    bad = [
        {**start, "extra": 1},
        {**start, "duration": 1.0},
        {k: v for k, v in end.items() if k != "dominant_emotion"},
        {**start, "ts": "2026-11-30T05:50:19Z"},
        {**start, "type": "gone"},
        {**start, "box": [1, 2, 3]},
        {**start, "model": {"name": "m"}},
    ]
    for payload in bad:
        assert not validator.is_valid(payload), payload


def test_json_is_one_compact_line_with_the_documented_fields():
    event = play([[factories.face()]] * 3, flush=False)[0]
    line = event.to_json()
    assert "\n" not in line and ", " not in line and ": " not in line
    payload = json.loads(line)
    assert list(payload) == [
        *("schema", "device", "camera", "run_id", "seq", "ts", "frame", "track_id", "type", "box"),
        *("det_score", "emotion", "confidence", "scores", "model", "claim"),
    ]
    assert payload["schema"] == 1 and payload["ts"] == "2026-11-30T05:50:19.323Z"
    assert list(payload["scores"]) == list(EMOTIONS) and payload["model"] == {
        "name": "mini_xception_fer",
        "sha256": "6a7c5d9f00b3",
    }
    assert payload["box"] == factories.ASTRONAUT_FACE.as_list()


@pytest.mark.parametrize(
    ("t_wall", "text"),
    [
        (0.0, "1970-01-01T00:00:00.000Z"),
        (1.9999, "1970-01-01T00:00:01.999Z"),
        (T0_WALL, "2026-11-30T05:50:19.123Z"),
        (951_782_400.5, "2000-02-29T00:00:00.500Z"),
    ],
)
def test_timestamps_are_utc_with_milliseconds(t_wall, text):
    assert iso_utc_ms(t_wall) == text


def test_run_ids_are_short_and_new_each_time():
    ids = {new_run_id() for _ in range(50)}
    assert len(ids) == 50 and all(len(i) == 12 and int(i, 16) >= 0 for i in ids)


def event_kwargs(**overrides):
    base = dict(
        device="d",
        camera="c",
        run_id="r",
        seq=0,
        ts="2026-11-30T05:50:19.123Z",
        frame=0,
        track_id=1,
        type="start",
        box=Box(1, 2, 3, 4),
        det_score=0.9,
        emotion="happy",
        confidence=0.8,
        scores={"happy": 0.8, "sad": 0.2},
        model=MODEL,
    )
    return base | overrides


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"type": "gone"}, "type"),
        ({"type": "end"}, "duration"),
        ({"duration": 1.0, "dominant_emotion": "happy"}, "duration"),
        ({"ts": "yesterday"}, "ts"),
        ({"seq": -1}, "seq"),
        ({"emotion": "angry"}, "emotion"),
    ],
)
def test_face_event_refuses_inconsistent_values(overrides, message):
    with pytest.raises(ValueError, match=message):
        FaceEvent(**event_kwargs(**overrides))


def test_event_scores_cannot_be_changed_after_creation():
    scores = {"happy": 0.8, "sad": 0.2}
    event = FaceEvent(**event_kwargs(scores=scores))
    scores["happy"] = 0.1
    assert event.scores["happy"] == 0.8
    with pytest.raises(TypeError):
        event.scores["happy"] = 0.0


@pytest.mark.parametrize("bad", [{"mode": "sometimes"}, {"update_interval": 0}])
def test_policy_config_is_validated(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        EventsSettings(**bad)


def test_model_info_from_the_bundled_model_file_is_its_short_sha256():
    from edge_fer.vision.onnx_session import bundled_model, manifest

    info = ModelInfo.from_file("mini_xception_fer", bundled_model("emotion_mini_xception.onnx"))
    assert info.sha256 == manifest()["emotion_mini_xception.onnx"]["sha256"][:12]
    with pytest.raises(ValueError, match="sha256"):
        ModelInfo("m", "not-hex")
