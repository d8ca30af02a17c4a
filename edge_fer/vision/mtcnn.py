"""MTCNN face detection on ONNX Runtime: the P-Net/R-Net/O-Net cascade in NumPy and OpenCV.

The three networks are the shipped exports of the ``mtcnn`` 1.0.0 package; everything between them
(pyramid, proposal decoding, suppression, squaring, crops, regression, landmarks) reproduces that
package's arithmetic so that our faces match its faces. Speed comes from batching R-Net and O-Net over
all candidates, vectorised box maths, cached pyramid plans, and skipping pyramid levels too small for
P-Net to say anything about.

Large frames are handled at the size the smallest wanted face needs: P-Net's pyramid is made from a copy of
the frame shrunk once to twice the first level (where ``min_face_size`` becomes P-Net's 12 px), while R-Net and O-Net
crop the full-resolution frame, converting only the pixels they sample. Candidates go through R-Net and O-Net
in batches of at most :data:`MAX_BATCH`, so memory stays bounded on photos with thousands of candidates. On a
large still the pyramid is 16-bit and made one level at a time, and P-Net's tiles keep only the cells above its
threshold (:mod:`edge_fer.vision.mtcnn_pyramid`): ``analyze`` stays under 1 GB on 40 MP.
"""

from __future__ import annotations

import logging

import numpy as np

from edge_fer.config.settings import DetectorSettings
from edge_fer.vision import mtcnn_ops as ops
from edge_fer.vision.mtcnn_pyramid import Helper, pyramid_source, run_batch, run_pnet
from edge_fer.vision.types import Box, Detection

log = logging.getLogger("edge_fer.detector")

PNET_MODEL = "mtcnn_pnet.onnx"
RNET_MODEL = "mtcnn_rnet.onnx"
ONET_MODEL = "mtcnn_onet.onnx"
RNET_SIZE = 24
ONET_SIZE = 48
PNET_OUTPUTS = ["bbox_reg", "prob"]  # R-Net has the same two outputs
ONET_OUTPUTS = ["bbox_reg", "landmarks", "prob"]
MAX_BATCH = 256  # R-Net/O-Net candidates per inference: a few tens of MB of activations at most


def as_bgr_image(image: np.ndarray) -> np.ndarray:
    """The image as HxWx3 uint8, or ValueError saying what is wrong with it.

    Grayscale (HxW or HxWx1) is accepted and expanded, since cameras and files deliver it.
    """
    if not isinstance(image, np.ndarray):
        raise ValueError(f"image must be a numpy array (HxWx3 uint8 BGR), got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8 (0-255) BGR, got dtype {image.dtype}; convert it first")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        if image.size == 0:
            raise ValueError(f"image is empty (shape {image.shape})")
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be HxWx3 BGR (or HxW grayscale), got shape {image.shape}")
    if image.size == 0:
        raise ValueError(f"image is empty (shape {image.shape})")
    return image


def to_detections(rows: np.ndarray) -> list[Detection]:
    """:class:`Detection` objects from :meth:`MtcnnDetector.detect_array` rows, in row order."""
    return [Detection(Box.from_xyxy(*row[0:4]), min(float(row[4]), 1.0), row[5:15].reshape(5, 2)) for row in rows]


class MtcnnDetector:
    """Finds faces with five landmarks in BGR frames. Not thread-safe: one detector per worker.

    Takes :class:`~edge_fer.config.settings.DetectorSettings` (thresholds, pyramid, threads); its
    ``min_score`` is applied by the analyzer, so :meth:`detect_array` still shows every cascade result.

    ``close()`` (or a ``with`` block) stops the helper thread; an unclosed detector's helper ends
    when the detector is garbage collected. ``open_net(path, threads)`` opens each network
    (:func:`~edge_fer.vision.onnx_session.open_session` by default); benchmarks pass one with other
    onnxruntime options instead of replacing the sessions afterwards. ``exact_pyramid`` resizes every
    pyramid level from the full-resolution frame, as the reference does, instead of from a copy shrunk to
    twice the first level: slower on large frames, for measuring what the shrunk copy changes
    (``benchmarks/large_frames.py``).
    """

    def __init__(self, config: DetectorSettings | None = None, *, open_net=None, exact_pyramid: bool = False) -> None:
        from edge_fer.vision.onnx_session import bundled_model, open_session

        self.config = config or DetectorSettings()  # the `detector:` settings model as it is
        if open_net is None:
            cfg = self.config

            def open_net(path, threads):
                return open_session(path, threads, providers=cfg.providers, fallback=cfg.provider_fallback)

        self._pnet = open_net(bundled_model(PNET_MODEL), self.config.threads)
        self._rnet = open_net(bundled_model(RNET_MODEL), self.config.threads)
        self._onet = open_net(bundled_model(ONET_MODEL), self.config.threads)
        self._plans: dict[tuple[int, int], tuple[tuple[float, int, int], ...]] = {}
        self._helper = Helper() if self.config.helper_thread else None
        self.exact_pyramid = exact_pyramid

    def close(self) -> None:
        if self._helper is not None:
            self._helper.close()

    def __enter__(self) -> MtcnnDetector:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def detect(self, image_bgr: np.ndarray) -> list[Detection]:
        """Faces in the frame, highest score first; boxes are clipped to the frame, landmarks are not."""
        return to_detections(self.detect_array(image_bgr))

    def detect_array(
        self, image_bgr: np.ndarray, min_face_size: float | None = None, chained_pyramid: bool = False
    ) -> np.ndarray:
        """Raw result, (N, 15) float64 rows: x1, y1, x2, y2, score, then five (x, y) landmarks.

        For callers that post-process in bulk (benchmarks, tests, the region scans of
        :mod:`edge_fer.vision.gated`, which pass a larger ``min_face_size`` than the configured one
        because they know how big the face they look for is, and a ``chained_pyramid``, cheaper and
        not bit-identical to the reference: see :mod:`edge_fer.vision.mtcnn_pyramid`); :meth:`detect`
        wraps it. A box that clipping leaves with no area (wholly off the frame) is dropped; the
        reference would report it.
        """
        bgr = np.ascontiguousarray(as_bgr_image(image_bgr))
        height, width = bgr.shape[:2]
        cfg = self.config
        min_face = cfg.min_face_size if min_face_size is None else max(float(min_face_size), 1.0)
        plan = self.pyramid(height, width, min_face)
        boxes = np.empty((0, 5), dtype=np.float64)
        if plan:
            source = pyramid_source(bgr, None if self.exact_pyramid else plan[0])
            boxes = self._stage_pnet(source, plan, chained_pyramid)
            del source
        if boxes.shape[0]:
            boxes = self._stage_rnet(bgr, boxes)
        if boxes.shape[0]:
            boxes = self._stage_onet(bgr, boxes)
        if boxes.shape[0] == 0:
            return np.empty((0, 15), dtype=np.float64)
        boxes[:, 0:4] = ops.clip_to_image(boxes[:, 0:4], width, height)
        boxes = boxes[(boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])]
        order = np.argsort(-boxes[:, 4], kind="stable")
        log.debug("%dx%d frame: %d faces (min face %s)", width, height, len(order), min_face)
        return boxes[order]

    def pyramid(
        self, height: int, width: int, min_face_size: float | None = None
    ) -> tuple[tuple[float, int, int], ...]:
        """(scale, level height, level width) for each pyramid level P-Net can use, cached per frame size.

        Levels whose P-Net map would be empty are dropped: they cannot hold a face (the reference
        runs them and, when one is too small for its network, loses the whole frame's result).
        """
        cfg = self.config
        min_face = cfg.min_face_size if min_face_size is None else float(min_face_size)
        key = (height, width, min_face)
        plan = self._plans.get(key)
        if plan is None:
            levels = []
            for scale in ops.pyramid_scales(width, height, min_face, cfg.scale_factor):
                h, w = ops.scaled_shape(height, width, float(scale))
                if ops.pnet_output_size(h) > 0 and ops.pnet_output_size(w) > 0:
                    levels.append((float(scale), h, w))
            plan = tuple(levels)
            if len(self._plans) > 64:
                self._plans.clear()
            self._plans[key] = plan
        return plan

    def _stage_pnet(self, image: np.ndarray, plan, chained: bool) -> np.ndarray:
        cfg = self.config
        per_level = []
        cells = run_pnet(self._pnet, image, plan, self._helper, chained, threshold=cfg.thresholds[0])
        for (scale, _, _), level_cells in zip(plan, cells):
            found = ops.cell_proposals(*level_cells, scale)
            if found.shape[0]:
                per_level.append(found[ops.nms_keep(found, cfg.nms_thresholds[0])])
        if not per_level:
            return np.empty((0, 5), dtype=np.float64)
        boxes = ops.nms(np.concatenate(per_level, axis=0), cfg.nms_thresholds[1])
        return ops.to_square(boxes)

    def _refine(self, session, outputs: list[str], bgr: np.ndarray, boxes: np.ndarray, size: int, min_split: int):
        """``outputs`` of R-Net or O-Net for every box, on crops of the full-resolution ``bgr`` frame."""
        parts = []
        for start in range(0, boxes.shape[0], MAX_BATCH):
            crops = ops.crop_and_resize(bgr, boxes[start : start + MAX_BATCH], size, from_bgr=True)
            parts.append(run_batch(session, outputs, crops, self._helper, min_split=min_split))
        if len(parts) == 1:
            return parts[0]
        return [np.concatenate(column, axis=0) for column in zip(*parts)]

    def _stage_rnet(self, bgr: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        cfg = self.config
        offsets, prob = self._refine(self._rnet, PNET_OUTPUTS, bgr, boxes, RNET_SIZE, 48)
        boxes = boxes.copy()
        boxes[:, 4] = prob[:, 1]
        boxes = ops.apply_regression(boxes, offsets)
        boxes = boxes[boxes[:, 4] > cfg.thresholds[1]]
        if boxes.shape[0] == 0:
            return boxes
        return ops.to_square(ops.nms(boxes, cfg.nms_thresholds[2]))

    def _stage_onet(self, bgr: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        cfg = self.config
        offsets, raw_landmarks, prob = self._refine(self._onet, ONET_OUTPUTS, bgr, boxes, ONET_SIZE, 16)
        landmarks = ops.onet_landmarks(raw_landmarks, boxes).reshape(-1, 10)
        boxes = boxes.copy()
        boxes[:, 4] = prob[:, 1]
        boxes = np.concatenate([ops.apply_regression(boxes, offsets), landmarks], axis=1)
        boxes = boxes[boxes[:, 4] > cfg.thresholds[2]]
        if boxes.shape[0] == 0:
            return boxes
        return ops.nms(boxes, cfg.nms_thresholds[3], method="min")
