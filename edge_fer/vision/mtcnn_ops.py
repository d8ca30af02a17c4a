"""Box arithmetic of the MTCNN cascade, in NumPy, matching the ``mtcnn`` 1.0.0 package step for step.

Candidate boxes travel as float64 rows ``[x1, y1, x2, y2, score, ...]`` (pixels of the full image), the
same precision and column meaning the reference uses, so that sorting, thresholds and suppression pick
the same boxes. Where the reference deviates from textbook MTCNN (its matrix NMS, its un-rounded
squaring, its crop coordinates divided by the image size instead of size - 1), we follow the reference:
the detector is judged by parity with it.
"""

from __future__ import annotations

import numpy as np

PNET_STRIDE = 2
PNET_CELL = 12


def pyramid_scales(
    width: int, height: int, min_face_size: float, scale_factor: float, min_size: int = 12
) -> np.ndarray:
    """Scales at which P-Net (a 12 px window) sees faces from ``min_face_size`` up to the whole image.

    The level count is the reference's formula (rounded half to even), so both see the same levels.
    """
    min_dim = min(width, height)
    count = round(-(np.log(min_dim / min_size) / np.log(scale_factor) + 1))
    return (min_size / min_face_size) * scale_factor ** np.arange(max(int(count), 0))


def scaled_shape(height: int, width: int, scale: float) -> tuple[int, int]:
    """Pyramid level size: the scaled size truncated toward zero, as TensorFlow's resize casts it."""
    return int(np.float64(height) * scale), int(np.float64(width) * scale)


def pnet_output_size(n: int) -> int:
    """P-Net map size for an input side of n: 3x3 valid conv, 2x2 'same' max-pool, two 3x3 valid convs."""
    if n < 3:
        return 0
    return max(-(-(n - 2) // 2) - 4, 0)


def sort_by_score(boxes: np.ndarray) -> np.ndarray:
    """Rows by score, highest first; the reference's reversed ``argsort``, so ties fall the same way."""
    return boxes[np.argsort(boxes[:, 4])[::-1]]


def pnet_cells(bbox_reg: np.ndarray, face_prob: np.ndarray, threshold: float) -> tuple[np.ndarray, ...]:
    """(ys, xs, regression rows, scores) of the map cells scoring above ``threshold``, in row-major order.

    ``bbox_reg`` is (h, w, 4), ``face_prob`` (h, w); P-Net in tiles (:mod:`edge_fer.vision.mtcnn_pyramid`) takes
    these per tile, so a large level's whole map is never held.
    """
    ys, xs = np.nonzero(face_prob > threshold)
    return ys, xs, bbox_reg[ys, xs], face_prob[ys, xs]


def pnet_proposals(bbox_reg: np.ndarray, face_prob: np.ndarray, scale: float, threshold: float) -> np.ndarray:
    """Boxes where one P-Net map scores a face, regressed, in full-image pixels, sorted by score."""
    return cell_proposals(*pnet_cells(bbox_reg, face_prob, threshold), scale)


def cell_proposals(ys: np.ndarray, xs: np.ndarray, reg: np.ndarray, prob: np.ndarray, scale: float) -> np.ndarray:
    """Boxes of P-Net cells (:func:`pnet_cells`, row-major, as the reference finds them), sorted by score.

    Each map cell is a 12 px window at stride 2 of the scaled image; its corners are taken as (2x+1, 2y+1) and
    (2x+12, 2y+12) and moved by the regression times 11 before scaling back, the reference's convention.
    """
    if ys.size == 0:
        return np.empty((0, 5), dtype=np.float64)
    reg = reg.astype(np.float64)
    left = (xs * PNET_STRIDE + 1).astype(np.float64)
    top = (ys * PNET_STRIDE + 1).astype(np.float64)
    right = (xs * PNET_STRIDE + PNET_CELL).astype(np.float64)
    bottom = (ys * PNET_STRIDE + PNET_CELL).astype(np.float64)
    size = PNET_CELL - 1
    out = np.empty((ys.size, 5), dtype=np.float64)
    out[:, 0] = left + reg[:, 0] * size
    out[:, 1] = top + reg[:, 1] * size
    out[:, 2] = right + reg[:, 2] * size
    out[:, 3] = bottom + reg[:, 3] * size
    out[:, 4] = prob
    out = sort_by_score(out)
    out[:, :4] /= scale
    return out


def _overlap(boxes: np.ndarray, rows: slice | np.ndarray, cols: slice, method: str) -> np.ndarray:
    a, b = boxes[rows], boxes[cols]
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    inter_w = np.maximum(0.0, np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]))
    inter_h = np.maximum(0.0, np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]))
    inter = inter_w * inter_h
    if method == "union":
        denom = area_a[:, None] + area_b[None, :] - inter
    elif method == "min":
        denom = np.minimum(area_a[:, None], area_b[None, :])
    else:
        raise ValueError(f"NMS method must be 'union' or 'min', got {method!r}")
    with np.errstate(divide="ignore", invalid="ignore"):
        return inter / denom


def nms_keep(boxes: np.ndarray, threshold: float, method: str = "union", block: int = 512) -> np.ndarray:
    """Indices kept by the reference's one-pass ("fast") NMS over rows already in priority order.

    A box is dropped when any earlier box overlaps it by more than ``threshold``, even an earlier box
    that was itself dropped: this suppresses a little more than greedy NMS, and it is what the
    reference does. Overlaps are computed in column blocks, narrower as N grows, so that one block's
    N x block matrices stay near 2M cells (16 MB each) however many candidates a big photo gives.
    """
    n = boxes.shape[0]
    if n < 2:
        return np.arange(n, dtype=np.int64)
    block = max(16, min(block, (1 << 21) // n))
    suppressed = np.zeros(n, dtype=bool)
    for start in range(0, n, block):
        stop = min(start + block, n)
        overlap = _overlap(boxes, slice(0, stop), slice(start, stop), method)
        earlier = np.arange(stop)[:, None] < np.arange(start, stop)[None, :]
        suppressed[start:stop] = np.any((overlap > threshold) & earlier, axis=0)
    return np.flatnonzero(~suppressed)


def nms(boxes: np.ndarray, threshold: float, method: str = "union", presorted: bool = False) -> np.ndarray:
    """Rows that survive :func:`nms_keep`, sorting by score first unless ``presorted``."""
    if not presorted:
        boxes = sort_by_score(boxes)
    return boxes[nms_keep(boxes, threshold, method)]


def to_square(boxes: np.ndarray) -> np.ndarray:
    """Grow each box to a square on its longer side, centre kept, no rounding (as the reference)."""
    out = boxes.copy()
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    out[:, 0] = boxes[:, 0] + w * 0.5 - side * 0.5
    out[:, 1] = boxes[:, 1] + h * 0.5 - side * 0.5
    out[:, 2] = out[:, 0] + side
    out[:, 3] = out[:, 1] + side
    return out


def apply_regression(boxes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Move box corners by R-Net/O-Net offsets, which are fractions of the (inclusive, +1) box size."""
    out = boxes.copy()
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    out[:, 0:4] += offsets.astype(np.float64) * np.stack([w, h, w, h], axis=1)
    return out


def onet_landmarks(raw: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(N, 5, 2) image points from O-Net's (N, 10) output: five x fractions, then five y fractions,
    of the box O-Net was shown (before its own regression)."""
    raw = raw.astype(np.float64)
    w = boxes[:, 2:3] - boxes[:, 0:1] + 1
    h = boxes[:, 3:4] - boxes[:, 1:2] + 1
    xs = w * raw[:, 0:5] + boxes[:, 0:1] - 1
    ys = h * raw[:, 5:10] + boxes[:, 1:2] - 1
    return np.stack([xs, ys], axis=2)


def crop_and_resize(image: np.ndarray, boxes: np.ndarray, size: int, *, from_bgr: bool = False) -> np.ndarray:
    """(N, size, size, C) bilinear crops of ``image`` (float32 HxWxC), zero where a sample leaves it.

    ``from_bgr``: ``image`` is the uint8 BGR frame itself and the crops come out as the networks' normalised
    RGB. Bilinear sampling is linear, so this equals cropping the normalised frame (up to float32 rounding)
    while converting only the N x size x size samples instead of the whole frame.

    Mirrors ``tf.image.crop_and_resize`` as the reference calls it: box corners are divided by the
    image size (not size - 1) into normalised coordinates, then sample i of a crop lies at
    ``y1n * (H - 1) + i * (y2n - y1n) * (H - 1) / (size - 1)``, all in float32. A sample row or column
    outside [0, H - 1] or [0, W - 1] is zero rather than clamped, so a box hanging off the image sees
    zeros (normalised mid-grey) there, exactly as the reference's networks do.
    """
    height, width = image.shape[:2]
    n = boxes.shape[0]
    if n == 0:
        return np.zeros((0, size, size, image.shape[2]), dtype=np.float32)
    f32 = np.float32
    norm = np.empty((n, 4), dtype=f32)
    norm[:, 0] = boxes[:, 1] / height
    norm[:, 1] = boxes[:, 0] / width
    norm[:, 2] = boxes[:, 3] / height
    norm[:, 3] = boxes[:, 2] / width
    steps = np.arange(size, dtype=f32)[None, :]
    hm1, wm1, sm1 = f32(height - 1), f32(width - 1), f32(size - 1)
    y_scale = (norm[:, 2:3] - norm[:, 0:1]) * hm1 / sm1
    x_scale = (norm[:, 3:4] - norm[:, 1:2]) * wm1 / sm1
    in_y = norm[:, 0:1] * hm1 + steps * y_scale
    in_x = norm[:, 1:2] * wm1 + steps * x_scale
    valid_y = (in_y >= 0) & (in_y <= hm1)
    valid_x = (in_x >= 0) & (in_x <= wm1)
    in_y = np.where(valid_y, in_y, f32(0))
    in_x = np.where(valid_x, in_x, f32(0))
    top = np.floor(in_y)
    left = np.floor(in_x)
    y_lerp = (in_y - top)[:, :, None, None]
    x_lerp = (in_x - left)[:, None, :, None]
    top = top.astype(np.intp)
    left = left.astype(np.intp)
    bottom = np.ceil(in_y).astype(np.intp)
    right = np.ceil(in_x).astype(np.intp)
    # Four gathers from the flattened image; the arithmetic below is TensorFlow's, operation for operation.
    flat = image.reshape(height * width, -1)
    if from_bgr:
        flat = flat[:, ::-1]  # gathered in RGB order (fancy indexing: np.take would copy the whole frame)
    top_row, bottom_row = (top * width)[:, :, None], (bottom * width)[:, :, None]
    left_col, right_col = left[:, None, :], right[:, None, :]
    upper = flat[top_row + right_col].astype(f32, copy=False)
    top_left = flat[top_row + left_col].astype(f32, copy=False)
    lower = flat[bottom_row + right_col].astype(f32, copy=False)
    bottom_left = flat[bottom_row + left_col].astype(f32, copy=False)
    upper -= top_left
    upper *= x_lerp
    upper += top_left
    lower -= bottom_left
    lower *= x_lerp
    lower += bottom_left
    lower -= upper
    lower *= y_lerp
    lower += upper
    if from_bgr:
        lower -= f32(127.5)
        lower *= f32(1.0 / 128.0)
    if not (valid_y.all() and valid_x.all()):
        lower[~(valid_y[:, :, None] & valid_x[:, None, :])] = 0
    return lower


def clip_to_image(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Corners clamped to the last pixel row and column, as the reference's ``fit_to_image``."""
    out = boxes.copy()
    out[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, width - 1)
    out[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, height - 1)
    return out
