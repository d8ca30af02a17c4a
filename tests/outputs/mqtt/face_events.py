"""Real face events for the MQTT tests: real tracker output through the real event policy."""

from __future__ import annotations

from edge_fer.config.settings import EventsSettings
from edge_fer.events import EventPolicy, FaceEvent, ModelInfo
from edge_fer.tracking.tracker import Tracker
from tests import factories

FPS = 10.0
T0_WALL = 1_796_017_819.123  # 2026-11-30T05:50:19.123Z
MODEL = ModelInfo("mini_xception_fer", "6a7c5d9f00b3")
LEFT, RIGHT = (20.0, 40.0, 90.0, 110.0), (300.0, 40.0, 90.0, 110.0)


def play(frames, *, mode: str = "tracks", camera: str = "cam0", device: str = "kiosk-1", flush: bool = True):
    """Run frames (lists of faces) through a tracker and the policy; returns (frame index, event) pairs."""
    tracker = Tracker()
    policy = EventPolicy(
        EventsSettings(mode=mode, update_interval=1.0), device=device, camera=camera, run_id="a1b2c3d4e5f6", model=MODEL
    )
    out: list[tuple[int, FaceEvent]] = []
    for i, faces in enumerate(frames):
        update = tracker.update(faces, 50.0 + i / FPS, 1000 + i)
        out += [(i, e) for e in policy.events(update, faces, T0_WALL + i / FPS)]
    if flush:
        n = len(frames)
        out += [(n, e) for e in policy.events(tracker.flush(50.0 + n / FPS), [], T0_WALL + n / FPS)]
    return out


def happy_then_sad(n_happy: int = 30, n_sad: int = 20, n_gone: int = 20):
    happy, sad = factories.face(LEFT, "happy", 0.9), factories.face(LEFT, "sad", 0.9)
    return [[happy]] * n_happy + [[sad]] * n_sad + [[]] * n_gone
