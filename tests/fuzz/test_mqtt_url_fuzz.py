"""Fuzzed broker URLs: ``parse_mqtt_url`` returns an address or raises one ValueError line that shows the URL
with its password masked; the config layer turns the same URL into a problem at ``mqtt`` without the password.
"""

from __future__ import annotations

import os
import string

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from edge_fer.config.broker import mask_url, parse_mqtt_url
from edge_fer.config.loading import parse_config
from edge_fer.config.settings import Config, ConfigError
from edge_fer.redact import REDACTOR

EXAMPLES = int(os.environ.get("EDGE_FER_FUZZ_EXAMPLES", "300"))


def mostly(good, bad):
    """Three draws in four from ``good``: enough valid URLs to check what a parsed address shows."""
    return st.one_of(good, good, good, bad)


schemes = mostly(
    st.sampled_from(["mqtt", "mqtts", "MQTT", "Mqtts"]),
    st.sampled_from(["http", "tcp", "ws", "mqtt+ssl", "", "1mqtt", "mqtt ", "mqt"]),
)
separators = mostly(st.just("://"), st.sampled_from([":/", ":", "//", ":///", ":\\\\"]))
hosts = mostly(
    st.sampled_from(["127.0.0.1", "localhost", "broker.local", "a-b.example.com.", "[::1]", "[2001:db8::1]", "h_1"]),
    st.one_of(
        st.sampled_from(["", "-bad", "bad-", "a..b", "[::1", "::1]", "[zz::1]", "::1", "host name", "x" * 300]),
        st.sampled_from(["例え.jp", "[fe80::1%eth0]", "1.2.3.4.5"]),
        st.text(string.ascii_letters + string.digits + ".-_[]:", max_size=20),
        st.text(max_size=10),
    ),
)
ports = mostly(
    st.one_of(st.none(), st.integers(1, 65535).map(str)),
    st.one_of(
        st.integers(-5, 70000).map(str),
        st.sampled_from(["", "0", "65536", "08883", "１８８３", "1e3", "0x50", " 1883", "1883 ", "99999999999999999"]),
        st.text(max_size=6),
    ),
)
users = mostly(
    st.one_of(st.none(), st.just("edge")),
    st.one_of(st.sampled_from(["", "a b", "u%40x"]), st.text(max_size=8)),
)

# A password that cannot be mistaken for another part of the URL, so "it does not appear" means something.
passwords = st.one_of(
    st.none(),
    st.text(string.ascii_letters + string.digits + "!$&'()*+,;=%~-._/?#[]@:", min_size=1, max_size=12).map(
        lambda s: f"Pw{s}Zq"
    ),
)
tails = mostly(st.sampled_from(["", "/"]), st.sampled_from(["/topic", "?x=1", "#frag", " ", "\n", "/ "]))


@st.composite
def urls(draw) -> tuple[str, str | None]:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.text(max_size=40)), None  # anything at all
    scheme, sep, host, port, user, password = (
        draw(schemes), draw(separators), draw(hosts), draw(ports), draw(users), draw(passwords)
    )  # fmt: skip
    userinfo = ""
    if user is not None or password is not None:
        userinfo = (user or "") + (f":{password}" if password is not None else "") + "@"
    url = f"{scheme}{sep}{userinfo}{host}{'' if port is None else ':' + port}{draw(tails)}"
    return url, password


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=urls())
def test_parse_mqtt_url_returns_or_names_the_masked_url(case):
    url, password = case
    try:
        address = parse_mqtt_url(url)
    except ValueError as exc:
        event("refused")
        message = str(exc)
        assert "\n" not in message and message.startswith("invalid MQTT URL ")
        shown = repr(mask_url(url)) if url.strip() else "''"
        assert shown in message, f"{message!r} does not show {shown}"
        if password is not None:
            assert password not in message
        return
    event("parsed")
    assert address.host and 1 <= address.port <= 65535
    assert url.lower().startswith(("mqtt://", "mqtts://"))
    if password is not None:
        assert password not in repr(address) and password not in address.url
        assert address.password is not None and str(address.password) == "***"


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=urls())
def test_a_bad_url_in_the_config_is_a_problem_at_mqtt_without_the_password(case):
    url, password = case
    try:
        config = parse_config({"mqtt": {"url": url}})
    except ConfigError as exc:
        assert all(p.path.startswith("mqtt") for p in exc.items), exc.problems
        if password is not None:
            assert password not in str(exc)
        return
    assert isinstance(config, Config)
    if password is not None:  # a password written into the URL is registered, so no log line can show it
        assert password not in REDACTOR.redact(f"connecting to {url} failed")


@pytest.mark.parametrize("port", ["²", "①", "1²"])
def test_a_port_of_digit_like_characters_is_refused_naming_the_url(port):
    url = f"mqtt://edge:secret@127.0.0.1:{port}"
    with pytest.raises(ValueError) as error:
        parse_mqtt_url(url)
    assert str(error.value).startswith(f"invalid MQTT URL {mask_url(url)!r}: port")
