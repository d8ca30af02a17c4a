"""How a connection attempt went, in words an operator can act on, said once rather than every retry.

paho reports a failed TCP or TLS connect through ``on_connect_fail`` without the exception, so
:class:`RecordingClient` keeps it; :func:`describe_connect_error` turns it into one line (certificate
problems and TLS/plain port mix-ups are errors, an unreachable broker a warning; the publisher throttles
them by kind with :class:`edge_fer.logs.Throttle`); :func:`guarded` makes an exception in a paho
callback loud instead of lost.
"""

from __future__ import annotations

import functools
import logging
import ssl
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt


class RecordingClient(mqtt.Client):
    """paho's client, remembering why the last connection attempt failed (``on_connect_fail`` does not say)."""

    connect_error: BaseException | None = None

    def reconnect(self) -> mqtt.MQTTErrorCode:
        try:
            rc = super().reconnect()
        except OSError as exc:
            self.connect_error = exc
            raise
        self.connect_error = None
        return rc


def describe_connect_error(exc: BaseException | None, tls: bool) -> tuple[int, str]:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return logging.ERROR, f"TLS certificate rejected: {exc.verify_message or exc}"
    if isinstance(exc, ssl.SSLError):
        return logging.ERROR, f"TLS handshake failed: {exc.reason or exc}"
    if tls and isinstance(exc, ConnectionResetError):
        return logging.ERROR, "TLS handshake failed: the broker reset the connection (is this port a TLS listener?)"
    if exc is None:
        return logging.WARNING, "connection failed"
    return logging.WARNING, f"{exc.strerror or exc}" if isinstance(exc, OSError) else str(exc)


def guarded(callback: Callable[..., Any], on_error: Callable[[str, BaseException], None]) -> Callable[..., Any]:
    """``callback`` for paho, with any exception handed to ``on_error(callback name, exception)``.

    paho runs callbacks on its network thread and, with ``suppress_exceptions``, drops what they raise
    (logged only through paho's own logger, which is off); without it, the exception ends the network
    thread. Either way a bug there (paho 2.1 lacks ``drop_out_messages``) left a publisher that never
    connected and said nothing. Wrapped, the error is reported by its owner and paho keeps running.
    """

    @functools.wraps(callback)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return callback(*args, **kwargs)
        except Exception as exc:
            on_error(getattr(callback, "__name__", "callback"), exc)
            return None

    return call
