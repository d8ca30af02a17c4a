"""The paho-mqtt floor in pyproject.toml is real, and a bug in a paho callback is loud.

paho 2.0 and 2.1 lack ``Client.drop_out_messages()``, which ``on_connect`` calls; with paho swallowing
callback exceptions, such a publisher never connected and said nothing. So: the MQTT client tests run
again with the OLDEST paho that pyproject.toml allows (installed from PyPI into a temporary directory
once per session, first on ``sys.path`` of a child pytest), and an exception in a callback must be
logged with its traceback, counted and reported as the publisher's problem.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from edge_fer.outputs.mqtt.client import MqttPublisher
from edge_fer.outputs.mqtt.connection import RecordingClient
from tests.outputs.mqtt.test_mqtt_client import settings
from tests.wait import wait_until

ROOT = Path(__file__).resolve().parents[3]


def paho_floor() -> str:
    """The lowest paho-mqtt version that pyproject.toml accepts."""
    found = re.search(r'"paho-mqtt>=([0-9][0-9.]*)', (ROOT / "pyproject.toml").read_text())
    assert found, "pyproject.toml must declare paho-mqtt with a >= floor"
    return found.group(1)


@pytest.fixture(scope="session")
def oldest_paho(tmp_path_factory) -> tuple[str, Path]:
    """(floor version, directory holding exactly that paho), installed once per session.

    No skip when the install fails: CI reaches PyPI, and a silently skipped compatibility test is
    how the wrong floor shipped in the first place.
    """
    version = paho_floor()
    target = tmp_path_factory.mktemp("oldest-paho")
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target)]
    result = subprocess.run([*cmd, f"paho-mqtt=={version}"], capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        pytest.fail(
            f"cannot install paho-mqtt=={version} (the floor in pyproject.toml) to test against it; "
            f"this test needs PyPI or a pip index that has it.\n{result.stderr.strip()[-2000:]}",
            pytrace=False,
        )
    return version, target


def child_env(target: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), str(ROOT)])}


@pytest.mark.slow
def test_mqtt_client_tests_pass_with_the_oldest_supported_paho(oldest_paho):
    version, target = oldest_paho
    probe = "import paho.mqtt as m; print(m.__version__, m.__file__)"
    seen = subprocess.run([sys.executable, "-c", probe], env=child_env(target), capture_output=True, text=True)
    found_version, found_file = seen.stdout.split()
    assert Path(found_file).is_relative_to(target), f"the child imported paho from {found_file}, not {target}"
    assert found_version.startswith(version), (found_version, version)
    tests = ["tests/outputs/mqtt/test_mqtt_client.py", f"{Path(__file__).relative_to(ROOT)}::test_callback_errors"]
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests],
        env=child_env(target),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, f"with paho-mqtt {found_version}:\n{run.stdout[-6000:]}\n{run.stderr[-2000:]}"
    assert " passed" in run.stdout and "skipped" not in run.stdout, run.stdout[-2000:]


def test_callback_errors_are_logged_counted_and_reported(broker, caplog, monkeypatch):
    """What paho 2.1 did to on_connect, on purpose: the error must surface, not vanish."""

    def missing(self):
        raise AttributeError("'RecordingClient' object has no attribute 'drop_out_messages'")

    monkeypatch.setattr(RecordingClient, "drop_out_messages", missing, raising=False)
    caplog.set_level(logging.ERROR, logger="edge_fer.mqtt")
    p = MqttPublisher(settings(broker.url))
    try:
        p.start()
        wait_until(lambda: p.stats().callback_errors >= 1, timeout=10, what="a callback error")
        stats = p.stats()
        assert not stats.connected
        assert stats.last_error.startswith("internal error in MQTT on_connect: AttributeError")
        record = next(r for r in caplog.records if "on_connect raised AttributeError" in r.getMessage())
        assert record.exc_info is not None and record.levelno == logging.ERROR
    finally:
        p.close(timeout=0.5)


def test_callback_errors(broker):
    """Under the paho being tested, every callback the publisher installs runs without an error."""
    p = MqttPublisher(settings(broker.url))
    try:
        p.start()
        assert p.wait_connected(10), p.last_error
        p.publish("edge-fer/dev/cam0/face", b"{}")
        assert p.flush(10)
    finally:
        p.close(timeout=2)
    stats = p.stats()
    assert stats.callback_errors == 0 and stats.acked >= 2, stats
