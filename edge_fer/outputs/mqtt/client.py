"""The MQTT publisher: nothing a subscriber trusts is lost while the broker is away.

How delivery works:

- :meth:`MqttPublisher.publish` never blocks on the network; it queues into the outbox: by default the durable
  one (:mod:`edge_fer.outputs.mqtt.store`, a SQLite file, committed before ``publish`` returns), else the
  memory :class:`~edge_fer.outputs.mqtt.outbox.Outbox`. Both are bounded and drop the OLDEST event, counted.
  A message leaves the outbox (and its file) only at the broker's acknowledgement.
- One sender thread hands paho at most ``max_inflight`` messages at a time, in order, only while connected,
  and keeps each one until the broker's PUBACK (``on_publish`` with its mid).
- When the connection drops, unacknowledged messages stay ours. On the next CONNACK, inside ``on_connect``
  and before paho would replay its own copies, we take paho's copies away (``drop_out_messages``) and put ours
  back in front of the queue, so they go out again first and in order. A message may then arrive twice (the
  broker got it but its PUBACK was lost); none is lost. Because we re-send ourselves, the session can be clean:
  no broker-side state is needed, and a broker that lost its database loses nothing of ours either.
- Snapshots (``publish(..., snapshot=True)``: JPEG payloads, QoS 1, not retained) go through the same outbox
  within their own byte share and are sent after the events waiting; they have their own accounting
  (:meth:`MqttPublisher.snapshot_ledger`), so a dropped picture never reads as a lost event nor sets exit 75.
- ``online`` (retained) is the first message of every connection; ``offline`` is the last will and the last
  message of a clean :meth:`close`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import paho.mqtt.client as mqtt

from edge_fer.config.comms import MqttSettings
from edge_fer.logs import Throttle
from edge_fer.outputs.mqtt.connection import RecordingClient, describe_connect_error, guarded
from edge_fer.outputs.mqtt.outbox import DEFAULT_SNAPSHOT_BYTES, Message
from edge_fer.outputs.mqtt.store import open_outbox
from edge_fer.outputs.mqtt.topics import Topics

log = logging.getLogger("edge_fer.mqtt")

ONLINE = b"online"
OFFLINE = b"offline"
MessageHandler = Callable[[str, bytes], None]


@dataclass(frozen=True, slots=True)
class PublisherStats:
    connected: bool
    published: int  # handed to the connection (re-sends included)
    acked: int  # acknowledged by the broker (QoS 1/2) or written to the socket (QoS 0)
    buffered: int  # waiting to be sent, plus sent and not yet acknowledged
    inflight: int  # sent, not yet acknowledged
    dropped: int  # oldest events dropped because the buffer was full
    failed: int  # refused by the broker (MQTT 5 reason code) or unpublishable (e.g. payload too large)
    resent: int  # sent again after a reconnect; these may reach subscribers twice
    connects: int
    connect_failures: int  # refused or failed connection attempts
    callback_errors: int  # exceptions raised in our paho callbacks (bugs; each logged with its traceback)
    last_error: str | None


class MqttPublisher:
    """A buffered, ordered, reconnecting publisher for one device. Thread-safe; start with :meth:`start`."""

    def __init__(self, settings: MqttSettings, *, snapshot_bytes: int = DEFAULT_SNAPSHOT_BYTES) -> None:
        """``snapshot_bytes``: the outbox's share for snapshots (``output.snapshots.publish_queue_mb``)."""
        self.settings = settings
        self.topics = Topics(settings.device, settings.topic_prefix)
        # raises OutboxStoreError (a second daemon on this queue, ...)
        self._outbox = open_outbox(settings, snapshot_bytes)
        self._inflight: dict[int, Message] = {}
        self._lock = threading.Condition()
        self._pub_lock = threading.Lock()  # serialises paho.publish + bookkeeping against on_connect's re-queue
        self._publishing = False
        self._early_acks: dict[int, bool] = {}  # mid -> refused by the broker
        self._connected = False
        self._started = self._stopping = self._closed = False
        self._counts = dict.fromkeys(
            ("published", "acked", "failed", "resent", "connects", "connect_failures", "callback_errors"), 0
        )
        # The one accounting of messages that are not retained (events and stats), which the close line and
        # the exit status use: queued = acknowledged + unsendable + dropped + not delivered (waiting or in flight).
        recovered = getattr(self._outbox, "recovered", 0)
        self._ledger = {"queued": recovered, "recovered": recovered, "acked": 0, "unsendable": 0}
        earlier = getattr(self._outbox, "recovered_snapshots", 0)
        self._snapshot_ledger = {"queued": earlier, "recovered": earlier, "acked": 0, "unsendable": 0}
        self._snapshots_dropped_reported = 0
        self._last_error: str | None = None
        self._attempt_reported = False  # the current connection attempt's failure has been counted
        self._drop_log = Throttle(10.0)  # a gate only: the drop report carries its own counts
        self._dropped_reported = 0
        self._error_log = Throttle(60.0, logger=log)
        self._subscriptions: dict[str, MessageHandler] = {}
        self._on_connect_hooks: list[Callable[[], None]] = []
        self._client = self._make_client()
        self._sender = threading.Thread(target=self._send_loop, name="edge-fer-mqtt-send", daemon=True)

    # -- public API ---------------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def last_error(self) -> str | None:
        return self._last_error

    def stats(self) -> PublisherStats:
        with self._lock:
            return PublisherStats(
                connected=self._connected,
                buffered=len(self._outbox) + len(self._inflight),
                inflight=len(self._inflight),
                dropped=self._outbox.dropped,
                last_error=self._last_error,
                **self._counts,
            )

    def add_on_connect(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` (which should only publish) after every successful connect, on paho's thread."""
        self._on_connect_hooks.append(hook)

    def subscribe(self, topic: str, handler: MessageHandler) -> None:
        """Receive messages on ``topic`` (re-subscribed on every connect); call before :meth:`start`."""
        self._subscriptions[topic] = handler
        self._client.message_callback_add(topic, guarded(self._make_dispatch(handler), self._callback_failed))

    def start(self) -> None:
        """Connect in the background; messages published before the first CONNACK wait in the buffer."""
        if self._started:
            return
        self._started = True
        s = self.settings
        if s.password is not None:
            log.debug("MQTT: authenticating as %r", s.address.username)
        log.info("MQTT: connecting to %s as %s", s.address.url, s.effective_client_id)
        kwargs = {"clean_start": True} if s.protocol == "5" else {}
        self._client.connect_async(s.address.host, s.address.port, s.keepalive, **kwargs)
        self._client.loop_start()
        self._sender.start()

    def publish(
        self,
        topic: str,
        payload: bytes | str,
        *,
        qos: int | None = None,
        retain: bool = False,
        snapshot: bool = False,
    ) -> None:
        """Queue a message; never blocks. Raises ValueError for a bad topic (a bug, not a runtime condition).
        ``snapshot``: a picture, queued in the outbox's snapshot share and counted apart from events."""
        data = payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)
        msg = Message(topic, data, self.settings.qos if qos is None else qos, retain, snapshot=snapshot)
        with self._lock:
            ledger = self._snapshot_ledger if snapshot else self._ledger
            ledger["queued"] += not retain
            if self._closed:
                if snapshot:
                    ledger["unsendable"] += 1
                else:
                    self._outbox.dropped += not retain
                log.warning("MQTT: publisher is closed; dropped a message for %s", topic)
                return
            before = self._outbox.snapshots_dropped
            dropped = self._outbox.put(msg)
            dropped_snapshots = self._outbox.snapshots_dropped - before
            self._lock.notify_all()
        if dropped or dropped_snapshots:
            self._report_drops()

    def wait_connected(self, timeout: float) -> bool:
        with self._lock:
            return self._lock.wait_for(lambda: self._connected, timeout)

    def flush(self, timeout: float) -> bool:
        """Wait until every queued message is acknowledged; False when ``timeout`` ran out first."""
        with self._lock:
            return self._lock.wait_for(lambda: not self._outbox and not self._inflight, max(0.0, timeout))

    def close(self, timeout: float = 5.0, farewell: Iterable[tuple[str, bytes | str]] = ()) -> bool:
        """Clean shutdown: deliver what is queued (bounded by ``timeout``), then the ``farewell`` retained
        messages (e.g. cleared state topics) and ``offline``, then disconnect. True when nothing was lost."""
        if self._closed:
            return True
        deadline = time.monotonic() + timeout
        # With the broker known to be away, waiting would only delay the shutdown (the will said offline);
        # while the first connection is still being made, it is worth the wait.
        away = not self._connected and self._last_error is not None
        if not away:
            self.flush(deadline - time.monotonic())
        for topic, payload in farewell:
            self.publish(topic, payload, retain=True)
        self.publish(self.topics.availability, OFFLINE, retain=True)
        self.flush(0.0 if away else max(deadline - time.monotonic(), 0.5))
        with self._lock:
            self._closed = self._stopping = True
            self._lock.notify_all()
        if self._started:
            self._sender.join(timeout=2.0)
            self._client.disconnect()
            self._client.loop_stop()
        self._report_drops(now=True)
        ledger = self.ledger()
        pictures = self.snapshot_ledger()
        with self._lock:
            self._outbox.close()
        line = self.describe(ledger) + (f"; {text}" if (text := self.describe_snapshots(pictures)) else "")
        log.log(logging.WARNING if ledger["undelivered"] else logging.INFO, "MQTT: closed; %s", line)
        return ledger["undelivered"] == 0

    def outbox_oldest_age(self) -> float | None:
        """Seconds the oldest unacknowledged message has waited (durable outbox only; None otherwise or empty)."""
        with self._lock:
            return self._outbox.oldest_age()

    def release(self) -> None:
        """Let go of the outbox (its file and lock) without connecting: for a publisher that never started."""
        with self._lock:
            if not self._started:
                self._closed = True
                self._outbox.close()

    def ledger(self) -> dict:
        """The one accounting of messages that are not retained (events and stats), for the close line, the
        exit status and the stats: ``queued`` (``recovered`` from an earlier run's file included) =
        ``acked`` + ``unsendable`` + ``dropped`` + ``undelivered`` (waiting or sent and not acknowledged).
        ``lost``: what will never arrive (dropped, unsendable, and undelivered unless the outbox keeps it)."""
        with self._lock:
            undelivered = self._outbox.events + sum(not m.retain and not m.snapshot for m in self._inflight.values())
            out = {**self._ledger, "dropped": self._outbox.dropped, "undelivered": undelivered}
            out["lost"] = out["dropped"] + out["unsendable"] + (0 if self._outbox.durable else undelivered)
            out["kept"] = self._outbox.describe()
            return out

    def snapshot_ledger(self) -> dict:
        """The same accounting for snapshots: ``queued`` = ``acked`` + ``unsendable`` + ``dropped`` (the oldest,
        when their share of the outbox was full) + ``undelivered``. Not part of :meth:`ledger` nor exit 75."""
        with self._lock:
            undelivered = self._outbox.snapshots + sum(m.snapshot for m in self._inflight.values())
            return {**self._snapshot_ledger, "dropped": self._outbox.snapshots_dropped, "undelivered": undelivered}

    @staticmethod
    def describe(ledger: dict) -> str:
        """The ledger as one line that adds up."""
        earlier = f" ({ledger['recovered']} from an earlier run)" if ledger["recovered"] else ""
        unsendable = f", unsendable {ledger['unsendable']}" if ledger["unsendable"] else ""
        text = (
            f"messages (events and stats) queued {ledger['queued']}{earlier}: acknowledged {ledger['acked']}"
            f"{unsendable}, dropped {ledger['dropped']}, not delivered {ledger['undelivered']}"
        )
        return text + (f" ({ledger['kept']})" if ledger["undelivered"] else "")

    @staticmethod
    def describe_snapshots(ledger: dict) -> str:
        """The snapshot ledger as one line that adds up (empty when no snapshot was queued)."""
        if not ledger["queued"]:
            return ""
        earlier = f" ({ledger['recovered']} from an earlier run)" if ledger["recovered"] else ""
        unsendable = f", unsendable {ledger['unsendable']}" if ledger["unsendable"] else ""
        return (
            f"snapshots queued {ledger['queued']}{earlier}: acknowledged {ledger['acked']}{unsendable}, "
            f"dropped {ledger['dropped']}, not delivered {ledger['undelivered']}"
        )

    # -- paho setup and callbacks (paho's network thread) --------------------------------------------------

    def _make_client(self) -> RecordingClient:
        s = self.settings
        protocol = mqtt.MQTTv5 if s.protocol == "5" else mqtt.MQTTv311
        session = {} if s.protocol == "5" else {"clean_session": True}  # MQTT 5: clean_start in connect_async
        client = RecordingClient(
            mqtt.CallbackAPIVersion.VERSION2, client_id=s.effective_client_id, protocol=protocol, **session
        )
        client.suppress_exceptions = True
        if s.address.username is not None:
            client.username_pw_set(s.address.username, s.password.reveal() if s.password is not None else None)
        if s.address.tls:
            client.tls_set_context(s.tls.context())
        client.will_set(self.topics.availability, OFFLINE, qos=max(1, s.qos), retain=True)
        client.reconnect_delay_set(s.reconnect_min_delay, s.reconnect_max_delay)  # type: ignore[arg-type]
        client.max_inflight_messages_set(s.max_inflight)
        client.on_connect = guarded(self._on_connect, self._callback_failed)
        client.on_connect_fail = guarded(self._on_connect_fail, self._callback_failed)
        client.on_pre_connect = guarded(self._on_pre_connect, self._callback_failed)
        client.on_disconnect = guarded(self._on_disconnect, self._callback_failed)
        client.on_publish = guarded(self._on_publish, self._callback_failed)
        return client

    def _acked(self, msg: Message) -> None:
        """The broker has ``msg`` (call under the lock): counted once, and it leaves the outbox for good."""
        self._counts["acked"] += 1
        if msg.snapshot:
            self._snapshot_ledger["acked"] += 1
        else:
            self._ledger["acked"] += not msg.retain
        self._outbox.ack(msg)

    def _callback_failed(self, name: str, exc: BaseException) -> None:
        """A bug in one of our callbacks: logged with its traceback, counted, and the publisher's problem
        (``last_error``) until a connect succeeds, so it shows in the stats and ``/stats.json``. Logged
        before it is counted, so whoever sees the count can find the log line (a test raced on this)."""
        log.error("MQTT: %s raised %s; please report this as a bug", name.lstrip("_"), type(exc).__name__, exc_info=exc)
        with self._lock:
            self._counts["callback_errors"] += 1
            self._last_error = f"internal error in MQTT {name.lstrip('_')}: {type(exc).__name__}: {exc}"

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            hint = " (check username and password)" if reason_code.value in (4, 5, 0x86, 0x87) else ""
            self._set_error(logging.ERROR, f"broker refused the connection: {reason_code}{hint}; {self._retrying}")
            return
        with self._pub_lock:
            client.drop_out_messages()  # ours are re-queued below, in order, ahead of anything newer
            with self._lock:
                pending = list(self._inflight.values())
                self._inflight.clear()
                self._early_acks.clear()
                self._counts["resent"] += self._outbox.requeue(pending)
                self._outbox.put(Message(self.topics.availability, ONLINE, max(1, self.settings.qos), True), first=True)
                self._connected = True
                self._counts["connects"] += 1
                self._last_error = None
                buffered = len(self._outbox)
                self._lock.notify_all()
        self._error_log.flush()  # what was held back is said now; the next problem is logged at once
        self._report_drops(now=True)
        log.info(
            "MQTT: connected to %s as %s (%d messages waiting)",
            self.settings.address.url,
            self.settings.effective_client_id,
            buffered,
        )
        for topic in self._subscriptions:
            client.subscribe(topic, qos=1)
        for hook in self._on_connect_hooks:
            try:
                hook()
            except Exception:
                log.exception("MQTT: on-connect hook failed")

    def _on_connect_fail(self, client, userdata) -> None:
        level, text = describe_connect_error(getattr(client, "connect_error", None), self.settings.address.tls)
        self._set_error(level, f"cannot connect: {text}; {self._retrying}")

    def _on_pre_connect(self, client, userdata) -> None:
        self._attempt_reported = False

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        with self._lock:
            was_connected = self._connected
            self._connected = False
            self._lock.notify_all()
        if self._stopping:
            return
        if was_connected:
            self._set_error(logging.WARNING, f"connection lost ({reason_code}); reconnecting", attempt_failed=False)
        elif not self._attempt_reported:  # closed after TCP/TLS succeeded and before any CONNACK
            hint = " (does the broker require a client certificate?)" if self.settings.address.tls else ""
            self._set_error(
                logging.ERROR, f"the broker closed the connection before accepting it{hint}; {self._retrying}"
            )

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        with self._lock:
            msg = self._inflight.pop(mid, None)
            if msg is None:
                if self._publishing:
                    self._early_acks[mid] = reason_code.is_failure  # the PUBACK beat the sender's bookkeeping
                return
            self._acked(msg)
            if reason_code.is_failure:
                self._counts["failed"] += 1
            self._lock.notify_all()
        if reason_code.is_failure:
            self._error_log.log(
                f"mqtt message refused on {msg.topic}: {reason_code}",
                logging.ERROR,
                "MQTT: broker refused a message on %s: %s (check the broker's ACL)",
                msg.topic,
                reason_code,
            )

    def _make_dispatch(self, handler: MessageHandler) -> Callable[..., None]:
        def dispatch(client, userdata, message) -> None:
            try:
                handler(message.topic, bytes(message.payload))
            except Exception:
                log.exception("MQTT: handler for %s failed", message.topic)

        return dispatch

    @property
    def _retrying(self) -> str:
        return f"retrying with backoff up to {self.settings.reconnect_max_delay:g} s"

    def _set_error(self, level: int, text: str, *, attempt_failed: bool = True) -> None:
        self._attempt_reported = True
        with self._lock:
            self._last_error = text
            self._counts["connect_failures"] += attempt_failed
            waiting = len(self._outbox) + len(self._inflight)
        kind = "mqtt " + text.removesuffix(f"; {self._retrying}")  # the problem, without the advice
        self._error_log.log(kind, level, "MQTT %s: %s; %d messages waiting", self.settings.address.url, text, waiting)

    def _report_drops(self, *, now: bool = False) -> None:
        """Rate-limited while dropping; ``now`` settles the count (on reconnect and at close)."""
        with self._lock:
            total = self._outbox.dropped
            new = total - self._dropped_reported
            pictures = self._outbox.snapshots_dropped
            new_pictures = pictures - self._snapshots_dropped_reported
        if new_pictures and (now or self._drop_log.allow("mqtt snapshot share full")):
            self._snapshots_dropped_reported = pictures
            log.warning(
                "MQTT: snapshot share of the outbox full (%s): dropped %d oldest snapshots since the last report, "
                "%d in total; events are not affected",
                self._outbox.snapshot_bound,
                new_pictures,
                pictures,
            )
        if new and (now or self._drop_log.allow("mqtt buffer full")):
            self._dropped_reported = total
            log.warning(
                "MQTT: buffer full (%s): dropped %d oldest since the last report, %d in total",
                self._outbox.bound,
                new,
                total,
            )

    # -- the sender thread ----------------------------------------------------------------------------------

    def _can_send(self) -> bool:
        return self._connected and bool(self._outbox) and len(self._inflight) < self.settings.max_inflight

    def _send_loop(self) -> None:
        while True:
            with self._lock:
                self._lock.wait_for(lambda: self._stopping or self._can_send())
                if self._stopping:
                    return
            with self._pub_lock:
                with self._lock:
                    if not self._can_send():
                        continue
                    msg = self._outbox.pop()
                    self._publishing = True
                assert msg is not None
                try:
                    info = self._client.publish(msg.topic, msg.payload, msg.qos, msg.retain)
                except (ValueError, TypeError) as exc:
                    with self._lock:
                        self._publishing = False
                        self._counts["failed"] += 1
                        (self._snapshot_ledger if msg.snapshot else self._ledger)["unsendable"] += not msg.retain
                        self._outbox.ack(msg)  # it can never go: do not keep it for the next start
                    log.error("MQTT: cannot publish to %s: %s", msg.topic, exc)
                    continue
                with self._lock:
                    self._publishing = False
                    if msg.qos == 0 and info.rc == mqtt.MQTT_ERR_NO_CONN:
                        self._outbox.requeue([msg])  # paho does not keep QoS 0 messages while disconnected
                        continue
                    self._counts["published"] += 1
                    if info.mid in self._early_acks:
                        self._counts["failed"] += self._early_acks.pop(info.mid)
                        self._acked(msg)
                        self._lock.notify_all()
                    else:
                        self._inflight[info.mid] = msg
