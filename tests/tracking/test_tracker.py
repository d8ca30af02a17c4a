"""Tracker: stable ids through motion, silence for false detections, ageing, smoothing and hysteresis."""

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_fer.config.settings import TrackingSettings
from edge_fer.tracking.tracker import Tracker
from edge_fer.vision.quality import ClaimRule
from edge_fer.vision.types import Box
from tests import factories

FPS = 15.0


def run(tracker, frames, fps=FPS, start=100.0):
    """Feed lists of faces at ``fps``; returns the updates."""
    return [tracker.update(faces, start + i / fps, i) for i, faces in enumerate(frames)]


def test_face_moving_smoothly_keeps_one_id_for_100_frames():
    frames = [[factories.face((20 + 3 * i, 60 + math.sin(i / 10) * 20, 80, 96))] for i in range(100)]
    updates = run(Tracker(), frames)
    ids = {u.face_track_ids[0] for u in updates[2:]}
    assert ids == {1}
    assert [u.face_track_ids[0] for u in updates[:2]] == [None, None]  # not confirmed before min_hits
    assert sum(len(u.started) for u in updates) == 1 and updates[2].started[0].track_id == 1
    assert not any(u.ended for u in updates)
    assert all(len(u.present) == 1 for u in updates[2:])


def crossing_frames(n=36, shuffle_seed=1):
    """Faces A (left to right) and B (right to left) crossing at the same height; list order shuffled."""
    rng = random.Random(shuffle_seed)
    frames, truth = [], []
    for i in range(n):
        a = factories.face((40 + 12 * i, 100, 80, 96), "happy")
        b = factories.face((460 - 12 * i, 106, 80, 96), "sad")
        pair = [("A", a), ("B", b)]
        rng.shuffle(pair)
        truth.append([name for name, _ in pair])
        frames.append([f for _, f in pair])
    return frames, truth


def test_crossing_faces_keep_their_ids():
    # 12 px per frame each way: right after the crossing each track's last box sits exactly on the *other*
    # face, so plain IoU swaps the ids; the constant-velocity prediction is what keeps them.
    frames, truth = crossing_frames()
    updates = run(Tracker(), frames)
    ids = {"A": set(), "B": set()}
    for update, names in zip(updates[2:], truth[2:]):
        for name, track_id in zip(names, update.face_track_ids):
            ids[name].add(track_id)
    assert len(ids["A"]) == 1 and len(ids["B"]) == 1 and ids["A"] != ids["B"], ids
    assert sum(len(u.started) for u in updates) == 2


def test_parallel_faces_moving_together_keep_their_ids():
    frames = [
        [factories.face((30 + 12 * i, 100, 80, 96)), factories.face((130 + 12 * i, 104, 80, 96))][:: (-1) ** i]
        for i in range(40)
    ]
    updates = run(Tracker(), frames)
    left = {u.face_track_ids[0 if i % 2 == 0 else 1] for i, u in enumerate(updates) if i >= 2}
    right = {u.face_track_ids[1 if i % 2 == 0 else 0] for i, u in enumerate(updates) if i >= 2}
    assert left == {1} and right == {2}


def test_fast_motion_without_overlap_is_matched_by_centre_distance():
    # 60 px per frame on an 80 px face: IoU 0.14 on the second frame, below the 0.3 threshold
    frames = [[factories.face((10 + 60 * i, 100, 80, 96))] for i in range(8)]
    assert {u.face_track_ids[0] for u in run(Tracker(), frames)[2:]} == {1}
    # the fallback is what holds it: without it every frame starts a new tentative track
    no_fallback = Tracker(TrackingSettings(max_center_distance=0.0))
    assert all(not u.started for u in run(no_fallback, frames))


def test_single_frame_false_detection_emits_nothing():
    tracker = Tracker()
    frames = [[], [factories.face((300, 300, 40, 40))], [], [], []]
    updates = [*run(tracker, frames), tracker.update([], 200.0, 99)]
    assert not any(u.started or u.present or u.changed or u.ended for u in updates)
    assert updates[1].face_track_ids == (None,)
    assert tracker.flush(201.0).ended == ()


def test_every_face_given_is_tracked_small_and_weak_ones_are_the_analyzers_to_drop():
    # The size and score floors are detector.min_face_size and detector.min_score, applied once by the
    # analyzer for analyze and the daemon; the tracker tracks what it is given.
    tracker = Tracker(TrackingSettings(min_hits=1))
    update = tracker.update(
        [factories.face((0, 0, 20, 60)), factories.face((100, 0, 60, 60), score=0.8), factories.face((300, 0, 60, 60))],
        1.0,
        0,
    )
    assert update.face_track_ids == (1, 2, 3)


def test_track_ends_after_max_age_in_seconds_at_any_frame_rate():
    for fps in (30.0, 2.0):  # 2 fps: a detector that runs on every 15th frame of a 30 fps camera
        tracker = Tracker(TrackingSettings(max_age=1.0))
        seen = [[factories.face()] for _ in range(6)]
        updates = run(tracker, seen + [[]] * int(3 * fps), fps=fps)
        last_seen = 100.0 + 5 / fps
        ended_at = [u.t_mono for u in updates if u.ended]
        assert len(ended_at) == 1
        assert ended_at[0] - last_seen > 1.0 and ended_at[0] - last_seen <= 1.0 + 1 / fps + 1e-9
        assert not any(u.present for u in updates[6:])  # coasting tracks are not present


def test_coasting_track_comes_back_with_its_id():
    frames = [[factories.face((100 + 2 * i, 100, 80, 96))] if i not in (10, 11, 12) else [] for i in range(20)]
    updates = run(Tracker(), frames)
    assert {u.face_track_ids[0] for u in updates[2:] if u.face_track_ids} == {1}
    assert [len(u.present) for u in updates[10:14]] == [0, 0, 0, 1]


def test_ids_count_up_and_are_never_reused():
    tracker = Tracker(TrackingSettings(max_age=0.5))
    frames = [[factories.face()]] * 5 + [[]] * 10 + [[factories.face()]] * 5
    updates = run(tracker, frames)
    starts = [s.track_id for u in updates for s in u.started]
    assert starts == [1, 2]
    assert [e.track_id for u in updates for e in u.ended] == [1]
    assert [e.track_id for e in tracker.flush(1000.0).ended] == [2]


def test_alternating_noisy_probabilities_do_not_flip_the_published_emotion():
    noisy = [
        factories.face(probs={"happy": 0.45, "neutral": 0.40} if i % 2 == 0 else {"happy": 0.40, "neutral": 0.45})
        for i in range(200)
    ]
    for tau in (0.0, 0.5):  # even unsmoothed, the 0.05 swings stay inside the 0.1 margin
        updates = run(Tracker(TrackingSettings(smoothing_tau=tau)), [[f] for f in noisy])
        assert not any(u.changed for u in updates)
        assert {u.present[0].emotion for u in updates[2:]} == {"happy"}
        # without hysteresis the raw argmax flips every frame: the test data does what it claims
        assert len({u.present[0].raw.label for u in updates[2:4]}) == 2


def test_sustained_change_changes_the_published_emotion_once():
    config = TrackingSettings(smoothing_tau=0.5, hysteresis_margin=0.1, min_change_duration=0.3)
    frames = [[factories.face(label="happy", confidence=0.8)]] * 30 + [
        [factories.face(label="sad", confidence=0.8)]
    ] * 60
    updates = run(Tracker(config), frames)
    changes = [(i, c) for i, u in enumerate(updates) for c in u.changed]
    assert len(changes) == 1
    index, state = changes[0]
    assert state.emotion == "sad" and state.scores["sad"] > state.scores["happy"] + 0.1
    # the smoothed margin is crossed some frames after the switch, then must hold for 0.3 s
    margins = [u.present[0].scores["sad"] - u.present[0].scores["happy"] if u.present else 0.0 for u in updates]
    first_exceeding = next(i for i, m in enumerate(margins) if m > 0.1)
    assert index > first_exceeding and (index - first_exceeding) / FPS == pytest.approx(0.3, abs=1 / FPS + 1e-9)
    assert {u.present[0].emotion for u in updates[index:]} == {"sad"}


def test_brief_spike_shorter_than_min_change_duration_is_ignored():
    config = TrackingSettings(smoothing_tau=0.0, min_change_duration=0.5)
    labels = ["happy"] * 10 + ["surprise"] * 5 + ["happy"] * 10  # 5 frames = 0.33 s at 15 fps
    updates = run(Tracker(config), [[factories.face(label=lab, confidence=0.9)] for lab in labels])
    assert not any(u.changed for u in updates)


def test_smoothing_is_an_exponential_moving_average_in_time():
    tracker = Tracker(TrackingSettings(min_hits=1, smoothing_tau=0.5))
    tracker.update([factories.face(label="happy", confidence=0.9)], 10.0, 0)
    state = tracker.update([factories.face(label="sad", confidence=0.9)], 10.2, 1).present[0]
    alpha = 1 - math.exp(-0.2 / 0.5)
    assert state.scores["sad"] == pytest.approx(0.9 * alpha + (0.1 / 6) * (1 - alpha))
    assert state.raw.label == "sad" and state.emotion == "happy"


def test_dominant_emotion_is_the_label_published_longest():
    config = TrackingSettings(smoothing_tau=0.0, min_change_duration=0.0, max_age=0.5)
    labels = ["neutral"] * 15 + ["happy"] * 46 + ["neutral"] * 15  # 1 s, 3 s, 1 s at 15 fps
    tracker = Tracker(config)
    updates = run(tracker, [[factories.face(label=lab, confidence=0.9)] for lab in labels] + [[]] * 10)
    (end,) = [e for u in updates for e in u.ended]
    assert end.emotion == "neutral" and end.dominant_emotion == "happy"
    assert end.emotion_seconds["happy"] == pytest.approx(46 / FPS, abs=1e-9)
    assert end.duration == pytest.approx(75 / FPS)
    assert sum(end.emotion_seconds.values()) == pytest.approx(end.duration)
    assert end.hits == 76


def test_flush_ends_confirmed_tracks_only():
    tracker = Tracker()
    run(tracker, [[factories.face((0, 0, 80, 80))]] * 4)
    tracker.update([factories.face((0, 0, 80, 80)), factories.face((300, 300, 80, 80))], 101.0, 4)
    flushed = tracker.flush(102.0)
    assert [s.track_id for s in flushed.ended] == [1] and flushed.frame_index == 4
    assert tracker.active == ()


def test_box_in_state_is_the_last_detection():
    tracker = Tracker(TrackingSettings(min_hits=1))
    tracker.update([factories.face((10, 10, 50, 50))], 0.0, 0)
    state = tracker.update([factories.face((14, 12, 50, 50), score=0.95)], 0.1, 7).present[0]
    assert state.box == Box(14, 12, 50, 50) and state.det_score == pytest.approx(0.95) and state.frame_index == 7


@pytest.mark.parametrize(
    "bad", [{"iou_threshold": 0}, {"min_hits": 0}, {"max_age": 0}, {"smoothing_tau": -1}, {"hysteresis_margin": 2}]
)
def test_bad_config_is_refused_naming_the_field(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        TrackingSettings(**bad)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(
            st.tuples(
                st.integers(0, 400), st.integers(0, 300), st.integers(10, 120), st.sampled_from(["happy", "sad"])
            ),
            max_size=4,
        ),
        max_size=40,
    ),
    st.floats(0.02, 0.6),
)
def test_track_bookkeeping_holds_for_any_sequence(frames, step):
    """Whatever the detector does: ids are unique, every started track ends exactly once, and the lists
    agree with each other."""
    tracker = Tracker(TrackingSettings(min_hits=2, max_age=0.5))
    started, ended = [], []
    for i, detections in enumerate(frames):
        faces = [factories.face((x, y, s, s), label, 0.9) for x, y, s, label in detections]
        update = tracker.update(faces, i * step, i)
        present = {s.track_id for s in update.present}
        assert len(update.face_track_ids) == len(faces)
        assert {t for t in update.face_track_ids if t is not None} == present
        assert len(present) == len(update.present)  # a track takes at most one face
        assert {s.track_id for s in (*update.started, *update.changed)} <= present
        assert not present & {s.track_id for s in update.ended}
        started += [s.track_id for s in update.started]
        ended += [s.track_id for s in update.ended]
    ended += [s.track_id for s in tracker.flush(len(frames) * step).ended]
    assert started == list(range(1, len(started) + 1))
    assert sorted(ended) == started


# Quality-weighted votes and abstention


def test_equal_qualities_give_the_plain_moving_average():
    plain, weighted = (Tracker(TrackingSettings(min_hits=1, smoothing_tau=0.5)) for _ in range(2))
    labels = ["happy", "sad", "sad", "happy", "surprise"]
    for i, lab in enumerate(labels):
        a = plain.update([factories.face(label=lab, confidence=0.9)], 10 + i / 5, i).present[0]
        b = weighted.update([factories.face(label=lab, confidence=0.9, quality=0.6)], 10 + i / 5, i).present[0]
    assert b.scores == pytest.approx(a.scores) and b.quality == pytest.approx(0.6)


def test_a_good_face_outweighs_poor_ones():
    """Ten dim-profile 'sad' frames then one sharp 'happy': by quality the happy vote leads at once."""

    def last(quality_poor, quality_good):
        tracker = Tracker(TrackingSettings(min_hits=1, smoothing_tau=0.5))
        for i in range(10):
            tracker.update([factories.face(label="sad", confidence=0.9, quality=quality_poor)], 10 + i / 15, i)
        happy = factories.face(label="happy", confidence=0.9, quality=quality_good)
        return tracker.update([happy], 10 + 10 / 15, 10).present[0]

    weighted = last(0.05, 0.9)
    assert weighted.scores["happy"] > weighted.scores["sad"]
    plain = last(None, None)
    assert plain.scores["sad"] > plain.scores["happy"]  # without qualities the ten votes win


def test_a_track_seen_only_in_poor_frames_never_changes_and_does_not_claim():
    config = TrackingSettings(smoothing_tau=0.2, min_change_duration=0.1)
    rule = ClaimRule(min_quality=0.2)
    frames = [[factories.face(label="happy", confidence=0.9, quality=0.1)]] * 10
    frames += [[factories.face(label="sad", confidence=0.9, quality=0.1)]] * 40
    updates = run(Tracker(config, rule), frames)
    assert not any(u.changed for u in updates)
    states = [s for u in updates for s in u.present]
    assert states and all(s.claim is False and s.quality == pytest.approx(0.1) for s in states)
    # the same faces in good frames do change, and claim
    good = [[factories.face(label=f[0].emotion.label, confidence=0.9, quality=0.8)] for f in frames]
    updates = run(Tracker(config, rule), good)
    assert sum(len(u.changed) for u in updates) == 1 and all(s.claim for u in updates for s in u.present)


def test_a_track_claims_again_when_its_faces_get_better():
    rule = ClaimRule(min_quality=0.3)
    frames = [[factories.face(quality=0.05)]] * 10 + [[factories.face(quality=0.9)]] * 30
    updates = run(Tracker(TrackingSettings(smoothing_tau=0.5), rule), frames)
    claims = [s.claim for u in updates for s in u.present]
    assert claims[0] is False and claims[-1] is True
    assert claims == sorted(claims)  # false, then true for good: no flapping on a steady improvement


def test_the_confidence_floor_applies_to_the_smoothed_confidence():
    rule = ClaimRule(min_confidence=0.6)
    sure = run(Tracker(TrackingSettings(), rule), [[factories.face(confidence=0.9, quality=0.9)]] * 5)
    unsure = run(Tracker(TrackingSettings(), rule), [[factories.face(confidence=0.4, quality=0.9)]] * 5)
    assert sure[-1].present[0].claim and not unsure[-1].present[0].claim


def test_faces_without_quality_count_fully_and_claim_on_confidence():
    updates = run(Tracker(TrackingSettings(), ClaimRule(min_quality=0.5)), [[factories.face()]] * 5)
    state = updates[-1].present[0]
    assert state.quality is None and state.claim is True
