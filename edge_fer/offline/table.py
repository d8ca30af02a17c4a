"""The per-frame table and the per-track summary of a video analysis.

One row per face per processed frame: the raw classifier output of that face on that frame, and the
smoothed emotion its track published at that moment, so a reader can see both what the model said and
what the daemon would have reported. ``track_id`` is 0 for a face that is not (yet) part of a confirmed
track, as in the daemon's ``every_frame`` events. Rows are written as they come and flushed per frame:
a run that stops early (a cut file, Ctrl-C, a crash) leaves every row of the frames it finished.

``quality`` (0..1, how fit the face was to judge) and ``claim`` (false: edge-fer abstains on this face,
the emotion columns are the classifier's output for reference) are the analyzer's, as in ``analyze --json``
and the daemon's events.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from edge_fer.tracking.tracker import TrackState, TrackUpdate
from edge_fer.vision.types import EMOTIONS, Face

BASE_COLUMNS = ("time_s", "frame", "track_id", "x", "y", "w", "h", "det_score", "emotion", "confidence")
SMOOTHED_COLUMNS = ("smoothed_emotion", "smoothed_confidence")
FACE_COLUMNS = ("quality", "claim")


def columns() -> tuple[str, ...]:
    return (*BASE_COLUMNS, *EMOTIONS, *SMOOTHED_COLUMNS, *FACE_COLUMNS)


def frame_rows(t: float, faces: Sequence[Face], update: TrackUpdate) -> list[dict]:
    """The rows of one processed frame, in the analyzer's face order."""
    tracks = {state.track_id: state for state in update.present}
    ids = update.face_track_ids or (None,) * len(faces)
    rows = []
    for face, track_id in zip(faces, ids):
        state = tracks.get(track_id) if track_id is not None else None
        emotion, box = face.emotion, face.box
        row = {
            "time_s": round(t, 3),
            "frame": update.frame_index,
            "track_id": track_id or 0,
            "x": round(box.x, 1),
            "y": round(box.y, 1),
            "w": round(box.w, 1),
            "h": round(box.h, 1),
            "det_score": round(float(face.detection.score), 4),
            "emotion": emotion.label,
            "confidence": round(float(emotion.confidence), 4),
        }
        for label in EMOTIONS:
            row[label] = round(float(emotion.scores.get(label, 0.0)), 4)
        row["smoothed_emotion"] = state.emotion if state else None  # an empty cell in the CSV
        row["smoothed_confidence"] = round(float(state.confidence), 4) if state else None
        quality = face.quality_score
        row["quality"] = None if quality is None else round(float(quality), 3)
        row["claim"] = bool(face.claim)
        rows.append(row)
    return rows


class FrameTable:
    """Writes rows to a CSV file, a JSON-lines file, or both; either path may be None."""

    def __init__(self, csv_path: Path | None, jsonl_path: Path | None) -> None:
        self.columns = columns()
        self.rows = 0
        self._files: list[IO[str]] = []
        self._csv = self._jsonl = None
        if csv_path is not None:
            f = _open(csv_path)
            self._files.append(f)
            self._csv = csv.DictWriter(f, fieldnames=self.columns, lineterminator="\n")
            self._csv.writeheader()
        if jsonl_path is not None:
            self._jsonl = _open(jsonl_path)
            self._files.append(self._jsonl)

    def write(self, rows: list[dict]) -> None:
        for row in rows:
            if self._csv is not None:
                self._csv.writerow(row)
            if self._jsonl is not None:
                self._jsonl.write(json.dumps(row, separators=(",", ":")) + "\n")
        self.rows += len(rows)
        for f in self._files:
            f.flush()

    def close(self) -> None:
        for f in self._files:
            f.close()


def _open(path: Path) -> IO[str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    return open(path, "w", encoding="utf-8", newline="")


@dataclass(slots=True)
class TrackSummary:
    """One track from its first to its last sighting. ``shares``: fraction of its time under each published
    emotion (the tracker's own account, the one behind the daemon's ``dominant_emotion``)."""

    track_id: int
    first_s: float
    last_s: float
    faces: int
    dominant: str
    shares: dict[str, float]

    @property
    def duration_s(self) -> float:
        return max(0.0, self.last_s - self.first_s)

    def to_dict(self) -> dict:
        return {
            "track_id": self.track_id,
            "first_s": round(self.first_s, 3),
            "last_s": round(self.last_s, 3),
            "duration_s": round(self.duration_s, 3),
            "faces": self.faces,
            "dominant_emotion": self.dominant,
            **{f"share_{label}": round(self.shares.get(label, 0.0), 4) for label in EMOTIONS},
        }

    @classmethod
    def of(cls, state: TrackState, faces: int) -> TrackSummary:
        total = sum(state.emotion_seconds.values())
        if total > 0:
            shares = {label: secs / total for label, secs in state.emotion_seconds.items()}
        else:
            shares = {state.emotion: 1.0}
        return cls(state.track_id, state.first_seen, state.last_seen, faces, state.dominant_emotion, shares)


@dataclass(slots=True)
class TrackLog:
    """What the timeline and the summary need, kept small: each track's published emotion as runs of one
    label (a new run only when the label changes or the track was out of sight), not one entry per frame."""

    gap_s: float  # a track unseen for longer than this shows a hole in its band
    runs: dict[int, list[list]] = field(default_factory=dict)  # track id -> [[label, t0, t1], ...]
    faces: dict[int, int] = field(default_factory=dict)  # track id -> rows
    summaries: list[TrackSummary] = field(default_factory=list)
    untracked_faces: int = 0

    def add(self, t: float, update: TrackUpdate) -> None:
        self.untracked_faces += sum(1 for i in update.face_track_ids if i is None)
        for state in update.present:
            self.faces[state.track_id] = self.faces.get(state.track_id, 0) + 1
            runs = self.runs.setdefault(state.track_id, [])
            last = runs[-1] if runs else None
            if last is not None and last[0] == state.emotion and t - last[2] <= self.gap_s:
                last[2] = t
            else:
                if last is not None and t - last[2] <= self.gap_s:
                    last[2] = t  # the old label held until now
                runs.append([state.emotion, t, t])
        for state in update.ended:
            self.summaries.append(TrackSummary.of(state, self.faces.get(state.track_id, 0)))

    def distribution(self) -> dict[str, float]:
        """Seconds of face time under each emotion over the whole video, all tracks together."""
        seconds = dict.fromkeys(EMOTIONS, 0.0)
        for summary in self.summaries:
            for label, share in summary.shares.items():
                seconds[label] = seconds.get(label, 0.0) + share * summary.duration_s
        return seconds

    def write_summary(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8", newline="") as f:
            names = list(TrackSummary(0, 0, 0, 0, "", {}).to_dict())
            writer = csv.DictWriter(f, fieldnames=names, lineterminator="\n")
            writer.writeheader()
            for summary in sorted(self.summaries, key=lambda s: s.track_id):
                writer.writerow(summary.to_dict())
