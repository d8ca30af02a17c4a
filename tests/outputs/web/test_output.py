"""The browser preview as an Output: events, frames and stats snapshots reach it through the one door."""

from __future__ import annotations

import json

import numpy as np

from edge_fer.capture.frame import Frame
from edge_fer.config.comms import HttpSettings
from edge_fer.outputs.web.output import PreviewOutput
from edge_fer.runtime.stats import StatsSnapshot
from tests import factories


def make() -> PreviewOutput:
    return PreviewOutput(HttpSettings(enabled=True, port=0), lambda: (True, {}), cameras=["cam0"])


def test_stats_json_shows_the_latest_snapshot_with_every_section():
    output = make()
    assert json.loads(output.server.stats_json())["pipeline"] == {}
    mqtt = {"connected": False, "published": 3, "buffered": 3, "dropped": 0}
    output.on_stats(StatsSnapshot.of({"cameras": {"cam0": {"faces": 1}}, "mqtt": mqtt}))
    pipeline = json.loads(output.server.stats_json())["pipeline"]
    assert pipeline["mqtt"] == mqtt and pipeline["cameras"]["cam0"]["faces"] == 1
    output.close()


def test_frames_are_wanted_only_while_someone_watches_and_events_are_kept():
    output = make()
    assert not output.wants_frames("cam0")
    feed = output.server.hub.get("cam0")
    feed.attach()
    try:
        assert output.wants_frames("cam0") and not output.wants_frames("other")
        image = np.zeros((48, 64, 3), np.uint8)
        output.on_frame(Frame("cam0", 0, 1.0, 1e9, image), image)
        assert feed.offered == 1
    finally:
        feed.detach()
    (event,) = factories.face_events(1)
    output.on_event(event)
    assert json.loads(output.server.events_json())["events"][0]["seq"] == event.seq
    output.close()
