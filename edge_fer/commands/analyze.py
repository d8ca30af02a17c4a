"""``edge-fer analyze IMAGE...``: faces and emotions in still images, as a table or JSON lines."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edge_fer.commands.analyzer_options import add_analyzer_arguments, analyzer_from_args
from edge_fer.commands.argtypes import positive_int

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
    add_analyzer_arguments(parser)


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
    from edge_fer.outputs.annotate import annotate_faces

    analyzer = analyzer_from_args(args, _error)
    if isinstance(analyzer, int):
        return analyzer
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
