"""Load FER2013-style data once into memory, as uint8 arrays, from folders or Kaggle's ``fer2013.csv``.

FER2013 is 28,709 training faces of 48x48: 66 MB as uint8, so decoding once and slicing arrays beats
any on-disk pipeline on a 2-core machine. Images keep their native size when they all share one no
larger than the model input (upsampling happens with augmentation, in one resampling step);
otherwise they are resized to the input size here, with area interpolation.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from export.emotion import CANONICAL_LABELS, FER2013_LABELS

log = logging.getLogger("edge_fer.export.data")

# Kaggle's fer2013.csv numbers its classes in this order, which is not the canonical one.
FER2013_CSV_LABELS = FER2013_LABELS
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".ppm", ".tif", ".tiff", ".webp"})
CLASS_WEIGHT_MODES = ("none", "balanced", "sqrt")


@dataclass(frozen=True)
class Split:
    """Images as uint8 ``(N, H, W, C)`` and label indices into the data set's ``labels``."""

    images: np.ndarray
    labels: np.ndarray

    def __post_init__(self) -> None:
        if self.images.dtype != np.uint8 or self.images.ndim != 4:
            raise ValueError(f"images must be uint8 (N, H, W, C), got {self.images.dtype} {self.images.shape}")
        if self.labels.shape != (len(self.images),):
            raise ValueError(f"{len(self.images)} images but labels have shape {self.labels.shape}")

    def __len__(self) -> int:
        return len(self.labels)

    def counts(self, classes: int) -> np.ndarray:
        return np.bincount(self.labels, minlength=classes)[:classes]

    def take(self, index: np.ndarray) -> Split:
        return Split(self.images[index], self.labels[index])


@dataclass(frozen=True)
class DataSet:
    """Train and validation splits sharing one label list (canonical names, canonical order)."""

    labels: tuple[str, ...]
    train: Split
    val: Split
    source: str
    val_source: str

    def __post_init__(self) -> None:
        if len(self.train) == 0:
            raise ValueError(f"{self.source}: no training images")
        if len(self.val) == 0:
            raise ValueError(f"{self.source}: no validation images; add a val/ folder or more training images")
        if self.train.images.shape[1:] != self.val.images.shape[1:]:
            raise ValueError(f"train images are {self.train.images.shape[1:]} but val are {self.val.images.shape[1:]}")

    def describe(self) -> dict[str, object]:
        k = len(self.labels)
        return {
            "source": self.source,
            "val_source": self.val_source,
            "labels": list(self.labels),
            "train_counts": dict(zip(self.labels, self.train.counts(k).tolist())),
            "val_counts": dict(zip(self.labels, self.val.counts(k).tolist())),
            "stored_size": list(self.train.images.shape[1:3]),
        }


def canonical_label(name: str, where: Path | str) -> str:
    label = name.strip().lower()
    if label not in CANONICAL_LABELS:
        raise ValueError(f"{where}: {name!r} is not an emotion label; name folders {', '.join(CANONICAL_LABELS)}")
    return label


def _read_image(path: Path, color: str) -> np.ndarray:
    import cv2

    flag = cv2.IMREAD_GRAYSCALE if color == "gray" else cv2.IMREAD_COLOR
    image = cv2.imdecode(np.fromfile(str(path), dtype=np.uint8), flag)
    if image is None:
        raise ValueError(f"{path}: not a readable image; delete it or replace it")
    if color == "gray":
        return image[:, :, None]
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _label_folders(split_dir: Path) -> dict[str, Path]:
    folders: dict[str, Path] = {}
    for child in sorted(p for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        label = canonical_label(child.name, child)
        if label in folders:
            raise ValueError(f"{child}: same label as {folders[label]}; merge the two folders")
        folders[label] = child
    if not folders:
        raise ValueError(f"{split_dir}: no label folders; expected {split_dir}/<label>/*.jpg")
    return folders


def _read_folder_split(split_dir: Path, color: str) -> tuple[list[np.ndarray], list[str]]:
    images: list[np.ndarray] = []
    labels: list[str] = []
    for label, folder in _label_folders(split_dir).items():
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        images.extend(_read_image(p, color) for p in files)
        labels.extend([label] * len(files))
    return images, labels


def _read_csv(path: Path, color: str) -> dict[str, tuple[list[np.ndarray], list[str]]]:
    splits: dict[str, tuple[list[np.ndarray], list[str]]] = {"Training": ([], []), "PublicTest": ([], [])}
    skipped = 0
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"emotion", "pixels", "Usage"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path}: missing column(s) {sorted(missing)}; expected Kaggle's emotion,pixels,Usage")
        for line, row in enumerate(reader, start=2):
            usage = row["Usage"].strip()
            if usage not in splits:
                skipped += 1  # PrivateTest stays held out: it is never used for training or selection
                continue
            try:
                label = FER2013_CSV_LABELS[int(row["emotion"])]
                pixels = np.array(row["pixels"].split(), dtype=np.uint8)
            except (ValueError, IndexError, OverflowError):
                raise ValueError(f"{path}:{line}: bad emotion or pixels value; is this Kaggle's fer2013.csv?") from None
            side = round(len(pixels) ** 0.5)
            if side * side != len(pixels) or side == 0:
                raise ValueError(f"{path}:{line}: {len(pixels)} pixels is not a square image")
            image = pixels.reshape(side, side, 1)
            splits[usage][0].append(image if color == "gray" else np.repeat(image, 3, axis=2))
            splits[usage][1].append(label)
    log.info("%s: skipped %d rows not marked Training or PublicTest", path, skipped)
    return splits


def _stack(images: list[np.ndarray], shape: tuple[int, int] | None, size: int) -> np.ndarray:
    import cv2

    if shape is not None:
        return np.stack(images)
    channels = images[0].shape[2]
    out = np.empty((len(images), size, size, channels), np.uint8)
    for i, image in enumerate(images):
        resized = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
        out[i] = resized.reshape(size, size, channels)
    return out


def _limit(split: Split, limit: int | None, rng: np.random.Generator) -> Split:
    if limit is None:
        return split
    keep = []
    for c in np.unique(split.labels):
        members = np.flatnonzero(split.labels == c)
        keep.append(np.sort(rng.permutation(members)[:limit]))
    return split.take(np.sort(np.concatenate(keep))) if keep else split


def stratified_holdout(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val): ``fraction`` of each label (at least one where a label has two or more)."""
    if not 0 < fraction < 1:
        raise ValueError(f"validation fraction must be between 0 and 1, not {fraction}")
    rng = np.random.default_rng([seed, 7919])
    val = []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        if len(members) >= 2:
            val.append(members[: max(1, round(len(members) * fraction))])
    held = np.sort(np.concatenate(val)) if val else np.zeros(0, np.int64)
    mask = np.ones(len(labels), bool)
    mask[held] = False
    return np.flatnonzero(mask), held


def load_dataset(
    root: str | Path,
    color: str,
    size: int,
    *,
    limit_per_class: int | None = None,
    val_fraction: float = 0.1,
    seed: int = 0,
) -> DataSet:
    """Read ``ROOT/train/<label>/*`` (+ optional ``ROOT/val``) or a Kaggle ``fer2013.csv``."""
    root = Path(root)
    csv_path = root if root.is_file() else root / "fer2013.csv"
    if root.is_dir() and (root / "train").is_dir():
        train_raw = _read_folder_split(root / "train", color)
        val_raw = _read_folder_split(root / "val", color) if (root / "val").is_dir() else ([], [])
        source, val_name = str(root), "val/ folder"
    elif csv_path.is_file():
        if csv_path.suffix.lower() != ".csv":
            raise ValueError(f"{root}: expected a folder with train/<label>/ or Kaggle's fer2013.csv")
        parts = _read_csv(csv_path, color)
        train_raw, val_raw = parts["Training"], parts["PublicTest"]
        source, val_name = str(csv_path), "PublicTest rows"
    elif not root.exists():
        raise ValueError(f"{root}: no such file or folder; pass --data a FER2013 folder or fer2013.csv")
    else:
        raise ValueError(f"{root}: expected train/<label>/ image folders (optional val/) or Kaggle's fer2013.csv")

    shapes = {im.shape[:2] for im in train_raw[0] + val_raw[0]}
    common = next(iter(shapes)) if len(shapes) == 1 else None
    keep_native = common is not None and max(common) <= size
    shape = common if keep_native else None
    present = set(train_raw[1])
    labels = tuple(lb for lb in CANONICAL_LABELS if lb in present)
    if not labels:
        raise ValueError(f"{source}: no training images found")
    unseen = sorted(set(val_raw[1]) - present)
    if unseen:
        raise ValueError(f"{source}: validation labels {unseen} have no training images")
    index = {lb: i for i, lb in enumerate(labels)}
    train = Split(_stack(train_raw[0], shape, size), np.array([index[lb] for lb in train_raw[1]], np.int64))
    rng = np.random.default_rng([seed, 104729])
    if val_raw[1]:
        val = Split(_stack(val_raw[0], shape, size), np.array([index[lb] for lb in val_raw[1]], np.int64))
    else:
        kept, held = stratified_holdout(train.labels, val_fraction, seed)
        train, val = train.take(kept), train.take(held)
        val_name = f"{val_fraction:g} of train held out per label (seed {seed})"
    return DataSet(labels, _limit(train, limit_per_class, rng), _limit(val, limit_per_class, rng), source, val_name)


def class_weights(counts: np.ndarray, mode: str) -> np.ndarray:
    """Per-class loss weights, scaled so the average training sample still weighs 1.

    ``balanced`` weighs each label by the inverse of its frequency (disgust, 1.5% of FER2013, gets
    about 9x); ``sqrt`` takes the square root of that, a milder push that costs less accuracy on
    the frequent labels.
    """
    if mode not in CLASS_WEIGHT_MODES:
        raise ValueError(f"class weights must be one of {', '.join(CLASS_WEIGHT_MODES)}, not {mode!r}")
    counts = np.asarray(counts, np.float64)
    weights = np.ones_like(counts)
    present = counts > 0
    if mode != "none":
        weights[present] = counts.sum() / (present.sum() * counts[present])
        if mode == "sqrt":
            weights = np.sqrt(weights)
    weights[~present] = 0.0
    return weights * counts.sum() / float((weights * counts).sum())
