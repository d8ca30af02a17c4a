"""``edge-fer analyze IMAGE...``: faces and emotions in still images, as a table or JSON lines."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edge_fer.commands.argtypes import add_classifier_arguments, positive_int

NAME = "analyze"
HELP = "Find faces and their emotions in still images; print a table or one JSON line per image."
OPTION_OF = {"models": "--model", "margin": "--margin", "align": "--align", "flip": "--flip"}
WRITABLE = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", metavar="IMAGE", nargs="+", help="image files (JPEG, PNG, BMP, WebP, TIFF, ...)")
    parser.add_argument("--json", action="store_true", help="one JSON object per image on stdout")
    parser.add_argument("--annotate", metavar="DIR", help="write copies with boxes, landmarks and emotions into DIR")
    parser.add_argument(
        "--max-pixels",
        metavar="N",
        type=positive_int,
        default=40_000_000,
        help="refuse images with more pixels, before decoding them (40000000)",
    )
    from edge_fer.config.settings import DetectorSettings

    default = DetectorSettings().min_face_size  # the daemon's detector.min_face_size: both find the same faces
    parser.add_argument(
        "--min-face", metavar="PX", type=_min_face, default=default, help=f"smallest face to look for ({default:g})"
    )
    add_classifier_arguments(parser, per="face")
    parser.add_argument(
        "--align", choices=("similarity", "box"), default="similarity", help="face crop: landmarks or box"
    )
    parser.add_argument(
        "--margin", type=float, default=None, help="extra context around the face, fraction per side (0)"
    )


def _min_face(text: str) -> float:
    """A face size the config's ``detector.min_face_size`` would accept, checked by that same model."""
    from pydantic import ValidationError

    from edge_fer.config.settings import DetectorSettings

    try:
        return DetectorSettings(min_face_size=text).min_face_size
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc.errors()[0]['msg']} (pixels)") from None


def _error(message: str) -> None:
    print(f"edge-fer analyze: {message}", file=sys.stderr, flush=True)


def _table(path: str, image, faces) -> str:
    height, width = image.shape[:2]
    count = f"{len(faces)} face" + ("" if len(faces) == 1 else "s")
    lines = [f"{path} ({width}x{height}): {count}"]
    for i, face in enumerate(faces, 1):
        b = face.box
        runner_up = sorted(face.emotion.scores.items(), key=lambda kv: -kv[1])[1:3]
        others = ", ".join(f"{label} {p:.2f}" for label, p in runner_up)
        lines.append(
            f"  {i:>2}  box {b.x:6.0f} {b.y:6.0f} {b.w:5.0f}x{b.h:<5.0f}  det {face.detection.score:.2f}  "
            f"{face.emotion.label:<8} {face.emotion.confidence:.2f}" + (f"  ({others})" if others else "")
        )
    return "\n".join(lines)


class _AnnotatedWriter:
    """Annotated copies under one directory, named after their source; repeated names get -2, -3, ..."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.used: set[str] = set()

    def write(self, source: Path, image) -> Path:
        import cv2

        suffix = source.suffix.lower() if source.suffix.lower() in WRITABLE else ".png"
        name, n = f"{source.stem}{suffix}", 1
        while name in self.used:
            n += 1
            name = f"{source.stem}-{n}{suffix}"
        self.used.add(name)
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.directory / name
        ok, encoded = cv2.imencode(suffix, image)
        if not ok:
            raise OSError(f"OpenCV cannot encode {suffix}")
        target.write_bytes(encoded.tobytes())
        return target


def run(args: argparse.Namespace) -> int:
    from edge_fer import exitcodes
    from edge_fer.imageio import prepare_opencv

    prepare_opencv(args.max_pixels)

    from pydantic import ValidationError

    from edge_fer.config.settings import ClassifierSection, DetectorSettings
    from edge_fer.imageio import ImageError, load_image
    from edge_fer.outputs.annotate import annotate_faces
    from edge_fer.vision.analyzer import FaceAnalyzer
    from edge_fer.vision.onnx_session import ModelError

    try:
        # The daemon's own sections and factory, so that analyze and the daemon find the same faces.
        detector = DetectorSettings(min_face_size=args.min_face, roi_detection=False)
        classifier = ClassifierSection(models=args.model or [], flip=args.flip, align=args.align, margin=args.margin)
        analyzer = FaceAnalyzer.from_settings(detector, classifier)
    except ModelError as exc:
        _error(str(exc))
        return exitcodes.UNAVAILABLE
    except ValidationError as exc:  # a model file that is not there, an alignment margin out of range
        problem = exc.errors()[0]
        field = str(problem["loc"][0]) if problem["loc"] else ""
        message = problem["msg"].removeprefix("Value error, ")
        _error(f"{OPTION_OF.get(field, field)}: {message}")
        # A missing model is an installation problem, as when the file is there but unusable.
        return exitcodes.UNAVAILABLE if field == "models" else exitcodes.USAGE
    writer = _AnnotatedWriter(Path(args.annotate)) if args.annotate else None
    failed = 0
    for name in args.images:
        try:
            image = load_image(name, args.max_pixels)
        except ImageError as exc:
            _error(str(exc))
            failed += 1
            continue
        faces = analyzer.analyze(image).faces
        if args.json:
            record = {
                "image": name,
                "width": int(image.shape[1]),
                "height": int(image.shape[0]),
                "faces": [face.to_json() for face in faces],
            }
            print(json.dumps(record), flush=True)
        else:
            print(_table(name, image, faces), flush=True)
        if writer is not None:
            try:
                writer.write(Path(name), annotate_faces(image, faces))
            except OSError as exc:
                _error(f"{args.annotate}: cannot write the annotated copy of {name} ({exc}); check the directory")
                failed += 1
    if failed:
        _error(f"{failed} of {len(args.images)} images failed")
    return exitcodes.FAILURE if failed else exitcodes.OK
