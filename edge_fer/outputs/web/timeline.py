"""The preview's emotion timeline: per camera, how the emotions of the last minutes were distributed, and
each recent track's published emotion as runs of one label, for the page to draw.

Built from the events the preview already receives (``start``/``change``/``update``/``end``; ``face`` events of
``every_frame`` mode for faces with a track), so it shows what consumers of the events saw, not a second
analysis. A track that sends no event for ``ttl_s`` is taken as gone, as the page's face list does. Bounded
three ways, whatever the event rate: a time window, tracks remembered per camera, runs kept per track; and
cameras, since a camera name comes from events.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from edge_fer.outputs.annotate import EMOTION_COLORS
from edge_fer.vision.types import EMOTIONS

WINDOW_S = 300.0  # the last five minutes
STRIPS = 8  # tracks drawn per camera (the most recently seen)
KEEP_TRACKS = 64  # tracks remembered per camera for the distribution
MAX_RUNS = 240  # label runs kept per track
MAX_CAMERAS = 64
TTL_S = 30.0


def css_colors() -> dict[str, str]:
    """The annotated video's colours (BGR there) as CSS, so a strip and a box mean the same thing."""
    return {label: "#{2:02x}{1:02x}{0:02x}".format(*bgr) for label, bgr in EMOTION_COLORS.items()}


@dataclass(slots=True)
class _Track:
    runs: list[list] = field(default_factory=list)  # [label, t0, t1], oldest first
    ended: bool = False


class EmotionTimeline:
    """``add(event)`` from the output's thread, ``snapshot()`` from request threads."""

    def __init__(
        self,
        *,
        window_s: float = WINDOW_S,
        strips: int = STRIPS,
        keep_tracks: int = KEEP_TRACKS,
        ttl_s: float = TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window_s, self.strips, self.keep_tracks, self.ttl_s = window_s, strips, keep_tracks, ttl_s
        self.clock = clock
        self._cameras: OrderedDict[str, OrderedDict[int, _Track]] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, event: dict) -> None:
        camera, track_id, label = event.get("camera"), event.get("track_id"), event.get("emotion")
        kind = event.get("type")
        if not isinstance(track_id, int) or track_id <= 0 or not isinstance(label, str) or camera is None:
            return  # a face of every_frame mode not (yet) on a confirmed track has no strip
        now = self.clock()
        with self._lock:
            tracks = self._cameras.get(str(camera))
            if tracks is None:
                tracks = self._cameras[str(camera)] = OrderedDict()
                while len(self._cameras) > MAX_CAMERAS:
                    self._cameras.popitem(last=False)
            track = tracks.get(track_id)
            if track is None or track.ended:
                if kind == "end" and track is None:
                    return
                track = tracks[track_id] = _Track()
            self._extend(track, label, now, end=kind == "end")
            tracks.move_to_end(track_id)
            while len(tracks) > self.keep_tracks:
                tracks.popitem(last=False)

    def _extend(self, track: _Track, label: str, now: float, *, end: bool) -> None:
        last = track.runs[-1] if track.runs else None
        if last is None or now - last[2] > self.ttl_s:  # the first event, or back after a silence: a hole
            track.runs.append([label, now, now])
        else:
            last[2] = now  # the previous label held until this event
            if label != last[0] and not end:
                track.runs.append([label, now, now])
        track.ended = end
        if len(track.runs) > MAX_RUNS:
            del track.runs[: len(track.runs) - MAX_RUNS]

    def snapshot(self) -> dict:
        """Times are seconds before now (0 = now), so the page needs no clock of ours."""
        now = self.clock()
        start = now - self.window_s
        cameras = {}
        with self._lock:
            for camera, tracks in self._cameras.items():
                seconds = dict.fromkeys(EMOTIONS, 0.0)
                shown = []
                for track_id, track in reversed(tracks.items()):  # most recently seen first
                    live = not track.ended and now - track.runs[-1][2] <= self.ttl_s
                    runs = []
                    for i, (label, t0, t1) in enumerate(track.runs):
                        t1 = now if live and i == len(track.runs) - 1 else t1
                        if t1 < start:
                            continue
                        t0 = max(t0, start)
                        seconds[label] = seconds.get(label, 0.0) + (t1 - t0)
                        runs.append([label, round(now - t0, 2), round(now - t1, 2)])
                    if runs and len(shown) < self.strips:
                        shown.append({"track_id": track_id, "live": live, "runs": runs})
                cameras[camera] = {
                    "seconds": {label: round(s, 2) for label, s in seconds.items()},
                    "tracks": sorted(shown, key=lambda t: t["track_id"]),
                }
        return {"window_s": self.window_s, "colors": css_colors(), "cameras": cameras}
