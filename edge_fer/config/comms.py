"""The ``mqtt:`` and ``http:`` config sections, and their mapping onto the runtime settings.

The sections only describe; :func:`mqtt_settings` and :func:`http_settings` build the validated
objects the MQTT publisher and the preview server take, so those stay usable without the YAML layer.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from edge_fer.config.checks import ExistingFile, Strict, require_files


class MqttTlsSection(Strict):
    enabled: bool = False  # also on with an mqtts:// url
    ca_file: ExistingFile | None = None  # None: the system's trusted CAs
    cert_file: ExistingFile | None = None  # client certificate, for brokers that require one
    key_file: ExistingFile | None = None
    insecure: bool = False  # skip the host name check (the chain is still verified); logged as a warning

    @model_validator(mode="after")
    def _pair(self) -> MqttTlsSection:
        if self.key_file is not None and self.cert_file is None:
            raise ValueError("key_file is set without cert_file; set both for a client certificate")
        if self.enabled or self.ca_file or self.cert_file:
            require_files(self, "ca_file", "cert_file", "key_file", reason="TLS is on")
        return self


class MqttSection(Strict):
    url: str | None = None  # mqtt://[user@]host[:port] or mqtts://...; None (and no host): MQTT off
    host: str | None = None
    port: Annotated[int, Field(ge=1, le=65535)] | None = None  # None: 1883, or 8883 with TLS
    username: str | None = None
    password_file: ExistingFile | None = None  # one of password_file, password_env, credential
    password_env: str | None = None
    credential: str | None = None  # systemd LoadCredential= name: $CREDENTIALS_DIRECTORY/<credential>
    client_id: str | None = None  # None: edge-fer-<device>
    topic_prefix: str = "edge-fer"
    protocol: Literal["3.1.1", "5"] = "3.1.1"
    qos: Literal[0, 1, 2] = 1
    keepalive: Annotated[int, Field(ge=2, le=3600)] = 30
    buffer_size: Annotated[int, Field(ge=1, le=10_000_000)] = 10_000
    tls: MqttTlsSection = MqttTlsSection()
    discovery: bool = False  # Home Assistant MQTT discovery
    discovery_prefix: str = "homeassistant"

    @property
    def enabled(self) -> bool:
        return bool(self.url or self.host)


LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


class HttpSettings(Strict):
    """The browser preview; :class:`~edge_fer.outputs.web.server.PreviewServer` takes this model as it is.

    Off by default: when enabled, annotated camera frames (faces included) leave the process, so the
    operator opts in, and the default bind address keeps them on this machine (use an SSH tunnel, or
    0.0.0.0 with a token). ``token`` is required as ``?token=`` or ``Authorization: Bearer`` when set, so it
    must fit in a URL and a header. ``port`` 0 picks a free port.
    """

    enabled: bool = False
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8080
    token: str | None = None
    max_fps: Annotated[float, Field(gt=0, le=60)] = 10.0  # frames per second sent to viewers
    jpeg_quality: Annotated[int, Field(ge=1, le=100)] = 75
    max_clients: Annotated[int, Field(ge=1, le=100)] = 5

    @field_validator("host")
    @classmethod
    def _host(cls, v: str) -> str:
        if not v.strip() or any(c.isspace() for c in v) or not v.isascii():
            raise ValueError("must be an address to listen on, e.g. 127.0.0.1 (or 0.0.0.0 with a token)")
        return v

    @field_validator("token")
    @classmethod
    def _token(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if not v:
            raise ValueError("must not be empty; leave it unset (null) for no token")
        if not (v.isascii() and v.isprintable()) or any(c.isspace() for c in v):
            raise ValueError("must be printable ASCII without spaces, so it fits in a URL and a header")
        return v

    @property
    def is_loopback(self) -> bool:
        """True when only this machine can connect: the safe default for face images."""
        if self.host.lower() in LOOPBACK_NAMES:
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


HttpSection = HttpSettings  # the name used before the settings became the runtime objects


def mqtt_settings(section: MqttSection, device: str, url: str | None = None):
    """The publisher's settings from the section (``url`` from --mqtt replaces the section's broker);
    None when MQTT is off. Raises ValueError (one line, naming the setting) when the broker address or
    the password is unusable."""
    from edge_fer.outputs.mqtt.settings import settings_from_options

    if not (url or section.enabled):
        return None
    t = section.tls
    return settings_from_options(
        device=device,
        url=url or section.url,
        host=None if url else section.host,
        port=None if url else section.port,
        tls=t.enabled or None,
        username=section.username,
        password_file=section.password_file,
        password_env=section.password_env,
        credential=section.credential,
        ca_file=t.ca_file,
        cert_file=t.cert_file,
        key_file=t.key_file,
        insecure=t.insecure,
        client_id=section.client_id,
        topic_prefix=section.topic_prefix,
        protocol=section.protocol,
        qos=section.qos,
        keepalive=section.keepalive,
        buffer_size=section.buffer_size,
        discovery=section.discovery,
        discovery_prefix=section.discovery_prefix,
    )
