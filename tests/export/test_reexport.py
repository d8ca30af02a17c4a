"""Re-run the documented exports and compare with the files the package ships."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge_fer.vision.onnx_session import bundled_model, manifest, open_session

pytestmark = [pytest.mark.export, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


def run_export(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "export", *args], cwd=ROOT, capture_output=True, text=True, timeout=600
    )


def assert_same_outputs(shipped: Path, fresh: Path, shapes) -> None:
    a, b = open_session(shipped), open_session(fresh)
    rng = np.random.default_rng(1)
    for shape in shapes:
        x = rng.uniform(-1, 1, size=shape).astype(np.float32)
        for got, want in zip(b.run(None, {"input": x}), a.run(None, {"input": x})):
            np.testing.assert_allclose(got, want, atol=1e-5)


def test_mtcnn_reexport_matches_shipped(tf, tmp_path):
    result = run_export("mtcnn", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("parity max |diff|") == 3
    shapes = {"pnet": [(1, 40, 61, 3), (1, 120, 90, 3)], "rnet": [(7, 24, 24, 3)], "onet": [(3, 48, 48, 3)]}
    for net, net_shapes in shapes.items():
        name = f"mtcnn_{net}.onnx"
        assert_same_outputs(bundled_model(name), tmp_path / name, net_shapes)
        fresh = json.loads((tmp_path / "manifest.json").read_text())[name]
        assert fresh["sha256"] == manifest()[name]["sha256"], "MTCNN export is expected to be byte-reproducible"


def test_fer_reexport_matches_shipped(tf, tmp_path):
    result = run_export("fer", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    name = "emotion_mini_xception.onnx"
    assert_same_outputs(bundled_model(name), tmp_path / name, [(5, 64, 64, 1)])
    meta_fresh = open_session(tmp_path / name).get_modelmeta().custom_metadata_map
    meta_shipped = open_session(bundled_model(name)).get_modelmeta().custom_metadata_map
    assert meta_fresh == meta_shipped
