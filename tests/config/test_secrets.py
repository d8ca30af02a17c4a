"""Passwords come from a file, an environment variable or systemd credentials, and never show up in text."""

import logging

import pytest

from edge_fer.config.secrets import Secret, read_password_file, resolve_password


def test_secret_never_prints():
    s = Secret("hunter2")
    assert "hunter2" not in f"{s} {s!r} {[s]} { ({'p': s}) }"
    assert s.reveal() == "hunter2"
    assert s == Secret("hunter2") and s != Secret("other") and s != "hunter2"


@pytest.mark.parametrize(
    ("content", "password"),
    [("pw\n", "pw"), ("pw\r\n", "pw"), ("pw", "pw"), (" pw with spaces \n", " pw with spaces ")],
)
def test_password_file_strips_one_trailing_newline(tmp_path, content, password):
    f = tmp_path / "pw"
    f.write_text(content)
    f.chmod(0o600)
    assert resolve_password(password_file=f).reveal() == password


@pytest.mark.parametrize(
    ("content", "problem"),
    [(None, "does not exist"), ("", "is empty"), ("\n", "is empty"), ("a\nb\n", "more than one line")],
)
def test_password_file_problems(tmp_path, content, problem):
    f = tmp_path / "pw"
    if content is not None:
        f.write_text(content)
    with pytest.raises(ValueError, match=problem) as info:
        resolve_password(password_file=f)
    assert str(f) in str(info.value)


def test_group_readable_password_file_warns(tmp_path, caplog):
    f = tmp_path / "pw"
    f.write_text("hunter2\n")
    f.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="edge_fer.mqtt"):
        read_password_file(f)
    assert "chmod 600" in caplog.text and "hunter2" not in caplog.text


def test_password_from_environment(monkeypatch):
    monkeypatch.setenv("EDGE_FER_TEST_PW", "from-env")
    assert resolve_password(password_env="EDGE_FER_TEST_PW").reveal() == "from-env"
    monkeypatch.delenv("EDGE_FER_TEST_PW")
    with pytest.raises(ValueError, match=r"\$EDGE_FER_TEST_PW is not set"):
        resolve_password(password_env="EDGE_FER_TEST_PW")
    monkeypatch.setenv("EDGE_FER_TEST_PW", "")
    with pytest.raises(ValueError, match="is empty"):
        resolve_password(password_env="EDGE_FER_TEST_PW")


def test_password_from_systemd_credentials(tmp_path, monkeypatch):
    (tmp_path / "mqtt-password").write_text("from-systemd")
    (tmp_path / "mqtt-password").chmod(0o400)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    assert resolve_password(credential="mqtt-password").reveal() == "from-systemd"
    with pytest.raises(ValueError, match="does not exist"):
        resolve_password(credential="missing")
    with pytest.raises(ValueError, match="plain file name"):
        resolve_password(credential="../etc/passwd")
    monkeypatch.delenv("CREDENTIALS_DIRECTORY")
    with pytest.raises(ValueError, match="LoadCredential=mqtt-password"):
        resolve_password(credential="mqtt-password")


def test_url_password_is_used_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="edge_fer.mqtt"):
        assert resolve_password(url_password=Secret("in-url")).reveal() == "in-url"
    assert "URL holds a password" in caplog.text and "in-url" not in caplog.text
    assert resolve_password() is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"password_file": "f", "password_env": "E"},
        {"password_env": "E", "credential": "c"},
        {"password_file": "f", "url_password": Secret("x")},
    ],
)
def test_two_sources_are_refused(kwargs):
    with pytest.raises(ValueError, match=r"only one|remove one"):
        resolve_password(**kwargs)
