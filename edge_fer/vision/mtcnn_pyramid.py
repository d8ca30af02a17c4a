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
asked it for gigabytes); given a threshold, each tile gives only the cells scoring above it, so neither is a
large level's whole map held. Without the helper, levels are made one at a time and each is dropped once P-Net
has read it; the helper, which makes them ahead, is used only while the first level is at most
:data:`HELPER_MAX_PIXELS` (every camera frame up to 4K at the default smallest face), so a huge still never has
its whole pyramid in memory at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from edge_fer.vision.mtcnn_ops import pnet_cells, pnet_output_size, scaled_shape

Level = tuple[float, int, int]  # scale, height, width
HELPER_MIN_PIXELS = 128 * 128  # a smaller first level (a region scan) is done before a hand-off would pay
HELPER_MAX_PIXELS = 4_000_000  # a larger first level is a still's: levels one at a time (48 MB of floats here)
NORMALISE_ROWS_VALUES = 1 << 23  # uint8 values converted per step (8 MB): no full-frame temporary on a still
FIXED_POINT_ABOVE = 3840 * 2160  # a larger pyramid source (a still's) is held in 16 bits instead of float32
FIXED_ONE = 256  # a grey level in the 16-bit source
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


def _rgb_bands(bgr: np.ndarray):
    """(first row, RGB uint8 copy) of successive bands of about :data:`NORMALISE_ROWS_VALUES` values, so that no
    whole-frame temporary is made on the way to a converted frame."""
    import cv2

    rows = max(1, NORMALISE_ROWS_VALUES // max(1, bgr.shape[1] * bgr.shape[2]))
    for top in range(0, bgr.shape[0], rows):
        yield top, cv2.cvtColor(bgr[top : top + rows], cv2.COLOR_BGR2RGB)


def normalised_rgb(bgr: np.ndarray) -> np.ndarray:
    """The networks' input: RGB float32, (pixel - 127.5) / 128 (exact in float32, as the reference computes it).

    Converted a band of rows at a time, so the only full-size allocation is the result (a whole-frame RGB copy
    first was another 119 MB on a 40 MP still)."""
    out = np.empty(bgr.shape, dtype=np.float32)
    for top, rgb in _rgb_bands(bgr):
        band = out[top : top + rgb.shape[0]]
        np.subtract(rgb, np.float32(127.5), out=band, dtype=np.float32)
        band *= np.float32(1.0 / 128.0)
    return out


def fixed_point_rgb(bgr: np.ndarray) -> np.ndarray:
    """RGB uint16, 256 x pixel: half the bytes of :func:`normalised_rgb`, converted to it tile by tile
    (:func:`as_input`); area resizes of it keep 1/256 of a grey level."""
    out = np.empty(bgr.shape, dtype=np.uint16)
    for top, rgb in _rgb_bands(bgr):
        np.multiply(rgb, np.uint16(FIXED_ONE), out=out[top : top + rgb.shape[0]], dtype=np.uint16)
    return out


def as_input(part: np.ndarray) -> np.ndarray:
    """A level or tile as the networks take it: a float32 one as it is (made contiguous), a 16-bit one
    (:func:`fixed_point_rgb`) normalised; exactly :func:`normalised_rgb`'s values where it holds whole grey
    levels, since (256 p - 32640) / 32768 and (p - 127.5) / 128 are both exact in float32."""
    if part.dtype != np.uint16:
        return np.ascontiguousarray(part)
    out = part.astype(np.float32)
    out -= np.float32(127.5 * FIXED_ONE)
    out *= np.float32(1.0 / (128 * FIXED_ONE))
    return out


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

    A copy of more than :data:`FIXED_POINT_ABOVE` pixels (a large still's: a 4K camera frame's never is) is kept
    in 16 bits (:func:`fixed_point_rgb`), and so are its levels, converted to float tile by tile: 40 MP at min
    face 20 took 476 MB as float32. Levels resized from it differ from the float ones by at most 1/512 of a grey
    level.
    """
    import cv2

    if first is not None:
        scale = min(1.0, 2.0 * first[0])
        h, w = scaled_shape(*bgr.shape[:2], scale)
        if (h, w) != bgr.shape[:2]:
            bgr = cv2.resize(bgr, (w, h), interpolation=cv2.INTER_AREA)
        if bgr.shape[0] * bgr.shape[1] > FIXED_POINT_ABOVE:
            return fixed_point_rgb(bgr)
    return normalised_rgb(bgr)


def _resize(image: np.ndarray, level: Level) -> np.ndarray:
    import cv2

    _, h, w = level
    if image.shape[:2] == (h, w):
        return image[None]  # the source is this level already
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)[None]


def _levels(image: np.ndarray, plan: Sequence[Level], chained: bool):
    """Each level's (1, h, w, 3) input, in plan order; a level the caller has dropped is not held here while the
    next one is made."""
    source = image
    for level in plan:
        batch = _resize(source, level)
        if chained:
            source = batch[0]
        yield batch
        del batch


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


def pnet(session, batch: np.ndarray, tile: int = PNET_TILE, threshold: float | None = None):
    """P-Net's [bbox_reg, prob] maps for one (1, h, w, 3) level, in tiles when a side is over ``tile``; with a
    ``threshold``, only the cells scoring above it (:func:`~edge_fer.vision.mtcnn_ops.pnet_cells`, the same
    cells in the same order as from the whole map)."""
    _, height, width, _ = batch.shape
    rows, cols = _spans(height, tile), _spans(width, tile)
    if len(rows) == 1 and len(cols) == 1:
        maps = session.run(PNET_OUTPUTS, {"input": as_input(batch)})
        return maps if threshold is None else pnet_cells(maps[0][0], maps[1][0, :, :, 1], threshold)
    if threshold is not None:
        return _tiled_cells(session, batch, rows, cols, threshold)
    maps = [np.empty((1, rows[-1][3], cols[-1][3], depth), dtype=np.float32) for depth in (4, 2)]
    for r0, r1, m0, m1 in rows:
        for c0, c1, n0, n1 in cols:
            part = session.run(PNET_OUTPUTS, {"input": as_input(batch[:, r0:r1, c0:c1])})
            for whole, piece in zip(maps, part):
                whole[:, m0:m1, n0:n1] = piece[:, : m1 - m0, : n1 - n0]
    return maps


def _tiled_cells(session, batch: np.ndarray, rows, cols, threshold: float) -> tuple[np.ndarray, ...]:
    """The cells above ``threshold`` of every tile, in the whole map's coordinates and row-major order."""
    found = []
    for r0, r1, m0, m1 in rows:
        for c0, c1, n0, n1 in cols:
            reg, prob = session.run(PNET_OUTPUTS, {"input": as_input(batch[:, r0:r1, c0:c1])})
            ys, xs, cell_reg, cell_prob = pnet_cells(
                reg[0, : m1 - m0, : n1 - n0], prob[0, : m1 - m0, : n1 - n0, 1], threshold
            )
            found.append((ys + m0, xs + n0, cell_reg, cell_prob))
    ys, xs, reg, prob = (np.concatenate(column) for column in zip(*found))
    order = np.lexsort((xs, ys))
    return ys[order], xs[order], reg[order], prob[order]


def _one_by_one(session, levels: Iterator[np.ndarray], threshold: float | None) -> Iterator:
    for level in levels:
        result = pnet(session, level, threshold=threshold)
        del level  # before the next level is made
        yield result


def run_pnet(
    session,
    image: np.ndarray,
    plan: Sequence[Level],
    helper: Helper | None,
    chained: bool = False,
    threshold: float | None = None,
) -> Iterator:
    """P-Net's [bbox_reg, prob] (or, with a ``threshold``, its cells above it) for each level of ``plan``, in plan
    order, the levels resized from ``image`` (normalised RGB float32, the frame or a :func:`pyramid_source`).

    Without the helper the levels are made as the iterator is read, so only one is held at a time."""
    first = plan[0][1] * plan[0][2] if plan else 0
    if helper is None or len(plan) < 2 or not HELPER_MIN_PIXELS <= first <= HELPER_MAX_PIXELS:
        return _one_by_one(session, _levels(image, plan, chained), threshold)

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
            results[k] = pnet(session, levels[k], threshold=threshold)
            levels[k] = None

    future = helper.submit(helper_work)
    try:
        while (k := take(from_small_end=False)) is not None:
            ready[k].wait()
            if levels[k] is None:
                break  # the helper failed; its exception is raised below
            results[k] = pnet(session, levels[k], threshold=threshold)
            levels[k] = None
    finally:
        future.result()
    return iter(results)


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
