"""A TCP proxy between the daemon and its broker that a test can partition, for network-fault tests.

Two faults a real network produces, and that a client notices in different ways:

- ``stall()``: packets stop in both directions and nothing is closed (a cable pulled somewhere between
  two switches, a Wi-Fi link gone silent). Only a keepalive can notice: no error ever arrives. Bytes
  already sent wait in the proxy, connections opened meanwhile are accepted and wait too.
- ``cut()``: every connection is reset (a router reboot, NAT state lost), and new ones are refused
  until ``heal()``.

``heal()`` lets traffic flow again, delivering what waited (which is then stale: the far side may have
given up on that connection long ago, and the proxy passes that on as a close).

    proxy = TcpProxy(broker.port).start()
    ... connect the daemon to 127.0.0.1:proxy.port ...
    proxy.stall(); time.sleep(6); proxy.heal()
"""

from __future__ import annotations

import contextlib
import itertools
import select
import socket
import struct
import threading

_POLL = 0.05
_ids = itertools.count()


def _reset(sock: socket.socket) -> None:
    """Close with a TCP RST instead of a FIN: the peer sees 'connection reset'."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


class _Pair:
    """One proxied connection: the client side, the upstream side once connected, and two pumps."""

    def __init__(self, proxy: TcpProxy, client: socket.socket) -> None:
        self.proxy, self.client = proxy, client
        self.upstream: socket.socket | None = None
        self.closed = threading.Event()
        self.number = next(_ids)

    def run(self) -> None:
        """Wait for the network to flow, connect upstream, then pump both ways until either side closes."""
        if not self.proxy._wait_flowing(self.closed):
            return self.close()
        try:
            self.upstream = socket.create_connection((self.proxy.upstream_host, self.proxy.upstream_port), timeout=5)
        except OSError:
            return self.close()
        back = threading.Thread(
            target=self._pump, args=(self.upstream, self.client), name=f"proxy-{self.number}-down", daemon=True
        )
        back.start()
        self._pump(self.client, self.upstream)
        back.join(2)

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        while not self.closed.is_set():
            if not self.proxy._wait_flowing(self.closed):
                break
            try:
                readable, _, _ = select.select([src], [], [], _POLL)
            except (OSError, ValueError):
                break
            if not readable or not self.proxy.flowing.is_set():
                continue  # a stall began while waiting: leave the bytes where they are
            try:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
            except OSError:
                break
        self.close()

    def close(self, reset: bool = False) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        for sock in (self.client, self.upstream):
            if sock is None:
                continue
            if reset:
                _reset(sock)
            else:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    sock.close()
        self.proxy._forget(self)


class TcpProxy:
    """Listens on a free loopback port and forwards each connection to ``upstream_host:upstream_port``."""

    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        self.upstream_host, self.upstream_port = upstream_host, upstream_port
        self.flowing = threading.Event()
        self.flowing.set()
        self.refusing = False
        self.accepted = 0
        self._pairs: set[_Pair] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self._listener.settimeout(_POLL)
        self._thread = threading.Thread(target=self._accept_loop, name="proxy-accept", daemon=True)

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._pairs)

    def start(self) -> TcpProxy:
        self._thread.start()
        return self

    def stall(self) -> None:
        """Stop forwarding in both directions; keep every connection open."""
        self.flowing.clear()

    def cut(self) -> None:
        """Reset every connection, and refuse new ones until :meth:`heal`."""
        self.refusing = True
        with self._lock:
            pairs = list(self._pairs)
        for pair in pairs:
            pair.close(reset=True)

    def heal(self) -> None:
        self.refusing = False
        self.flowing.set()

    def close(self) -> None:
        self._stop.set()
        self.flowing.set()
        self._thread.join(2)
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            pairs = list(self._pairs)
        for pair in pairs:
            pair.close()

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ---------------------------------------------------------------------------------------

    def _wait_flowing(self, closed: threading.Event) -> bool:
        while not self.flowing.wait(_POLL):
            if closed.is_set() or self._stop.is_set():
                return False
        return not (closed.is_set() or self._stop.is_set())

    def _forget(self, pair: _Pair) -> None:
        with self._lock:
            self._pairs.discard(pair)

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self.refusing:
                _reset(client)
                continue
            self.accepted += 1
            pair = _Pair(self, client)
            with self._lock:
                self._pairs.add(pair)
            threading.Thread(target=pair.run, name=f"proxy-{pair.number}-up", daemon=True).start()
