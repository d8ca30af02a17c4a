"""Camera-like augmentation: what real footage does to a face that FER2013's studio-ish crops never show.

The shipped models call laughing faces sad or angry in dim rooms, in profile, blurred, small and
upscaled, compressed, or behind a hand or a microphone. Each of those is simulated here, in the order a
camera and the runtime's crop produce them: head pose and crop error (one projective resampling with
replicated borders, as ``edge_fer.vision.align`` fills outside the frame), an occluder over the mouth
or chin (in the scene, so before the light), low light and gamma, defocus or motion blur, a small face
upscaled, sensor noise, then JPEG. Every draw is stateless and derived from the batch's (seed, step)
by ``stateless_fold_in``, so a resumed run sees the same pixels, and the existing recipe's own draws
(keyed by the unfolded seed) are untouched: the images not chosen for the camera recipe stay bit-identical
to the plain recipe's.

JPEG uses TensorFlow's real encoder (``adjust_jpeg_quality``) one image at a time; it is deterministic
for a given quality, and only the quality is random, drawn statelessly (about 3 ms per 64 faces).
Low resolution works in buckets of fixed sizes (area down, bilinear up, as a small face in a frame
reaches the classifier), because a resize takes one size per call. Blur and noise act at the model's
input resolution rather than the small face's own, a simplification documented in docs/training.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Columns of the per-image uniform draws in [0, 1): named so each transform reads its own.
_COLS = (
    "rotation", "zoom", "squash", "shift_x", "shift_y", "flip", "persp_x", "persp_y",
    "occ_on", "occ_x", "occ_y", "occ_rx", "occ_ry", "occ_stick", "occ_level",
    "dark_on", "gain", "gamma",
    "blur_on", "blur_kind", "blur_size", "blur_angle",
    "lowres_on", "lowres_size", "noise_on", "noise_sigma", "jpeg_on", "jpeg_quality",
)  # fmt: skip
COL = {name: i for i, name in enumerate(_COLS)}
REFERENCE_SIZE = 48  # pixel ranges below are for 48 px inputs and scale with the input size


@dataclass(frozen=True)
class CameraAugmentation:
    """Ranges and probabilities of the camera transforms; ``p_*`` is each transform's chance per image."""

    rotation_deg: float = 30.0  # roll, twice the plain recipe's
    perspective: float = 0.3  # keystone (yaw/pitch): scale changes by up to this much across the face
    squash: float = 0.2  # horizontal foreshortening of a turned head: width factor in [1 - squash, 1]
    zoom: float = 0.15  # crop scale error of the aligner, scale in [1 - zoom, 1 + zoom]
    shift: float = 0.08  # crop position error, fraction of the side
    flip: bool = True
    p_occluder: float = 0.25  # an ellipse (hand, fist) over mouth or chin, half of them with a stick (microphone)
    p_dark: float = 0.4
    gain_min: float = 0.25  # darkest light, as a factor (log-uniform in [gain_min, 1])
    gamma: float = 0.5  # gamma log-uniform in [1 / (1 + gamma), 1 + gamma]
    p_blur: float = 0.35  # half defocus (disc), half motion (line at any angle)
    blur_px: float = 2.5  # largest disc radius / half motion length, at 48 px
    p_lowres: float = 0.4
    lowres_sizes: tuple[int, ...] = (14, 18, 24, 32)  # face side in the frame (the wild clip's are 16-20 px)
    p_noise: float = 0.4
    noise_sigma: float = 12.0  # largest noise standard deviation in grey levels (at full signal)
    p_jpeg: float = 0.4
    jpeg_quality: tuple[int, int] = (20, 70)  # webcam streams and re-encoded video sit in this range

    def __post_init__(self) -> None:
        for name in ("p_occluder", "p_dark", "p_blur", "p_lowres", "p_noise", "p_jpeg"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"camera augmentation {name} must be in [0, 1]")
        if not (0 < self.gain_min <= 1 and 0 <= self.squash < 1 and 0 <= self.zoom < 1 and 0 <= self.perspective < 1):
            raise ValueError("camera augmentation gain_min must be in (0, 1], squash, zoom and perspective in [0, 1)")
        if not 1 <= self.jpeg_quality[0] <= self.jpeg_quality[1] <= 100:
            raise ValueError("camera augmentation jpeg_quality must be 1 <= low <= high <= 100")


def _fold(tf, seed, salt: int):
    return tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int64), salt)


def draws_for(tf, seed, batch):
    """Uniform [0, 1) draws, one row per image, one column per ``COL`` entry."""
    return tf.random.stateless_uniform(tf.stack([batch, len(_COLS)]), seed=_fold(tf, seed, 1))


def camera_mask(tf, seed, batch, share: float):
    """Exactly ``round(share * batch)`` images chosen per batch (a stateless random subset)."""
    u = tf.random.stateless_uniform(tf.reshape(batch, [1]), seed=_fold(tf, seed, 3))
    rank = tf.argsort(tf.argsort(u))
    chosen = tf.cast(tf.round(share * tf.cast(batch, tf.float32)), tf.int32)
    return rank < chosen


def _pose_transforms(tf, d, in_hw, out_hw, cam: CameraAugmentation):
    """Projective rows (output pixel -> input pixel) for roll, keystone, foreshortening, crop error, flip."""

    def u(name):  # symmetric draw in [-1, 1)
        return 2.0 * d[:, COL[name]] - 1.0

    theta = u("rotation") * math.radians(cam.rotation_deg)
    inv = 1.0 / (1.0 + u("zoom") * cam.zoom)
    wide = 1.0 / (1.0 - d[:, COL["squash"]] * cam.squash)
    flip = tf.where(u("flip") < 0, -1.0, 1.0) if cam.flip else tf.ones_like(theta)
    tx, ty = u("shift_x") * cam.shift, u("shift_y") * cam.shift
    px, py = u("persp_x") * cam.perspective, u("persp_y") * cam.perspective
    cos, sin = tf.cos(theta), tf.sin(theta)
    # Normalised coordinates (centre 0, edges +-0.5): v_in = (M v_out + t) / (1 + p . v_out).
    m00, m01 = inv * cos * flip * wide, -inv * sin
    m10, m11 = inv * sin * flip * wide, inv * cos
    h_in, w_in = (float(v) for v in in_hw)
    h_out, w_out = (float(v) for v in out_hw)
    cx, cy = 0.5 / w_out - 0.5, 0.5 / h_out - 0.5
    ex, ey = 0.5 * w_in - 0.5, 0.5 * h_in - 0.5
    d0 = 1.0 + px * cx + py * cy
    ax, ay = w_in * m00 + ex * px, w_in * m01 + ex * py
    bx, by = h_in * m10 + ey * px, h_in * m11 + ey * py
    a0, a1, a2 = ax / w_out, ay / h_out, ax * cx + ay * cy + w_in * tx + ex
    b0, b1, b2 = bx / w_out, by / h_out, bx * cx + by * cy + h_in * ty + ey
    c0, c1 = px / (w_out * d0), py / (h_out * d0)
    return tf.stack([a0 / d0, a1 / d0, a2 / d0, b0 / d0, b1 / d0, b2 / d0, c0, c1], axis=1)


def _occlude(tf, x, d, p: float):
    """A soft-edged ellipse of one grey level over mouth or chin; half of them on a stick to the bottom edge."""
    size = tf.cast(tf.shape(x)[1], tf.float32)
    grid = (tf.range(size) + 0.5) / size
    gx, gy = grid[None, None, :], grid[None, :, None]

    def col(name):
        return d[:, COL[name]][:, None, None]

    # Centred from the mouth (0.78 in FER crops) down to the chin, small enough that most of them leave
    # part of the mouth visible: a face whose whole mouth is hidden would only teach label noise.
    cx, cy = 0.5 + 0.3 * (col("occ_x") - 0.5), 0.8 + 0.18 * col("occ_y")
    rx, ry = 0.08 + 0.14 * col("occ_rx"), 0.06 + 0.1 * col("occ_ry")
    r = tf.sqrt(((gx - cx) / rx) ** 2 + ((gy - cy) / ry) ** 2)
    blob = tf.clip_by_value((1.0 - r) * tf.minimum(rx, ry) * size, 0.0, 1.0)
    stick_w = 0.35 * rx
    stick = tf.clip_by_value((stick_w - tf.abs(gx - cx)) * size, 0.0, 1.0) * tf.cast(gy >= cy, tf.float32)
    stick *= tf.cast(col("occ_stick") < 0.5, tf.float32)
    mask = tf.maximum(blob, stick) * tf.cast(col("occ_on") < p, tf.float32)
    level = 20.0 + 200.0 * col("occ_level") + 25.0 * (gy - cy)  # a little shading from top to bottom
    return x * (1.0 - mask[..., None]) + (level * mask)[..., None]


def _light(tf, x, d, cam: CameraAugmentation):
    gain = tf.exp(math.log(cam.gain_min) * d[:, COL["gain"]])
    gamma = tf.exp(math.log1p(cam.gamma) * (2.0 * d[:, COL["gamma"]] - 1.0))
    on = d[:, COL["dark_on"]] < cam.p_dark
    y = 255.0 * tf.pow(tf.maximum(x * gain[:, None, None, None] / 255.0, 0.0), gamma[:, None, None, None])
    return tf.where(on[:, None, None, None], y, x)


def blur_kernels(tf, d, radius: int, max_px: float):
    """Per-image normalised kernels ``(B, k, k)``, k = 2 * radius + 1: discs or line segments."""
    offsets = tf.cast(tf.range(-radius, radius + 1), tf.float32)
    dx, dy = offsets[None, None, :], offsets[None, :, None]
    length = (0.5 + (max_px - 0.5) * d[:, COL["blur_size"]])[:, None, None]
    angle = (math.pi * d[:, COL["blur_angle"]])[:, None, None]
    disc = tf.clip_by_value(length + 0.5 - tf.sqrt(dx**2 + dy**2), 0.0, 1.0)
    along = dx * tf.cos(angle) + dy * tf.sin(angle)
    across = -dx * tf.sin(angle) + dy * tf.cos(angle)
    line = tf.clip_by_value(1.0 - tf.abs(across), 0.0, 1.0) * tf.clip_by_value(length + 0.5 - tf.abs(along), 0.0, 1.0)
    kernel = tf.where((d[:, COL["blur_kind"]] < 0.5)[:, None, None], disc, line)
    return kernel / tf.reduce_sum(kernel, axis=[1, 2], keepdims=True)


def _blur(tf, x, d, cam: CameraAugmentation, scale: float):
    """Each image convolved with its own kernel: the batch moved into channels for one depthwise convolution."""
    radius = max(1, math.ceil(cam.blur_px * scale))
    kernel = blur_kernels(tf, d, radius, cam.blur_px * scale)
    b, h, w, c = tf.unstack(tf.shape(x))
    stacked = tf.reshape(tf.transpose(x, [1, 2, 0, 3]), [1, h, w, b * c])
    stacked = tf.pad(stacked, [[0, 0], [radius, radius], [radius, radius], [0, 0]], mode="REFLECT")
    filters = tf.repeat(tf.transpose(kernel, [1, 2, 0]), c, axis=2)[..., None]  # (k, k, B*C, 1)
    y = tf.nn.depthwise_conv2d(stacked, filters, strides=[1, 1, 1, 1], padding="VALID")
    y = tf.transpose(tf.reshape(y, [h, w, b, c]), [2, 0, 1, 3])
    y = tf.ensure_shape(y, x.shape)
    return tf.where((d[:, COL["blur_on"]] < cam.p_blur)[:, None, None, None], y, x)


def _low_resolution(tf, x, d, cam: CameraAugmentation, out_size: int):
    sizes = sorted({min(out_size - 1, max(4, round(s * out_size / REFERENCE_SIZE))) for s in cam.lowres_sizes})
    bucket = tf.cast(tf.floor(d[:, COL["lowres_size"]] * len(sizes)), tf.int32)
    on = d[:, COL["lowres_on"]] < cam.p_lowres
    for i, side in enumerate(sizes):
        small = tf.image.resize(x, (side, side), method="area")
        y = tf.image.resize(small, (out_size, out_size), method="bilinear")
        x = tf.where((on & (bucket == i))[:, None, None, None], y, x)
    return x


def _noise(tf, x, d, seed, cam: CameraAugmentation):
    """Read noise plus shot noise: the standard deviation grows with the signal, so dark faces look grainier."""
    sigma = (cam.noise_sigma * d[:, COL["noise_sigma"]])[:, None, None, None]
    std = sigma * tf.sqrt(0.3 + 0.7 * tf.clip_by_value(x, 0.0, 255.0) / 255.0)
    y = x + std * tf.random.stateless_normal(tf.shape(x), seed=_fold(tf, seed, 2))
    return tf.where((d[:, COL["noise_on"]] < cam.p_noise)[:, None, None, None], y, x)


def _jpeg(tf, x, d, cam: CameraAugmentation):
    low, high = cam.jpeg_quality
    quality = tf.cast(tf.floor(low + (high - low + 1) * d[:, COL["jpeg_quality"]]), tf.int32)
    quality = tf.minimum(quality, high)
    pixels = tf.round(tf.clip_by_value(x, 0.0, 255.0)) / 255.0

    def one(args):
        return tf.image.adjust_jpeg_quality(args[0], args[1])

    y = tf.map_fn(one, (pixels, quality), fn_output_signature=tf.float32) * 255.0
    y = tf.ensure_shape(y, x.shape)
    return tf.where((d[:, COL["jpeg_on"]] < cam.p_jpeg)[:, None, None, None], y, x)


def camera_batch(images, seed, out_size: int, cam: CameraAugmentation):
    """uint8 ``(B, H, W, C)`` -> float32 ``(B, S, S, C)`` in [0, 255], every image through the camera recipe.

    ``seed`` is the batch's shape-[2] (seed, step) tensor, the one the plain recipe uses.
    """
    import tensorflow as tf

    x = tf.cast(images, tf.float32)
    batch = tf.shape(x)[0]
    d = draws_for(tf, seed, batch)
    transforms = _pose_transforms(tf, d, images.shape[1:3], (out_size, out_size), cam)
    x = tf.raw_ops.ImageProjectiveTransformV3(
        images=x,
        transforms=transforms,
        output_shape=tf.constant([out_size, out_size], tf.int32),
        fill_value=tf.constant(0.0),
        interpolation="BILINEAR",
        fill_mode="NEAREST",  # the runtime's crop replicates the frame's border
    )
    x = _occlude(tf, x, d, cam.p_occluder)
    x = _light(tf, x, d, cam)
    x = _blur(tf, x, d, cam, out_size / REFERENCE_SIZE)
    x = _low_resolution(tf, x, d, cam, out_size)
    x = _noise(tf, x, d, seed, cam)
    x = _jpeg(tf, x, d, cam)
    return tf.clip_by_value(x, 0.0, 255.0)
