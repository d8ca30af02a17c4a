"""Distillation targets: the teacher is the runtime's own ensemble, and its targets are computed once a run."""

from __future__ import annotations

import numpy as np
import pytest

from export.data import Split
from export.distill import TARGETS, cached_teacher_probabilities, mixed_targets, soften, teacher_probabilities
from tests.export.fer_fixtures import face_crop

LABELS = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")


@pytest.fixture
def split() -> Split:
    images = np.stack([face_crop(label, i) for label in range(7) for i in range(2)])[..., None]
    return Split(images, np.repeat(np.arange(7), 2))


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0, 4.0])
def test_soften_keeps_each_rows_top_label_and_sums_to_one(temperature):
    probs = np.random.default_rng(0).dirichlet(np.ones(7) * 0.3, size=50).astype(np.float32)
    out = soften(probs, temperature)
    assert np.allclose(out.sum(axis=1), 1, atol=1e-5)
    assert (out.argmax(axis=1) == probs.argmax(axis=1)).all()
    flatter = out.max(axis=1) <= probs.max(axis=1) + 1e-6
    assert flatter.all() if temperature >= 1 else not flatter.all()
    if temperature == 1.0:
        assert np.allclose(out, probs, atol=1e-6)


def test_soften_refuses_a_temperature_that_is_not_positive():
    with pytest.raises(ValueError, match="temperature must be positive"):
        soften(np.full((1, 7), 1 / 7), 0.0)


def test_mixed_targets_are_the_stated_mix_of_labels_and_teacher():
    soft = np.full((3, 7), 1 / 7, np.float32)
    labels = np.array([0, 3, 6])
    assert np.array_equal(mixed_targets(labels, soft, 0.0), np.eye(7, dtype=np.float32)[labels])
    assert np.allclose(mixed_targets(labels, soft, 1.0), soft)
    mixed = mixed_targets(labels, soft, 0.7)
    assert np.allclose(mixed.sum(axis=1), 1) and np.isclose(mixed[1, 3], 0.3 + 0.1)
    with pytest.raises(ValueError, match="2 teacher rows for 3 images"):
        mixed_targets(labels, soft[:2], 0.5)
    with pytest.raises(ValueError, match=r"teacher weight must be in \[0, 1\]"):
        mixed_targets(labels, soft, 1.2)


def test_teacher_probabilities_are_what_the_runtime_ensemble_says(split):
    from edge_fer.vision.emotion import EmotionClassifier

    probs = teacher_probabilities(("compact", "mini_xception"), split, LABELS, flip=True)
    runtime = EmotionClassifier(["compact", "mini_xception"], flip=True)
    expected = runtime.predict(list(split.images[..., 0]))[:, [runtime.labels.index(n) for n in LABELS]]
    assert probs.shape == (14, 7) and np.allclose(probs, expected, atol=1e-5)
    assert np.allclose(probs.sum(axis=1), 1, atol=1e-5)


def test_a_label_subset_takes_the_teachers_columns_renormalised(split):
    labels = ("happy", "neutral", "sad")
    three = Split(split.images[6:12], np.array([0, 0, 1, 1, 2, 2]))
    probs = teacher_probabilities(("compact",), three, labels, flip=False)
    full = teacher_probabilities(("compact",), Split(split.images[6:12], np.zeros(6, int)), LABELS, flip=False)
    columns = full[:, [LABELS.index(n) for n in labels]]
    assert np.allclose(probs, columns / columns.sum(axis=1, keepdims=True), atol=1e-5)


def test_a_label_the_teacher_lacks_is_refused_by_name(split):
    with pytest.raises(ValueError, match="teacher compact_fer has no contempt label"):
        teacher_probabilities(("compact",), split, ("contempt", "happy"), flip=False)


def test_targets_are_computed_once_per_run_and_again_for_another_teacher(tmp_path, split, monkeypatch, capsys):
    import export.distill as distill

    first = cached_teacher_probabilities(tmp_path, ("compact",), split, LABELS, flip=True)
    assert (tmp_path / TARGETS).is_file() and "teacher compact (flip): agrees with" in capsys.readouterr().out
    real = distill.teacher_probabilities
    calls = []
    monkeypatch.setattr(distill, "teacher_probabilities", lambda *a: calls.append(a) or real(*a))
    assert np.array_equal(cached_teacher_probabilities(tmp_path, ("compact",), split, LABELS, flip=True), first)
    assert calls == []  # read back, not recomputed
    other = cached_teacher_probabilities(tmp_path, ("mini_xception",), split, LABELS, flip=True)
    assert len(calls) == 1 and not np.allclose(other, first)
    changed = Split(split.images[::-1].copy(), split.labels)
    cached_teacher_probabilities(tmp_path, ("mini_xception",), changed, LABELS, flip=True)
    assert len(calls) == 2  # other images: the saved targets no longer belong to them
