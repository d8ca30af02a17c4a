"""Execution providers by config: names, refusal of what the installed onnxruntime lacks, fallback when asked."""

from __future__ import annotations

import logging

import onnxruntime
import pytest

from edge_fer import cli, exitcodes
from edge_fer.config import providers
from edge_fer.config.settings import ClassifierSection, DetectorSettings
from edge_fer.vision.analyzer import FaceAnalyzer
from edge_fer.vision.onnx_session import ModelError, bundled_model, open_session
from tests.factories import astronaut_bgr

MISSING = next(p for p in providers.ALIASES.values() if p not in onnxruntime.get_available_providers())


@pytest.mark.parametrize(
    ("name", "full"),
    [
        ("cpu", "CPUExecutionProvider"),
        ("OpenVINO", "OpenVINOExecutionProvider"),
        ("cudaexecutionprovider", "CUDAExecutionProvider"),
        ("VendorXExecutionProvider", "VendorXExecutionProvider"),
    ],
)
def test_short_and_full_names_become_onnxruntimes_names(name, full):
    assert providers.canonical(name) == full


@pytest.mark.parametrize("value", [[], ["gpu"], ["cpu", "CPUExecutionProvider"], ["ExecutionProvider"]])
def test_bad_provider_lists_are_refused(value):
    with pytest.raises(ValueError):
        DetectorSettings(providers=value)


def test_the_default_is_the_cpu_without_asking_onnxruntime():
    assert DetectorSettings().providers == ClassifierSection().providers == ("CPUExecutionProvider",)
    assert "CPUExecutionProvider" in onnxruntime.get_available_providers()


@pytest.mark.parametrize("section", ["detector", "classifier"])
@pytest.mark.parametrize("command", ["check-config", "run"])
def test_a_provider_this_build_lacks_is_one_line_listing_the_available_ones_and_exit_78(
    tmp_path, capsys, section, command
):
    path = tmp_path / "edge-fer.yaml"
    path.write_text(f"{section}:\n  providers: [{MISSING}, cpu]\n", encoding="utf-8")
    args = ["check-config", str(path)] if command == "check-config" else ["run", "--config", str(path)]
    assert cli.main(args) == exitcodes.CONFIG
    lines = [line for line in capsys.readouterr().err.splitlines() if f"{section}.providers" in line]
    assert len(lines) == 1
    assert f"{MISSING} not available" in lines[0]
    assert ", ".join(onnxruntime.get_available_providers()) in lines[0]


def test_fallback_when_asked_skips_the_missing_provider_and_says_so(caplog):
    with caplog.at_level(logging.WARNING, logger="edge_fer.config"):
        settings = DetectorSettings(providers=[MISSING], provider_fallback=True)
    assert settings.providers == (MISSING,)  # as written: check-config shows what the file says
    assert any(MISSING in r.getMessage() and "CPUExecutionProvider" in r.getMessage() for r in caplog.records)
    classifier = ClassifierSection(providers=[MISSING], provider_fallback=True)
    analyzer = FaceAnalyzer.from_settings(settings, classifier)
    assert analyzer.classifier.models[0].session.get_providers() == ["CPUExecutionProvider"]
    assert len(analyzer.analyze(astronaut_bgr()).faces) == 1


def test_sessions_run_on_the_listed_providers_that_this_build_has():
    for name in onnxruntime.get_available_providers():
        listed = (name,) if name == "CPUExecutionProvider" else (name, "CPUExecutionProvider")
        session = open_session(bundled_model("emotion_compact.onnx"), providers=listed)
        assert session.get_providers()[0] == name


def test_opening_a_session_with_a_missing_provider_is_a_model_error_without_fallback():
    with pytest.raises(ModelError, match=f"{MISSING} not available"):
        open_session(bundled_model("mtcnn_pnet.onnx"), providers=(MISSING,))


@pytest.mark.skipif(
    "AzureExecutionProvider" not in onnxruntime.get_available_providers(), reason="needs PyPI's CPU onnxruntime"
)
def test_with_fallback_a_provider_that_cannot_open_the_model_hands_it_to_the_cpu(tmp_path, caplog):
    """Azure's provider (in PyPI's CPU wheel) cannot open a broken file; with fallback the CPU gets it next and
    says what is really wrong (without fallback the provider's own failure is the error)."""
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    with caplog.at_level(logging.WARNING, logger="edge_fer.models"), pytest.raises(ModelError) as error:
        open_session(broken, providers=("AzureExecutionProvider",), fallback=True)
    assert "not a usable ONNX model" in str(error.value)
    assert any("running it on the CPU" in r.getMessage() for r in caplog.records)
    with pytest.raises(ModelError, match="AzureExecutionProvider, CPUExecutionProvider could not open it"):
        open_session(broken, providers=("AzureExecutionProvider", "CPUExecutionProvider"))
