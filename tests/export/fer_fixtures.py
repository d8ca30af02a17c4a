"""Tiny FER2013-shaped data sets made from the public-domain astronaut photo.

Each label gets its own crop of the face, rotation and contrast, so the classes differ in real
image content (not in a synthetic pattern) and a network can start to separate them in one epoch.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

# Folder names in mixed case: the loader must match them case-insensitively.
FOLDERS = ("Angry", "DISGUST", "fear", "Happy", "neutral", "Sad", "Surprise")


def astronaut_gray() -> np.ndarray:
    from skimage import data

    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY)


def face_crop(label: int, index: int, size: int = 48) -> np.ndarray:
    """A ``size`` x ``size`` uint8 crop around the astronaut's face, varied by label and index."""
    gray = astronaut_gray()
    top, left = 30 + 6 * label + 2 * index, 150 + 8 * label - 2 * index
    crop = gray[top : top + 180, left : left + 180]
    rotation = cv2.getRotationMatrix2D((90, 90), (label - 3) * 12 + index, 1.0)
    crop = cv2.warpAffine(crop, rotation, (180, 180), borderMode=cv2.BORDER_REFLECT)
    gain = 0.6 + 0.1 * label
    crop = np.clip(crop.astype(np.float32) * gain + 10 * index, 0, 255).astype(np.uint8)
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)


def write_folder_set(root: Path, per_label: int = 6, split: str = "train") -> Path:
    for label, folder in enumerate(FOLDERS):
        out = root / split / folder
        out.mkdir(parents=True, exist_ok=True)
        for i in range(per_label):
            cv2.imwrite(str(out / f"{split}_{label}_{i}.png"), face_crop(label, i))
        (out / "notes.txt").write_text("not an image: the loader must skip it\n")
    return root


def write_fer2013_csv(path: Path, per_label: dict[str, int]) -> Path:
    """Rows in Kaggle's format; ``per_label`` gives rows per Usage for each of the 7 csv classes."""
    lines = ["emotion,pixels,Usage"]
    for csv_index in range(7):
        for usage, count in per_label.items():
            for i in range(count):
                pixels = " ".join(str(v) for v in face_crop(csv_index, i).ravel())
                lines.append(f"{csv_index},{pixels},{usage}")
    path.write_text("\n".join(lines) + "\n")
    return path
