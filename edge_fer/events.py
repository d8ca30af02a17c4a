"""The face event: one dataclass, one JSON form, and the policy that decides which events a frame produces.

``edge_fer/schema/face_event.schema.json`` describes exactly what :meth:`FaceEvent.to_dict` returns.

In ``tracks`` mode (the default) each confirmed track says ``start`` once, ``change`` when its published
(smoothed, hysteresis) emotion changes, ``update`` every ``update_interval`` seconds while it is on screen,
and ``end`` when it is lost or the process stops. Any event of a track restarts its update timer.

In ``every_frame`` mode every face of every processed frame gives one ``face`` event with the raw
classifier output. The tracker still runs, so ``track_id`` is the id of the face's confirmed track when it
has one, and 0 while the face is not (yet) part of a confirmed track; real ids start at 1.

For ``end``, ``ts`` and ``frame`` are those of the frame on which the loss was decided (so ``ts`` grows with
``seq``); ``box``, ``det_score`` and the emotion fields are the track's last, ``duration`` is first to last
sighting in seconds.

What the numbers mean: in ``face`` events ``scores`` and ``confidence`` are the classifier's per-frame
probabilities (measured calibrated on FER2013 ``val``: top-label ECE about 0.02, see MODELS.md). In track
events they are the track's quality-weighted moving average of those probabilities over about
``tracking.smoothing_tau`` seconds: still on the probability scale, but of the recent past, not of one frame.
``quality`` (0..1) is the face's fitness to be judged, or the track's moving average of it; ``claim`` false
means edge-fer abstains on that face or track (too poor or too unsure: ``classifier.claim``), and ``emotion``
is then the top class, for reference only. Both fields are optional in the schema (consumers of older
versions may lack them); this version always sends them.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from edge_fer.config.settings import EventsSettings
from edge_fer.tracking.tracker import TrackState, TrackUpdate
from edge_fer.vision.types import Box, Face
from edge_fer.wire import WireWord

SCHEMA_VERSION = 1


class EventType(WireWord):
    """The ``type`` of a face event, as it appears in the JSON."""

    START = "start"  # a track is confirmed
    UPDATE = "update"  # a track is still there (every update_interval)
    CHANGE = "change"  # a track's published emotion changed
    END = "end"  # a track was lost, or the process stops
    FACE = "face"  # every_frame mode: one face of one frame


EVENT_TYPES: tuple[str, ...] = EventType.values()
TS_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$"
_TS_RE = re.compile(TS_PATTERN)
_SHA_RE = re.compile(r"^[0-9a-f]{8,64}$")


def new_run_id() -> str:
    """12 hex characters, new at each process start, so a consumer can tell restarts (seq starts over)."""
    return uuid.uuid4().hex[:12]


def iso_utc_ms(t_wall: float) -> str:
    """``2026-11-30T05:50:19.123Z`` from seconds since the epoch, milliseconds truncated (never rounds up to
    the next second)."""
    millis = math.floor(t_wall * 1000)
    seconds, ms = divmod(millis, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{ms:03d}Z"


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """The emotion model named in every event: its name and a short sha256 of its file."""

    name: str
    sha256: str

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("model name must not be empty")
        if not _SHA_RE.match(self.sha256):
            raise ValueError(f"model sha256 must be 8 to 64 lowercase hex characters, got {self.sha256!r}")

    @classmethod
    def from_file(cls, name: str, path: str | Path, length: int = 12) -> ModelInfo:
        """Name plus the first ``length`` hex digits of the file's sha256: enough to tell models apart."""
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        return cls(name, digest.hexdigest()[:length])


def _round(value: float, ndigits: int) -> float:
    return round(float(value), ndigits)


@dataclass(frozen=True, slots=True)
class FaceEvent:
    device: str
    camera: str
    run_id: str
    seq: int
    ts: str
    frame: int
    track_id: int
    type: EventType  # a plain "start" is accepted and becomes EventType.START
    box: Box
    det_score: float
    emotion: str
    confidence: float
    scores: Mapping[str, float]
    model: ModelInfo
    duration: float | None = None
    dominant_emotion: str | None = None
    quality: float | None = None  # None: not measured (left out of the JSON)
    claim: bool | None = None  # None: no claim rule applied (left out of the JSON)
    schema: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        problems = []
        if self.type in EVENT_TYPES:
            object.__setattr__(self, "type", EventType(self.type))
        else:
            problems.append(f"type {self.type!r} is not one of {EVENT_TYPES}")
        if not (self.device and self.camera and self.run_id):
            problems.append("device, camera and run_id must be non-empty")
        if self.seq < 0 or self.frame < 0 or self.track_id < 0:
            problems.append(f"seq, frame and track_id must be >= 0 (got {self.seq}, {self.frame}, {self.track_id})")
        if not _TS_RE.match(self.ts):
            problems.append(f"ts {self.ts!r} is not ISO-8601 UTC with milliseconds")
        if not self.scores or self.emotion not in self.scores:
            problems.append(f"emotion {self.emotion!r} is not among the scores {list(self.scores)}")
        is_end = self.type == "end"
        if is_end != (self.duration is not None) or is_end != (self.dominant_emotion is not None):
            problems.append("duration and dominant_emotion are set on end events and only there")
        if self.duration is not None and not self.duration >= 0:
            problems.append(f"duration {self.duration} must be >= 0")
        if self.quality is not None and not 0.0 <= self.quality <= 1.0:
            problems.append(f"quality {self.quality} must be within [0, 1]")
        if problems:
            raise ValueError("bad face event: " + "; ".join(problems))
        object.__setattr__(self, "scores", MappingProxyType({k: float(v) for k, v in self.scores.items()}))

    def to_dict(self) -> dict:
        out = {
            "schema": self.schema,
            "device": self.device,
            "camera": self.camera,
            "run_id": self.run_id,
            "seq": self.seq,
            "ts": self.ts,
            "frame": self.frame,
            "track_id": self.track_id,
            "type": self.type.value,
            "box": self.box.as_list(1),
            "det_score": _round(self.det_score, 4),
            "emotion": self.emotion,
            "confidence": _round(self.confidence, 4),
            "scores": {label: _round(p, 4) for label, p in self.scores.items()},
            "model": {"name": self.model.name, "sha256": self.model.sha256},
        }
        if self.type is EventType.END:
            out["duration"] = _round(self.duration, 3)
            out["dominant_emotion"] = self.dominant_emotion
        if self.quality is not None:
            out["quality"] = _round(self.quality, 3)
        if self.claim is not None:
            out["claim"] = bool(self.claim)
        return out

    def to_json(self) -> str:
        """One compact line: what stdout, MQTT and files carry."""
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False)


class EventPolicy:
    """Turns tracker updates of one camera into events, numbering them with that camera's ``seq``.

    Used from the inference thread only; ``seq`` starts at 0 and grows by exactly 1 per event so that a
    consumer can count what it lost.
    """

    def __init__(
        self, config: EventsSettings | None, *, device: str, camera: str, run_id: str, model: ModelInfo
    ) -> None:
        self.config = config or EventsSettings()  # the `events:` settings model as it is
        self.device, self.camera, self.run_id, self.model = device, camera, run_id, model
        self._seq = 0
        self._last_emitted: dict[int, float] = {}

    @property
    def next_seq(self) -> int:
        return self._seq

    def events(self, update: TrackUpdate, faces: Sequence[Face], t_wall: float) -> list[FaceEvent]:
        """Events for one processed frame (``faces`` are that frame's raw results, in tracker input order)."""
        ts = iso_utc_ms(t_wall)
        if self.config.mode == "every_frame":
            ids = update.face_track_ids or (None,) * len(faces)
            return [self._face_event(face, track_id or 0, update.frame_index, ts) for face, track_id in zip(faces, ids)]
        out = [self._track_event(EventType.END, state, update, ts) for state in update.ended]
        for state in update.ended:
            self._last_emitted.pop(state.track_id, None)
        out += [self._track_event(EventType.START, state, update, ts) for state in update.started]
        out += [self._track_event(EventType.CHANGE, state, update, ts) for state in update.changed]
        said = {state.track_id for state in (*update.started, *update.changed)}
        for state in update.present:  # started and changed tracks are present too
            due = update.t_mono - self._last_emitted.get(state.track_id, -math.inf) >= self.config.update_interval
            if state.track_id not in said and due:
                out.append(self._track_event(EventType.UPDATE, state, update, ts))
            if state.track_id in said or due:
                self._last_emitted[state.track_id] = update.t_mono
        return out

    def _next(self) -> int:
        seq = self._seq
        self._seq += 1
        return seq

    def _track_event(self, kind: EventType, state: TrackState, update: TrackUpdate, ts: str) -> FaceEvent:
        end = kind is EventType.END
        return self._numbered(
            kind,
            ts,
            frame=update.frame_index,
            track_id=state.track_id,
            box=state.box,
            det_score=state.det_score,
            emotion=state.emotion,
            confidence=state.confidence,
            scores=state.scores,
            duration=max(0.0, state.duration) if end else None,
            dominant_emotion=state.dominant_emotion if end else None,
            quality=state.quality,
            claim=state.claim,
        )

    def _face_event(self, face: Face, track_id: int, frame: int, ts: str) -> FaceEvent:
        emotion = face.emotion
        return self._numbered(
            EventType.FACE,
            ts,
            frame=frame,
            track_id=track_id,
            box=face.box,
            det_score=float(face.detection.score),
            emotion=emotion.label,
            confidence=emotion.confidence,
            scores=emotion.scores or {emotion.label: emotion.confidence},
            quality=face.quality_score,
            claim=face.claim,
        )

    def _numbered(self, kind: EventType, ts: str, **fields: Any) -> FaceEvent:
        """An event of this camera and run with the next ``seq``: the one place a number is given out."""
        return FaceEvent(
            device=self.device,
            camera=self.camera,
            run_id=self.run_id,
            seq=self._next(),
            ts=ts,
            type=kind,
            model=self.model,
            **fields,
        )
