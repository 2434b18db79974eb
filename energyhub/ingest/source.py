"""The ingest's MQTT subscription: a lean asyncio MQTT 5 receiver that acknowledges after commit.

One persistent session per worker (clean start off, Session Expiry Interval, stable client id),
QoS 1 subscriptions, and a Receive Maximum that bounds what the broker sends before we acknowledge.
Each read of the socket is split in bulk (`mqtt5.split`) into topics, payloads and ready-made
PUBACKs; the worker takes them as `Delivery`s and hands them back to `ack` once their readings are
committed, which writes every PUBACK of the batch in one socket write, in receipt order. A message
received on a connection that has since dropped is never acknowledged on the next one (its packet
id may be reused there): the broker redelivers it, and the `(meter_id, ts)` key absorbs it.

The filters come from `partition.subscriptions`: on every connection the source subscribes to the
filters it holds and unsubscribes those its persistent session may still have from another mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import ssl
import time
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import cast

from energyhub.ingest import mqtt5
from energyhub.ingest.errors import BrokerUnavailableError
from energyhub.ingest.message import Delivery
from energyhub.mqtt import MqttEndpoint
from energyhub.waiting import set_within, within

log = logging.getLogger(__name__)

KEEPALIVE_S = 30
CONNECT_TIMEOUT_S = 15.0
RECONNECT_FIRST_S = 0.25
RECONNECT_MAX_S = 15.0
CLOSE_TIMEOUT_S = 2.0
"""How long a closing source waits for the broker to end the connection after DISCONNECT."""
SILENCE_LIMIT = 1.5
"""Keep-alive periods without a byte from the broker after which the connection is dead."""


class _Protocol(asyncio.Protocol):
    """One TCP (or TLS) connection, numbered so that late callbacks of an old one are ignored."""

    def __init__(self, source: MqttSource, connection: int) -> None:
        self.source, self.connection = source, connection
        self.closed = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        self.source._read(self.connection, data)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)
        self.source._gone(self.connection, exc)


class MqttSource:
    """An async context manager: connect, subscribe, take messages, acknowledge them."""

    def __init__(
        self,
        endpoint: MqttEndpoint,
        client_id: str,
        topics: Iterable[str],
        *,
        receive_maximum: int,
        session_expiry_s: int,
        drop: Iterable[str] = (),
        keepalive_s: int = KEEPALIVE_S,
    ) -> None:
        self.endpoint = endpoint
        self.client_id = client_id
        self.reconnects = 0
        self._topics = set(topics)
        self._drop = set(drop) - self._topics
        self._receive_maximum = receive_maximum
        self._session_expiry_s = session_expiry_s
        self._keepalive_asked_s = keepalive_s
        self._keepalive_s = keepalive_s
        self._connection = 0
        self._transport: asyncio.Transport | None = None
        self._rest = b""
        self._last_read = 0.0
        self._names: dict[bytes, str] = {}
        self._in_topics: list[str] = []
        self._in_payloads: list[bytes] = []
        self._in_received: list[int] = []
        self._in_acks = bytearray()
        self._earlier: list[Delivery] = []
        """Messages of dropped connections, not yet taken."""
        self._taken = 0
        self._ready = asyncio.Event()
        self._lost = asyncio.Event()
        self._closing = False
        self._up = False
        """The current connection was accepted (a drop of it starts the reconnects)."""
        self._connack: asyncio.Future[mqtt5.Connack] | None = None
        self._acks_awaited: dict[int, asyncio.Future[list[int]]] = {}
        self._ids = itertools.cycle(range(1, 65536))
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> MqttSource:
        await self._connect()
        self._task = asyncio.create_task(self._keep_connected())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        transport = self._transport
        if transport is not None:
            # The broker reads what came before the DISCONNECT (the last PUBACKs), then closes.
            # Wait for that: a connection under this client id opened earlier (a restarted
            # worker) takes the session over, and the broker drops the PUBACKs it had not read.
            transport.write(mqtt5.GOODBYE)
            protocol = cast(_Protocol, transport.get_protocol())
            with contextlib.suppress(TimeoutError):
                await within(protocol.closed, CLOSE_TIMEOUT_S)
            transport.close()

    # --- the connection ---

    async def _connect(self) -> None:
        """Open a connection, resume the session and subscribe; BrokerUnavailableError if not."""
        self._connection += 1
        connection = self._connection
        loop = asyncio.get_running_loop()
        self._connack = loop.create_future()
        try:
            transport, _ = await within(
                loop.create_connection(
                    lambda: _Protocol(self, connection),
                    self.endpoint.host,
                    self.endpoint.port,
                    ssl=ssl.create_default_context() if self.endpoint.tls else None,
                ),
                CONNECT_TIMEOUT_S,
            )
        except (OSError, TimeoutError) as exc:
            raise BrokerUnavailableError(
                f"cannot reach the MQTT broker at {self.endpoint}: {exc or 'timed out'} — check "
                "that it is running and ENERGYHUB_MQTT_URL is right"
            ) from None
        self._transport = transport
        self._last_read = time.monotonic()
        transport.write(
            mqtt5.connect_packet(
                self.client_id,
                self._keepalive_asked_s,
                self._session_expiry_s,
                self._receive_maximum,
                self.endpoint.username,
                self.endpoint.password,
            )
        )
        try:
            connack = await within(self._connack, CONNECT_TIMEOUT_S)
        except (TimeoutError, ConnectionError) as exc:
            transport.abort()
            raise BrokerUnavailableError(
                f"the MQTT broker at {self.endpoint} did not accept the connection: "
                f"{exc or 'no answer'}"
            ) from None
        if connack.reason >= 0x80:
            transport.close()
            raise BrokerUnavailableError(
                f"the MQTT broker at {self.endpoint} refused {self.client_id}: "
                f"{mqtt5.reason_text(connack.reason)} {connack.reason_string}".rstrip()
            )
        self._keepalive_s = connack.keepalive_s or self._keepalive_asked_s
        self._up = True
        if connection > 1:
            self.reconnects += 1
            log.info(
                "reconnected to %s (session present: %s)", self.endpoint, connack.session_present
            )
        try:
            await within(
                self._subscribe(sorted(self._topics), sorted(self._drop)), CONNECT_TIMEOUT_S
            )
        except (TimeoutError, ConnectionError) as exc:
            transport.abort()
            raise BrokerUnavailableError(
                f"the MQTT broker at {self.endpoint} did not answer the subscription: "
                f"{exc or 'no answer'}"
            ) from None

    async def _keep_connected(self) -> None:
        """Ping while connected; after a loss reconnect with backoff and resume the session."""
        while True:
            # within, not asyncio.wait_for: a cancellation (the source closing) dropped here
            # would keep this loop pinging and reconnecting, and the close waiting for it
            if not await set_within(self._lost, self._keepalive_s / 2):
                self._ping()
                continue
            delay = RECONNECT_FIRST_S
            while True:
                await asyncio.sleep(delay)
                try:
                    await self._connect()
                    break
                except BrokerUnavailableError as exc:
                    log.warning("%s; retrying in %.1f s", exc, delay)
                    delay = min(delay * 2, RECONNECT_MAX_S)
            self._lost.clear()

    def _ping(self) -> None:
        if self._transport is None:
            return
        if time.monotonic() - self._last_read > SILENCE_LIMIT * self._keepalive_s:
            log.warning("the MQTT broker %s went silent; reconnecting", self.endpoint)
            self._transport.abort()
        else:
            self._transport.write(mqtt5.PING)

    def _read(self, connection: int, data: bytes) -> None:
        if connection != self._connection:
            return
        self._last_read = time.monotonic()
        if self._rest:
            data = self._rest + data
        before = len(self._in_topics)
        control: list[tuple[int, bytes]] = []
        try:
            used = mqtt5.split(
                data,
                self._in_topics,
                self._in_payloads,
                self._in_acks,
                control,
                self._names,
            )
            self._rest = data[used:]
            for first, body in control:
                self._control(first, body)
        except (mqtt5.ProtocolError, IndexError) as exc:
            log.error(
                "unreadable data from the MQTT broker %s: %s; reconnecting", self.endpoint, exc
            )
            if self._transport is not None:
                self._transport.abort()
        received = len(self._in_topics) - before
        if received:  # whole messages before a bad packet are kept (never acknowledged)
            self._in_received.extend(itertools.repeat(time.time_ns() // 1000, received))
            self._ready.set()

    def _control(self, first: int, body: bytes) -> None:
        kind = first & 0xF0
        if first == mqtt5.CONNACK and self._connack is not None and not self._connack.done():
            self._connack.set_result(mqtt5.Connack.parse(body))
        elif first in (mqtt5.SUBACK, mqtt5.UNSUBACK):
            packet_id, reasons = mqtt5.ack_reasons(body)
            waiter = self._acks_awaited.pop(packet_id, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(reasons)
        elif kind == mqtt5.DISCONNECT:
            reason = mqtt5.disconnect_reason(body)
            log.warning(
                "the MQTT broker %s disconnected us: %s", self.endpoint, mqtt5.reason_text(reason)
            )
        elif kind != mqtt5.PINGRESP:
            log.debug("ignored MQTT packet 0x%02x from %s", first, self.endpoint)

    def _gone(self, connection: int, exc: Exception | None) -> None:
        if connection != self._connection:
            return
        if self._in_topics:
            self._earlier.append(self._bundle())
        self._rest = b""
        self._transport = None
        up, self._up = self._up, False
        error = ConnectionError(f"connection lost: {exc or 'closed by the broker'}")
        for waiter in [self._connack, *self._acks_awaited.values()]:
            if waiter is not None and not waiter.done():
                waiter.set_exception(error)
        self._acks_awaited.clear()
        if up and not self._closing:
            log.warning("lost the MQTT broker %s: %s; reconnecting", self.endpoint, error)
            self._lost.set()

    # --- subscriptions ---

    def _send_subscription(
        self, topics: Sequence[str], drop: Sequence[str] = ()
    ) -> asyncio.Future[list[int]]:
        """Subscribe to `topics` and drop `drop` from the session (filters of another mode,
        which would otherwise deliver messages twice or to the wrong worker); the future is
        the last acknowledgement's."""
        if self._transport is None:
            raise ConnectionError("not connected")
        loop = asyncio.get_running_loop()
        packets, waiter = b"", loop.create_future()
        if topics:
            packet_id = next(self._ids)
            packets += mqtt5.subscribe_packet(packet_id, list(topics))
            self._acks_awaited[packet_id] = waiter
            waiter.add_done_callback(lambda done: self._check_suback(list(topics), done))
        if drop:
            packet_id = next(self._ids)
            packets += mqtt5.unsubscribe_packet(packet_id, list(drop))
            if not topics:
                self._acks_awaited[packet_id] = waiter
        if not packets:
            waiter.set_result([])
        self._transport.write(packets)
        return waiter

    def _check_suback(self, topics: list[str], done: asyncio.Future[list[int]]) -> None:
        if done.cancelled() or done.exception() is not None:
            return
        failed = [
            f"{topic}: {mqtt5.reason_text(code)}"
            for topic, code in zip(topics, done.result(), strict=False)
            if code >= 0x80
        ]
        if failed:
            log.error("MQTT broker %s refused subscriptions: %s", self.endpoint, ", ".join(failed))

    async def _subscribe(self, topics: list[str], drop: list[str]) -> None:
        await self._send_subscription(topics, drop)

    def subscribe(self, topics: Iterable[str]) -> None:
        """Add topics (e.g. sites and devices of a reloaded site file) to the subscription."""
        new = set(topics) - self._topics
        if new:
            self._topics |= new
            self._drop -= new
            if self._transport is not None:  # else the reconnect subscribes to every topic
                self._send_subscription(sorted(new))

    # --- the worker's side ---

    def publish(self, topic: str, payload: bytes) -> bool:
        """Send a QoS 0 message now; False (not sent) while the connection is down."""
        if self._transport is None or self._transport.is_closing():
            return False
        self._transport.write(mqtt5.publish_packet(topic, payload))
        return True

    def _bundle(self) -> Delivery:
        delivery = Delivery(
            self._in_topics,
            self._in_payloads,
            self._in_received,
            bytes(self._in_acks),
            self._connection,
        )
        self._in_topics, self._in_payloads, self._in_received = [], [], []
        self._in_acks = bytearray()
        return delivery

    @property
    def pending(self) -> int:
        """Messages received and not yet taken."""
        return len(self._in_topics) + sum(len(d.topics) for d in self._earlier)

    @property
    def unacknowledged(self) -> int:
        """Messages received and not yet acknowledged (or settled, for a dropped connection)."""
        return self.pending + self._taken

    async def wait(self, timeout_s: float) -> None:
        """Until a message is pending or the timeout passes; a cancellation of the caller (the
        worker's) ends it also when a message came in the same turn."""
        if not self.pending:
            await set_within(self._ready, timeout_s)
        self._ready.clear()

    def take(self) -> list[Delivery]:
        """Every pending message, in receipt order."""
        taken, self._earlier = self._earlier, []
        if self._in_topics:
            taken.append(self._bundle())
        self._taken += sum(len(d.topics) for d in taken)
        return taken

    def ack(self, deliveries: Iterable[Delivery]) -> None:
        """Acknowledge committed messages in one write (a lost PUBACK means a redelivery)."""
        deliveries = list(deliveries)
        self._taken -= sum(len(d.topics) for d in deliveries)
        acks = b"".join(d.acks for d in deliveries if d.connection == self._connection)
        if acks and self._transport is not None:
            self._transport.write(acks)
