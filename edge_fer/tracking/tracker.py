"""Per-camera face tracks: stable ids, smoothed emotions and a published label that does not flicker.

Matching is an optimal assignment (Hungarian method on the small track x detection cost matrix) rather
than greedy: with two faces close together greedy can take the one good pair that forces the other face
onto the wrong track, and the optimum costs nothing at these sizes (a handful of faces). A pair is allowed
when the detection overlaps the track's *predicted* box (constant-velocity prediction from the last two
sightings) by at least ``iou_threshold``, or, for motion too fast to overlap at all, when its centre lies
within ``max_center_distance`` face sizes of the prediction and the sizes agree within 2x. Overlap pairs
always cost less than distance pairs.

All times are ``t_mono`` of the frames, in seconds, so ages, smoothing and hysteresis mean the same
thing at 5 fps, at 30 fps and with frames skipped.

The smoothed probabilities are a quality-weighted moving average: each face's vote counts in proportion to its
quality (:mod:`edge_fer.vision.quality`), so a few sharp frontal frames outweigh many dim profile ones, and
with equal qualities it is the plain exponential average of ``smoothing_tau``. The track's ``quality`` is the
plain moving average of its faces' qualities; a track *claims* (its events carry ``claim: true``) while that
quality and its smoothed confidence pass the ``classifier.claim`` rule, and its published emotion changes only
while it claims, so a track seen only in poor frames starts and ends but never says ``change``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from edge_fer.config.settings import TrackingSettings
from edge_fer.tracking.assignment import linear_assignment
from edge_fer.vision.quality import ClaimRule
from edge_fer.vision.types import Box, Emotion, Face

_INFEASIBLE = 1e6
# The least weight a face's vote gets: a track seen only in poor frames still has scores to show, and
# one good frame outweighs them.
MIN_VOTE_WEIGHT = 0.02


@dataclass(frozen=True, slots=True)
class TrackState:
    """An immutable picture of one confirmed track, safe to hand to other threads."""

    track_id: int
    box: Box
    det_score: float
    landmarks: np.ndarray | None
    raw: Emotion  # the classifier's output on the last detection, unsmoothed
    emotion: str  # the published label
    confidence: float  # smoothed probability of the published label
    scores: Mapping[str, float]  # smoothed probabilities, model label order
    first_seen: float
    last_seen: float
    hits: int
    frame_index: int  # frame of the last detection
    emotion_seconds: Mapping[str, float]  # time spent under each published label
    quality: float | None = None  # moving average of the faces' quality; None when none was measured
    claim: bool = True  # whether edge-fer stands by ``emotion`` (see the module docstring)

    @property
    def duration(self) -> float:
        return self.last_seen - self.first_seen

    @property
    def dominant_emotion(self) -> str:
        """The published label that held longest; the current one when no time has passed yet."""
        best = max(self.emotion_seconds.values(), default=0.0)
        if best <= 0.0:
            return self.emotion
        return next(label for label, secs in self.emotion_seconds.items() if secs == best)


@dataclass(frozen=True, slots=True)
class TrackUpdate:
    """What one processed frame did to the tracks. ``present`` holds every confirmed track detected on this
    frame (including ``started`` and ``changed``); coasting tracks are in none of the lists.
    ``face_track_ids[i]`` is the confirmed track of input face ``i``, or None (ignored or not confirmed)."""

    t_mono: float
    frame_index: int
    started: tuple[TrackState, ...] = ()
    present: tuple[TrackState, ...] = ()
    changed: tuple[TrackState, ...] = ()
    ended: tuple[TrackState, ...] = ()
    face_track_ids: tuple[int | None, ...] = ()


def _score_vector(emotion: Emotion, labels: tuple[str, ...]) -> np.ndarray:
    scores = emotion.scores or {emotion.label: emotion.confidence}
    return np.array([float(scores.get(label, 0.0)) for label in labels], dtype=np.float64)


def _vote_weight(face: Face) -> float:
    quality = face.quality_score
    return 1.0 if quality is None else max(quality, MIN_VOTE_WEIGHT)


@dataclass(slots=True, eq=False)
class _Track:
    labels: tuple[str, ...]
    box: Box
    det_score: float
    landmarks: np.ndarray | None
    raw: Emotion
    first_seen: float
    last_seen: float
    frame_index: int
    votes: np.ndarray  # moving average of weight x scores
    weight: float  # moving average of the weights: smoothed = votes / weight
    quality: float | None
    published: int
    seconds: np.ndarray
    hits: int = 1
    track_id: int | None = None  # assigned on confirmation
    velocity: tuple[float, float] = (0.0, 0.0)
    pending: int | None = None
    pending_since: float = 0.0

    def predicted(self, t: float, horizon: float) -> Box:
        dt = min(max(t - self.last_seen, 0.0), horizon)
        return Box(self.box.x + self.velocity[0] * dt, self.box.y + self.velocity[1] * dt, self.box.w, self.box.h)

    @property
    def smoothed(self) -> np.ndarray:
        return self.votes / self.weight

    def claims(self, rule: ClaimRule) -> bool:
        return rule.allows(self.quality, float(self.smoothed[self.published]))

    def observe(self, face: Face, t: float, frame_index: int, cfg: TrackingSettings, rule: ClaimRule) -> bool:
        """Take a new detection; True when the published label changed (confirmed tracks only)."""
        dt = max(t - self.last_seen, 0.0)
        self.seconds[self.published] += dt
        if dt > 0:
            (cx0, cy0), (cx1, cy1) = self.box.center, face.box.center
            inst = ((cx1 - cx0) / dt, (cy1 - cy0) / dt)
            self.velocity = inst if self.hits == 1 else tuple(0.5 * a + 0.5 * b for a, b in zip(self.velocity, inst))
        alpha = 1.0 if cfg.smoothing_tau == 0 else 1.0 - math.exp(-dt / cfg.smoothing_tau)
        w = _vote_weight(face)
        self.votes += alpha * (w * _score_vector(face.emotion, self.labels) - self.votes)
        self.weight += alpha * (w - self.weight)
        quality = face.quality_score
        if quality is not None:
            self.quality = quality if self.quality is None else self.quality + alpha * (quality - self.quality)
        self.box, self.det_score, self.landmarks = face.box, float(face.detection.score), face.detection.landmarks
        self.raw, self.last_seen, self.frame_index = face.emotion, t, frame_index
        self.hits += 1
        if self.track_id is None:  # nothing said yet, so nothing can flicker: follow the smoothed argmax
            self.published = int(np.argmax(self.smoothed))
            return False
        return self._hysteresis(t, cfg, rule)

    def _hysteresis(self, t: float, cfg: TrackingSettings, rule: ClaimRule) -> bool:
        if not rule.allows(self.quality, 0.0):  # too poor to judge: hold what was said, start no change
            self.pending = None
            return False
        others = self.smoothed.copy()
        others[self.published] = -np.inf
        challenger = int(np.argmax(others))
        if self.smoothed[challenger] - self.smoothed[self.published] <= cfg.hysteresis_margin:
            self.pending = None
            return False
        if self.pending != challenger:
            self.pending, self.pending_since = challenger, t
        if t - self.pending_since < cfg.min_change_duration:
            return False
        self.published, self.pending = challenger, None
        return True

    def state(self, rule: ClaimRule) -> TrackState:
        assert self.track_id is not None
        smoothed = self.smoothed
        return TrackState(
            track_id=self.track_id,
            box=self.box,
            det_score=self.det_score,
            landmarks=self.landmarks,
            raw=self.raw,
            emotion=self.labels[self.published],
            confidence=float(smoothed[self.published]),
            scores={label: float(p) for label, p in zip(self.labels, smoothed)},
            first_seen=self.first_seen,
            last_seen=self.last_seen,
            hits=self.hits,
            frame_index=self.frame_index,
            emotion_seconds={label: float(s) for label, s in zip(self.labels, self.seconds)},
            quality=self.quality,
            claim=self.claims(rule),
        )


class Tracker:
    """Tracks for one camera. Call :meth:`update` on every processed frame, with or without faces.

    Takes the ``tracking:`` settings model as it is (:class:`~edge_fer.config.settings.TrackingSettings`)
    and the ``classifier.claim`` rule; every face passed in is tracked: the analyzer applies
    ``detector.min_face_size`` and ``min_score``.
    """

    def __init__(self, config: TrackingSettings | None = None, claim: ClaimRule | None = None) -> None:
        self.config = config or TrackingSettings()
        self.claim = claim or ClaimRule()
        self._tracks: list[_Track] = []
        self._next_id = 1  # public ids: 1, 2, 3... in order of confirmation, unique for this run

    @property
    def active(self) -> tuple[TrackState, ...]:
        """Confirmed tracks still alive (present or coasting)."""
        return tuple(t.state(self.claim) for t in self._tracks if t.track_id is not None)

    def _pair_cost(self, predicted: Box, box: Box) -> float:
        iou = predicted.iou(box)
        if iou >= self.config.iou_threshold:
            return 1.0 - iou
        size_a, size_b = math.sqrt(predicted.area), math.sqrt(box.area)
        if min(size_a, size_b) <= 0 or max(size_a, size_b) > 2.0 * min(size_a, size_b):
            return _INFEASIBLE
        (ax, ay), (bx, by) = predicted.center, box.center
        distance = math.hypot(ax - bx, ay - by) / max(size_a, size_b)
        return 1.0 + distance if distance <= self.config.max_center_distance else _INFEASIBLE

    def update(self, faces: Sequence[Face], t_mono: float, frame_index: int) -> TrackUpdate:
        cfg = self.config
        ended = [t for t in self._tracks if t_mono - t.last_seen > cfg.max_age]
        self._tracks = [t for t in self._tracks if t not in ended]
        candidates = list(range(len(faces)))  # the analyzer already dropped faces too small or unsure
        predicted = [t.predicted(t_mono, cfg.max_age) for t in self._tracks]
        cost = np.array([[self._pair_cost(p, faces[i].box) for i in candidates] for p in predicted])
        cost = cost.reshape(len(self._tracks), len(candidates))
        pairs = [(r, c) for r, c in linear_assignment(cost) if cost[r, c] < _INFEASIBLE]
        matched_tracks = {r for r, _ in pairs}
        started, changed, seen = [], [], []
        face_ids: list[int | None] = [None] * len(faces)
        for r, c in pairs:
            track, face_index = self._tracks[r], candidates[c]
            if track.observe(faces[face_index], t_mono, frame_index, cfg, self.claim):
                changed.append(track)
            seen.append((track, face_index))
        # tentative tracks must be seen on consecutive processed frames: a miss ends them silently
        self._tracks = [t for r, t in enumerate(self._tracks) if r in matched_tracks or t.track_id is not None]
        matched_faces = {c for _, c in pairs}
        for c, face_index in enumerate(candidates):
            if c not in matched_faces:
                track = self._new_track(faces[face_index], t_mono, frame_index)
                self._tracks.append(track)
                seen.append((track, face_index))
        for track, face_index in seen:
            if track.track_id is None and track.hits >= cfg.min_hits:
                track.track_id = self._next_id
                self._next_id += 1
                started.append(track)
            face_ids[face_index] = track.track_id
        present = sorted((t for t, _ in seen if t.track_id is not None), key=lambda t: t.track_id)
        return TrackUpdate(
            t_mono=t_mono,
            frame_index=frame_index,
            started=tuple(t.state(self.claim) for t in started),
            present=tuple(t.state(self.claim) for t in present),
            changed=tuple(t.state(self.claim) for t in changed),
            ended=tuple(t.state(self.claim) for t in ended if t.track_id is not None),
            face_track_ids=tuple(face_ids),
        )

    def _new_track(self, face: Face, t: float, frame_index: int) -> _Track:
        emotion = face.emotion
        labels = tuple(emotion.scores) or (emotion.label,)
        smoothed = _score_vector(emotion, labels)
        w = _vote_weight(face)
        return _Track(
            labels=labels,
            box=face.box,
            det_score=float(face.detection.score),
            landmarks=face.detection.landmarks,
            raw=emotion,
            first_seen=t,
            last_seen=t,
            frame_index=frame_index,
            votes=w * smoothed,
            weight=w,
            quality=face.quality_score,
            published=int(np.argmax(smoothed)),
            seconds=np.zeros(len(labels)),
        )

    def flush(self, t_mono: float, frame_index: int | None = None) -> TrackUpdate:
        """End every track (shutdown). The update's ``ended`` holds the confirmed ones."""
        ended = tuple(t.state(self.claim) for t in self._tracks if t.track_id is not None)
        last = max((t.frame_index for t in self._tracks), default=0)
        self._tracks = []
        return TrackUpdate(t_mono=t_mono, frame_index=last if frame_index is None else frame_index, ended=ended)
