"""``edge-fer analyze INPUT...``: faces and emotions in still images, folders of them, and videos.

Stills are printed as a table or one JSON line each. A video (a file, or an ``rtsp://``/``http(s)://`` URL)
goes through the daemon's pipeline (``edge_fer.offline.video``) and leaves a per-frame table, a per-track
summary and a timeline picture in ``--out``; a summary per video is printed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
from pathlib import Path

from edge_fer.commands.analyzer_options import add_analyzer_arguments, analyzer_from_args
from edge_fer.commands.argtypes import positive_int

NAME = "analyze"
HELP = (
    "Find faces and their emotions in images, folders of images and videos; for a video, write a per-frame "
    "table, a per-track summary and a timeline picture."
)
PRINTED_TRACKS = 20  # a long video's other tracks are in its track summary file
WRITABLE = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "images",
        metavar="INPUT",
        nargs="+",
        help="image files (JPEG, PNG, BMP, WebP, TIFF, ...), folders of images, video files, rtsp:// or http(s):// "
        "URLs",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per image or video on stdout")
    parser.add_argument(
        "--annotate", metavar="DIR", help="write copies (videos: NAME.avi) with boxes, landmarks and emotions into DIR"
    )
    parser.add_argument(
        "--out", metavar="DIR", default=".", help="where a video's tables and timeline go (current directory)"
    )
    parser.add_argument(
        "--table", choices=("csv", "jsonl", "both"), default="both", help="per-frame table format of a video (both)"
    )
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar for videos on stderr (default: when stderr is a terminal)",
    )
    parser.add_argument("--max-frames", metavar="N", type=positive_int, help="stop each video after N frames")
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
        quality = "" if face.quality is None else f"q {face.quality.score:.2f}  "
        label = face.emotion.label if face.claim else f"({face.emotion.label})"  # abstained: for reference only
        lines.append(
            f"  {i:>2}  box {b.x:6.0f} {b.y:6.0f} {b.w:5.0f}x{b.h:<5.0f}  det {face.detection.score:.2f}  {quality}"
            f"{label:<10} {face.emotion.confidence:.2f}" + (f"  ({others})" if others else "")
        )
    if any(not face.claim for face in faces):
        lines.append("  (label): edge-fer abstains on that face (quality or confidence below classifier.claim)")
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

    from edge_fer.offline.inputs import InputError, classify

    failed, total, kinds, analyzer = 0, 0, set(), None
    writer = _AnnotatedWriter(Path(args.annotate)) if args.annotate else None
    stop = threading.Event()
    with _stop_on_signals(stop):
        for name in args.images:  # in the order given, so error lines come in that order too
            if stop.is_set():
                break
            try:
                items = classify(name)
            except InputError as exc:
                _error(str(exc))
                failed, total = failed + 1, total + 1
                continue
            if analyzer is None:  # models load once, and only when there is something to analyse
                analyzer = analyzer_from_args(args, _error)
                if isinstance(analyzer, int):
                    return analyzer
            for item in items:
                if stop.is_set():
                    break
                total += 1
                kinds.add("image" if item.kind == "image" else "video")
                if item.kind == "image":
                    failed += _still(args, analyzer, item.name, writer)
                else:
                    failed += _video(args, analyzer, item, stop)
    if stop.is_set():
        _error("interrupted; the results of what was finished are written")
        return exitcodes.FORCED + signal.SIGINT
    if failed:
        what = {frozenset({"image"}): "images", frozenset({"video"}): "videos"}.get(frozenset(kinds), "inputs")
        _error(f"{failed} of {total} {what} failed")
    return exitcodes.FAILURE if failed else exitcodes.OK


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event):
    """Ctrl-C or SIGTERM ends the analysis between frames, so the tables and the timeline of what was done
    are written; a second one interrupts at once. The previous handlers come back afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _still(args: argparse.Namespace, analyzer, name: str, writer: _AnnotatedWriter | None) -> int:
    """Analyse one still; 1 when it failed (reported in one line), else 0."""
    from edge_fer.imageio import ImageError, load_image
    from edge_fer.outputs.annotate import annotate_faces

    try:
        image = load_image(name, args.max_pixels)
    except ImageError as exc:
        _error(str(exc))
        return 1
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
            return 1
    return 0


def _video(args: argparse.Namespace, analyzer, item, stop: threading.Event) -> int:
    """Analyse one video or stream; 1 when it failed or ended early (reported in one line), else 0."""
    from edge_fer.config.settings import DetectorSettings, TrackingSettings
    from edge_fer.offline.video import VideoAnalysis, VideoError, VideoOptions, stem_of

    show = sys.stderr.isatty() if args.progress is None else args.progress
    options = VideoOptions(
        out_dir=Path(args.out),
        csv=args.table in ("csv", "both"),
        jsonl=args.table in ("jsonl", "both"),
        annotate_dir=Path(args.annotate) if args.annotate else None,
        max_pixels=args.max_pixels,
        max_frames=args.max_frames,
        progress=sys.stderr if show else None,
    )
    detector = DetectorSettings(min_face_size=args.min_face)  # gated, as the daemon runs it
    runner = VideoAnalysis(analyzer, detector, TrackingSettings(), stop)
    try:
        result = runner.run(item, options, stem_of(item))
    except VideoError as exc:
        _error(str(exc))
        return 1
    except OSError as exc:
        _error(f"{item.name}: cannot write the results ({exc}); check --out and --annotate")
        return 1
    if args.json:
        print(json.dumps(result.to_dict()), flush=True)
    else:
        print(_video_text(result), flush=True)
    if result.problem:
        _error(result.problem)
        return 1
    return 0


def _video_text(result) -> str:
    speed = f"{result.frames / result.elapsed_s:.1f} fps" if result.elapsed_s > 0 else "-"
    realtime = f", {result.duration_s / result.elapsed_s:.1f}x real time" if result.elapsed_s > 0 else ""
    rate = f"{result.fps:.3g} fps" if result.fps else "rate unknown"
    lines = [
        f"{result.name} ({result.width}x{result.height}, {rate}): {result.frames} frames, {result.duration_s:.1f} s, "
        f"{len(result.tracks)} track{'' if len(result.tracks) == 1 else 's'}; analysed at {speed}{realtime}"
    ]
    tracks = sorted(result.tracks, key=lambda t: t.track_id)
    for t in tracks[:PRINTED_TRACKS]:
        shares = ", ".join(f"{k} {100 * v:.0f}%" for k, v in sorted(t.shares.items(), key=lambda kv: -kv[1]) if v)
        lines.append(
            f"  track {t.track_id:>3}  {t.first_s:7.2f}-{t.last_s:<7.2f} s  {t.duration_s:6.2f} s  "
            f"{t.dominant:<8} ({shares})"
        )
    if len(tracks) > PRINTED_TRACKS:
        lines.append(f"  ... {len(tracks) - PRINTED_TRACKS} more tracks in the track summary")
    lines += [f"  {path}" for path in result.files.values()]
    return "\n".join(lines)
