"""Broker URLs: what is accepted, and that every refusal names the URL, the problem, and never the password."""

import pytest

from edge_fer.config.broker import mask_url, parse_mqtt_url


@pytest.mark.parametrize(
    ("url", "host", "port", "tls", "user", "password"),
    [
        ("mqtt://127.0.0.1", "127.0.0.1", 1883, False, None, None),
        ("mqtt://broker.local:1884", "broker.local", 1884, False, None, None),
        ("mqtts://broker.example.com", "broker.example.com", 8883, True, None, None),
        ("mqtts://broker:8884/", "broker", 8884, True, None, None),
        ("MQTT://Broker", "Broker", 1883, False, None, None),
        ("mqtt://user@host", "host", 1883, False, "user", None),
        ("mqtt://user:s3cret@host:2000", "host", 2000, False, "user", "s3cret"),
        ("mqtt://us%40er:p%3Aa%2Fss@host", "host", 1883, False, "us@er", "p:a/ss"),
        ("mqtt://user:p@ss@host", "host", 1883, False, "user", "p@ss"),
        ("mqtt://user:@host", "host", 1883, False, "user", ""),
        ("mqtt://[::1]", "::1", 1883, False, None, None),
        ("mqtts://[fe80::1]:9000", "fe80::1", 9000, True, None, None),
        ("mqtt://host:65535", "host", 65535, False, None, None),
        ("mqtt://my_broker.lan", "my_broker.lan", 1883, False, None, None),
    ],
)
def test_good_urls(url, host, port, tls, user, password):
    a = parse_mqtt_url(url)
    assert (a.host, a.port, a.tls, a.username) == (host, port, tls, user)
    assert (a.password.reveal() if a.password is not None else None) == password


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("broker:1883", "no scheme"),
        ("127.0.0.1", "no scheme"),
        ("http://broker", "unsupported scheme 'http'"),
        ("tcp://broker", "unsupported scheme 'tcp'"),
        ("mqtt://", "no host"),
        ("mqtt://:1883", "no host"),
        ("mqtt://host:abc", "port 'abc' is not a number"),
        ("mqtt://host:", "port '' is not a number"),
        ("mqtt://host:0", "outside 1-65535"),
        ("mqtt://host:65536", "outside 1-65535"),
        ("mqtt://host:-1", "not a number"),
        ("mqtt://host/topic", "unexpected path '/topic'"),
        ("mqtt://host?x=1", "query strings"),
        ("mqtt://host#frag", "query strings"),
        ("mqtt://ho st", "whitespace"),
        (" mqtt://host", "whitespace"),
        ("mqtt://host_!", "not a valid host name"),
        ("mqtt://-host", "not a valid host name"),
        ("mqtt://::1", "too many ':'"),
        ("mqtt://[::1", "closing ']'"),
        ("mqtt://[nope]:1883", "not an IPv6 address"),
        ("mqtt://[::1]x", "expected ':port'"),
        ("mqtt://@host", "empty user name"),
        ("mqtt://:secret@host", "empty user name"),
    ],
)
def test_bad_urls_name_the_url_and_the_problem(url, problem):
    with pytest.raises(ValueError) as info:
        parse_mqtt_url(url)
    text = str(info.value)
    assert problem in text
    assert text.startswith("invalid MQTT URL ")
    assert "\n" not in text


@pytest.mark.parametrize(
    "url",
    ["mqtt://user:hunter2@host:abc", "mqtt://user:hunter2@host/path", "http://user:hunter2@host", "user:hunter2@host"],
)
def test_errors_never_show_the_password(url):
    with pytest.raises(ValueError) as info:
        parse_mqtt_url(url)
    assert "hunter2" not in str(info.value)
    assert "***" in str(info.value) or "no scheme" in str(info.value)


def test_address_repr_and_url_mask_the_password():
    a = parse_mqtt_url("mqtts://alice:hunter2@broker:8884")
    assert "hunter2" not in repr(a) and "hunter2" not in str(a)
    assert a.url == "mqtts://alice:***@broker:8884"
    assert parse_mqtt_url("mqtt://[::1]").url == "mqtt://[::1]:1883"


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("mqtt://u:pw@h", "mqtt://u:***@h"),
        ("mqtt://u:p@w@h:1", "mqtt://u:***@h:1"),
        ("mqtt://u@h", "mqtt://u@h"),
        ("mqtt://h", "mqtt://h"),
        ("garbage:pw@h", "garbage:***@h"),
    ],
)
def test_mask_url(url, masked):
    assert mask_url(url) == masked
