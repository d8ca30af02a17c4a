"""Upgrades keep their meaning or say what to change: every YAML example in the docs and the README loads as it
is, a key that moved is refused with one line naming its new place, and what escapes a command becomes an exit
code systemd can act on (CHANGELOG.md lists each change)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from edge_fer import cli, exitcodes
from edge_fer.config.loading import load_config
from edge_fer.config.settings import ConfigError

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
BLOCK = re.compile(r"^( *)```ya?ml\n(.*?)^\1```", re.MULTILINE | re.DOTALL)


def examples() -> list[tuple[str, str]]:
    out = []
    for doc in DOCS:
        for n, match in enumerate(BLOCK.finditer(doc.read_text(encoding="utf-8"))):
            indent = len(match.group(1))
            text = "\n".join(line[indent:] for line in match.group(2).splitlines())
            out.append((f"{doc.name}#{n}", text))
    return out


@pytest.mark.parametrize(("name", "text"), examples(), ids=[name for name, _ in examples()])
def test_every_yaml_example_in_the_docs_loads_as_it_is(tmp_path, name, text):
    path = tmp_path / "example.yaml"
    path.write_text(text, encoding="utf-8")
    environ = {"EDGE_FER_HTTP_TOKEN": "s3cret-token"}
    try:
        load_config(path, environ)
    except ConfigError as exc:
        # a model file the example names on the author's machine is the only thing allowed to be missing
        assert all("does not exist" in p and "models" in p for p in exc.problems), exc.problems


@pytest.mark.parametrize(
    ("key", "new"), [("min_det_score", "detector.min_score"), ("min_face_size", "detector.min_face_size")]
)
def test_a_moved_key_is_one_line_naming_its_new_place(tmp_path, capsys, key, new):
    path = tmp_path / "old.yaml"
    path.write_text(f"tracking:\n  min_hits: 3\n  {key}: 0.8\n", encoding="utf-8")
    assert cli.main(["check-config", str(path)]) == exitcodes.CONFIG
    problems = [line for line in capsys.readouterr().err.splitlines() if "problem" not in line]
    assert problems == [f"{path}: line 3: tracking.{key}: moved to {new}; set it there"]


def test_values_between_the_old_two_sets_of_limits_are_refused_up_front(tmp_path, capsys):
    path = tmp_path / "edge-fer.yaml"
    path.write_text(
        'detector:\n  scale_factor: 0.97\nhttp:\n  host: " "\n  token: ""\ncameras:\n  - source: demo\n    width: 16\n',
        encoding="utf-8",
    )
    assert cli.main(["check-config", str(path)]) == exitcodes.CONFIG
    err = capsys.readouterr().err
    for key in ("detector.scale_factor", "http.host", "http.token", "cameras[0].width"):
        assert key in err
    assert "Traceback" not in err


def test_an_internal_error_exits_70_with_its_traceback(monkeypatch, capsys):
    def broken(args):
        raise RuntimeError("the bug")

    monkeypatch.setattr("edge_fer.commands.check_config.run", broken)
    assert cli.main(["check-config", "x.yaml"]) == exitcodes.SOFTWARE == 70
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("edge-fer: internal error")
    assert exitcodes.SOFTWARE not in exitcodes.NO_RESTART  # the unit restarts it


def test_a_model_error_escaping_a_command_exits_69_in_one_line(monkeypatch, capsys):
    from edge_fer.vision.onnx_session import ModelError

    def broken(args):
        raise ModelError("model.onnx: not an ONNX model")

    monkeypatch.setattr("edge_fer.commands.check_config.run", broken)
    assert cli.main(["check-config", "x.yaml"]) == exitcodes.UNAVAILABLE
    assert capsys.readouterr().err == "edge-fer: model.onnx: not an ONNX model\n"
