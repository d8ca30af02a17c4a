"""Secret detection and masking used by check-config and the log formatter."""

from __future__ import annotations

import pytest

from edge_fer.redact import Redactor, find_secrets, is_secret_key, mask_secrets, mask_url_passwords


def test_secret_key_names():
    for name in ("password", "mqtt_password", "passwd", "token", "api_key", "apikey", "client_secret", "Passphrase"):
        assert is_secret_key(name), name
    for name in ("password_file", "token_path", "password_env", "username", "source", "keepalive", "key_file"):
        assert not is_secret_key(name), name


def test_url_passwords_are_masked_wherever_they_appear():
    text = "open rtsp://admin:hunter2@10.0.0.5/live failed; fallback mqtts://u:p%40ss@broker:8883 ok"
    assert (
        mask_url_passwords(text) == "open rtsp://admin:***@10.0.0.5/live failed; fallback mqtts://u:***@broker:8883 ok"
    )
    assert (
        mask_url_passwords("http://host:8080/path and user@example.com") == "http://host:8080/path and user@example.com"
    )


def test_redactor_masks_registered_values_longest_first_and_url_encoded():
    r = Redactor()
    r.add("abc")
    r.add("abc def/1")
    r.add("")
    assert r.redact("x abc def/1 y abc z") == "x *** y *** z"
    assert r.redact("rtsp://cam/?pw=abc%20def%2F1") == "rtsp://cam/?pw=***"


def test_find_and_mask_secrets_in_a_config_tree():
    tree = {
        "mqtt": {"password": "topsecret", "password_file": "/etc/pw", "username": "u", "token": None},
        "cameras": [{"source": "rtsp://a:camsecret@h/s"}],
    }
    assert sorted(find_secrets(tree)) == ["camsecret", "topsecret"]
    masked = mask_secrets(tree, Redactor())
    assert masked["mqtt"] == {"password": "***", "password_file": "/etc/pw", "username": "u", "token": None}
    assert masked["cameras"][0]["source"] == "rtsp://a:***@h/s"


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("mqtt://edge:pa/ss@broker:1883", "mqtt://edge:***@broker:1883"),
        ("rtsp://cam:p@ss@10.0.0.5/live", "rtsp://cam:***@10.0.0.5/live"),
        ("rtsp://cam@10.0.0.5/live", "rtsp://cam@10.0.0.5/live"),
    ],
)
def test_url_passwords_with_slash_or_at_are_masked_whole(url, masked):
    from edge_fer.capture import mask_url

    assert mask_url_passwords(url) == masked
    assert mask_url(url) == masked
