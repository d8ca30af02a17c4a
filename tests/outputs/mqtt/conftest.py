"""Fixtures for the MQTT tests: publishers closed after the test, a subscriber that records what arrives,
and TLS files.

The brokers (``broker``, the shared one, and ``make_broker``, a test's own) come from tests/conftest.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.mosquitto import OPENSSL, Subscriber, TlsFiles, make_tls_files


@pytest.fixture
def publisher():
    """``publisher(settings, start=False)``: a publisher that is closed (bounded) when the test ends."""
    from edge_fer.outputs.mqtt.client import MqttPublisher

    made = []

    def make(settings, start: bool = False):
        p = MqttPublisher(settings)
        made.append(p)
        if start:
            p.start()
        return p

    yield make
    for p in made:
        p.close(timeout=0.5)


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
