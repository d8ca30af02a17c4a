"""The per-camera summary behind the retained ``<camera>/state`` topic: who is there and what they feel.

It is derived from the camera's face events alone, so the pipeline has nothing extra to call. A face whose
event says ``claim: false`` (edge-fer abstains on it) counts as present but lends its emotion to neither
``emotions`` nor ``dominant_emotion``: a dashboard must not show what edge-fer would not stand by. In ``tracks``
mode ``start``/``update``/``change`` refresh a track and ``end`` removes it; in ``every_frame`` mode the
faces of the latest frame are the faces present. A face not refreshed for ``stale_after`` seconds is
dropped all the same: ``every_frame`` mode has no ``end`` events, and an ``end`` event dropped by a full
sink queue must not leave a phantom face on a dashboard for ever.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

STATE_SCHEMA_VERSION = 1


class EventLike(Protocol):
    type: str
    track_id: int
    frame: int
    emotion: str
    confidence: float
    ts: str


@dataclass(slots=True)
class _Face:
    emotion: str
    confidence: float
    seen: float
    claim: bool = True


def _face(event: EventLike, now: float) -> _Face:
    return _Face(event.emotion, float(event.confidence), now, getattr(event, "claim", None) is not False)


def dominant(faces: list[tuple[str, float]]) -> str | None:
    """The emotion most faces show; ties go to the higher summed confidence, then the label, for stability."""
    if not faces:
        return None
    counts: Counter[str] = Counter()
    weight: Counter[str] = Counter()
    for emotion, confidence in faces:
        counts[emotion] += 1
        weight[emotion] += confidence
    return max(counts, key=lambda e: (counts[e], weight[e], e))


class CameraState:
    """Not thread-safe; the reporter serialises calls."""

    def __init__(
        self,
        device: str,
        camera: str,
        run_id: str,
        *,
        stale_after: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not stale_after > 0:
            raise ValueError(f"stale_after must be > 0 seconds, got {stale_after!r}")
        self.device, self.camera, self.run_id = device, camera, run_id
        self.stale_after = stale_after
        self._clock = clock
        self._faces: dict[object, _Face] = {}  # tracks mode: open tracks; every_frame mode: the last whole frame
        self._building: dict[object, _Face] = {}  # every_frame mode: the frame being reported
        self._frame: int | None = None
        self._summary: tuple | None = None
        self._dominant: str | None = None
        self._since: str | None = None

    def observe(self, event: EventLike) -> dict | None:
        """Fold one face event in; returns the new state payload when the summary changed, else None."""
        now = self._clock()
        if event.type == "end":
            self._faces.pop(event.track_id, None)
        elif event.type == "face":
            # A frame's events arrive one by one: until this frame has reported as many faces as the last
            # whole frame, the last whole frame stands, so the count does not dip at every frame boundary.
            if event.frame != self._frame:
                if self._frame is not None:
                    self._faces = self._building
                self._building, self._frame = {}, event.frame
            key = event.track_id or ("untracked", len(self._building))
            self._building[key] = _face(event, now)
        else:
            self._faces[event.track_id] = _face(event, now)
        return self._changed(event.ts)

    def expire(self, ts: str) -> dict | None:
        """Drop faces not seen for ``stale_after`` seconds; returns the new payload when that changed anything."""
        limit = self._clock() - self.stale_after
        stale = 0
        for faces in (self._faces, self._building):
            for key in [k for k, f in faces.items() if f.seen < limit]:
                del faces[key]
                stale += 1
        return self._changed(ts) if stale else None

    def current(self, ts: str) -> dict:
        """The payload as it stands (also the first one published, with no faces)."""
        self._changed(ts)
        return self._payload(ts)

    def _changed(self, ts: str) -> dict | None:
        present = self._building if len(self._building) >= len(self._faces) else self._faces
        claimed = [(f.emotion, f.confidence) for f in present.values() if f.claim]
        top = dominant(claimed)
        if self._since is None or top != self._dominant:
            self._dominant, self._since = top, ts
        summary = (len(present), top, tuple(sorted(Counter(e for e, _ in claimed).items())))
        if summary == self._summary:
            return None
        self._summary = summary
        return self._payload(ts)

    def _payload(self, ts: str) -> dict:
        assert self._summary is not None
        faces, top, emotions = self._summary
        return {
            "schema": STATE_SCHEMA_VERSION,
            "device": self.device,
            "camera": self.camera,
            "run_id": self.run_id,
            "faces": faces,
            "dominant_emotion": top,
            "emotions": dict(emotions),
            "since": self._since,
            "updated": ts,
        }
