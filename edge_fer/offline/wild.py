"""How the real pipeline does on real faces labelled by eye: a development set of boxes and labels.

FER2013 crops say little about a camera: there the face is found, cropped and lit for the model. A wild
set keeps only labels (image or video frame, box, label) and runs the whole analysis on the original
pictures, so detection, alignment and classification are judged together, as a user meets them.

A labelled face is *claimed* when the pipeline reports a face on it (IoU >= ``iou``) and does not abstain
(a face whose ``claim`` is false). Accuracy is over claimed faces, coverage is claimed / labelled. Boxes
labelled ``not_a_face`` (hair, blur, hands) count the other way: each one claimed is a false face.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge_fer.imageio import DEFAULT_MAX_PIXELS, ImageError, load_image
from edge_fer.offline.evaluate import Metrics, draw_confusion
from edge_fer.vision.types import EMOTIONS, Box

NOT_A_FACE = "not_a_face"
PHOTO_COLUMNS = ("image", "x", "y", "w", "h", "label")
VIDEO_COLUMNS = ("video", "frame", "x", "y", "w", "h", "label")


class WildSetError(ValueError):
    """The labels file cannot be used; the message names the file, the line and what to fix."""


@dataclass(frozen=True)
class LabelledFace:
    source: str  # image file name, or video file name
    frame: int | None  # video frame index; None for a photo
    box: Box
    label: str  # one of EMOTIONS, or NOT_A_FACE


@dataclass(frozen=True)
class WildSet:
    path: Path
    root: Path  # where the images or videos named in the file are
    faces: tuple[LabelledFace, ...]

    @classmethod
    def load(cls, path: str | Path, root: str | Path) -> WildSet:
        """Read ``image,x,y,w,h,label`` or ``video,frame,x,y,w,h,label`` rows (with that header)."""
        path, root = Path(path), Path(root)
        if not root.is_dir():
            raise WildSetError(f"{root}: not a directory; --root names the folder holding the labelled pictures")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise WildSetError(f"{path}: cannot read the labels ({exc})") from None
        rows = list(csv.reader(text.splitlines()))
        header = tuple(c.strip() for c in rows[0]) if rows else ()
        if header not in (PHOTO_COLUMNS, VIDEO_COLUMNS):
            raise WildSetError(f"{path}: the header must be {','.join(PHOTO_COLUMNS)} or {','.join(VIDEO_COLUMNS)}")
        video = header == VIDEO_COLUMNS
        faces = [_row(path, number, row, video) for number, row in enumerate(rows[1:], 2) if any(row)]
        if not faces:
            raise WildSetError(f"{path}: no labelled faces")
        return cls(path, root, tuple(faces))

    def groups(self) -> dict[tuple[str, int | None], list[LabelledFace]]:
        """Labelled faces by picture, in file order (frames of a video in increasing order)."""
        out: dict[tuple[str, int | None], list[LabelledFace]] = {}
        for face in self.faces:
            out.setdefault((face.source, face.frame), []).append(face)
        return dict(sorted(out.items(), key=lambda kv: (kv[0][0], -1 if kv[0][1] is None else kv[0][1])))


def _row(path: Path, number: int, row: list[str], video: bool) -> LabelledFace:
    where = f"{path}:{number}"
    width = len(VIDEO_COLUMNS if video else PHOTO_COLUMNS)
    if len(row) != width:
        raise WildSetError(f"{where}: expected {width} columns, got {len(row)}")
    source, rest = row[0].strip(), [c.strip() for c in row[1:]]
    frame = None
    if video:
        try:
            frame = int(rest.pop(0))
        except ValueError:
            raise WildSetError(f"{where}: frame must be a whole number") from None
    try:
        x, y, w, h = (float(v) for v in rest[:4])
        box = Box(x, y, w, h)
    except ValueError:
        raise WildSetError(f"{where}: x, y, w, h must be finite numbers with w and h >= 0") from None
    label = rest[4]
    if label not in EMOTIONS and label != NOT_A_FACE:
        raise WildSetError(f"{where}: label {label!r} is not one of {', '.join(EMOTIONS)}, {NOT_A_FACE}")
    if not source or "/" in source or source in (".", ".."):
        raise WildSetError(f"{where}: give a file name inside --root, not a path")
    return LabelledFace(source, frame, box, label)


@dataclass(frozen=True)
class Outcome:
    """What the pipeline said about one labelled box."""

    face: LabelledFace
    found: Box | None  # the reported face matched to it, if any
    predicted: str | None
    confidence: float | None
    claimed: bool


@dataclass
class WildResult:
    outcomes: list[Outcome]
    failures: list[str] = field(default_factory=list)  # pictures that could not be read

    @property
    def faces(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.face.label != NOT_A_FACE]

    @property
    def claimed(self) -> list[Outcome]:
        return [o for o in self.faces if o.claimed]

    @property
    def coverage(self) -> float:
        return len(self.claimed) / len(self.faces) if self.faces else 0.0

    @property
    def false_faces(self) -> int:
        return sum(1 for o in self.outcomes if o.face.label == NOT_A_FACE and o.claimed)

    @property
    def metrics(self) -> Metrics:
        index = {label: i for i, label in enumerate(EMOTIONS)}
        claimed = self.claimed
        return Metrics.from_predictions(
            EMOTIONS, [index[o.face.label] for o in claimed], [index[o.predicted] for o in claimed]
        )

    @property
    def mistakes(self) -> list[Outcome]:
        return [o for o in self.claimed if o.predicted != o.face.label]

    def to_json(self) -> dict:
        m = self.metrics
        return {
            "labelled_faces": len(self.faces),
            "claimed": len(self.claimed),
            "coverage": round(self.coverage, 4),
            "accuracy_on_claimed": round(m.accuracy, 4),
            "not_a_face_boxes": len(self.outcomes) - len(self.faces),
            "false_faces": self.false_faces,
            "unreadable": len(self.failures),
            **{k: v for k, v in m.to_json().items() if k in ("per_class", "labels", "confusion")},
        }


def match(labelled: list[LabelledFace], found: list, iou: float) -> list[tuple[LabelledFace, object | None]]:
    """Pair each labelled box with at most one reported face, best overlap first (greedy, like detection
    benchmarks do): a face reported twice cannot be right twice."""
    pairs = sorted(
        ((lf.box.iou(face.box), i, j) for i, lf in enumerate(labelled) for j, face in enumerate(found)),
        reverse=True,
    )
    taken_l: dict[int, int] = {}
    taken_f: set[int] = set()
    for overlap, i, j in pairs:
        if overlap < iou:
            break
        if i not in taken_l and j not in taken_f:
            taken_l[i] = j
            taken_f.add(j)
    return [(lf, found[taken_l[i]] if i in taken_l else None) for i, lf in enumerate(labelled)]


def pictures(wild: WildSet, max_pixels: int = DEFAULT_MAX_PIXELS) -> Iterator[tuple[tuple, np.ndarray | str]]:
    """Each labelled picture as a BGR image, or an error line when it cannot be read. Videos are read once,
    front to back (seeking by frame index is not exact in every container)."""
    import cv2

    groups = wild.groups()
    videos: dict[str, list[int]] = {}
    for source, frame in groups:
        if frame is None:
            try:
                yield (source, None), load_image(wild.root / source, max_pixels)
            except ImageError as exc:
                yield (source, None), str(exc)
        else:
            videos.setdefault(source, []).append(frame)
    for source, frames in videos.items():
        path = wild.root / source
        wanted = set(frames)
        capture = cv2.VideoCapture(str(path)) if path.is_file() else None
        index = 0
        try:
            while capture is not None and wanted:
                ok, image = capture.read()
                if not ok:
                    break
                if index in wanted:
                    wanted.discard(index)
                    yield (source, index), image
                index += 1
        finally:
            if capture is not None:
                capture.release()
        for frame in sorted(wanted):
            yield (source, frame), f"{path}: frame {frame} cannot be read (missing file, or the video is shorter)"


def evaluate_wild(
    wild: WildSet,
    analyze: Callable[[np.ndarray], list],
    iou: float = 0.5,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    keep_crops: bool = False,
) -> tuple[WildResult, dict[tuple, np.ndarray]]:
    """Run ``analyze`` (one BGR picture in, its faces out) on every labelled picture and score it.

    With ``keep_crops`` the pictures holding mistakes are kept (by key) for the report's contact sheet.
    """
    groups = wild.groups()
    result = WildResult([])
    kept: dict[tuple, np.ndarray] = {}
    for key, image in pictures(wild, max_pixels):
        labelled = groups[key]
        if isinstance(image, str):
            result.failures.append(image)
            result.outcomes.extend(Outcome(lf, None, None, None, False) for lf in labelled)
            continue
        faces = analyze(image)
        for lf, face in match(labelled, faces, iou):
            if face is None:
                result.outcomes.append(Outcome(lf, None, None, None, False))
                continue
            claimed = bool(getattr(face, "claim", True))
            outcome = Outcome(lf, face.box, face.emotion.label, float(face.emotion.confidence), claimed)
            result.outcomes.append(outcome)
            if keep_crops and claimed and lf.label not in (NOT_A_FACE, face.emotion.label):
                kept[key] = image
    return result, kept


def contact_sheet(mistakes: list[Outcome], images: dict[tuple, np.ndarray], tile: int = 128) -> np.ndarray:
    """The mistaken faces side by side, each with some context and ``true -> predicted confidence``."""
    import cv2

    tiles = []
    for o in mistakes:
        image = images.get((o.face.source, o.face.frame))
        if image is None:
            continue
        b = o.face.box
        side = max(b.w, b.h) * 1.5
        cx, cy = b.x + b.w / 2, b.y + b.h / 2
        x0, y0 = max(0, int(cx - side / 2)), max(0, int(cy - side / 2))
        x1, y1 = min(image.shape[1], int(cx + side / 2)), min(image.shape[0], int(cy + side / 2))
        crop = image[y0:y1, x0:x1]
        if crop.size == 0:
            continue
        t = cv2.resize(crop, (tile, tile), interpolation=cv2.INTER_AREA if crop.shape[0] > tile else cv2.INTER_LINEAR)
        t = cv2.copyMakeBorder(t, 30, 0, 0, 0, cv2.BORDER_CONSTANT, value=(255, 255, 255))
        cv2.putText(t, f"{o.face.label}->", (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(t, f"{o.predicted} {o.confidence:.2f}", (3, 26), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 200), 1)
        tiles.append(t)
    if not tiles:
        blank = np.full((60, 360, 3), 255, np.uint8)
        cv2.putText(blank, "no mistakes on claimed faces", (8, 36), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1)
        return blank
    per_row = 8
    while len(tiles) % per_row and len(tiles) > per_row:
        tiles.append(np.full_like(tiles[0], 255))
    rows = [np.hstack(tiles[i : i + per_row]) for i in range(0, len(tiles), per_row)]
    return np.vstack(rows)


def write_wild_report(
    result: WildResult, images: dict[tuple, np.ndarray], directory: str | Path, extra: dict | None = None
) -> list[Path]:
    """``confusion_matrix.png``, ``mistakes.png`` and ``report.json`` in ``directory``."""
    import cv2

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    confusion, sheet, js = directory / "confusion_matrix.png", directory / "mistakes.png", directory / "report.json"
    m = result.metrics
    heading = f"claimed faces: accuracy {m.accuracy:.3f}, coverage {result.coverage:.2f}, n={m.n}"
    for target, picture in ((confusion, draw_confusion(m, heading)), (sheet, contact_sheet(result.mistakes, images))):
        if not cv2.imwrite(str(target), picture):
            raise OSError(f"{target}: could not write the image")
    js.write_text(json.dumps({**result.to_json(), **(extra or {})}, indent=2) + "\n")
    return [confusion, sheet, js]
