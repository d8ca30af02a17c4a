"""``mqtt://[user[:password]@]host[:port]`` and ``mqtts://...``, parsed strictly.

A typo in a broker URL should stop the daemon at start-up with a line that names the URL and the
problem, not surface later as an endless reconnect loop. Passwords never appear in those lines.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from urllib.parse import unquote

from edge_fer.config.secrets import Secret

DEFAULT_PORTS: dict[str, int] = {"mqtt": 1883, "mqtts": 8883}
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_LABEL = r"[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*\.?$")


def valid_host(host: str) -> bool:
    """A host name (at most 253 characters, labels of at most 63) or an IPv4/IPv6 address: what the
    resolver and ``bind`` accept, so a bad ``mqtt.host`` or ``http.host`` is a config error, not a
    failure inside a network thread."""
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return bool(_HOSTNAME.match(host))


def mask_url(url: str) -> str:
    """The URL with any password replaced by ``***``; safe to log even when the URL is malformed."""
    m = _SCHEME.match(url)
    start = m.end() if m else 0
    at = url.rfind("@", start)
    if at < 0:
        return url
    colon = url.find(":", start, at)
    return url if colon < 0 else url[: colon + 1] + "***" + url[at:]


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """Where the broker is and how to reach it; ``password`` is a :class:`Secret` and never printed."""

    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: Secret | None = field(default=None)

    def __post_init__(self) -> None:
        if not self.host:
            raise ValueError("broker host must not be empty")
        if not 1 <= self.port <= 65535:
            raise ValueError(f"broker port {self.port} is outside 1-65535")

    @property
    def url(self) -> str:
        """The address as a URL, password masked: for logs and error messages."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        user = ""
        if self.username is not None:
            user = self.username + (":***" if self.password is not None else "") + "@"
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{host}:{self.port}"


def _fail(url: str, problem: str) -> ValueError:
    return ValueError(f"invalid MQTT URL {mask_url(url)!r}: {problem}")


def _parse_host_port(url: str, hostport: str, scheme: str) -> tuple[str, int]:
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise _fail(url, "IPv6 address is missing its closing ']'")
        host, rest = hostport[1:end], hostport[end + 1 :]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise _fail(url, f"{host!r} is not an IPv6 address") from None
        if rest and not rest.startswith(":"):
            raise _fail(url, "expected ':port' after the IPv6 address")
        port_text = rest[1:] if rest else None
    else:
        host, sep, port_text = hostport.partition(":")
        if ":" in port_text:
            raise _fail(url, "too many ':' (write IPv6 addresses in brackets: mqtt://[::1]:1883)")
        port_text = port_text if sep else None
        if not host:
            raise _fail(url, "no host name (expected mqtt://host[:port])")
        if not _HOSTNAME.match(host):
            raise _fail(url, f"{host!r} is not a valid host name")
    if port_text is None:
        return host, DEFAULT_PORTS[scheme]
    if not (port_text.isascii() and port_text.isdigit()):
        raise _fail(url, f"port {port_text!r} is not a number")
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise _fail(url, f"port {port} is outside 1-65535")
    return host, port


def parse_mqtt_url(url: str) -> BrokerAddress:
    """Parse a broker URL; raises ValueError naming the (masked) URL and what is wrong with it."""
    if not isinstance(url, str) or not url.strip():
        raise ValueError("invalid MQTT URL '': it is empty (expected mqtt://host[:port] or mqtts://host[:port])")
    if url != url.strip() or any(c.isspace() for c in url):
        raise _fail(url, "contains whitespace")
    m = _SCHEME.match(url)
    if not m:
        raise _fail(url, "no scheme (expected mqtt://host[:port] or mqtts://host[:port])")
    scheme = m.group(1).lower()
    if scheme not in DEFAULT_PORTS:
        raise _fail(url, f"unsupported scheme {scheme!r} (use mqtt:// or mqtts://)")
    rest = url[m.end() :]
    if "?" in rest or "#" in rest:
        raise _fail(url, "query strings and fragments are not supported (set options in the config)")
    at = rest.rfind("@")
    userinfo, hostport = (rest[:at], rest[at + 1 :]) if at >= 0 else (None, rest)
    hostport, slash, path = hostport.partition("/")
    if slash and path:
        raise _fail(url, f"unexpected path '/{path}' (a broker URL has no path; set the topic prefix in the config)")
    host, port = _parse_host_port(url, hostport, scheme)
    username = password = None
    if userinfo is not None:
        user_text, colon, password_text = userinfo.partition(":")
        username = unquote(user_text)
        if not username:
            raise _fail(url, "empty user name before '@'")
        if colon:
            password = Secret(unquote(password_text))
    return BrokerAddress(host=host, port=port, tls=scheme == "mqtts", username=username, password=password)
