"""ONNX Runtime execution providers by name: what ``detector.providers`` and ``classifier.providers`` accept.

The accelerated onnxruntime builds (``onnxruntime-gpu``, ``onnxruntime-openvino``, ...) replace the
``onnxruntime`` package under the same import name, so which providers exist is a fact of the installed build,
asked of ``onnxruntime.get_available_providers()`` when a config names anything but the CPU. A provider the
build lacks is a config error listing the ones it has, unless the section asks for ``provider_fallback``; it is
never dropped silently. See docs/deploy.md for the swaps and the systemd drop-ins they need.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

log = logging.getLogger("edge_fer.config")

CPU = "CPUExecutionProvider"
DEFAULT = (CPU,)
# Short names accepted in configs (case-insensitive); onnxruntime's full names are accepted too.
ALIASES = {
    "cpu": CPU,
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "directml": "DmlExecutionProvider",
    "rocm": "ROCMExecutionProvider",
    "migraphx": "MIGraphXExecutionProvider",
    "qnn": "QNNExecutionProvider",
    "xnnpack": "XnnpackExecutionProvider",
    "acl": "ACLExecutionProvider",
    "armnn": "ArmNNExecutionProvider",
}


def canonical(name: str) -> str:
    """onnxruntime's name for ``name``: an alias, or a full name matched case-insensitively."""
    text = str(name).strip()
    key = text.lower()
    if key in ALIASES:
        return ALIASES[key]
    for full in ALIASES.values():
        if full.lower() == key:
            return full
    if key.endswith("executionprovider") and len(key) > len("executionprovider"):
        return text  # a provider edge-fer has no alias for (a vendor build's): taken as onnxruntime spells it
    raise ValueError(f"unknown execution provider {text!r}; use one of {', '.join(ALIASES)} or a full name")


def canonical_list(names: Sequence[str]) -> tuple[str, ...]:
    if isinstance(names, str):
        names = [names]
    if not names:
        raise ValueError("list at least one execution provider (cpu is the default)")
    out = tuple(canonical(n) for n in names)
    duplicates = sorted({n for n in out if out.count(n) > 1})
    if duplicates:
        raise ValueError(f"{', '.join(duplicates)} listed twice")
    return out


def available() -> list[str]:
    import os

    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    import onnxruntime

    return list(onnxruntime.get_available_providers())


def usable(providers: Sequence[str], fallback: bool) -> tuple[str, ...]:
    """``providers`` that this onnxruntime build has, in order; ValueError naming the missing ones and the
    available ones, unless ``fallback``, which skips them and ends with the CPU."""
    if tuple(providers) == DEFAULT:
        return DEFAULT  # every build has the CPU; no need to import onnxruntime to know it
    have = available()
    missing = [p for p in providers if p not in have]
    if missing and not fallback:
        raise ValueError(
            f"{', '.join(missing)} not available in this onnxruntime build (available: {', '.join(have)}); "
            "install the build that has it (docs/deploy.md) or set provider_fallback: true"
        )
    kept = tuple(p for p in providers if p in have)
    return kept if CPU in kept else (*kept, CPU)


def checked(providers: Sequence[str], fallback: bool, section: str) -> tuple[str, ...]:
    """``providers`` as written, once :func:`usable` accepts them; a fallback that will be taken is logged."""
    kept = usable(providers, fallback)
    missing = [p for p in providers if p not in kept]
    if missing:
        log.warning("%s.providers: %s not available here; using %s", section, ", ".join(missing), ", ".join(kept))
    return tuple(providers)
