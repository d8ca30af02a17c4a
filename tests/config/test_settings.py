"""Config loading: the sample is complete and loads as is; every mistake is reported with path and line."""

from __future__ import annotations

import os
import socket
import textwrap
import typing
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from edge_fer.config.loading import apply_overrides, load_config, parse_config
from edge_fer.config.settings import (
    EX_CONFIG,
    Config,
    ConfigError,
    FieldProblems,
    Strict,
    parse_assignment,
    require_files,
)
from edge_fer.redact import REDACTOR
from edge_fer.vision.onnx_session import EMOTION_MODELS, bundled_model

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "config" / "edge-fer.yaml"
MODEL = ROOT / "edge_fer" / "models" / "emotion_mini_xception.onnx"


def write(tmp_path: Path, text: str, name: str = "edge-fer.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def problems(path: Path, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path, environ=environ)
    return info.value.problems


def _model_of(annotation: typing.Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def missing_keys(model: type[BaseModel], data: typing.Any, prefix: str = "") -> list[str]:
    """Fields of ``model`` (recursively, into lists of models) that ``data`` does not spell out."""
    missing = []
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        if not isinstance(data, dict) or name not in data:
            missing.append(path)
            continue
        inner = _model_of(field.annotation)
        if inner is None:
            continue
        value = data[name]
        items = value if isinstance(value, list) else [value]
        if not items:
            missing.append(f"{path}[0] (an example entry)")
        for index, item in enumerate(items):
            sub = f"{path}[{index}]." if isinstance(value, list) else f"{path}."
            missing.extend(missing_keys(inner, item, sub))
    return missing


# --- the sample config ------------------------------------------------------------------------


def test_sample_config_spells_out_every_option():
    data = yaml.safe_load(SAMPLE.read_text(encoding="utf-8"))
    assert missing_keys(Config, data) == []


def test_sample_config_loads_as_is_and_equals_the_defaults():
    assert load_config(SAMPLE) == parse_config({}) == load_config(None)


def test_missing_keys_walk_notices_a_dropped_nested_option():
    data = yaml.safe_load(SAMPLE.read_text(encoding="utf-8"))
    del data["cameras"][0]["reconnect"]["max_delay"]
    del data["output"]["video"]
    assert missing_keys(Config, data) == ["cameras[0].reconnect.max_delay", "output.video"]


def test_every_section_rejects_unknown_keys():
    def models(model: type[BaseModel]) -> set[type[BaseModel]]:
        found = {model}
        for field in model.model_fields.values():
            inner = _model_of(field.annotation)
            if inner is not None:
                found |= models(inner)
        return found

    for model in models(Config):
        assert issubclass(model, Strict) and model.model_config["extra"] == "forbid", model


# --- every problem, with path and line --------------------------------------------------------


def test_five_mistakes_give_five_errors_with_paths_and_lines_and_exit_78(tmp_path, capsys):
    from edge_fer.cli import main

    path = write(
        tmp_path,
        """
        log_level: verbose
        cameras:
          - name: door
            fsp: 10
            reconnect:
              initial_delay: 5
              max_delay: 1
        detector:
          threads: 0
        classifier:
          models: [nowhere.onnx]
        """,
    )
    found = problems(path)
    assert found == [
        "line 1: log_level: Input should be 'debug', 'info', 'warning' or 'error' (got 'verbose')",
        "line 4: cameras[0].fsp: unknown key (did you mean 'fps'?); every option is listed in config/edge-fer.yaml",
        "line 7: cameras[0].reconnect.max_delay: must be >= initial_delay (5.0)",
        "line 9: detector.threads: Input should be greater than or equal to 1 (got 0)",
        f"line 11: classifier.models[0]: file {tmp_path / 'nowhere.onnx'} does not exist",
    ]
    assert main(["check-config", str(path)]) == EX_CONFIG
    err = capsys.readouterr().err.splitlines()
    assert err == [f"{path}: {line}" for line in found] + [f"{path}: 5 problems; nothing was started"]


def test_cli_exit_code_is_78_for_a_bad_config(tmp_path, capsys):
    from edge_fer.cli import main

    path = write(tmp_path, "cameras:\n  - fps: -1\n")
    assert main(["check-config", str(path)]) == EX_CONFIG == 78
    err = capsys.readouterr().err
    assert f"{path}: line 2: cameras[0].fps: Input should be greater than 0 (got -1)" in err


def test_duplicate_keys_are_errors_with_both_lines(tmp_path):
    path = write(
        tmp_path,
        """
        tracking:
          min_hits: 3
          max_age: 2
          min_hits: 5
        """,
    )
    assert problems(path) == [
        "line 4: tracking.min_hits: duplicate key (first at line 2); YAML would silently keep only the last"
    ]


def test_duplicate_keys_inside_a_list_item(tmp_path):
    path = write(tmp_path, "cameras:\n  - name: a\n    source: 0\n    source: 1\n")
    assert problems(path) == [
        "line 4: cameras[0].source: duplicate key (first at line 3); YAML would silently keep only the last"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "the file has no settings (empty or only comments)"),
        ("# only a comment\n", "the file has no settings (empty or only comments)"),
        ("- a\n- b\n", "line 1: the top level must be a mapping of sections (cameras:, events:, ...), not a list"),
        ("just text\n", "line 1: the top level must be a mapping of sections (cameras:, events:, ...), not a single"),
    ],
)
def test_files_that_are_not_a_config(tmp_path, text, expected):
    found = problems(write(tmp_path, text))
    assert len(found) == 1 and found[0].startswith(expected)


def test_bad_yaml_syntax_reports_line_and_column(tmp_path):
    path = write(tmp_path, "cameras:\n  - name: a\n   source: b\n")
    (found,) = problems(path)
    assert found.startswith("line 3, column 4: invalid YAML:"), found


def test_unclosed_bracket_reports_its_line(tmp_path):
    path = write(tmp_path, "detector:\n  thresholds: [0.6, 0.7\nevents:\n  mode: tracks\n")
    (found,) = problems(path)
    assert found.startswith("line 3,") and "invalid YAML" in found


def test_missing_file_and_directory(tmp_path):
    assert problems(tmp_path / "absent.yaml") == ["file not found; pass --config with an existing file"]
    assert problems(tmp_path) == ["is a directory; pass the YAML file itself"]


def test_cross_field_camera_names_reported_at_the_second_camera(tmp_path):
    path = write(tmp_path, "cameras:\n  - name: Front Door\n  - name: front_door\n")
    assert problems(path) == [
        "line 3: cameras[1].name: 'front_door' and 'Front Door' map to the same name 'front_door'"
    ]


# --- values -----------------------------------------------------------------------------------


def test_relative_model_paths_are_relative_to_the_config_file(tmp_path, monkeypatch):
    (tmp_path / "models").mkdir()
    model = tmp_path / "models" / "mine.onnx"
    model.write_bytes(MODEL.read_bytes())
    path = write(tmp_path, "classifier:\n  models: [models/mine.onnx]\n")
    monkeypatch.chdir("/")
    assert load_config(path).classifier.models == [model]


@pytest.mark.parametrize("name", sorted(EMOTION_MODELS))
def test_bundled_models_are_named_not_located(tmp_path, name):
    path = write(tmp_path, f"classifier:\n  models: [{name}]\n")
    assert load_config(path).classifier.models == [bundled_model(EMOTION_MODELS[name])]


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("mini_xceptoin", "'mini_xceptoin' is not a bundled model; did you mean 'mini_xception'?"),
        ("vgg", "'vgg' is not a bundled model; use one of"),
        ("vgg.onnx", "file {tmp}/vgg.onnx does not exist"),
    ],
)
def test_unknown_model_names_and_files(tmp_path, entry, expected):
    path = write(tmp_path, f"classifier:\n  models: [{entry}]\n")
    (found,) = problems(path)
    assert found.startswith("line 2: classifier.models[0]: " + expected.format(tmp=tmp_path))


def test_video_path_must_be_creatable(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    path = write(tmp_path, f"output:\n  video:\n    path: {blocker}/video\n")
    assert problems(path) == [f"line 3: output.video.path: cannot create {blocker}/video: {blocker} is not a directory"]
    ok = write(tmp_path, "output:\n  video:\n    path: recordings/today\n", "ok.yaml")
    assert load_config(ok).output.video.path == tmp_path / "recordings" / "today"


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_video_path_in_a_read_only_directory(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    path = write(tmp_path, f"output:\n  video:\n    path: {locked}/v\n")
    (found,) = problems(path)
    assert "is not writable by this user" in found


def test_camera_index_may_be_a_yaml_number_and_device_null_is_the_hostname(tmp_path):
    config = load_config(write(tmp_path, "device: null\ncameras:\n  - source: 0\n"))
    assert config.cameras[0].source == "0"
    assert config.device == socket.gethostname()


def test_require_files_reports_each_missing_file_at_its_key(tmp_path):
    from pydantic import model_validator

    class Tls(Strict):
        enabled: bool = False
        ca_file: Path | None = None
        cert_file: Path | None = None

        @model_validator(mode="after")
        def _files(self) -> Tls:
            if self.enabled:
                require_files(self, "ca_file", "cert_file", reason="enabled is true")
            return self

    class Outer(Strict):
        tls: Tls = Tls()

    from edge_fer.config.checks import problems_from

    good = tmp_path / "ca.pem"
    good.write_text("x")
    assert Outer.model_validate({"tls": {"enabled": False, "ca_file": "/nope"}}).tls.ca_file == Path("/nope")
    with pytest.raises(Exception) as info:
        Outer.model_validate({"tls": {"enabled": True, "ca_file": str(good), "cert_file": "/nope/c.pem"}})
    (located,) = problems_from(info.value, Outer, None)
    assert located[0] == ("tls", "cert_file")
    assert located[1].path == "tls.cert_file"
    assert located[1].message == "file /nope/c.pem does not exist (needed because enabled is true)"
    assert isinstance(info.value.errors()[0]["ctx"]["error"], FieldProblems)


# --- ${...} substitution ----------------------------------------------------------------------


def test_environment_substitution_with_defaults(tmp_path):
    path = write(
        tmp_path,
        """
        device: ${EDGE_DEVICE}
        cameras:
          - source: ${CAMERA_SOURCE:-/dev/video0}
            fps: ${CAMERA_FPS:-15}
        events:
          mode: $${literal}
        """,
    )
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={"EDGE_DEVICE": "hall"})
    # $${literal} is the text ${literal}, which is not a valid mode: proof it was not substituted
    assert info.value.problems == ["line 6: events.mode: Input should be 'tracks' or 'every_frame' (got '${literal}')"]
    path.write_text(path.read_text().replace("$${literal}", "tracks"))
    config = load_config(path, environ={"EDGE_DEVICE": "hall", "CAMERA_FPS": "25"})
    assert (config.device, config.cameras[0].source, config.cameras[0].fps) == ("hall", "/dev/video0", 25.0)


def test_missing_environment_variables_are_each_reported_at_their_key(tmp_path):
    path = write(tmp_path, "device: ${NO_SUCH_DEVICE}\ncameras:\n  - source: rtsp://${CAM_HOST}/live\n")
    assert problems(path, environ={}) == [
        "line 1: device: environment variable $NO_SUCH_DEVICE is not set (set it, or write ${NO_SUCH_DEVICE:-default})",
        "line 3: cameras[0].source: environment variable $CAM_HOST is not set (set it, or write ${CAM_HOST:-default})",
    ]


def test_commented_out_references_are_not_required(tmp_path):
    path = write(tmp_path, "# device: ${NOT_NEEDED}\ndevice: hall\n")
    assert load_config(path, environ={}).device == "hall"


def test_bad_reference_syntax(tmp_path):
    path = write(tmp_path, "device: ${not a name}\n")
    assert problems(path, environ={}) == [
        "line 1: device: bad substitution ${not a name}: use ${VAR}, ${VAR:-default} or ${cred:NAME}"
    ]


def test_systemd_credential_substitution_is_registered_as_a_secret(tmp_path):
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "camera-password").write_text("s3cret-Cam!\n")
    path = write(tmp_path, "cameras:\n  - source: rtsp://viewer:${cred:camera-password}@10.0.0.5/live\n")
    config = load_config(path, environ={"CREDENTIALS_DIRECTORY": str(creds)})
    assert config.cameras[0].source == "rtsp://viewer:s3cret-Cam!@10.0.0.5/live"
    assert REDACTOR.redact("error s3cret-Cam! here") == "error *** here"


def test_missing_systemd_credential_says_what_to_add(tmp_path):
    path = write(tmp_path, "device: ${cred:dev-name}\n")
    (found,) = problems(path, environ={})
    assert found.startswith("line 1: device: systemd credential 'dev-name' is not available: $CREDENTIALS_DIRECTORY")
    assert "LoadCredential=dev-name:FILE" in found


# --- command-line overrides -------------------------------------------------------------------


def test_source_override_replaces_the_first_camera_only(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "clip.mp4").write_bytes(b"")  # a file source must exist (run refuses a missing one)
    path = write(tmp_path, "cameras:\n  - name: a\n    source: /dev/video0\n  - name: b\n    source: 1\n")
    config = apply_overrides(load_config(path), source="clip.mp4")
    assert [c.source for c in config.cameras] == ["clip.mp4", "1"]
    assert apply_overrides(load_config(None), source="0").cameras[0].source == "0"


def test_overrides_by_key_path_skip_none_and_resolve_paths_against_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = apply_overrides(
        load_config(None),
        {"output.video.path": "out.avi", "cameras[0].fps": "12.5", "log_level": "debug", "stats.interval": None},
    )
    assert config.output.video.path == tmp_path / "out.avi"
    assert config.cameras[0].fps == 12.5 and config.log_level == "debug" and config.stats.interval == 10.0


def test_bad_overrides_name_the_key_path():
    with pytest.raises(ConfigError) as info:
        apply_overrides(load_config(None), {"cameras[0].fps": 0, "telemetry.url": "x", "cameras[3].fps": 1})
    assert info.value.source == "command line"
    assert sorted(info.value.problems) == [
        "cameras[0].fps: Input should be greater than 0 (got 0)",
        "cameras[3].fps: cannot set: no item [3] here",
        "telemetry: unknown key; every option is listed in config/edge-fer.yaml",
    ]


def test_parse_assignment_reads_yaml_values():
    assert parse_assignment("tracking.min_hits=5") == ("tracking.min_hits", 5)
    assert parse_assignment("cameras[0].source=rtsp://a:b@c/d") == ("cameras[0].source", "rtsp://a:b@c/d")
    assert parse_assignment("detector.thresholds=[0.5, 0.6, 0.7]") == ("detector.thresholds", [0.5, 0.6, 0.7])
    with pytest.raises(ValueError, match="expected KEY=VALUE"):
        parse_assignment("no-equals-sign")


@pytest.mark.parametrize(("text", "expected"), [("on", "on"), ("off", "off"), ("'on'", "on"), ("auto", "auto")])
def test_unquoted_yaml_on_off_for_stdout_means_what_it_says(tmp_path, text, expected):
    path = tmp_path / "c.yaml"
    path.write_text(f"output:\n  stdout: {text}\n")
    assert load_config(path).output.stdout == expected
