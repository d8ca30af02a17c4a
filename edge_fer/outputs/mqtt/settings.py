"""What the MQTT publisher needs to know, validated once, independent of the YAML config layer.

The daemon's pydantic config maps onto :class:`MqttSettings`; tests and ``edge-fer listen`` build it
directly. Every problem is a one-line ValueError that names the setting.
"""

from __future__ import annotations

import logging
import socket
import ssl
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from edge_fer.outputs.mqtt.credentials import Secret, resolve_password
from edge_fer.outputs.mqtt.topics import DEFAULT_PREFIX, check_prefix, safe_name
from edge_fer.outputs.mqtt.url import DEFAULT_PORTS, BrokerAddress, parse_mqtt_url

log = logging.getLogger("edge_fer.mqtt")


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """TLS towards the broker. Hostname verification is on unless ``insecure`` is set."""

    ca_file: Path | None = None  # None: the system's trusted CAs
    cert_file: Path | None = None  # client certificate, for brokers that require one
    key_file: Path | None = None
    insecure: bool = False  # skip the host name check (the chain is still verified)

    def __post_init__(self) -> None:
        for name in ("ca_file", "cert_file", "key_file"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, Path(value))
                if not Path(value).is_file():
                    raise ValueError(f"mqtt tls {name} {str(value)!r} does not exist or is not a file")
        if self.key_file is not None and self.cert_file is None:
            raise ValueError("mqtt tls key_file is set without cert_file; set both for a client certificate")

    def context(self) -> ssl.SSLContext:
        """An SSLContext that verifies the broker; errors name the file that is wrong."""
        try:
            ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.ca_file)
        except (ssl.SSLError, OSError) as exc:
            raise ValueError(f"mqtt tls ca_file {str(self.ca_file)!r} is not a usable CA certificate: {exc}") from None
        if self.cert_file is not None:
            try:
                ctx.load_cert_chain(self.cert_file, self.key_file)
            except (ssl.SSLError, OSError) as exc:
                raise ValueError(
                    f"mqtt tls cert_file {str(self.cert_file)!r} / key_file {str(self.key_file)!r} "
                    f"are not a matching certificate and key: {exc}"
                ) from None
        if self.insecure:
            log.warning("MQTT TLS host name check is OFF (tls.insecure): any trusted cert passes as the broker")
            ctx.check_hostname = False
        return ctx


@dataclass(frozen=True, slots=True)
class MqttSettings:
    host: str = "127.0.0.1"
    port: int | None = None  # None: 1883, or 8883 with TLS
    tls: TlsSettings | None = None
    username: str | None = None
    password: Secret | None = None
    device: str = field(default_factory=socket.gethostname)
    client_id: str | None = None  # None: edge-fer-<device>
    topic_prefix: str = DEFAULT_PREFIX
    protocol: Literal["3.1.1", "5"] = "3.1.1"
    qos: int = 1
    keepalive: int = 30
    buffer_size: int = 10_000
    max_inflight: int = 20
    reconnect_min_delay: float = 1.0
    reconnect_max_delay: float = 30.0
    discovery: bool = False
    discovery_prefix: str = "homeassistant"
    ha_status_topic: str = "homeassistant/status"

    def __post_init__(self) -> None:
        object.__setattr__(self, "device", safe_name(self.device))
        if self.password is not None and not isinstance(self.password, Secret):
            object.__setattr__(self, "password", Secret(str(self.password)))
        checks = [
            (bool(self.host) and not any(c.isspace() for c in self.host), "host must be a host name or address"),
            (self.port is None or 1 <= self.port <= 65535, "port must be 1-65535"),
            (self.protocol in ("3.1.1", "5"), "protocol must be '3.1.1' or '5'"),
            (self.qos in (0, 1, 2), "qos must be 0, 1 or 2"),
            (1 <= self.keepalive <= 65535, "keepalive must be 1-65535 seconds"),
            (1 <= self.buffer_size <= 10_000_000, "buffer_size must be 1-10000000 messages"),
            (1 <= self.max_inflight <= 65535, "max_inflight must be 1-65535"),
            (0 < self.reconnect_min_delay <= self.reconnect_max_delay, "need 0 < reconnect_min_delay <= max_delay"),
            (self.password is None or self.username is not None, "a password needs a username"),
            (self.client_id is None or 0 < len(self.client_id.encode()) <= 65535, "client_id must not be empty"),
        ]
        for ok, problem in checks:
            if not ok:
                raise ValueError(f"mqtt: {problem}")
        check_prefix(self.topic_prefix)
        check_prefix(self.discovery_prefix)

    @classmethod
    def from_url(cls, url: str, **overrides: object) -> MqttSettings:
        """Settings from a broker URL plus keyword overrides; ``mqtts://`` turns TLS on with system CAs."""
        address = parse_mqtt_url(url)
        base: dict[str, object] = {"host": address.host, "port": address.port}
        if address.tls:
            base["tls"] = TlsSettings()
        if address.username is not None:
            base["username"] = address.username
        if address.password is not None:
            base["password"] = resolve_password(url_password=address.password)  # accepted, with a warning
        base.update(overrides)
        return cls(**base)  # type: ignore[arg-type]

    @property
    def effective_port(self) -> int:
        return self.port or DEFAULT_PORTS["mqtts" if self.tls else "mqtt"]

    @property
    def effective_client_id(self) -> str:
        return self.client_id or f"edge-fer-{self.device}"

    @property
    def address(self) -> BrokerAddress:
        return BrokerAddress(self.host, self.effective_port, self.tls is not None, self.username, self.password)

    def with_(self, **changes: object) -> MqttSettings:
        return replace(self, **changes)  # type: ignore[arg-type]


def settings_from_options(
    *,
    device: str,
    url: str | None = None,
    host: str | None = None,
    port: int | None = None,
    tls: bool | None = None,
    username: str | None = None,
    password_file: str | Path | None = None,
    password_env: str | None = None,
    credential: str | None = None,
    ca_file: str | Path | None = None,
    cert_file: str | Path | None = None,
    key_file: str | Path | None = None,
    insecure: bool = False,
    **rest: object,
) -> MqttSettings:
    """Settings from a config section's flat options: the broker as ``url`` or as ``host``/``port``/``tls``,
    the password resolved from its file, variable or systemd credential, TLS on with ``mqtts://``,
    ``tls: true`` or any certificate file. ``rest`` are :class:`MqttSettings` fields (client_id, qos, ...)."""
    if url is not None and host is not None:
        raise ValueError("mqtt: set either url or host, not both")
    address = parse_mqtt_url(url) if url is not None else None
    if address is not None and port is not None:
        raise ValueError("mqtt: the port is part of the url; remove port")
    url_tls = address.tls if address is not None else False
    if tls is False and url_tls:
        raise ValueError("mqtt: tls is false but the url is mqtts://")
    use_tls = bool(tls) or url_tls or any(f is not None for f in (ca_file, cert_file, key_file))
    if address is not None and address.username is not None and username not in (None, address.username):
        raise ValueError("mqtt: the url and username name different users; remove one")
    password = resolve_password(
        password_file=password_file,
        password_env=password_env,
        credential=credential,
        url_password=address.password if address is not None else None,
    )
    return MqttSettings(
        host=address.host if address is not None else (host or "127.0.0.1"),
        port=address.port if address is not None else port,
        tls=TlsSettings(ca_file, cert_file, key_file, insecure) if use_tls else None,
        username=username if username is not None else (address.username if address is not None else None),
        password=password,
        device=device,
        **rest,  # type: ignore[arg-type]
    )
