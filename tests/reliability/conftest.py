"""Fixtures for the fault tests: private brokers, the systemd notify socket, a real face clip."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.mosquitto import MOSQUITTO, Mosquitto
from tests.reliability.harness import NotifySocket, write_face_clip

_names = itertools.count()


@pytest.fixture
def make_broker(tmp_path) -> Iterator[Callable[..., Mosquitto]]:
    """Brokers (started) with options such as ``persistence=True``; all are killed at the end."""
    if MOSQUITTO is None:
        pytest.skip("needs the mosquitto broker (apt-get install mosquitto)")
    made: list[Mosquitto] = []

    def make(*, start: bool = True, **kwargs) -> Mosquitto:
        broker = Mosquitto(tmp_path / f"broker{next(_names)}", **kwargs)
        made.append(broker)
        return broker.start() if start else broker

    yield make
    for broker in made:
        broker.kill()


@pytest.fixture
def notify() -> Iterator[NotifySocket]:
    sock = NotifySocket()
    yield sock
    sock.close()


@pytest.fixture(scope="session")
def face_clip(tmp_path_factory) -> Path:
    """300 frames at 30 fps (10 s): the astronaut's face moving across a photo background."""
    return write_face_clip(tmp_path_factory.mktemp("clips") / "moving_face.avi", frames=300, fps=30.0)
