"""``python -m export camera-sheet``: a contact sheet of the camera recipe, one transform per row.

A picture is the quickest check that an augmentation looks like a camera and not like a bug (a blur
kernel off-centre, an occluder over the eyes, a perspective that folds the face). The sheet draws
every row with the training code itself (``camera_batch`` with all but one transform off), so what it
shows is what training sees. The default source face is the bundled public-domain astronaut photo, cut
by the runtime's own detector and aligner, i.e. the crop the classifier receives from a camera.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from export.camera_augment import CameraAugmentation

ASTRONAUT = Path(__file__).resolve().parent.parent / "edge_fer" / "assets" / "astronaut.jpg"
_STILL = {"rotation_deg": 0.0, "perspective": 0.0, "squash": 0.0, "zoom": 0.0, "shift": 0.0, "flip": False}
_OFF = {"p_occluder": 0.0, "p_dark": 0.0, "p_blur": 0.0, "p_lowres": 0.0, "p_noise": 0.0, "p_jpeg": 0.0}


def sheet_rows(cam: CameraAugmentation) -> list[tuple[str, CameraAugmentation | None]]:
    """(label, recipe) per row; ``None`` is the plain recipe (the one used at --camera-aug 0)."""
    still = replace(cam, **_STILL, **_OFF)
    return [
        ("plain", None),
        ("pose+crop", replace(cam, **_OFF)),
        ("occluder", replace(still, p_occluder=1.0)),
        ("low light", replace(still, p_dark=1.0)),
        ("blur", replace(still, p_blur=1.0)),
        ("small face", replace(still, p_lowres=1.0)),
        ("noise", replace(still, p_noise=1.0)),
        ("jpeg", replace(still, p_jpeg=1.0)),
        ("camera", cam),
    ]


def pipeline_face(path: Path, size: int = 48) -> np.ndarray:
    """The largest face of a photo as the runtime crops it (MTCNN landmarks, similarity alignment), gray."""
    import cv2

    from edge_fer.vision.align import FaceAligner
    from edge_fer.vision.mtcnn import MtcnnDetector

    image = cv2.imread(str(path))
    if image is None:
        raise ValueError(f"{path}: not a readable image")
    with MtcnnDetector() as detector:
        faces = detector.detect(image)
    if not faces:
        raise ValueError(f"{path}: no face found; give a photo with a visible face")
    face = max(faces, key=lambda d: d.box.w * d.box.h)
    return cv2.cvtColor(FaceAligner(size=size).align(image, face), cv2.COLOR_BGR2GRAY)


def load_faces(paths: list[Path], size: int = 48) -> np.ndarray:
    """``(N, size, size)`` uint8: already-cropped faces (e.g. FER2013 files) read as they are, resized if needed;
    with no paths, the astronaut through the runtime's crop."""
    import cv2

    if not paths:
        return pipeline_face(ASTRONAUT, size)[None]
    faces = []
    for path in paths:
        img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if img is None:
            raise ValueError(f"{path}: not a readable image")
        faces.append(cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA) if img.shape != (size, size) else img)
    return np.stack(faces)


def render_sheet(faces: np.ndarray, columns: int = 8, seed: int = 0, zoom: int = 2) -> np.ndarray:
    """The sheet as a gray uint8 image: the source in the first column, then ``columns`` draws per row."""
    import cv2
    import tensorflow as tf

    from export.augment import Augmentation, augment_batch
    from export.camera_augment import camera_batch

    size = faces.shape[1]
    batch = tf.constant(np.stack([faces[i % len(faces)] for i in range(columns)])[..., None])
    rows = []
    for step, (label, cam) in enumerate(sheet_rows(CameraAugmentation())):
        key = tf.constant([seed, step], tf.int64)
        if cam is None:
            out = augment_batch(batch, key, size, Augmentation(), 0.0, 1.0).numpy()
        else:
            out = camera_batch(batch, key, size, cam).numpy()
        tiles = [faces[0]] + [np.round(img[..., 0]).astype(np.uint8) for img in out]
        strip = cv2.resize(np.hstack(tiles), None, fx=zoom, fy=zoom, interpolation=cv2.INTER_NEAREST)
        caption = np.full((size * zoom, 100), 255, np.uint8)
        cv2.putText(caption, label, (4, size * zoom // 2 + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, 0, 1, cv2.LINE_AA)
        rows.append(np.hstack([caption, strip]))
    return np.vstack(rows)


def recipe_costs(faces: np.ndarray, batch: int = 64, repeats: int = 7) -> tuple[float, float]:
    """Median milliseconds per ``batch`` faces of the plain and the camera recipe (graph mode, as in tf.data),
    measured alternately in one process so that the machine's load weighs on both alike."""
    import time

    import tensorflow as tf

    from export.augment import Augmentation, augment_batch
    from export.camera_augment import camera_batch

    size = faces.shape[1]
    x = tf.constant(np.stack([faces[i % len(faces)] for i in range(batch)])[..., None])

    @tf.function
    def plain(key):
        return augment_batch(x, key, size, Augmentation(), 0.0, 1.0)

    @tf.function
    def camera(key):
        return camera_batch(x, key, size, CameraAugmentation())

    times: dict = {plain: [], camera: []}
    for step in range(repeats + 1):
        for fn in times:
            t0 = time.perf_counter()
            fn(tf.constant([0, step], tf.int64)).numpy()
            if step:  # the first call traces the graph
                times[fn].append(1000 * (time.perf_counter() - t0))
    return float(np.median(times[plain])), float(np.median(times[camera]))


def cmd_camera_sheet(args, argv: list[str]) -> int:
    import cv2

    faces = load_faces([Path(p) for p in args.images])
    sheet = render_sheet(faces, columns=args.columns, seed=args.seed)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), sheet, [cv2.IMWRITE_PNG_COMPRESSION, 9]):
        raise ValueError(f"{out}: cannot write the sheet (use a .png or .jpg name in a writable folder)")
    print(f"{out}: {len(sheet_rows(CameraAugmentation()))} rows x {args.columns} draws from {len(faces)} face(s)")
    plain_ms, camera_ms = recipe_costs(faces)
    print(f"per 64 faces: plain recipe {plain_ms:.1f} ms, camera recipe {camera_ms:.1f} ms "
          f"({camera_ms / plain_ms:.1f}x, same process, alternating; the machine's load weighs on both)")  # fmt: skip
    return 0


def add_camera_sheet_arguments(p) -> None:
    p.add_argument("--out", required=True, help="the PNG to write")
    p.add_argument("images", nargs="*", help="face crops to augment (default: the bundled astronaut photo's face)")
    p.add_argument("--columns", type=int, default=8, choices=range(1, 17), metavar="N", help="draws per row (8)")
    p.add_argument("--seed", type=int, default=0, help="augmentation seed (0)")
