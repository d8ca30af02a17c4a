"""Arguments and handlers for ``python -m export train`` and ``python -m export report``.

Training options default to ``None`` here so that a resumed run can tell an option the user typed
from one left out: the run's saved settings win, and a typed value that differs is refused rather
than silently changing a run halfway (a different ``--epochs`` would bend the cosine schedule).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import asdict, fields
from pathlib import Path

from export.architectures import ARCHITECTURES
from export.data import CLASS_WEIGHT_MODES


def _config_fields() -> list[str]:
    from export.train import TrainConfig

    return [f.name for f in fields(TrainConfig)]


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", help="FER2013-style folder (train/<label>/*, optional val/<label>/*) or fer2013.csv")
    p.add_argument("--out", required=True, help="run folder: checkpoint, history, reports, model.onnx")
    arch_help = "; ".join(f"{a.name}: {a.summary}" for a in ARCHITECTURES.values())
    p.add_argument("--arch", choices=list(ARCHITECTURES), help=f"network (default compact). {arch_help}")
    p.add_argument("--epochs", type=int, help="total epochs of the run, fixed at its start (default 60)")
    p.add_argument("--batch-size", type=int, help="default 64")
    p.add_argument("--lr", type=float, help="peak Adam learning rate after warm-up (default 1e-3)")
    p.add_argument("--seed", type=int, help="seeds weights, data order, augmentation, hold-out split (default 0)")
    p.add_argument("--label-smoothing", type=float, help="default 0.1")
    p.add_argument("--class-weights", choices=CLASS_WEIGHT_MODES, help="loss weight per label (default none)")
    p.add_argument("--patience", type=int, help="early stopping on val_loss, epochs; 0 turns it off (default 20)")
    p.add_argument("--input-size", type=int, help="input width = height in pixels (default: the architecture's)")
    p.add_argument("--limit-per-class", type=int, help="keep at most N images per label in each split (trials)")
    p.add_argument("--val-fraction", type=float, help="held out per label when there is no val split (0.1)")
    p.add_argument("--warmup-epochs", type=int, help="linear learning-rate warm-up before cosine decay (default 2)")
    p.add_argument("--weight-decay", type=float, help="decoupled weight decay (AdamW) when above 0 (default 0)")
    p.add_argument(
        "--camera-aug",
        type=float,
        metavar="P",
        help="share of each batch given camera-like augmentation (light, blur, low resolution, noise, JPEG, "
        "occluders, head pose); 0 keeps the plain recipe only (default 0)",
    )
    p.add_argument(
        "--teacher",
        action="append",
        metavar="MODEL",
        help="distil this emotion model (bundled name or ONNX file; repeat for an ensemble, averaged with flip) "
        "into the network: its probabilities on the training images become part of each target",
    )
    p.add_argument("--teacher-weight", type=float, help="share of the teacher in each target, 0-1 (default 0.7)")
    p.add_argument(
        "--teacher-temperature", type=float, help="> 1 flattens the teacher's probabilities first (default 2)"
    )
    p.add_argument(
        "--no-determinism",
        dest="deterministic",
        action="store_const",
        const=False,
        help="skip tf.config.experimental.enable_op_determinism()",
    )
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last epoch")
    p.add_argument("--export", action="store_true", help="export the best epoch to OUT/model.onnx at the end")
    p.add_argument("--name", default="", help="model name in the ONNX metadata and events (default: ARCH-OUTDIR)")
    p.add_argument("--stop-after", type=int, default=0, metavar="N", help="train N epochs in this call, then stop")
    p.add_argument(
        "--time-limit", type=float, default=0.0, metavar="MIN", help="stop before an epoch that would end past MIN"
    )


def add_report_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="a run folder written by python -m export train")
    p.add_argument("--export", action="store_true", help="also export the best epoch to RUN/model.onnx")
    p.add_argument("--name", default="", help="model name in the ONNX metadata and events (default: ARCH-RUNDIR)")


def resolve_config(args: argparse.Namespace, saved: dict | None):
    """The run's configuration: from the options when starting, from the checkpoint when resuming."""
    from export.train import TrainConfig

    given = {name: getattr(args, name) for name in _config_fields() if getattr(args, name, None) is not None}
    if "data" in given:
        given["data"] = str(Path(given["data"]).resolve())
    if "teacher" in given:  # files by absolute path, so a resumed run finds them from anywhere
        from edge_fer.bundled import EMOTION_MODELS, ModelError, emotion_model_path

        def as_given(m: str) -> str:
            if m in EMOTION_MODELS:
                return m
            try:
                return str(emotion_model_path(m).resolve())
            except ModelError:  # a misspelt name: TrainConfig refuses it, naming the model it resembles
                return m

        given["teacher"] = tuple(as_given(m) for m in given["teacher"])
    if saved is None:
        if "data" not in given:
            raise ValueError("--data is required to start a run (a FER2013 folder or fer2013.csv)")
        return TrainConfig(**given)
    # Compared with the saved settings completed by today's defaults: a run saved before an option
    # existed ran with its default, so typing that default on --resume is no change.
    known = asdict(TrainConfig.from_dict(saved))
    conflicts = [
        f"--{name.replace('_', '-')} {value} (run has {known.get(name)})"
        for name, value in given.items()
        if known.get(name) != value
    ]
    if conflicts:
        raise ValueError(
            f"{args.out}: --resume keeps the run's settings, but {', '.join(conflicts)} differ; "
            "drop those options, or start a new run with another --out"
        )
    return TrainConfig.from_dict(saved)


def cmd_train(args: argparse.Namespace, argv: list[str]) -> int:
    from export.checkpoint import Checkpoint
    from export.train import Invocation, train

    run_dir = Path(args.out)
    ckpt = Checkpoint.load(run_dir) if args.resume else None
    config = resolve_config(args, ckpt.state["config"] if ckpt else None)
    if args.stop_after < 0 or args.time_limit < 0:
        raise ValueError("--stop-after and --time-limit must not be negative")
    invocation = Invocation(
        stop_after=args.stop_after,
        time_limit_s=args.time_limit * 60.0,
        export=args.export,
        command="python -m export " + shlex.join(argv),
        name=args.name,
    )
    try:
        train(config, run_dir, ckpt, invocation)
    except KeyboardInterrupt:
        print(f"interrupted; {run_dir} holds the last finished epoch: continue with --resume", file=sys.stderr)
        return 130
    return 0


def cmd_report(args: argparse.Namespace, argv: list[str]) -> int:
    from export.run_report import report_run

    report_run(Path(args.run), args.export, "python -m export " + shlex.join(argv), args.name)
    return 0
