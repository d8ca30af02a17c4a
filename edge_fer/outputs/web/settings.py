"""Settings for the remote preview server, kept here so the server can be built and tested without config."""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


@dataclass(frozen=True, slots=True)
class HttpSettings:
    """What the ``http:`` config section maps to.

    Off by default: when enabled, annotated camera frames (faces included) leave the process,
    so the operator opts in, and the default bind address keeps them on this machine. ``enabled`` is for
    the pipeline, which builds a ``PreviewServer`` only when it is true.
    """

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 8080
    token: str | None = None
    max_fps: float = 10.0
    jpeg_quality: int = 75
    max_clients: int = 5

    def __post_init__(self) -> None:
        if not isinstance(self.host, str) or not self.host.strip():
            raise ValueError("http.host must be an address to listen on, e.g. 127.0.0.1")
        if isinstance(self.port, bool) or not isinstance(self.port, int) or not 0 <= self.port <= 65535:
            raise ValueError(f"http.port must be an integer from 0 to 65535 (0 picks a free port), got {self.port!r}")
        if self.token is not None:
            token = self.token
            if not isinstance(token, str) or not token:
                raise ValueError("http.token must be a non-empty string, or left unset for no token")
            if not (token.isascii() and token.isprintable()) or any(c.isspace() for c in token):
                raise ValueError("http.token must be printable ASCII without spaces so it fits in a URL and a header")
        if isinstance(self.max_fps, bool) or not (math.isfinite(float(self.max_fps)) and 0 < self.max_fps <= 60):
            raise ValueError(f"http.max_fps must be above 0 and at most 60, got {self.max_fps!r}")
        if isinstance(self.jpeg_quality, bool) or not isinstance(self.jpeg_quality, int):
            raise ValueError(f"http.jpeg_quality must be an integer from 1 to 100, got {self.jpeg_quality!r}")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"http.jpeg_quality must be from 1 to 100, got {self.jpeg_quality}")
        clients = self.max_clients
        if isinstance(clients, bool) or not isinstance(clients, int) or not 1 <= clients <= 100:
            raise ValueError(f"http.max_clients must be an integer from 1 to 100, got {self.max_clients!r}")

    @property
    def is_loopback(self) -> bool:
        """True when only this machine can connect: the safe default for face images."""
        if self.host.lower() in LOOPBACK_NAMES:
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False
