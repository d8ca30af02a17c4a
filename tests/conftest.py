"""Fixtures shared by every test folder: the shipped models built once, one broker for the run,
per-test brokers for tests that stop theirs, and an output that records what the pipeline emits.

Building the detector and the emotion ensemble costs about a second and starting Mosquitto a
tenth of one; sharing them keeps the suite's time in the tests. Helpers that are plain functions
live in modules (tests/wait.py's ``wait_until``, tests/clock.py's ``FakeClock``), not here.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterator

import pytest

from tests.mosquitto import MOSQUITTO, Mosquitto, clear_retained

_broker_names = itertools.count()


def _need_mosquitto() -> None:
    if MOSQUITTO is None:
        pytest.skip("needs the mosquitto broker (apt-get install mosquitto)")


@pytest.fixture(autouse=True)
def _state_directory(tmp_path_factory, monkeypatch) -> None:
    """Each test its own state directory (where the durable MQTT outbox lives), inherited by the daemons it
    starts: never the user's, and never an outbox left by another test."""
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path_factory.mktemp("state")))


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """A test that runs a command in-process (``main([...])``) gets the daemon's log handler on its captured
    stderr, which pytest closes when the test ends; a later test would then log into a closed stream
    ("--- Logging error ---"). Take off what edge-fer installed and put the levels back."""
    from edge_fer.logs import installed_handlers

    root, ours = logging.getLogger(), logging.getLogger("edge_fer")
    before, levels = set(installed_handlers()), (root.level, ours.level)
    yield
    for handler in installed_handlers():
        if handler not in before:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(levels[0])
    ours.setLevel(levels[1])
    logging.captureWarnings(False)


@pytest.fixture(scope="session")
def analyzer():
    """The daemon's analyzer with the default config: the shipped MTCNN and emotion models. Shared:
    tests must not change its settings (build their own for other settings)."""
    from edge_fer.config.loading import parse_config
    from edge_fer.vision.analyzer import FaceAnalyzer

    config = parse_config({})
    return FaceAnalyzer.from_settings(config.detector, config.classifier)


@pytest.fixture(scope="session")
def _shared_broker(tmp_path_factory) -> Iterator[Mosquitto]:
    _need_mosquitto()
    broker = Mosquitto(tmp_path_factory.mktemp("shared-broker")).start()
    yield broker
    broker.kill()


@pytest.fixture
def broker(_shared_broker: Mosquitto) -> Mosquitto:
    """The run's one Mosquitto (loopback, anonymous, no persistence), with no retained message left
    by an earlier test. Tests that stop, kill or freeze their broker use ``make_broker`` instead."""
    assert _shared_broker.running, "a test stopped the shared broker; it should have used make_broker"
    clear_retained(_shared_broker.port)
    return _shared_broker


@pytest.fixture
def make_broker(tmp_path) -> Iterator[Callable[..., Mosquitto]]:
    """This test's own brokers, with options (``persistence``, ``users``, ``tls``; ``start=False`` to
    start it later). All are killed at the end of the test."""
    _need_mosquitto()
    made: list[Mosquitto] = []

    def make(*, start: bool = True, **kwargs) -> Mosquitto:
        broker = Mosquitto(tmp_path / f"broker{next(_broker_names)}", **kwargs)
        made.append(broker)
        return broker.start() if start else broker

    yield make
    for broker in made:
        broker.kill()


@pytest.fixture
def list_output():
    """A fresh recording output (tests/recording.py's ListOutput) to pass to an OutputRunner."""
    from tests.recording import ListOutput  # imports the output interface only for the tests that use it

    return ListOutput()
