"""Augmentation and tf.data pipelines, keyed by (seed, epoch, step) so a resumed run sees the same data.

Rotation, shift, zoom, shear and flip are composed into one affine map per image and applied with a
single bilinear resampling that also scales the stored 48 px faces to the model's input size: one
pass over the pixels instead of five, which matters with two CPU cores. Every random draw is
stateless, derived from the run seed and the global step, and the per-epoch order is a permutation
derived from (seed, epoch): resuming at epoch k reproduces exactly the batches an uninterrupted run
would have seen, with no random-generator state to save.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from export.data import Split


@dataclass(frozen=True)
class Augmentation:
    """Ranges of the random transforms (the report's Keras ImageDataGenerator set, plus brightness)."""

    rotation_deg: float = 15.0
    shift: float = 0.1  # fraction of the image size
    zoom: float = 0.1  # scale in [1 - zoom, 1 + zoom]
    shear_deg: float = 8.0
    flip: bool = True
    brightness: float = 0.2  # pixel factor in [1 - b, 1 + b]

    def __post_init__(self) -> None:
        for name in ("rotation_deg", "shift", "zoom", "shear_deg", "brightness"):
            if getattr(self, name) < 0:
                raise ValueError(f"augmentation {name} must not be negative")
        if self.zoom >= 1 or self.brightness >= 1 or self.shift >= 0.5:
            raise ValueError("augmentation zoom and brightness must be below 1, shift below 0.5")


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch, 15485863]).permutation(n)


def _affine_transforms(tf, draws, in_hw, out_hw, aug: Augmentation):
    """ImageProjectiveTransformV3 rows mapping output pixels to input pixels (pixel centres at integers)."""
    theta = draws[:, 0] * math.radians(aug.rotation_deg)
    inv_zoom = 1.0 / (1.0 + draws[:, 1] * aug.zoom)
    shear = tf.tan(draws[:, 2] * math.radians(aug.shear_deg))
    tx = draws[:, 3] * aug.shift
    ty = draws[:, 4] * aug.shift
    flip = tf.where(draws[:, 5] < 0, -1.0, 1.0) if aug.flip else tf.ones_like(theta)
    cos, sin = tf.cos(theta), tf.sin(theta)
    # In normalised coordinates (centre 0, edges at +-0.5): v_in = inv_zoom * R(theta) @ Shear @ Flip @ v_out + t
    m00 = inv_zoom * cos * flip
    m01 = inv_zoom * (cos * shear - sin)
    m10 = inv_zoom * sin * flip
    m11 = inv_zoom * (sin * shear + cos)
    h_in, w_in = (float(v) for v in in_hw)
    h_out, w_out = (float(v) for v in out_hw)
    cx, cy = 0.5 / w_out - 0.5, 0.5 / h_out - 0.5
    a0, a1 = w_in / w_out * m00, w_in / h_out * m01
    a2 = w_in * (m00 * cx + m01 * cy + tx + 0.5) - 0.5
    b0, b1 = h_in / w_out * m10, h_in / h_out * m11
    b2 = h_in * (m10 * cx + m11 * cy + ty + 0.5) - 0.5
    zeros = tf.zeros_like(a0)
    return tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)


def augment_batch(
    images, seed, out_size: int, aug: Augmentation, mean: float, std: float, camera=None, camera_share: float = 0.0
):
    """uint8 ``(B, H, W, C)`` -> normalised float32 ``(B, S, S, C)``, randomly transformed.

    ``seed`` is a shape-[2] integer tensor; the same seed gives the same batch. With ``camera_share``
    above 0, that share of the batch goes through ``camera`` (a ``CameraAugmentation``) instead; the
    other images are exactly what the plain recipe gives.
    """
    import tensorflow as tf

    x = tf.cast(images, tf.float32)
    batch = tf.shape(x)[0]
    draws = tf.random.stateless_uniform(tf.stack([batch, 7]), seed=seed, minval=-1.0, maxval=1.0)
    transforms = _affine_transforms(tf, draws, images.shape[1:3], (out_size, out_size), aug)
    x = tf.raw_ops.ImageProjectiveTransformV3(
        images=x,
        transforms=transforms,
        output_shape=tf.constant([out_size, out_size], tf.int32),
        fill_value=tf.constant(0.0),
        interpolation="BILINEAR",
        fill_mode="REFLECT",
    )
    x = x * (1.0 + draws[:, 6] * aug.brightness)[:, None, None, None]
    x = tf.clip_by_value(x, 0.0, 255.0)
    if camera_share > 0:
        from export.camera_augment import camera_batch, camera_mask

        # Only the chosen images go through the camera recipe (it costs ~4x the plain one per image).
        chosen = tf.where(camera_mask(tf, seed, batch, camera_share))

        def with_camera():
            return tf.tensor_scatter_nd_update(
                x, chosen, camera_batch(tf.gather_nd(images, chosen), seed, out_size, camera)
            )

        x = tf.cond(tf.size(chosen) > 0, with_camera, lambda: x)  # a small share of a small batch can be none
    return (x - mean) / std


def prepare_batch(images, out_size: int, mean: float, std: float):
    """The evaluation path: bilinear resize (half-pixel centres, as the augmentation's identity) and normalise."""
    import tensorflow as tf

    x = tf.cast(images, tf.float32)
    if tuple(images.shape[1:3]) != (out_size, out_size):
        x = tf.image.resize(x, (out_size, out_size), method="bilinear")
    return (x - mean) / std


def train_dataset(
    split: Split,
    classes: int,
    sample_weights: np.ndarray,
    *,
    epoch: int,
    batch_size: int,
    seed: int,
    out_size: int,
    aug: Augmentation,
    mean: float,
    std: float,
    camera=None,
    camera_share: float = 0.0,
    targets: np.ndarray | None = None,
):
    """One epoch of augmented ``(x, target, weight)`` batches; the last partial batch is dropped.

    The target is the label's one-hot row, or the row of ``targets`` (one per image of ``split``, e.g.
    a teacher's soft targets) when given; flips leave either unchanged, as a face's emotion.
    """
    import tensorflow as tf

    order = epoch_order(len(split), seed, epoch)
    steps = steps_per_epoch(len(split), batch_size)
    batch_size = min(batch_size, len(split))
    order = order[: steps * batch_size]
    labels = split.labels[order]
    if targets is not None and targets.shape != (len(split), classes):
        raise ValueError(f"targets have shape {targets.shape}, expected {(len(split), classes)}")
    y = np.eye(classes, dtype=np.float32)[labels] if targets is None else targets[order].astype(np.float32)
    weights = sample_weights[labels].astype(np.float32)
    ds = tf.data.Dataset.from_tensor_slices((split.images[order], y, weights))
    ds = ds.batch(batch_size, drop_remainder=True).enumerate()
    first = epoch * steps

    def _map(step, batch):
        x, y, w = batch
        step_seed = tf.stack([tf.constant(seed, tf.int64), tf.constant(first, tf.int64) + step])
        return augment_batch(x, step_seed, out_size, aug, mean, std, camera, camera_share), y, w

    return ds.map(_map, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def eval_dataset(split: Split, classes: int, *, batch_size: int, out_size: int, mean: float, std: float, flip=False):
    """Validation batches ``(x, one_hot)`` in file order; ``flip`` mirrors them (for flip averaging)."""
    import tensorflow as tf

    onehot = np.eye(classes, dtype=np.float32)[split.labels]
    ds = tf.data.Dataset.from_tensor_slices((split.images, onehot)).batch(batch_size)

    def _map(x, y):
        x = prepare_batch(x, out_size, mean, std)
        return (tf.image.flip_left_right(x) if flip else x), y

    return ds.map(_map, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def steps_per_epoch(n: int, batch_size: int) -> int:
    return max(1, n // max(1, batch_size))
