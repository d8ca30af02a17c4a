"""The ``mqtt:`` and ``http:`` config sections: the settings the MQTT publisher and the preview server take.

They are the runtime settings themselves (no copy in another layer), so check-config validates exactly
what ``run`` uses; both stay usable without YAML (``HttpSettings(port=0)``, ``MqttSettings.from_url(...)``).
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import ssl
from typing import Annotated, Any, Literal

from pydantic import Field, PrivateAttr, ValidationError, ValidationInfo, field_validator, model_validator

from edge_fer.config.broker import BrokerAddress, parse_mqtt_url, valid_host
from edge_fer.config.checks import ExistingFile, FieldProblems, Strict, check_prefix, require_files, safe_name
from edge_fer.config.secrets import Secret, resolve_password
from edge_fer.redact import mask_url_passwords, register_secrets

log = logging.getLogger("edge_fer.mqtt")

HA_STATUS_TOPIC = "homeassistant/status"  # HA publishes online/offline here (its default birth topic)


class MqttTlsSettings(Strict):
    """TLS towards the broker; the publisher builds its SSL context from this model (:meth:`context`).

    TLS is on with ``enabled``, an ``mqtts://`` url or any certificate file. Hostname verification is on
    unless ``insecure`` is set (the chain is still verified; logged as a warning).
    """

    enabled: bool = False  # also on with an mqtts:// url
    ca_file: ExistingFile | None = None  # None: the system's trusted CAs
    cert_file: ExistingFile | None = None  # client certificate, for brokers that require one
    key_file: ExistingFile | None = None
    insecure: bool = False  # skip the host name check (the chain is still verified); logged as a warning

    @model_validator(mode="after")
    def _pair(self) -> MqttTlsSettings:
        if self.key_file is not None and self.cert_file is None:
            raise ValueError("key_file is set without cert_file; set both for a client certificate")
        if self.enabled or self.ca_file or self.cert_file:
            require_files(self, "ca_file", "cert_file", "key_file", reason="TLS is on")
        return self

    @property
    def wanted(self) -> bool:
        return self.enabled or any(f is not None for f in (self.ca_file, self.cert_file, self.key_file))

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


class MqttOutboxSettings(Strict):
    """Where messages wait until the broker acknowledges them (``mqtt.outbox``).

    ``durable`` (the default) keeps them in a SQLite file, so a killed daemon, a watchdog restart or a power
    cut loses none: the next start sends them first, with their original ``run_id`` and ``seq``. The file is
    ``path``, by default ``outbox-<device>.sqlite3`` in the state directory (``$STATE_DIRECTORY`` as systemd
    sets it, else ``$XDG_STATE_HOME/edge-fer``, else ``~/.local/state/edge-fer``). It is bounded by
    ``max_mb`` and ``max_age`` (seconds): beyond either the oldest events are dropped, counted and logged.
    ``sync: full`` fsyncs every message (survives a power cut), ``normal`` only survives a killed process.
    ``durable: false`` keeps them in memory, bounded by ``mqtt.buffer_size`` events.
    """

    durable: bool = True
    path: str | None = None  # None: <state directory>/outbox-<device>.sqlite3
    max_mb: Annotated[float, Field(gt=0, le=1_000_000)] = 256.0
    max_age: Annotated[float, Field(gt=0, le=366 * 86400)] = 7 * 86400.0  # seconds
    sync: Literal["full", "normal"] = "full"

    @field_validator("path")
    @classmethod
    def _path(cls, v: str | None) -> str | None:
        if v is not None and (not v.strip() or "\0" in v):
            raise ValueError("must be a file path; leave it unset (null) for the state directory")
        return v


class MqttSettings(Strict):
    """The ``mqtt:`` section, which the MQTT publisher, reporter and output take as it is.

    The broker is ``url`` (``mqtt://[user@]host[:port]`` or ``mqtts://``) or ``host``/``port``; neither
    means MQTT is off. Validation resolves, once, what the publisher needs: the broker address
    (:attr:`address`) and the password (:attr:`password`, a :class:`Secret`) from exactly one of
    ``password_file``, ``password_env``, ``credential`` (systemd ``LoadCredential=``) or the URL. Both are
    private attributes, so no dump, repr or schema ever holds the password; it is registered with the log
    redactor as it is read. ``device`` (the top-level setting) is set by :class:`Config`, or by
    :meth:`from_url` for ``edge-fer listen`` and tests.
    """

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
    keepalive: Annotated[int, Field(ge=1, le=3600)] = 30
    buffer_size: Annotated[int, Field(ge=1, le=10_000_000)] = 10_000  # memory mode; durable mode's fallback
    outbox: MqttOutboxSettings = MqttOutboxSettings()
    max_inflight: Annotated[int, Field(ge=1, le=65535)] = 20
    reconnect_min_delay: Annotated[float, Field(gt=0, le=3600)] = 1.0
    reconnect_max_delay: Annotated[float, Field(gt=0, le=3600)] = 30.0
    tls: MqttTlsSettings = MqttTlsSettings()
    discovery: bool = False  # Home Assistant MQTT discovery
    discovery_prefix: str = "homeassistant"

    _address: Any = PrivateAttr(default=None)  # BrokerAddress, resolved at validation; None: MQTT off
    _password: Any = PrivateAttr(default=None)  # Secret | None, resolved at validation
    _device: str = PrivateAttr(default_factory=socket.gethostname)

    @model_validator(mode="after")
    def _resolve(self, info: ValidationInfo) -> MqttSettings:
        problems: list[tuple[str, str]] = []
        for key in ("topic_prefix", "discovery_prefix"):
            try:
                check_prefix(getattr(self, key))
            except ValueError as exc:
                problems.append((key, str(exc)))
        if self.client_id is not None and not 0 < len(self.client_id.encode()) <= 65535:
            problems.append(("client_id", "must not be empty (null means edge-fer-<device>)"))
        if self.reconnect_max_delay < self.reconnect_min_delay:
            problems.append(("reconnect_max_delay", f"must be >= reconnect_min_delay ({self.reconnect_min_delay})"))
        if self.host is not None and not valid_host(self.host):
            problems.append(("host", "must be a host name (at most 253 characters) or an IP address"))
        if problems:
            raise FieldProblems(problems)
        if not self.enabled:
            return self
        if self.url is not None and self.host is not None:
            raise FieldProblems([("host", "set either url or host, not both")])
        try:
            parsed = parse_mqtt_url(self.url) if self.url is not None else None
        except ValueError as exc:
            raise FieldProblems([("url", str(exc))]) from None
        if parsed is not None and self.port is not None:
            raise FieldProblems([("port", "the port is part of the url; remove port")])
        if parsed is not None and parsed.username is not None and self.username not in (None, parsed.username):
            raise FieldProblems([("username", "the url and username name different users; remove one")])
        given = (info.context or {}).get("mqtt_password")
        try:
            password = Secret(str(given)) if isinstance(given, str) else given
            if password is None:
                password = resolve_password(
                    password_file=self.password_file,
                    password_env=self.password_env,
                    credential=self.credential,
                    url_password=parsed.password if parsed is not None else None,
                )
        except ValueError as exc:
            sources = ("password_file", "password_env", "credential")
            key = next((k for k in sources if getattr(self, k)), "url")
            raise FieldProblems([(key, str(exc))]) from None
        username = self.username if self.username is not None else (parsed.username if parsed else None)
        if password is not None and username is None:
            raise FieldProblems([("username", "a password needs a username")])
        use_tls = (parsed is not None and parsed.tls) or self.tls.wanted
        host = parsed.host if parsed is not None else str(self.host)
        port = parsed.port if parsed is not None else (self.port or (8883 if use_tls else 1883))
        self._address = BrokerAddress(host, port, use_tls, username, password)
        self._password = password
        if password is not None:
            # From a file, the environment, a credential or the URL: the masking patterns cannot know it
            # (a URL password may hold '/' or '@'), so the log redactor and check-config are told.
            register_secrets([password.reveal()])
        return self

    def __repr_args__(self):
        # A URL may hold a password (accepted, with a warning): a repr in a log or traceback masks it.
        for name, value in super().__repr_args__():
            yield name, mask_url_passwords(value) if name == "url" and isinstance(value, str) else value

    @classmethod
    def from_url(
        cls, url: str, *, device: str | None = None, password: object = None, **fields: object
    ) -> MqttSettings:
        """Settings for a broker URL plus any section keys (``qos``, ``tls``, ...): for ``edge-fer listen``
        and tests. ``password`` (a string or :class:`Secret`) replaces the password sources; ``mqtts://``
        turns TLS on with the system CAs. Raises ValueError, one line naming each key (``mqtt.qos: ...``)."""
        from edge_fer.config.checks import problems_from

        try:
            settings = cls.model_validate({"url": url, **fields}, context={"mqtt_password": password})
        except ValidationError as exc:
            lines = [f"mqtt.{p.path}: {p.message}" for _, p in problems_from(exc, cls, None)]
            raise ValueError("; ".join(lines)) from None
        return settings.with_device(device) if device is not None else settings

    def with_device(self, device: str) -> MqttSettings:
        """A copy naming the device (topics ``<prefix>/<device>/...``, client id ``edge-fer-<device>``)."""
        copy = self.model_copy()
        copy._device = device
        return copy

    @property
    def enabled(self) -> bool:
        return bool(self.url or self.host)

    @property
    def device(self) -> str:
        return safe_name(self._device)

    @property
    def address(self):
        """The broker's :class:`~edge_fer.config.broker.BrokerAddress` (host, port, tls, username,
        password); None when MQTT is off."""
        return self._address

    @property
    def password(self):
        """The resolved password (:class:`~edge_fer.config.secrets.Secret`) or None."""
        return self._password

    @property
    def effective_client_id(self) -> str:
        return self.client_id or f"edge-fer-{self.device}"

    @property
    def ha_status_topic(self) -> str:
        """Where Home Assistant announces its restarts: HA's own default birth topic, whatever the prefix."""
        return HA_STATUS_TOPIC


MqttSection = MqttSettings  # the name used before the settings became the runtime objects
MqttTlsSection = MqttTlsSettings


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
        if not valid_host(v):
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


class MetricsSettings(Strict):
    """Health and Prometheus metrics for fleets (``/healthz``, ``/metrics``) on a listener of their own.

    Never serves images or events, so monitoring does not need the face-serving preview. Off by default and
    on 127.0.0.1 by default like the preview; a Prometheus on another host needs ``host: 0.0.0.0`` (the
    answers hold camera and device names and counters only), and ``token`` then asks for
    ``Authorization: Bearer <token>`` (Prometheus: ``authorization: {credentials: ...}``).
    """

    enabled: bool = False
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 9850  # 0: any free port

    token: str | None = None

    _host = field_validator("host")(HttpSettings._host.__func__)
    _token = field_validator("token")(HttpSettings._token.__func__)
