"""The models shipped in the package, their short names and the one error type for models.

Kept apart from :mod:`edge_fer.vision.onnx_session` (which needs onnxruntime) so the config layer can
resolve ``classifier.models: [mini_xception]`` and name a bad entry without importing the vision layer.
"""

from __future__ import annotations

import difflib
import json
from importlib import resources
from pathlib import Path

BUNDLED = (
    "mtcnn_pnet.onnx",
    "mtcnn_rnet.onnx",
    "mtcnn_onet.onnx",
    "emotion_mini_xception.onnx",
    "emotion_compact.onnx",
    "emotion_compact_int8.onnx",
)
# Short names a config or ``--model`` may use for the bundled emotion models, instead of a path into
# site-packages that changes with every Python upgrade.
EMOTION_MODELS = {
    "compact": "emotion_compact.onnx",
    "compact_int8": "emotion_compact_int8.onnx",
    "mini_xception": "emotion_mini_xception.onnx",
}
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
