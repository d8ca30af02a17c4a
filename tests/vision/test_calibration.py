"""Temperature scaling and calibration error on fixed inputs whose answers are known in closed form."""

from __future__ import annotations

import numpy as np
import pytest

from edge_fer.vision.calibration import (
    apply_temperature,
    cross_fit,
    draw_reliability,
    fit_temperature,
    nll,
    reliability,
)


def _overconfident(n: int = 4000, k: int = 7, true_temp: float = 2.5, seed: int = 1):
    """Samples drawn from a calibrated model, then reported sharpened by 1/true_temp: fitting must undo it."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 1.2, size=(n, k))
    calibrated = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    truth = np.array([rng.choice(k, p=row) for row in calibrated])
    sharpened = apply_temperature(calibrated, 1.0 / true_temp)
    return sharpened, calibrated, truth


def test_temperature_keeps_the_ranking_and_sums_to_one():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]], dtype=np.float32)
    for t in (0.3, 1.0, 4.0):
        out = apply_temperature(probs, t)
        assert np.allclose(out.sum(axis=1), 1.0, atol=1e-6)
        assert (out.argmax(axis=1) == probs.argmax(axis=1)).all()
    assert np.allclose(apply_temperature(probs, 1.0), probs, atol=1e-6)
    assert apply_temperature(probs, 4.0).max() < probs.max() < apply_temperature(probs, 0.3).max()


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_temperature_must_be_positive_and_finite(bad):
    with pytest.raises(ValueError, match="temperature"):
        apply_temperature(np.array([[0.5, 0.5]]), bad)


def test_fit_recovers_the_temperature_that_made_a_model_overconfident():
    sharpened, _, truth = _overconfident()
    t = fit_temperature(sharpened, truth)
    assert t == pytest.approx(2.5, rel=0.15)
    assert nll(apply_temperature(sharpened, t), truth) < nll(sharpened, truth)


def test_ece_is_small_when_calibrated_and_large_when_not():
    sharpened, calibrated, truth = _overconfident()
    assert reliability(calibrated, truth).ece < 0.03
    assert reliability(sharpened, truth).ece > 0.1


def test_reliability_bins_by_hand():
    probs = np.array([[0.95, 0.05], [0.95, 0.05], [0.55, 0.45], [0.55, 0.45]])
    truth = np.array([0, 1, 0, 0])
    rel = reliability(probs, truth, bins=10)
    assert rel.counts.sum() == 4 and rel.counts[9] == 2 and rel.counts[5] == 2
    assert rel.accuracy[9] == pytest.approx(0.5) and rel.accuracy[5] == pytest.approx(1.0)
    # two bins, half the samples each: |0.5 - 0.95| and |1.0 - 0.55|
    assert rel.ece == pytest.approx(0.45)
    assert rel.max_gap == pytest.approx(0.45)


def test_cross_fit_calibrates_every_sample_on_folds_that_did_not_see_it():
    sharpened, _, truth = _overconfident(n=3000)
    temps, out = cross_fit(sharpened, truth, folds=2)
    assert len(temps) == 2 and all(t == pytest.approx(2.5, rel=0.2) for t in temps)
    assert reliability(out, truth).ece < 0.03 < reliability(sharpened, truth).ece
    assert (out.argmax(axis=1) == sharpened.argmax(axis=1)).all()


def test_reliability_diagram_is_an_image():
    sharpened, _, truth = _overconfident(n=500)
    image = draw_reliability(reliability(sharpened, truth), "test")
    assert image.ndim == 3 and image.dtype == np.uint8 and (image < 255).any()
