"""``edge-fer analyze IMAGE...``: faces and emotions in still images, as a table or JSON lines."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edge_fer.commands.argtypes import add_classifier_arguments, positive_int

NAME = "analyze"
HELP = "Find faces and their emotions in still images; print a table or one JSON line per image."
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
    parser.add_argument(
        "--min-face", metavar="PX", type=_positive_float, default=20.0, help="smallest face to look for (20)"
    )
    add_classifier_arguments(parser, per="face")
    parser.add_argument(
        "--align", choices=("similarity", "box"), default="similarity", help="face crop: landmarks or box"
    )
    parser.add_argument(
        "--margin", type=float, default=None, help="extra context around the face, fraction per side (0)"
    )


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 1.0 <= value <= 10000.0:
        raise argparse.ArgumentTypeError(f"{value:g} must be between 1 and 10000 pixels")
    return value


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

    from edge_fer.imageio import ImageError, load_image
    from edge_fer.vision.align import DEFAULT_MARGIN
    from edge_fer.vision.analyzer import FaceAnalyzer, annotate_faces
    from edge_fer.vision.onnx_session import ModelError

    try:
        analyzer = FaceAnalyzer.create(
            models=args.model,
            flip=args.flip,
            min_face_size=args.min_face,
            align_mode=args.align,
            margin=DEFAULT_MARGIN if args.margin is None else args.margin,
        )
    except ModelError as exc:
        _error(str(exc))
        return exitcodes.UNAVAILABLE
    except ValueError as exc:  # an alignment margin out of range
        _error(str(exc))
        return exitcodes.USAGE
    writer = _AnnotatedWriter(Path(args.annotate)) if args.annotate else None
    failed = 0
    for name in args.images:
        try:
            image = load_image(name, args.max_pixels)
        except ImageError as exc:
            _error(str(exc))
            failed += 1
            continue
        faces = analyzer.analyze(image)
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
