"""Augmentation: one resampling that reduces to a plain resize, reproducible from (seed, epoch, step)."""

import numpy as np
import pytest

from export.augment import Augmentation, augment_batch, epoch_order, prepare_batch, train_dataset
from export.data import Split, class_weights
from tests.export.fer_fixtures import face_crop

pytestmark = pytest.mark.export


@pytest.fixture(scope="module")
def faces():
    return np.stack([face_crop(label, i) for label in range(7) for i in range(2)])[..., None]


@pytest.mark.parametrize("size", [48, 64])
def test_zero_augmentation_is_the_evaluation_resize(tf, faces, size):
    still = Augmentation(rotation_deg=0, shift=0, zoom=0, shear_deg=0, flip=False, brightness=0)
    seed = tf.constant([0, 0], tf.int64)
    out = augment_batch(tf.constant(faces), seed, size, still, 127.5, 127.5).numpy()
    ref = prepare_batch(tf.constant(faces), size, 127.5, 127.5).numpy()
    assert out.shape == (14, size, size, 1)
    assert np.max(np.abs(out - ref)) < 1e-3


def test_same_seed_same_batch_other_seed_other_batch(tf, faces):
    def run(step):
        return augment_batch(tf.constant(faces), tf.constant([3, step], tf.int64), 48, Augmentation(), 0.0, 1.0)

    a, b, c = run(1).numpy(), run(1).numpy(), run(2).numpy()
    assert np.array_equal(a, b)
    assert np.mean(np.abs(a - c)) > 5
    assert a.min() >= 0 and a.max() <= 255
    # A transformed face is still the same face: correlated with the original or with its mirror image.
    for out, face in zip(a, faces.astype(np.float32)):
        assert max(np.corrcoef(out.ravel(), f.ravel())[0, 1] for f in (face, face[:, ::-1])) > 0.4


def test_epoch_batches_follow_seed_and_epoch(tf, faces):
    split = Split(faces, np.repeat(np.arange(7), 2))
    weights = class_weights(split.counts(7), "balanced")

    def batches(epoch):
        ds = train_dataset(split, 7, weights, epoch=epoch, batch_size=4, seed=5, out_size=48, aug=Augmentation(),
                           mean=127.5, std=127.5)  # fmt: skip
        return [tuple(t.numpy() for t in batch) for batch in ds]

    first, again, other = batches(0), batches(0), batches(1)
    assert len(first) == 3  # 14 // 4, the partial batch dropped
    assert all(np.array_equal(x, y) for b1, b2 in zip(first, again) for x, y in zip(b1, b2))
    assert not np.array_equal(first[0][0], other[0][0])
    order = epoch_order(14, 5, 0)[:4]
    assert np.array_equal(first[0][1].argmax(axis=1), split.labels[order])
    assert first[0][0].shape == (4, 48, 48, 1) and first[0][2].shape == (4,)


def test_given_targets_follow_their_images_through_the_epoch_order(tf, faces):
    split = Split(faces, np.repeat(np.arange(7), 2))
    targets = np.random.default_rng(1).dirichlet(np.ones(7), size=14).astype(np.float32)
    kwargs = {"epoch": 2, "batch_size": 4, "seed": 5, "out_size": 48, "aug": Augmentation(), "mean": 0.0, "std": 1.0}
    ds = train_dataset(split, 7, np.ones(7), targets=targets, **kwargs)
    order = epoch_order(14, 5, 2)[:12]
    assert np.array_equal(np.concatenate([y.numpy() for _, y, _ in ds]), targets[order])
    plain = next(iter(train_dataset(split, 7, np.ones(7), **kwargs)))
    assert np.array_equal(next(iter(ds))[0].numpy(), plain[0].numpy())  # the same images, other targets
    with pytest.raises(ValueError, match=r"targets have shape \(13, 7\), expected \(14, 7\)"):
        train_dataset(split, 7, np.ones(7), targets=targets[:13], **kwargs)
