"""MqttSettings (the ``mqtt:`` section the publisher takes): defaults, URL plus overrides, one-line errors at
their key, the password resolved once and never in a repr or a dump."""

import logging
import ssl

import pytest

from edge_fer.config.comms import MqttSettings, MqttTlsSettings
from edge_fer.config.loading import parse_config
from edge_fer.config.secrets import Secret
from edge_fer.config.settings import ConfigError


def test_defaults_are_off_and_named_after_the_device():
    s = parse_config({"device": "Kitchen Pi"}).mqtt
    assert not s.enabled and s.address is None
    assert s.device == "kitchen_pi"
    assert s.effective_client_id == "edge-fer-kitchen_pi"
    assert (s.qos, s.buffer_size, s.topic_prefix, s.discovery) == (1, 10_000, "edge-fer", False)
    assert s.ha_status_topic == "homeassistant/status"


def test_from_url_with_overrides():
    s = MqttSettings.from_url("mqtts://alice:hunter2@broker", device="d", client_id="cid", qos=0)
    a = s.address
    assert (a.host, a.port, a.username, s.client_id, s.qos, a.tls) == ("broker", 8883, "alice", "cid", 0, True)
    assert s.tls == MqttTlsSettings()
    assert s.password.reveal() == "hunter2"
    assert "hunter2" not in repr(s) and "hunter2" not in str(s.address.url)


def test_a_given_password_becomes_a_secret_and_is_never_dumped():
    s = MqttSettings.from_url("mqtt://u@broker", device="d", password="hunter2")
    assert isinstance(s.password, Secret) and "hunter2" not in repr(s)
    assert "hunter2" not in str(s.model_dump()) and "hunter2" not in s.model_dump_json()


@pytest.mark.parametrize(
    ("fields", "key"),
    [
        ({"host": ""}, "mqtt.host"),
        ({"host": "a b"}, "mqtt.host"),
        ({"host": "a", "port": 0}, "mqtt.port"),
        ({"host": "a", "port": 70000}, "mqtt.port"),
        ({"host": "a", "protocol": "3.1"}, "mqtt.protocol"),
        ({"host": "a", "qos": 3}, "mqtt.qos"),
        ({"host": "a", "keepalive": 0}, "mqtt.keepalive"),
        ({"host": "a", "buffer_size": 0}, "mqtt.buffer_size"),
        ({"host": "a", "max_inflight": 0}, "mqtt.max_inflight"),
        ({"host": "a", "reconnect_min_delay": 0}, "mqtt.reconnect_min_delay"),
        ({"host": "a", "reconnect_min_delay": 5, "reconnect_max_delay": 1}, "mqtt.reconnect_max_delay"),
        ({"host": "a", "password_env": "MQTT_TEST_PW"}, "mqtt.username"),
        ({"host": "a", "client_id": ""}, "mqtt.client_id"),
        ({"host": "a", "topic_prefix": "a/#"}, "mqtt.topic_prefix"),
        ({"host": "a", "discovery_prefix": "/ha"}, "mqtt.discovery_prefix"),
        ({"url": "mqtt://a", "host": "b"}, "mqtt.host"),
        ({"url": "mqtt://a", "port": 1}, "mqtt.port"),
        ({"url": "mqtt://alice@a", "username": "bob"}, "mqtt.username"),
        ({"url": "mqtt://u:pw@a", "password_env": "MQTT_TEST_PW"}, "mqtt.password_env"),
        ({"url": "mqtt://a:0"}, "mqtt.url"),
        ({"host": "a", "password_file": "/nonexistent"}, "mqtt.password_file"),
    ],
)
def test_bad_settings_are_one_line_at_their_key(fields, key, monkeypatch):
    monkeypatch.setenv("MQTT_TEST_PW", "pw")
    with pytest.raises(ConfigError) as info:
        parse_config({"mqtt": fields})
    assert [p.path for p in info.value.items] == [key]
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"ca_file": "/nonexistent/ca.crt"}, "file /nonexistent/ca.crt does not exist"),
        ({"cert_file": "/nonexistent/c.crt"}, "cert_file"),
        ({"key_file": __file__}, "key_file is set without cert_file"),
    ],
)
def test_bad_tls_files(fields, problem):
    with pytest.raises(ValueError, match=problem):
        MqttTlsSettings(**fields)


def test_tls_context_verifies_host_names_unless_insecure(tls_files, caplog):
    ctx = MqttTlsSettings(ca_file=tls_files.ca).context()
    assert ctx.check_hostname and ctx.verify_mode == ssl.CERT_REQUIRED
    with caplog.at_level(logging.WARNING, logger="edge_fer.mqtt"):
        loose = MqttTlsSettings(ca_file=tls_files.ca, insecure=True).context()
    assert not loose.check_hostname and loose.verify_mode == ssl.CERT_REQUIRED
    assert "host name check is OFF" in caplog.text


def test_tls_context_errors_name_the_file(tls_files):
    with pytest.raises(ValueError, match="not a usable CA certificate"):
        MqttTlsSettings(ca_file=__file__).context()
    with pytest.raises(ValueError, match="not a matching certificate and key"):
        MqttTlsSettings(cert_file=tls_files.client_cert, key_file=tls_files.server_key).context()
    MqttTlsSettings(ca_file=tls_files.ca, cert_file=tls_files.client_cert, key_file=tls_files.client_key).context()


def test_section_options_resolve_the_broker_and_password_once(monkeypatch, tls_files):
    monkeypatch.setenv("MQTT_PW", "from-env")
    s = parse_config({"mqtt": {"url": "mqtt://alice@broker:1884", "password_env": "MQTT_PW", "qos": 0}}).mqtt
    a = s.address
    assert (a.host, a.port, a.tls, a.username, s.qos) == ("broker", 1884, False, "alice", 0)
    assert s.password.reveal() == "from-env"
    monkeypatch.delenv("MQTT_PW")
    assert s.password.reveal() == "from-env"  # resolved at validation, not at connect
    section = {"host": "broker", "tls": {"ca_file": str(tls_files.ca)}, "username": "bob", "discovery": True}
    s = parse_config({"mqtt": section}).mqtt
    assert s.address.tls and s.address.port == 8883 and s.discovery
    assert parse_config({"mqtt": {"host": "127.0.0.1"}}).mqtt.address.url == "mqtt://127.0.0.1:1883"


def test_from_url_errors_are_one_line_naming_the_key():
    with pytest.raises(ValueError, match=r"mqtt\.qos") as info:
        MqttSettings.from_url("mqtt://broker", qos=5)
    assert "\n" not in str(info.value)


def test_a_password_in_the_url_is_accepted_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="edge_fer.mqtt"):
        s = MqttSettings.from_url("mqtt://alice:hunter2@broker", device="d")
    assert s.password.reveal() == "hunter2"
    assert "URL holds a password" in caplog.text and "hunter2" not in caplog.text
