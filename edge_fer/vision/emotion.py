"""Emotion classification with any ONNX model that describes itself in edge-fer metadata.

Everything model-specific (labels and their order, input size, colour, normalisation, whether the
output is already a probability) comes from the file's ``metadata_props`` (see
``edge_fer/models/MODELS.md``), so a model trained later drops in without a code change.

Scores always come back in the canonical order of ``EMOTIONS``, whatever the model's output
order. A model that knows only some of the seven labels reports only those: ``labels`` (and every
``Emotion.scores``) then holds its own labels, still in canonical order, and nothing is invented
for the missing ones.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_fer.vision.onnx_session import (
    DEFAULT_EMOTION_MODELS,
    DEFAULT_FLIP,
    ModelError,
    emotion_model_path,
    metadata,
    open_session,
)
from edge_fer.vision.types import EMOTIONS, Emotion

log = logging.getLogger("edge_fer.emotion")

COLORS = ("gray", "rgb", "bgr")
OUTPUTS = ("probabilities", "logits")
# Enlarging a crop (FER2013's 48 px faces into a 64 px model) uses this; shrinking always uses
# INTER_AREA. Chosen by measurement on FER2013 val, see docs/alignment.md.
UPSCALE_INTERPOLATION = "linear"


@dataclass(frozen=True)
class EmotionModelSpec:
    """How to feed one model and read its output, parsed from and checked against its metadata."""

    name: str
    labels: tuple[str, ...]  # in the model's output order
    width: int
    height: int
    color: str
    mean: tuple[float, ...]  # one value, or one per channel
    std: tuple[float, ...]
    output: str = "probabilities"

    def __post_init__(self) -> None:
        if not self.labels:
            raise ValueError("labels are empty")
        unknown = [label for label in self.labels if label not in EMOTIONS]
        if unknown:
            raise ValueError(f"labels {unknown} are not among {list(EMOTIONS)}")
        if len(set(self.labels)) != len(self.labels):
            raise ValueError(f"labels repeat: {list(self.labels)}")
        if self.width < 8 or self.height < 8:
            raise ValueError(f"input_size {[self.width, self.height]} is too small")
        if self.color not in COLORS:
            raise ValueError(f"color must be one of {list(COLORS)}, not {self.color!r}")
        if self.output not in OUTPUTS:
            raise ValueError(f"output must be one of {list(OUTPUTS)}, not {self.output!r}")
        for key, values in (("mean", self.mean), ("std", self.std)):
            if len(values) not in (1, self.channels):
                raise ValueError(f"normalization {key} needs 1 or {self.channels} values, got {len(values)}")
        if any(s == 0 for s in self.std):
            raise ValueError("normalization std must not be zero")

    @property
    def channels(self) -> int:
        return 1 if self.color == "gray" else 3

    @classmethod
    def from_metadata(cls, meta: Mapping[str, str]) -> EmotionModelSpec:
        """Parse the ``edge_fer.*`` keys; raises ValueError saying which key is wrong."""
        role = meta.get("edge_fer.role", "emotion")
        if role != "emotion":
            raise ValueError(f"edge_fer.role is {role!r}, not 'emotion'")
        layout = meta.get("edge_fer.layout", "NHWC")
        if layout != "NHWC":
            raise ValueError(f"edge_fer.layout {layout!r} is not supported (only NHWC)")
        labels = _json_key(meta, "edge_fer.labels")
        size = _json_key(meta, "edge_fer.input_size")
        norm = _json_key(meta, "edge_fer.normalization")
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise ValueError("edge_fer.labels must be a JSON list of label names")
        if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) for v in size)):
            raise ValueError("edge_fer.input_size must be a JSON list [width, height] of integers")
        if not (isinstance(norm, dict) and "mean" in norm and "std" in norm):
            raise ValueError('edge_fer.normalization must be a JSON object {"mean": ..., "std": ...}')
        if "edge_fer.color" not in meta:
            raise ValueError("edge_fer.color is missing")
        return cls(
            name=meta.get("edge_fer.name", "emotion"),
            labels=tuple(label.lower() for label in labels),
            width=size[0],
            height=size[1],
            color=meta["edge_fer.color"],
            mean=_floats(norm["mean"], "mean"),
            std=_floats(norm["std"], "std"),
            output=meta.get("edge_fer.output", "probabilities"),
        )


def _json_key(meta: Mapping[str, str], key: str):
    if key not in meta:
        raise ValueError(f"{key} is missing")
    try:
        return json.loads(meta[key])
    except json.JSONDecodeError:
        raise ValueError(f"{key} is not valid JSON: {meta[key][:60]!r}") from None


def _floats(value, key: str) -> tuple[float, ...]:
    values = value if isinstance(value, list) else [value]
    if not values or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise ValueError(f"normalization {key} must be a number or a list of numbers")
    return tuple(float(v) for v in values)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def resize_crop(crop: np.ndarray, width: int, height: int, upscale: str = UPSCALE_INTERPOLATION) -> np.ndarray:
    """Resize with INTER_AREA when shrinking (no aliasing) and ``upscale`` (linear or area) otherwise."""
    import cv2

    h, w = crop.shape[:2]
    if (w, h) == (width, height):
        return crop
    if w >= width and h >= height:
        interpolation = cv2.INTER_AREA
    else:
        interpolation = {"linear": cv2.INTER_LINEAR, "area": cv2.INTER_AREA, "cubic": cv2.INTER_CUBIC}[upscale]
    return cv2.resize(crop, (width, height), interpolation=interpolation)


# Dark faces (a dim room, a face in shadow) are far from the evenly lit crops the models learnt from, and the
# models read them as sad or angry. A crop darker than DARK_MEAN (mean grey level, 0-255) is stretched to the
# brightness and contrast of an average FER2013 crop (LIT_MEAN, LIT_STD, measured on the val split) before
# the model's own normalisation. Measured 2026-12-04 with the default pair (`edge-fer eval`, `edge-fer eval-wild`
# with and without --relight-dark): FER2013 val 0.6835 either way; laughing faces in the dim Hamilton clip 2 -> 5
# of 8 claimed right; the development photos unchanged (0.847). Lighter crops are left exactly as they are.
DARK_MEAN = 60.0
LIT_MEAN, LIT_STD = 129.0, 54.0


def relight_dark(img: np.ndarray) -> np.ndarray:
    """``img`` itself when it is lit well enough, else a copy stretched to FER2013's brightness and contrast."""
    mean = float(img.mean())
    if mean >= DARK_MEAN:
        return img
    std = float(img.std())
    out = (img.astype(np.float32) - mean) * (LIT_STD / max(std, 1.0)) + LIT_MEAN
    return np.clip(out, 0, 255).astype(np.uint8)


class EmotionModel:
    """One ONNX emotion model: preprocessing from its metadata, output reordered to canonical labels."""

    def __init__(
        self,
        path: str | Path,
        threads: int = 1,
        upscale: str = UPSCALE_INTERPOLATION,
        relight: bool = True,
        providers: tuple[str, ...] = ("CPUExecutionProvider",),
        provider_fallback: bool = False,
    ) -> None:
        self.path = Path(path)
        self.relight = relight
        self.session = open_session(self.path, threads=threads, providers=providers, fallback=provider_fallback)
        try:
            self.spec = EmotionModelSpec.from_metadata(metadata(self.session))
        except ValueError as exc:
            raise ModelError(
                f"{self.path}: not an edge-fer emotion model ({exc}); export it with `python -m export emotion`"
            ) from None
        self._check_io()
        self.upscale = upscale
        self.labels = tuple(label for label in EMOTIONS if label in self.spec.labels)
        self._columns = np.array([self.spec.labels.index(label) for label in self.labels])
        self.sha256 = file_sha256(self.path)

    def _check_io(self) -> None:
        spec, inputs, outputs = self.spec, self.session.get_inputs(), self.session.get_outputs()
        expected = [spec.height, spec.width, spec.channels]
        shape = list(inputs[0].shape) if len(inputs) == 1 else []
        if len(shape) != 4 or any(isinstance(d, int) and d != e for d, e in zip(shape[1:], expected)):
            raise ModelError(
                f"{self.path}: input shape {shape} does not match the metadata (N, {spec.height}, {spec.width}, "
                f"{spec.channels}); fix edge_fer.input_size/color or re-export the model"
            )
        n_out = outputs[0].shape[-1] if outputs and outputs[0].shape else None
        if isinstance(n_out, int) and n_out != len(spec.labels):
            raise ModelError(
                f"{self.path}: the model has {n_out} outputs but edge_fer.labels names {len(spec.labels)}; "
                "fix the labels metadata"
            )
        self._input_name = inputs[0].name

    def preprocess(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """BGR (or gray) uint8 crops of any size -> normalised float32 NHWC batch."""
        import cv2

        spec = self.spec
        batch = np.empty((len(crops), spec.height, spec.width, spec.channels), dtype=np.float32)
        for i, crop in enumerate(crops):
            crop = _as_bgr_or_gray(crop, i)
            if spec.color == "gray":
                img = crop if crop.ndim == 2 else cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
            else:
                img = cv2.cvtColor(crop, cv2.COLOR_GRAY2BGR) if crop.ndim == 2 else crop
                if spec.color == "rgb":
                    img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
            img = resize_crop(img, spec.width, spec.height, self.upscale)
            if self.relight:
                img = relight_dark(img)
            batch[i] = img.reshape(spec.height, spec.width, spec.channels)
        batch -= np.asarray(spec.mean, dtype=np.float32)
        batch /= np.asarray(spec.std, dtype=np.float32)
        return batch

    def predict(self, crops: Sequence[np.ndarray], flip: bool = False) -> np.ndarray:
        """Probabilities (N, len(labels)) in canonical label order; with ``flip``, averaged with the mirror."""
        if len(crops) == 0:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        batch = self.preprocess(crops)
        if flip:
            batch = np.concatenate([batch, batch[:, :, ::-1, :]])
        raw = np.asarray(self.session.run(None, {self._input_name: np.ascontiguousarray(batch)})[0], np.float32)
        probs = _softmax(raw) if self.spec.output == "logits" else raw
        if flip:
            probs = (probs[: len(crops)] + probs[len(crops) :]) / 2
        return probs[:, self._columns]


def _as_bgr_or_gray(crop: np.ndarray, index: int) -> np.ndarray:
    crop = np.asarray(crop)
    if crop.dtype != np.uint8 or crop.size == 0:
        raise ValueError(f"crop {index}: expected a non-empty uint8 image, got {crop.dtype} {crop.shape}")
    if crop.ndim == 3 and crop.shape[2] == 1:
        return crop[:, :, 0]
    if crop.ndim == 2 or (crop.ndim == 3 and crop.shape[2] == 3):
        return crop
    raise ValueError(f"crop {index}: expected a BGR (H, W, 3) or gray (H, W) image, got shape {crop.shape}")


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def model_identity(sha256s: Sequence[str]) -> str:
    """The one 12-digit identity of a model or an ensemble, as events, the log and ``eval`` show it.

    A single model's is the start of its file's sha256 (what MODELS.md lists); an ensemble's is the hash
    of its members' full hashes in order, so changing, adding or reordering a member changes it, and it
    fits the event schema's one hash field.
    """
    if len(sha256s) == 1:
        return sha256s[0][:12]
    return hashlib.sha256("+".join(sha256s).encode()).hexdigest()[:12]


class EmotionClassifier:
    """One model, or several averaged (an ensemble), with optional horizontal-flip test-time augmentation.

    ``models`` takes paths or bundled short names (``mini_xception``); none means the bundled default.
    ``relight`` stretches dark crops to FER2013's light before classifying them (:func:`relight_dark`).
    """

    def __init__(
        self,
        models: str | Path | Sequence[str | Path] | None = None,
        flip: bool = DEFAULT_FLIP,
        threads: int = 1,
        upscale: str = UPSCALE_INTERPOLATION,
        relight: bool = True,
        providers: tuple[str, ...] = ("CPUExecutionProvider",),
        provider_fallback: bool = False,
    ) -> None:
        if isinstance(models, (str, Path)):
            models = [models]
        paths = [emotion_model_path(m) for m in (models or DEFAULT_EMOTION_MODELS)]
        session = {"providers": providers, "provider_fallback": provider_fallback}  # config's classifier.providers
        self.models = [EmotionModel(p, threads=threads, upscale=upscale, relight=relight, **session) for p in paths]
        self.flip = flip
        first = self.models[0]
        for other in self.models[1:]:
            if set(other.labels) != set(first.labels):
                raise ModelError(
                    f"{other.path}: labels {list(other.labels)} differ from {first.path}'s {list(first.labels)}; "
                    "an ensemble needs models with the same labels"
                )
        self.labels: tuple[str, ...] = first.labels
        self.name = "+".join(m.spec.name for m in self.models)
        self.sha256_id = model_identity([m.sha256 for m in self.models])
        log.info("emotion model %s (%s), labels %s, flip=%s", self.name, self.sha256_id, self.labels, flip)

    @property
    def input_size(self) -> tuple[int, int]:
        """Largest (width, height) among the models: the size worth cropping faces at."""
        return (max(m.spec.width for m in self.models), max(m.spec.height for m in self.models))

    def predict(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """Probabilities (N, len(labels)), one row per crop, all crops in one batch per model."""
        probs = [m.predict(crops, flip=self.flip) for m in self.models]
        return np.mean(probs, axis=0) if len(probs) > 1 else probs[0]

    def classify(self, crops: Sequence[np.ndarray]) -> list[Emotion]:
        probs = self.predict(crops)
        return [Emotion.from_scores(dict(zip(self.labels, map(float, row)))) for row in probs]
