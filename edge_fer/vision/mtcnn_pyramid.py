"""Running the MTCNN networks: the P-Net image pyramid, and big R-Net/O-Net batches, on one or two threads.

Building a pyramid level (an area resize that reads the whole frame) and running P-Net on it cost about
the same per frame, and neither can be made cheaper without changing the result. With a helper thread
the two overlap: the helper resizes every level in order, the calling thread runs P-Net from the largest
level down, and once the helper has resized everything it runs P-Net from the smallest level up until
they meet. The same CPU work, about half the latency on a two-core machine. Every level's output is
independent of who computed it, so the detections are identical with and without the helper.

A *chained* pyramid resizes each level from the previous level instead of from the image: an area resize
costs in proportion to its input, so on a small region this is several times cheaper, but the pixels
differ slightly from the reference's (which always resizes the whole image). Full scans never chain; the
region scans of gated detection do (their recall is measured against full scans, not the reference).

Levels are made from a *source*: by default the frame shrunk once, in uint8, to twice the first level's
size (:func:`pyramid_source`), so a 1920x1080 frame is read once instead of once per level and never converted to
float at full size; with ``exact`` the full-resolution normalised frame, the reference's arithmetic. A level
larger than :data:`PNET_TILE` on a side goes through P-Net in overlapping tiles that give the same map, so
onnxruntime's activation memory is bounded by the tile, not by the photo (a 6300x6300 still at min face 20
asked it for gigabytes).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from edge_fer.vision.mtcnn_ops import pnet_output_size, scaled_shape

Level = tuple[float, int, int]  # scale, height, width
HELPER_MIN_PIXELS = 128 * 128  # a smaller first level (a region scan) is done before a hand-off would pay
PNET_TILE = 512  # P-Net input rows/columns per tile: about 100 MB of onnxruntime activations at most
PNET_OUTPUTS = ["bbox_reg", "prob"]


class Helper:
    """One named worker thread, started on first use; ``close`` stops it."""

    def __init__(self, name: str = "edge-fer-mtcnn") -> None:
        self._name = name
        self._pool: ThreadPoolExecutor | None = None

    def submit(self, fn: Callable, *args) -> Future:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self._name)
        return self._pool.submit(fn, *args)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


def normalised_rgb(bgr: np.ndarray) -> np.ndarray:
    """The networks' input: RGB float32, (pixel - 127.5) / 128 (exact in float32, as the reference computes it)."""
    import cv2

    image = np.subtract(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), np.float32(127.5), dtype=np.float32)
    image *= np.float32(1.0 / 128.0)
    return image


def pyramid_source(bgr: np.ndarray, first: Level | None) -> np.ndarray:
    """What the levels are resized from: the uint8 BGR frame area-shrunk to twice the ``first`` level's
    scale (capped at the frame's own size) and normalised, or, with ``first`` None, the whole frame
    normalised (the reference's way).

    The first level is where P-Net sees the smallest wanted face (``min_face_size`` becomes its 12 px
    window), so no level needs more than twice its pixels. Twice rather than once, measured
    (``benchmarks/large_frames.py``): levels resized from a copy of exactly the first level's size (or
    chained from one another) found fewer of the full-resolution pyramid's faces and moved boxes enough to
    change emotions on small faces, beyond what one grey level of noise in the frame does; at twice the
    size the differences are within that noise. The copy is rounded to uint8 before the area resize to
    each level averages that rounding away.
    """
    import cv2

    if first is not None:
        scale = min(1.0, 2.0 * first[0])
        h, w = scaled_shape(*bgr.shape[:2], scale)
        if (h, w) != bgr.shape[:2]:
            bgr = cv2.resize(bgr, (w, h), interpolation=cv2.INTER_AREA)
    return normalised_rgb(bgr)


def _resize(image: np.ndarray, level: Level) -> np.ndarray:
    import cv2

    _, h, w = level
    if image.shape[:2] == (h, w):
        return image[None]  # the source is this level already
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)[None]


def _levels(image: np.ndarray, plan: Sequence[Level], chained: bool):
    """Each level's (1, h, w, 3) input, in plan order."""
    source = image
    for level in plan:
        batch = _resize(source, level)
        if chained:
            source = batch[0]
        yield batch


def _spans(n: int, tile: int) -> list[tuple[int, int, int, int]]:
    """(input start, input stop, map start, map stop) of the tiles along one side of n input pixels.

    A map cell j sees input rows 2j to 2j + 11. A tile starting on an even row and of even length has no
    'same' padding in its max-pool, so its cells are exactly the whole map's cells from start / 2 on; the next
    tile starts 10 rows before this one ends, where the first cell this tile could not complete begins. The
    last tile ends where the image does, padding included, as the whole map does.
    """
    tile -= tile % 2
    spans, start = [], 0
    while start + tile < n:
        spans.append((start, start + tile, start // 2, start // 2 + tile // 2 - 5))
        start += tile - 10
    spans.append((start, n, start // 2, start // 2 + pnet_output_size(n - start)))
    return spans


def pnet(session, batch: np.ndarray, tile: int = PNET_TILE) -> list[np.ndarray]:
    """P-Net's [bbox_reg, prob] maps for one (1, h, w, 3) level, in tiles when a side is over ``tile``."""
    _, height, width, _ = batch.shape
    rows, cols = _spans(height, tile), _spans(width, tile)
    if len(rows) == 1 and len(cols) == 1:
        return session.run(PNET_OUTPUTS, {"input": batch})
    maps = [np.empty((1, rows[-1][3], cols[-1][3], depth), dtype=np.float32) for depth in (4, 2)]
    for r0, r1, m0, m1 in rows:
        for c0, c1, n0, n1 in cols:
            part = session.run(PNET_OUTPUTS, {"input": np.ascontiguousarray(batch[:, r0:r1, c0:c1])})
            for whole, piece in zip(maps, part):
                whole[:, m0:m1, n0:n1] = piece[:, : m1 - m0, : n1 - n0]
    return maps


def run_pnet(
    session, image: np.ndarray, plan: Sequence[Level], helper: Helper | None, chained: bool = False
) -> list[list[np.ndarray]]:
    """P-Net's [bbox_reg, prob] for each level of ``plan``, in plan order, the levels resized from ``image``
    (normalised RGB float32, the frame or a :func:`pyramid_source`)."""
    if helper is None or len(plan) < 2 or plan[0][1] * plan[0][2] < HELPER_MIN_PIXELS:
        return [pnet(session, level) for level in _levels(image, plan, chained)]

    count = len(plan)
    levels: list[np.ndarray | None] = [None] * count
    results: list[list[np.ndarray] | None] = [None] * count
    ready = [threading.Event() for _ in range(count)]
    lock = threading.Lock()
    bounds = [0, count - 1]  # next level for the calling thread (largest first), next for the helper

    def take(from_small_end: bool) -> int | None:
        with lock:
            if bounds[0] > bounds[1]:
                return None
            if from_small_end:
                bounds[1] -= 1
                return bounds[1] + 1
            bounds[0] += 1
            return bounds[0] - 1

    def helper_work() -> None:
        try:
            for k, level in enumerate(_levels(image, plan, chained)):
                levels[k] = level
                ready[k].set()
        finally:
            for event in ready:  # never leave the calling thread waiting, even after an error
                event.set()
        while (k := take(from_small_end=True)) is not None:
            results[k] = pnet(session, levels[k])

    future = helper.submit(helper_work)
    try:
        while (k := take(from_small_end=False)) is not None:
            ready[k].wait()
            if levels[k] is None:
                break  # the helper failed; its exception is raised below
            results[k] = pnet(session, levels[k])
    finally:
        future.result()
    return results  # type: ignore[return-value]


def run_batch(session, outputs: list[str], batch: np.ndarray, helper: Helper | None, min_split: int = 48) -> list:
    """``session.run`` over a batch of crops, split in two halves across threads when it is big enough."""
    n = batch.shape[0]
    if helper is None or n < min_split:
        return session.run(outputs, {"input": batch})
    half = n // 2
    future = helper.submit(session.run, outputs, {"input": batch[half:]})
    try:
        first = session.run(outputs, {"input": batch[:half]})
    finally:
        second = future.result()
    return [np.concatenate([a, b], axis=0) for a, b in zip(first, second)]
