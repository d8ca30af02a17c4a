"""Detection gated by what was seen: a full scan every ``full_scan_interval`` seconds, only the regions
around recently found faces in between.

A face moves a fraction of its own size from one frame to the next, so between full scans a known face
can only be near where it was. Running the cascade on a square around each known face (``roi_scale``
times its size), with a pyramid that starts at ``min_size_ratio`` of that face's size instead of the
configured minimum, finds it again for a small fraction of a full scan's cost. A known face that a region
scan misses keeps its region until the next full scan.

A face that arrives between full scans (a person walking in, a scene cut) moves pixels outside those
squares. Each frame is compared with the previous one on a 1/8-size gray thumbnail (about 0.2 ms at
640x480); what changed by more than ``motion_threshold`` grey levels outside the face squares, in blobs of
at least a quarter of the smallest face's area, is searched as well (grown by a face size, at the
configured minimum face size), as a motion-gated NVR searches only where something moved. When the regions
would cost more than ``max_roi_fraction`` of a full scan (a cut, a camera pan), the frame gets a full scan:
busy scenes fall back towards full scans on every frame. Still frames with no known face cost only the
thumbnail between full scans.

Times are the caller's clock (a camera's capture time, or a file's own timeline), so "every 500 ms" means
500 ms of video at any processing speed. A clock that goes backwards (a file that loops) forces a full scan.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque

import numpy as np

from edge_fer.config.settings import DetectorSettings
from edge_fer.vision.types import Detection

log = logging.getLogger("edge_fer.detector")

_THUMB = 8  # thumbnail downscale factor of the motion check
_X = [0, 2, 5, 7, 9, 11, 13]  # x columns of a detect_array row: box corners and the five landmarks
_Y = [1, 3, 6, 8, 10, 12, 14]


# Gating constants, measured once (benchmarks/tracking_recall.py) and not settings: the square scanned around a
# known face (times its size), the pyramid start in that square (fraction of the face), and the share of a
# full scan's cost above which the regions are not worth it. ``detector.full_scan_interval`` and
# ``detector.motion_threshold`` are the settings.
ROI_SCALE = 2.0
MIN_SIZE_RATIO = 0.5
MAX_ROI_FRACTION = 0.5


class FaceGate:
    """Gated detection for one camera (the state is that camera's faces). Not thread-safe.

    ``detector`` is an :class:`~edge_fer.vision.mtcnn.MtcnnDetector` (anything with its
    ``detect_array(image, min_face_size=None, chained_pyramid=False)`` and ``config.min_face_size``).
    """

    def __init__(self, detector, config: DetectorSettings | None = None) -> None:
        self.detector = detector
        self.config = config or detector.config  # full_scan_interval and motion_threshold
        self._known = np.empty((0, 4), dtype=np.float64)  # x1, y1, x2, y2 of faces to look for
        self._last_full: float | None = None
        self._thumb: np.ndarray | None = None
        self.full_scans = 0
        self.motion_scans = 0  # region scans that also searched where something moved
        self.region_scans = 0
        self.full_ms: deque[float] = deque(maxlen=2048)
        self.region_ms: deque[float] = deque(maxlen=2048)
        self.last_was_full = False

    def reset(self) -> None:
        """Forget the known faces: the next frame gets a full scan."""
        self._known = np.empty((0, 4), dtype=np.float64)
        self._last_full = None
        self._thumb = None

    def detect(self, image_bgr: np.ndarray, t: float) -> list[Detection]:
        """Faces in the frame at time ``t`` (seconds), as :meth:`MtcnnDetector.detect` reports them."""
        from edge_fer.vision.mtcnn import to_detections

        return to_detections(self.detect_array(image_bgr, t))

    def detect_array(self, image_bgr: np.ndarray, t: float) -> np.ndarray:
        from edge_fer.vision.mtcnn import as_bgr_image

        start = time.perf_counter()
        image_bgr = as_bgr_image(image_bgr)
        height, width = image_bgr.shape[:2]
        regions = self._face_regions()
        motion = self._motion_regions(image_bgr, regions)
        rows = None
        if motion is not None and not self._full_scan_due(t):
            regions = _clip(_merge(regions + motion), width, height)
            if self._relative_cost(regions, width, height) <= MAX_ROI_FRACTION:
                rows = self._scan(image_bgr, regions)
                self.motion_scans += bool(motion)
        if rows is None:
            rows = self.detector.detect_array(image_bgr)
            self._known = rows[:, :4].copy()
            self._last_full = t
            self.full_scans += 1
            self.full_ms.append((time.perf_counter() - start) * 1000.0)
            self.last_was_full = True
        else:
            self.region_scans += 1
            self.region_ms.append((time.perf_counter() - start) * 1000.0)
            self.last_was_full = False
        return rows

    def _relative_cost(self, regions, width: int, height: int) -> float:
        """P-Net's work on the regions over its work on a full scan: pixels times the square of the pyramid's
        first scale (12 / min face), which is what the pyramid's total area is proportional to."""
        floor = float(self.detector.config.min_face_size)
        work = sum((r[2] - r[0]) * (r[3] - r[1]) / (r[4] * r[4]) for r in regions)
        return work * floor * floor / (width * height)

    def _full_scan_due(self, t: float) -> bool:
        last = self._last_full
        return last is None or t < last or t - last >= self.config.full_scan_interval

    def _face_regions(self) -> list[list[float]]:
        """Squares (x1, y1, x2, y2, smallest face to look for) around the known faces, unclipped."""
        floor = float(self.detector.config.min_face_size)
        regions = []
        for x1, y1, x2, y2 in self._known:
            side = max(x2 - x1, y2 - y1) * ROI_SCALE
            cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
            min_face = max(floor, MIN_SIZE_RATIO * min(x2 - x1, y2 - y1))
            regions.append([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2, min_face])
        return regions

    def regions(self, width: int, height: int) -> list[tuple[int, int, int, int, float]]:
        """The regions the next frame would scan if nothing moved elsewhere: around the known faces,
        merged where they overlap, clipped to the frame."""
        return _clip(_merge(self._face_regions()), width, height)

    def _motion_regions(self, image_bgr: np.ndarray, faces: list[list[float]]) -> list[list[float]] | None:
        """Boxes (grown by a face size) around what changed since the previous frame outside the face
        regions, to be searched at the configured minimum face size; None when there is no previous frame
        of this size to compare with."""
        import cv2

        height, width = image_bgr.shape[:2]
        size = (max(1, width // _THUMB), max(1, height // _THUMB))
        gray = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY)
        thumb = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
        previous, self._thumb = self._thumb, thumb
        if previous is None or previous.shape != thumb.shape:
            return None
        if self.config.motion_threshold <= 0:
            return []
        moving = (cv2.absdiff(thumb, previous) > self.config.motion_threshold).astype(np.uint8)
        for x1, y1, x2, y2, _ in faces:
            top, left = max(0, int(y1) // _THUMB), max(0, int(x1) // _THUMB)
            moving[top : max(0, -(-int(y2) // _THUMB)), left : max(0, -(-int(x2) // _THUMB))] = 0
        if not moving.any():
            return []
        floor = float(self.detector.config.min_face_size)
        min_cells = max(2.0, (0.5 * floor / _THUMB) ** 2)
        count, _, stats, _ = cv2.connectedComponentsWithStats(cv2.dilate(moving, np.ones((3, 3), np.uint8)))
        out = []
        for x, y, w, h, cells in stats[1:count]:
            if cells < min_cells:
                continue
            x1, y1, x2, y2 = x * _THUMB, y * _THUMB, (x + w) * _THUMB, (y + h) * _THUMB
            grow = max(floor, 0.25 * max(x2 - x1, y2 - y1))
            out.append([x1 - grow, y1 - grow, x2 + grow, y2 + grow, floor])
        return out

    def _scan(self, image_bgr: np.ndarray, regions) -> np.ndarray:
        """Detections in the regions, in frame coordinates, best first; the known faces become these
        plus the known faces that none of them overlaps (kept until the next full scan)."""
        found = []
        for left, top, right, bottom, min_face in regions:
            crop = image_bgr[top:bottom, left:right]
            rows = self.detector.detect_array(crop, min_face_size=min_face, chained_pyramid=True)
            if rows.shape[0]:
                rows[:, _X] += left
                rows[:, _Y] += top
                found.append(rows)
        rows = np.concatenate(found, axis=0) if found else np.empty((0, 15), dtype=np.float64)
        rows = rows[np.argsort(-rows[:, 4], kind="stable")]
        self._known = np.concatenate([rows[:, :4], self._missed(rows)], axis=0)
        return rows

    def _missed(self, rows: np.ndarray) -> np.ndarray:
        """Known faces that no new detection overlaps."""
        known = self._known
        if rows.shape[0] == 0 or known.shape[0] == 0:
            return known
        ix = np.minimum(known[:, None, 2], rows[None, :, 2]) - np.maximum(known[:, None, 0], rows[None, :, 0])
        iy = np.minimum(known[:, None, 3], rows[None, :, 3]) - np.maximum(known[:, None, 1], rows[None, :, 1])
        return known[~np.any((ix > 0) & (iy > 0), axis=1)]


def _merge(regions: list[list[float]]) -> list[list[float]]:
    """Overlapping regions become their bounding rectangle (searched for the smaller of their minimum
    faces), so that no area is scanned twice and a face on a border is seen whole."""
    regions = [list(r) for r in regions]
    merged = True
    while merged and len(regions) > 1:
        merged = False
        for i in range(len(regions)):
            for j in range(i + 1, len(regions)):
                a, b = regions[i], regions[j]
                if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]:
                    regions[i] = [min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]), min(a[4], b[4])]
                    del regions[j]
                    merged = True
                    break
            if merged:
                break
    return regions


def _clip(regions: list[list[float]], width: int, height: int) -> list[tuple[int, int, int, int, float]]:
    """Whole-pixel regions inside the frame; those under P-Net's 12 px window are dropped."""
    out = []
    for x1, y1, x2, y2, min_face in regions:
        left, top = max(0, math.floor(x1)), max(0, math.floor(y1))
        right, bottom = min(width, math.ceil(x2)), min(height, math.ceil(y2))
        if right - left >= 12 and bottom - top >= 12:
            out.append((left, top, right, bottom, float(min_face)))
    return out


def make_gate(detector, settings: DetectorSettings) -> FaceGate | None:
    """A gate for one camera when ``roi_detection`` is on and the detector can scan regions; None otherwise."""
    if not settings.roi_detection or settings.full_scan_interval <= 0 or not hasattr(detector, "detect_array"):
        return None
    return FaceGate(detector, settings)
