"""Keep secrets out of log lines and printed configs.

Two nets: a process-wide registry of known secret values (filled when a config is loaded, so a
password is masked wherever it turns up, even inside an exception message from a library), and
patterns for secrets we were never told about (the password part of ``scheme://user:pw@host``).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

MASK = "***"

# A key names a secret when it contains one of these words, unless it only names where the secret
# lives (``password_file``: the path is not the secret, the file's contents are).
_SECRET_KEY = re.compile(r"passw(or)?d|passphrase|secret|token|api_?key|credential", re.IGNORECASE)
_LOCATION_SUFFIX = re.compile(r"_(file|path|dir|env)$", re.IGNORECASE)
# The password runs to the last "@" that is followed by a host: people write "/" and "@" in passwords
# without percent-encoding them, and masking a little too much is better than leaking the rest.
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s/:@]*:)(?P<pw>\S+)(?=@[^\s/@]+)")


def is_secret_key(name: object) -> bool:
    """Whether a config key holds a secret value (``password``, ``mqtt_token``, ``client_secret``)."""
    text = str(name)
    return bool(_SECRET_KEY.search(text)) and not _LOCATION_SUFFIX.search(text)


def mask_url_passwords(text: str) -> str:
    """``rtsp://cam:hunter2@10.0.0.5/live`` -> ``rtsp://cam:***@10.0.0.5/live``."""
    return _URL_PASSWORD.sub(lambda m: m.group("head") + MASK, text)


def url_passwords(text: str) -> list[str]:
    return [m.group("pw") for m in _URL_PASSWORD.finditer(text)]


class Redactor:
    """A set of secret strings, replaced by ``***`` in any text passed through :meth:`redact`.

    Thread-safe: secrets are registered at config load while other threads may be logging.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None

    def add(self, value: str) -> None:
        """Register a secret, and its URL-encoded form (it may appear inside a URL)."""
        if not isinstance(value, str) or not value:
            return
        forms = {value, quote(value, safe="")}
        with self._lock:
            if forms <= self._secrets:
                return
            self._secrets |= forms
            # Longest first, so a secret that contains another is masked whole.
            ordered = sorted(self._secrets, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(s) for s in ordered))

    def add_all(self, values: Iterable[str]) -> None:
        for value in values:
            self.add(value)

    def clear(self) -> None:
        with self._lock:
            self._secrets.clear()
            self._pattern = None

    def __len__(self) -> int:
        return len(self._secrets)

    def redact(self, text: str) -> str:
        pattern = self._pattern
        if pattern is not None:
            text = pattern.sub(MASK, text)
        return mask_url_passwords(text)


REDACTOR = Redactor()


def register_secrets(values: Iterable[str]) -> None:
    """Add secrets to the process-wide registry used by the logging setup."""
    REDACTOR.add_all(values)


def find_secrets(data: Any) -> list[str]:
    """Secret values in a config-shaped tree: values of secret-named keys, and passwords in URLs."""
    found: list[str] = []

    def walk(node: Any, secret: bool) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, secret or is_secret_key(key))
        elif isinstance(node, (list, tuple)):
            for item in node:
                walk(item, secret)
        elif isinstance(node, str):
            if secret and node:
                found.append(node)
            found.extend(url_passwords(node))

    walk(data, False)
    return found


def mask_secrets(data: Any, redactor: Redactor | None = None) -> Any:
    """A copy of a config-shaped tree that is safe to print: secret keys and URL passwords masked."""
    redactor = REDACTOR if redactor is None else redactor

    def walk(node: Any, secret: bool) -> Any:
        if isinstance(node, dict):
            return {key: walk(value, secret or is_secret_key(key)) for key, value in node.items()}
        if isinstance(node, (list, tuple)):
            return [walk(item, secret) for item in node]
        if secret and node not in (None, ""):
            return MASK
        if isinstance(node, str):
            return redactor.redact(node)
        return node

    return walk(data, False)
