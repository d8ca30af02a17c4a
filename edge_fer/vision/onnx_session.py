"""Open ONNX models with one error type and session settings tuned for small CPUs."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from edge_fer.bundled import (  # noqa: F401  (re-exported: the vision layer's callers import them here)
    BUNDLED,
    DEFAULT_EMOTION_MODELS,
    DEFAULT_FLIP,
    EMOTION_MODELS,
    ModelError,
    bundled_model,
    emotion_model_path,
    manifest,
)

log = logging.getLogger("edge_fer.models")


def usable_threads(threads: int) -> int:
    """``threads`` capped at the CPUs this process may run on: more intra-op threads than cores only wait for
    each other (64 on a 2-core board took seconds per frame and over 15 s to stop on SIGTERM)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cpus = os.cpu_count() or 1
    wanted = max(1, int(threads))
    if wanted > cpus and (wanted, cpus) not in _capped:
        _capped.add((wanted, cpus))
        log.warning("%d threads per model asked for, %d CPUs available: using %d", wanted, cpus, cpus)
    return min(wanted, cpus)


_capped: set[tuple[int, int]] = set()


def open_session(
    path: str | Path,
    threads: int = 1,
    *,
    spinning: bool = True,
    providers: tuple[str, ...] = ("CPUExecutionProvider",),
    fallback: bool = False,
):
    """An InferenceSession on ``providers`` (the CPU by default), or :class:`ModelError` naming the file and
    what to do.

    ``providers`` are onnxruntime's names in priority order (``detector.providers``/``classifier.providers``,
    checked against the installed build when the config loads). Without ``fallback``, a provider that is
    installed but cannot start (a missing CUDA library, no device node under the service's sandbox) is a
    ModelError instead of onnxruntime's own quiet retry on the CPU; with it, the missing ones are skipped.

    One intra-op thread by default: the cascade runs many tiny inferences, where thread
    hand-off costs more than it saves, and the other core stays free for capture and outputs.
    ``spinning=False`` stops idle intra-op threads from busy-waiting (measured in
    ``benchmarks/pipeline_options.py``; onnxruntime's default, spinning, stays).
    """
    # ONNX Runtime 1.32 otherwise writes a telemetry database under ~/.cache (model names, CPU details).
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    import onnxruntime as ort

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: model file not found; check the path in the config or --model")
    options = ort.SessionOptions()
    options.intra_op_num_threads = usable_threads(threads)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    from edge_fer.config.providers import usable

    try:
        wanted = list(usable(providers, fallback))
    except ValueError as exc:
        raise ModelError(f"{path}: {exc}") from None
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=wanted, enable_fallback=int(fallback))
    except Exception as exc:  # onnxruntime raises several private exception types
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if wanted != ["CPUExecutionProvider"]:
            if fallback:  # asked for: the model runs on the CPU, and the log says why
                log.warning("%s: %s could not open it (%s); running it on the CPU", path, wanted[0], first_line)
                return open_session(path, threads, spinning=spinning)
            raise ModelError(
                f"{path}: {', '.join(wanted)} could not open it ({first_line}); see docs/deploy.md "
                "or set provider_fallback: true"
            ) from exc
        raise ModelError(f"{path}: not a usable ONNX model ({first_line}); re-export it or pick another file") from exc
    if not fallback and session.get_providers()[0] != wanted[0]:
        raise ModelError(
            f"{path}: {wanted[0]} did not start (running on {', '.join(session.get_providers())}); "
            "see onnxruntime's message above and docs/deploy.md, or set provider_fallback: true"
        )
    return session


def metadata(session) -> dict[str, str]:
    return dict(session.get_modelmeta().custom_metadata_map)
