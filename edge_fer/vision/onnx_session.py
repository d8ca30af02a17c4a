"""Open ONNX models with one error type and session settings tuned for small CPUs."""

from __future__ import annotations

import difflib
import json
import os
from importlib import resources
from pathlib import Path

BUNDLED = (
    "mtcnn_pnet.onnx",
    "mtcnn_rnet.onnx",
    "mtcnn_onet.onnx",
    "emotion_mini_xception.onnx",
    "emotion_compact.onnx",
)
# Short names a config or ``--model`` may use for the bundled emotion models, instead of a path into
# site-packages that changes with every Python upgrade.
EMOTION_MODELS = {"compact": "emotion_compact.onnx", "mini_xception": "emotion_mini_xception.onnx"}
# What ``classifier.models: []`` means; MODELS.md holds the measurements behind the choice.
DEFAULT_EMOTION_MODELS = ("compact", "mini_xception")
# Mirror averaging adds a point of accuracy for twice the classifier cost; with the default pair that cost
# is over the 3 ms per face budget on a 2-core CPU (benchmarks/ensembles.py), so it is off.
DEFAULT_FLIP = False


class ModelError(RuntimeError):
    """A model file is missing, unreadable or not what the runtime expects. The message names it."""


def bundled_model(filename: str) -> Path:
    """Path of a model shipped inside the package (``edge_fer/models``)."""
    path = Path(str(resources.files("edge_fer") / "models" / filename))
    if not path.is_file():
        raise ModelError(f"{path}: bundled model is missing; reinstall edge-fer (pip install --force-reinstall)")
    return path


def emotion_model_path(entry: str | Path) -> Path:
    """A bundled emotion model's short name (``mini_xception``) as its file; anything else as a path.

    A bare word that is no bundled name is refused here rather than later as a missing file: it is
    almost always a misspelt name, and the message can say which one was meant.
    """
    name = str(entry)
    if name in EMOTION_MODELS:
        return bundled_model(EMOTION_MODELS[name])
    if isinstance(entry, str) and "/" not in name and not Path(name).suffix:
        close = difflib.get_close_matches(name, EMOTION_MODELS, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ModelError(
            f"{name!r} is not a bundled model; {hint}use one of {', '.join(EMOTION_MODELS)} "
            "or a path to an ONNX file (./name for a file without an extension)"
        )
    return Path(entry)


def manifest() -> dict[str, dict]:
    """Provenance of the bundled models: source, licence, export command, sha256, parity."""
    text = (resources.files("edge_fer") / "models" / "manifest.json").read_text()
    return json.loads(text)


def open_session(path: str | Path, threads: int = 1, *, spinning: bool = True):
    """An InferenceSession on the CPU, or :class:`ModelError` naming the file and what to do.

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
    options.intra_op_num_threads = max(1, int(threads))
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises several private exception types
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{path}: not a usable ONNX model ({first_line}); re-export it or pick another file") from exc


def metadata(session) -> dict[str, str]:
    return dict(session.get_modelmeta().custom_metadata_map)
