"""MqttSettings: defaults, URL plus overrides, one-line errors, and a repr that never leaks the password."""

import logging
import ssl

import pytest

from edge_fer.outputs.mqtt.credentials import Secret
from edge_fer.outputs.mqtt.settings import MqttSettings, TlsSettings, settings_from_options


def test_defaults():
    s = MqttSettings(device="Kitchen Pi")
    assert s.device == "kitchen_pi"
    assert s.effective_client_id == "edge-fer-kitchen_pi"
    assert s.effective_port == 1883
    assert (s.qos, s.buffer_size, s.topic_prefix, s.discovery) == (1, 10_000, "edge-fer", False)


def test_from_url_with_overrides():
    s = MqttSettings.from_url("mqtts://alice:hunter2@broker", device="d", client_id="cid", qos=0)
    assert (s.host, s.effective_port, s.username, s.client_id, s.qos) == ("broker", 8883, "alice", "cid", 0)
    assert s.tls == TlsSettings()
    assert s.password.reveal() == "hunter2"
    assert "hunter2" not in repr(s) and "hunter2" not in str(s.address.url)


def test_plain_string_password_becomes_a_secret():
    s = MqttSettings(device="d", username="u", password="hunter2")
    assert isinstance(s.password, Secret) and "hunter2" not in repr(s)


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"host": ""}, "host"),
        ({"host": "a b"}, "host"),
        ({"port": 0}, "port"),
        ({"port": 70000}, "port"),
        ({"protocol": "3.1"}, "protocol"),
        ({"qos": 3}, "qos"),
        ({"keepalive": 0}, "keepalive"),
        ({"buffer_size": 0}, "buffer_size"),
        ({"max_inflight": 0}, "max_inflight"),
        ({"reconnect_min_delay": 0}, "reconnect_min_delay"),
        ({"reconnect_min_delay": 5, "reconnect_max_delay": 1}, "reconnect_min_delay"),
        ({"password": "x"}, "needs a username"),
        ({"client_id": ""}, "client_id"),
        ({"topic_prefix": "a/#"}, "prefix"),
        ({"discovery_prefix": "/ha"}, "prefix"),
    ],
)
def test_bad_settings(kwargs, problem):
    with pytest.raises(ValueError, match=problem) as info:
        MqttSettings(device="d", **kwargs)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"ca_file": "/nonexistent/ca.crt"}, "ca_file '/nonexistent/ca.crt' does not exist"),
        ({"cert_file": "/nonexistent/c.crt"}, "cert_file"),
        ({"key_file": __file__}, "key_file is set without cert_file"),
    ],
)
def test_bad_tls_files(kwargs, problem):
    with pytest.raises(ValueError, match=problem):
        TlsSettings(**kwargs)


def test_tls_context_verifies_host_names_unless_insecure(tls_files, caplog):
    ctx = TlsSettings(ca_file=tls_files.ca).context()
    assert ctx.check_hostname and ctx.verify_mode == ssl.CERT_REQUIRED
    with caplog.at_level(logging.WARNING, logger="edge_fer.mqtt"):
        loose = TlsSettings(ca_file=tls_files.ca, insecure=True).context()
    assert not loose.check_hostname and loose.verify_mode == ssl.CERT_REQUIRED
    assert "host name check is OFF" in caplog.text


def test_tls_context_errors_name_the_file(tls_files):
    with pytest.raises(ValueError, match="not a usable CA certificate"):
        TlsSettings(ca_file=__file__).context()
    with pytest.raises(ValueError, match="not a matching certificate and key"):
        TlsSettings(cert_file=tls_files.client_cert, key_file=tls_files.server_key).context()
    TlsSettings(ca_file=tls_files.ca, cert_file=tls_files.client_cert, key_file=tls_files.client_key).context()


def test_settings_from_options(tmp_path, monkeypatch, tls_files):
    monkeypatch.setenv("MQTT_PW", "from-env")
    s = settings_from_options(device="d", url="mqtt://alice@broker:1884", password_env="MQTT_PW", qos=0)
    assert (s.host, s.effective_port, s.tls, s.username, s.qos) == ("broker", 1884, None, "alice", 0)
    assert s.password.reveal() == "from-env"
    s = settings_from_options(device="d", host="broker", ca_file=tls_files.ca, username="bob", discovery=True)
    assert s.tls == TlsSettings(ca_file=tls_files.ca) and s.effective_port == 8883 and s.discovery
    assert settings_from_options(device="d").address.url == "mqtt://127.0.0.1:1883"


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"url": "mqtt://a", "host": "b"}, "either url or host"),
        ({"url": "mqtt://a", "port": 1}, "remove port"),
        ({"url": "mqtts://a", "tls": False}, "tls is false"),
        ({"url": "mqtt://alice@a", "username": "bob"}, "different users"),
        ({"url": "mqtt://u:pw@a", "password_env": "X"}, "remove one"),
        ({"url": "mqtt://a:0"}, "invalid MQTT URL"),
        ({"host": "a", "qos": 5}, "qos"),
        ({"host": "a", "password_file": "/nonexistent"}, "does not exist"),
    ],
)
def test_bad_options(kwargs, problem):
    with pytest.raises(ValueError, match=problem):
        settings_from_options(device="d", **kwargs)


def test_a_password_in_the_url_is_accepted_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="edge_fer.mqtt"):
        s = MqttSettings.from_url("mqtt://alice:hunter2@broker", device="d")
    assert s.password.reveal() == "hunter2"
    assert "URL holds a password" in caplog.text and "hunter2" not in caplog.text
