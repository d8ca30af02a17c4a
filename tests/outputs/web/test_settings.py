"""HttpSettings (the ``http:`` section the server takes): safe defaults, and one clear error per bad value
naming the http.<key> to fix, from check-config and run alike (they validate the same model)."""

import pytest

from edge_fer.config.loading import parse_config
from edge_fer.config.settings import ConfigError
from edge_fer.outputs.web import HttpSettings


def test_defaults_are_off_and_local():
    settings = HttpSettings()
    assert settings.enabled is False
    assert (settings.host, settings.port, settings.token) == ("127.0.0.1", 8080, None)
    assert (settings.max_fps, settings.jpeg_quality, settings.max_clients) == (10.0, 75, 5)
    assert settings.is_loopback


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"host": " "}, "http.host"),
        ({"port": 70000}, "http.port"),
        ({"port": -1}, "http.port"),
        ({"port": True}, "http.port"),
        ({"token": ""}, "http.token"),
        ({"token": "two words"}, "http.token"),
        ({"token": "caf\u00e9"}, "http.token"),
        ({"max_fps": 0}, "http.max_fps"),
        ({"max_fps": float("nan")}, "http.max_fps"),
        ({"max_fps": 61}, "http.max_fps"),
        ({"jpeg_quality": 0}, "http.jpeg_quality"),
        ({"jpeg_quality": 101}, "http.jpeg_quality"),
        ({"jpeg_quality": 7.5}, "http.jpeg_quality"),
        ({"max_clients": 0}, "http.max_clients"),
    ],
)
def test_bad_values_name_the_key(kwargs, key):
    with pytest.raises(ValueError):
        HttpSettings(**kwargs)
    with pytest.raises(ConfigError) as info:
        parse_config({"http": kwargs})
    assert [p.path for p in info.value.items] == [key]


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("localhost", True), ("0.0.0.0", False), ("::", False)],
)
def test_loopback_detection(host, loopback):
    assert HttpSettings(host=host).is_loopback is loopback


def test_settings_are_frozen():
    with pytest.raises(ValueError):
        HttpSettings().port = 1  # type: ignore[misc]
