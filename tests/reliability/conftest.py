"""Fixtures for the fault tests: the systemd notify socket and a real face clip (brokers: tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability.harness import NotifySocket, write_face_clip


@pytest.fixture
def notify() -> Iterator[NotifySocket]:
    sock = NotifySocket()
    yield sock
    sock.close()


@pytest.fixture(scope="session")
def face_clip(tmp_path_factory) -> Path:
    """300 frames at 30 fps (10 s): the astronaut's face moving across a photo background."""
    return write_face_clip(tmp_path_factory.mktemp("clips") / "moving_face.avi", frames=300, fps=30.0)
