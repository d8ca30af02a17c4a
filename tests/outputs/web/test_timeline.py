"""The preview's emotion timeline: runs of one label per track, the distribution over the window, and the
bounds (window, strips, tracks, runs), on a fake clock; then the JSON route on a real server."""

from __future__ import annotations

import json

import pytest

from edge_fer.outputs.web import timeline as tl
from edge_fer.outputs.web.timeline import EmotionTimeline, css_colors
from tests.outputs.web.conftest import face_event, get


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


def feed(line: EmotionTimeline, clock: Clock, at: float, kind: str, track: int, emotion: str, camera: str = "cam0"):
    clock.now = 1000.0 + at
    line.add(face_event(0, kind, track, emotion, camera))


def test_a_track_becomes_runs_of_one_label_and_the_distribution_adds_them_up(clock):
    line = EmotionTimeline(clock=clock, window_s=60)
    feed(line, clock, 0, "start", 1, "neutral")
    feed(line, clock, 2, "update", 1, "neutral")
    feed(line, clock, 4, "change", 1, "happy")
    feed(line, clock, 10, "end", 1, "happy")
    feed(line, clock, 6, "start", 2, "sad")
    clock.now = 1000.0 + 12
    cam = line.snapshot()["cameras"]["cam0"]
    first, second = cam["tracks"]
    assert first == {"track_id": 1, "live": False, "runs": [["neutral", 12.0, 8.0], ["happy", 8.0, 2.0]]}
    assert second == {"track_id": 2, "live": True, "runs": [["sad", 6.0, 0.0]]}  # a live track runs until now
    assert cam["seconds"] == {**dict.fromkeys(cam["seconds"], 0.0), "neutral": 4.0, "happy": 6.0, "sad": 6.0}


def test_everything_is_bounded(clock, monkeypatch):
    monkeypatch.setattr(tl, "MAX_RUNS", 5)
    monkeypatch.setattr(tl, "MAX_CAMERAS", 3)
    line = EmotionTimeline(clock=clock, window_s=30, strips=4, keep_tracks=6)
    for i in range(20):  # 20 tracks: 6 remembered, the 4 most recent drawn
        feed(line, clock, i, "start", i + 1, "happy")
    for i in range(40):  # a track changing emotion every second: only its last runs are kept
        feed(line, clock, 20 + i, "change", 20, ("happy", "angry")[i % 2])
    for cam in ("a", "b", "c", "d"):
        feed(line, clock, 61, "start", 1, "fear", camera=cam)
    snap = line.snapshot()
    assert set(snap["cameras"]) == {"b", "c", "d"}
    feed(line, clock, 62, "update", 20, "happy")
    assert len(line._cameras["cam0"]) == 1  # "cam0" came back after being forgotten: only what it sent since
    line = EmotionTimeline(clock=clock, window_s=30, strips=4, keep_tracks=6)
    for i in range(20):
        feed(line, clock, i, "start", i + 1, "happy")
    cam = line.snapshot()["cameras"]["cam0"]
    assert [t["track_id"] for t in cam["tracks"]] == [17, 18, 19, 20]
    assert len(line._cameras["cam0"]) == 6
    for i in range(40):
        feed(line, clock, 20 + i, "change", 20, ("happy", "angry")[i % 2])
    assert len(line._cameras["cam0"][20].runs) == 5
    clock.now += 100  # everything older than the window is gone from the picture
    assert line.snapshot()["cameras"]["cam0"] == {"seconds": dict.fromkeys(tl.EMOTIONS, 0.0), "tracks": []}


def test_faces_without_a_track_and_ends_of_unknown_tracks_are_ignored(clock):
    line = EmotionTimeline(clock=clock)
    feed(line, clock, 0, "face", 0, "happy")  # every_frame mode, not yet on a confirmed track
    feed(line, clock, 1, "end", 9, "happy")
    assert line.snapshot()["cameras"].get("cam0", {"tracks": []})["tracks"] == []
    feed(line, clock, 2, "face", 3, "surprise")
    assert line.snapshot()["cameras"]["cam0"]["tracks"][0]["runs"] == [["surprise", 0.0, 0.0]]


def test_a_silent_track_leaves_a_hole_and_is_no_longer_live(clock):
    line = EmotionTimeline(clock=clock, ttl_s=5)
    feed(line, clock, 0, "start", 1, "happy")
    feed(line, clock, 2, "update", 1, "happy")
    clock.now = 1000.0 + 9
    assert line.snapshot()["cameras"]["cam0"]["tracks"][0] == {
        "track_id": 1, "live": False, "runs": [["happy", 9.0, 7.0]]
    }  # fmt: skip
    feed(line, clock, 10, "update", 1, "happy")
    runs = line.snapshot()["cameras"]["cam0"]["tracks"][0]["runs"]
    assert runs == [["happy", 10.0, 8.0], ["happy", 0.0, 0.0]]


def test_colours_are_the_annotated_videos():
    colors = css_colors()
    assert colors["happy"] == "#ffd200"  # BGR (0, 210, 255)
    assert set(colors) == set(tl.EMOTIONS)


def test_timeline_route_needs_the_token_and_serves_json(make_server):
    server = make_server(token="tl-Token-9")
    server.offer_event(face_event(0, "start", 4, "surprise"))
    assert get(server, "/timeline.json")[0] == 401
    status, headers, body = get(server, "/timeline.json?token=tl-Token-9")
    assert status == 200 and headers["content-type"] == "application/json"
    data = json.loads(body)
    assert data["window_s"] == tl.WINDOW_S and data["colors"]["surprise"].startswith("#")
    assert data["cameras"]["cam0"]["tracks"][0]["track_id"] == 4
