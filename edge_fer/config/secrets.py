"""Broker passwords from a file, an environment variable or systemd credentials, never from logs.

A password lives in a :class:`Secret` from the moment it is read: its ``str`` and ``repr`` are ``***``,
so a stray f-string, a dataclass repr or a traceback cannot leak it. Only the MQTT client calls
:meth:`Secret.reveal`.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from edge_fer.readfile import FileRefused, read_regular

log = logging.getLogger("edge_fer.mqtt")

CREDENTIALS_ENV = "CREDENTIALS_DIRECTORY"


class Secret:
    """A string that refuses to be printed."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("a Secret holds a str")
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


def _strip_newline(text: str) -> str:
    # Files written with `echo pass > file` end in a newline that is not part of the password;
    # any other whitespace is kept, because it may be.
    if text.endswith("\r\n"):
        return text[:-2]
    return text[:-1] if text.endswith("\n") else text


def read_password_file(path: str | Path, what: str = "password file") -> Secret:
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{what} {str(path)!r} does not exist; create it or fix the path")
    try:  # a FIFO or a device would hang the start-up; no password is a megabyte
        text = read_regular(path, 1 << 16, what=what).decode("utf-8")
        mode = path.stat().st_mode
    except FileRefused as exc:
        raise ValueError(str(exc)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{what} {str(path)!r} cannot be read: {exc.__class__.__name__}") from None
    password = _strip_newline(text)
    if not password:
        raise ValueError(f"{what} {str(path)!r} is empty; write the password into it")
    if "\n" in password:
        raise ValueError(f"{what} {str(path)!r} has more than one line; it must hold only the password")
    if mode & (stat.S_IRWXG | stat.S_IRWXO) and os.name == "posix":
        log.warning("%s %s is readable by other users; run: chmod 600 %s", what, path, path)
    return Secret(password)


def resolve_password(
    *,
    password_file: str | Path | None = None,
    password_env: str | None = None,
    credential: str | None = None,
    url_password: Secret | None = None,
) -> Secret | None:
    """The broker password from the first source that is set, in this order: file, environment variable,
    systemd credential (``LoadCredential=<credential>:...`` gives ``$CREDENTIALS_DIRECTORY/<credential>``),
    password in the URL. None when no source is set; ValueError (one line) when a set source is unusable."""
    sources = (("password_file", password_file), ("password_env", password_env), ("credential", credential))
    chosen = [name for name, value in sources if value]
    if len(chosen) > 1:
        raise ValueError(f"MQTT password: set only one of {', '.join(chosen)}")
    if url_password is not None and chosen:
        raise ValueError(f"MQTT password: the broker URL holds a password and {chosen[0]} is set too; remove one")
    if password_file:
        return read_password_file(password_file, "MQTT password file")
    if password_env:
        value = os.environ.get(password_env)
        if value is None:
            raise ValueError(f"MQTT password: environment variable ${password_env} is not set")
        if not value:
            raise ValueError(f"MQTT password: environment variable ${password_env} is empty")
        return Secret(value)
    if credential:
        if "/" in credential or credential in (".", ".."):
            raise ValueError(f"MQTT password: credential name {credential!r} must be a plain file name")
        directory = os.environ.get(CREDENTIALS_ENV)
        if not directory:
            raise ValueError(
                f"MQTT password: credential {credential!r} needs ${CREDENTIALS_ENV}; "
                f"add LoadCredential={credential}:/path/to/file to the systemd unit"
            )
        return read_password_file(Path(directory) / credential, f"MQTT credential {credential!r}")
    if url_password is not None:
        log.warning("the MQTT broker URL holds a password; prefer password_file, password_env or a systemd credential")
    return url_password
