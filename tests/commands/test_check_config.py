"""``edge-fer check-config``: effective config with secrets masked, or every error and exit 78."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from edge_fer.cli import main

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "config" / "edge-fer.yaml"


def test_valid_config_prints_the_effective_config_and_exits_0(capsys):
    assert main(["check-config", str(SAMPLE)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"# effective config from {SAMPLE} (secrets masked)\n")
    shown = yaml.safe_load(out)
    assert shown["cameras"][0]["source"] == "demo"
    assert shown["tracking"]["min_hits"] == 3 and shown["detector"]["thresholds"] == [0.6, 0.7, 0.7]


def test_secrets_are_masked_in_the_printed_config(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CAM_PASSWORD", "pa55-w0rd")
    path = tmp_path / "c.yaml"
    path.write_text("cameras:\n  - name: gate\n    source: rtsp://viewer:${CAM_PASSWORD}@10.1.2.3:554/stream\n")
    assert main(["check-config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "pa55-w0rd" not in out
    assert yaml.safe_load(out)["cameras"][0]["source"] == "rtsp://viewer:***@10.1.2.3:554/stream"


def test_quiet_prints_nothing_for_a_valid_config(capsys):
    assert main(["check-config", "--quiet", str(SAMPLE)]) == 0
    assert capsys.readouterr() == ("", "")


def test_set_overrides_are_checked_too(tmp_path, capsys):
    assert main(["check-config", str(SAMPLE), "--set", "cameras[0].source=0", "--set", "tracking.min_hits=7"]) == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    assert shown["cameras"][0]["source"] == "0" and shown["tracking"]["min_hits"] == 7
    assert main(["check-config", str(SAMPLE), "--set", "tracking.min_hits=0"]) == 78
    assert "check-config: --set tracking.min_hits: Input should be greater than or equal to 1 (value not shown)" in (
        capsys.readouterr().err
    )


@pytest.mark.parametrize(
    "item, key, code",
    [
        ("cameras[0].fps=hunter2secret", "cameras[0].fps", 78),
        ("mqtt=hunter2secret", "mqtt", 78),
        ("mqtt={hunter2secret: 1}", "mqtt", 78),
        ("cameras=[{fps: hunter2secret}]", "cameras", 78),
        ("http.token={a: hunter2secret}", "http.token", 78),
        ("mqtt.url=mqtt://u:hunter2secret@h:99999", "mqtt.url", 78),
        ("mqtt.pasword=hunter2secret", "mqtt.pasword", 78),
        ("hunter2secret", None, 2),
    ],
    ids=["number", "section", "key-in-value", "list", "mapping", "url", "typo", "no-equals"],
)
def test_a_mistyped_set_names_its_key_and_never_its_value(capsys, item, key, code):
    """A ``--set`` may carry a password or a token. Before, check-config printed ``(got 'hunter2secret')``, the
    key paths inside a mapping value, and the whole item when it had no ``=``."""
    assert main(["check-config", str(SAMPLE), "--quiet", "--set", item]) == code
    out, err = capsys.readouterr()
    assert "hunter2" not in out + err
    (line,) = err.splitlines()
    assert line.startswith(f"check-config: --set {key}:" if key else "check-config: --set expects KEY=VALUE")


def test_installed_command_exits_78_and_lists_every_problem(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("log_level: loud\ncameras:\n  - queue_size: 0\nstats:\n  interval: soon\n")
    result = subprocess.run(
        [sys.executable, "-m", "edge_fer", "check-config", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 78
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"{path}: line 1: log_level: Input should be 'debug', 'info', 'warning' or 'error' (got 'loud')",
        f"{path}: line 3: cameras[0].queue_size: Input should be greater than or equal to 1 (got 0)",
        f"{path}: line 5: stats.interval: Input should be a valid number, unable to parse string as a number "
        "(got 'soon')",
        f"{path}: 3 problems; nothing was started",
    ]
