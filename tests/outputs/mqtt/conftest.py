"""Fixtures for the MQTT tests: a real broker per test and a subscriber that records what arrives."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import pytest

from tests.mosquitto import MOSQUITTO, OPENSSL, Mosquitto, Subscriber, TlsFiles, make_tls_files

_names = itertools.count()


@pytest.fixture
def broker(tmp_path) -> Iterator[Mosquitto]:
    if MOSQUITTO is None:
        pytest.skip("needs the mosquitto broker (apt-get install mosquitto)")
    b = Mosquitto(tmp_path / f"broker{next(_names)}").start()
    yield b
    b.kill()


@pytest.fixture
def make_broker(tmp_path) -> Iterator[Callable[..., Mosquitto]]:
    """Brokers with options (persistence, users, TLS); all are killed at the end of the test."""
    if MOSQUITTO is None:
        pytest.skip("needs the mosquitto broker (apt-get install mosquitto)")
    made: list[Mosquitto] = []

    def make(**kwargs) -> Mosquitto:
        b = Mosquitto(tmp_path / f"broker{next(_names)}", **kwargs).start()
        made.append(b)
        return b

    yield make
    for b in made:
        b.kill()


@pytest.fixture
def subscribe() -> Iterator[Callable[..., Subscriber]]:
    made: list[Subscriber] = []

    def make(port: int, topics: list[str], client_id: str | None = None, auth=None) -> Subscriber:
        s = Subscriber(port, topics, client_id, auth).start()
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory) -> TlsFiles:
    if OPENSSL is None:
        pytest.skip("needs the openssl command line tool")
    return make_tls_files(tmp_path_factory.mktemp("tls"))
