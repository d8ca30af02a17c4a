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
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

Level = tuple[float, int, int]  # scale, height, width
HELPER_MIN_PIXELS = 128 * 128  # a smaller first level (a region scan) is done before a hand-off would pay


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


def _resize(image: np.ndarray, level: Level) -> np.ndarray:
    import cv2

    _, h, w = level
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)[None]


def _levels(image: np.ndarray, plan: Sequence[Level], chained: bool):
    """Each level's (1, h, w, 3) input, in plan order."""
    source = image
    for level in plan:
        batch = _resize(source, level)
        if chained:
            source = batch[0]
        yield batch


def run_pnet(
    session, image: np.ndarray, plan: Sequence[Level], helper: Helper | None, chained: bool = False
) -> list[list[np.ndarray]]:
    """P-Net's [bbox_reg, prob] for each level of ``plan`` (normalised RGB float32 ``image``), in plan order."""
    outputs = ["bbox_reg", "prob"]
    if helper is None or len(plan) < 2 or plan[0][1] * plan[0][2] < HELPER_MIN_PIXELS:
        return [session.run(outputs, {"input": level}) for level in _levels(image, plan, chained)]

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
            results[k] = session.run(outputs, {"input": levels[k]})

    future = helper.submit(helper_work)
    try:
        while (k := take(from_small_end=False)) is not None:
            ready[k].wait()
            if levels[k] is None:
                break  # the helper failed; its exception is raised below
            results[k] = session.run(outputs, {"input": levels[k]})
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
