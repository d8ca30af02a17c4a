"""The installed package: entry point, version, and no TensorFlow at import."""

import subprocess
import sys

import edge_fer


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_import_does_not_load_tensorflow_or_heavy_modules():
    result = run_python(
        "import sys, edge_fer, edge_fer.cli, edge_fer.vision.onnx_session;"
        "bad = [m for m in ('tensorflow', 'keras', 'onnxruntime', 'cv2') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_version_flag_prints_package_version():
    result = subprocess.run([sys.executable, "-m", "edge_fer", "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert result.stdout.strip() == f"edge-fer {edge_fer.__version__}"
