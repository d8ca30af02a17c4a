"""MTCNN face detection on ONNX Runtime: the P-Net/R-Net/O-Net cascade in NumPy and OpenCV.

The three networks are the shipped exports of the ``mtcnn`` 1.0.0 package; everything between them
(pyramid, proposal decoding, suppression, squaring, crops, regression, landmarks) reproduces that
package's arithmetic so that our faces match its faces. Speed comes from batching R-Net and O-Net over
all candidates, vectorised box maths, cached pyramid plans, and skipping pyramid levels too small for
P-Net to say anything about.
"""

from __future__ import annotations

import logging

import numpy as np

from edge_fer.config.settings import DetectorSettings
from edge_fer.vision import mtcnn_ops as ops
from edge_fer.vision.mtcnn_pyramid import Helper, run_batch, run_pnet
from edge_fer.vision.types import Box, Detection

log = logging.getLogger("edge_fer.detector")

PNET_MODEL = "mtcnn_pnet.onnx"
RNET_MODEL = "mtcnn_rnet.onnx"
ONET_MODEL = "mtcnn_onet.onnx"
RNET_SIZE = 24
ONET_SIZE = 48
PNET_OUTPUTS = ["bbox_reg", "prob"]  # R-Net has the same two outputs
ONET_OUTPUTS = ["bbox_reg", "landmarks", "prob"]


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
    onnxruntime options instead of replacing the sessions afterwards.
    """

    def __init__(self, config: DetectorSettings | None = None, *, open_net=None) -> None:
        from edge_fer.vision.onnx_session import bundled_model, open_session

        self.config = config or DetectorSettings()  # the `detector:` settings model as it is
        open_net = open_net or open_session
        self._pnet = open_net(bundled_model(PNET_MODEL), self.config.threads)
        self._rnet = open_net(bundled_model(RNET_MODEL), self.config.threads)
        self._onet = open_net(bundled_model(ONET_MODEL), self.config.threads)
        self._plans: dict[tuple[int, int], tuple[tuple[float, int, int], ...]] = {}
        self._helper = Helper() if self.config.helper_thread else None

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
        import cv2

        bgr = as_bgr_image(image_bgr)
        height, width = bgr.shape[:2]
        image = np.subtract(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), np.float32(127.5), dtype=np.float32)
        image *= np.float32(1.0 / 128.0)  # exact: the reference's (pixel - 127.5) / 128
        cfg = self.config
        min_face = cfg.min_face_size if min_face_size is None else max(float(min_face_size), 1.0)
        boxes = self._stage_pnet(image, min_face, chained_pyramid)
        if boxes.shape[0]:
            boxes = self._stage_rnet(image, boxes)
        if boxes.shape[0]:
            boxes = self._stage_onet(image, boxes)
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

    def _stage_pnet(self, image: np.ndarray, min_face: float, chained: bool) -> np.ndarray:
        cfg = self.config
        plan = self.pyramid(*image.shape[:2], min_face)
        per_level = []
        for (scale, _, _), (bbox_reg, prob) in zip(plan, run_pnet(self._pnet, image, plan, self._helper, chained)):
            found = ops.pnet_proposals(bbox_reg[0], prob[0, :, :, 1], scale, cfg.thresholds[0])
            if found.shape[0]:
                per_level.append(found[ops.nms_keep(found, cfg.nms_thresholds[0])])
        if not per_level:
            return np.empty((0, 5), dtype=np.float64)
        boxes = ops.nms(np.concatenate(per_level, axis=0), cfg.nms_thresholds[1])
        return ops.to_square(boxes)

    def _stage_rnet(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        cfg = self.config
        crops = ops.crop_and_resize(image, boxes, RNET_SIZE)
        offsets, prob = run_batch(self._rnet, PNET_OUTPUTS, crops, self._helper)
        boxes = boxes.copy()
        boxes[:, 4] = prob[:, 1]
        boxes = ops.apply_regression(boxes, offsets)
        boxes = boxes[boxes[:, 4] > cfg.thresholds[1]]
        if boxes.shape[0] == 0:
            return boxes
        return ops.to_square(ops.nms(boxes, cfg.nms_thresholds[2]))

    def _stage_onet(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        cfg = self.config
        crops = ops.crop_and_resize(image, boxes, ONET_SIZE)
        offsets, raw_landmarks, prob = run_batch(self._onet, ONET_OUTPUTS, crops, self._helper, min_split=16)
        landmarks = ops.onet_landmarks(raw_landmarks, boxes).reshape(-1, 10)
        boxes = boxes.copy()
        boxes[:, 4] = prob[:, 1]
        boxes = np.concatenate([ops.apply_regression(boxes, offsets), landmarks], axis=1)
        boxes = boxes[boxes[:, 4] > cfg.thresholds[2]]
        if boxes.shape[0] == 0:
            return boxes
        return ops.nms(boxes, cfg.nms_thresholds[3], method="min")
