"""The ingest's MQTT subscription: paho-mqtt with manual acknowledgement, handed to asyncio.

paho's own network thread receives (MQTT v5, persistent session); messages wait in a list until
the asyncio consumer takes them, and are acknowledged (PUBACK, in receipt order) only after their
readings are committed. aiomqtt 2.5 has no public manual-ack API (aiomqtt#345), and acknowledging
on receipt would lose what a crash leaves uncommitted. The broker sends each worker at most
`receive_maximum` unacknowledged messages, which bounds memory.

Several workers share the stream through an MQTT v5 shared subscription; a lone worker subscribes
plainly, because Mosquitto 2.0 does not restore shared subscriptions from its persistence after a
restart (seen here with 2.0.11): a plain persistent subscription loses nothing across a restart,
a shared one misses what is published before the workers subscribe again.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterable
from types import TracebackType
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from energyhub.ingest.errors import BrokerUnavailableError
from energyhub.ingest.message import RawMessage
from energyhub.mqtt import MqttEndpoint

log = logging.getLogger(__name__)

KEEPALIVE_S = 30
CONNECT_TIMEOUT_S = 15.0


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
        share_group: str = "energyhub",
        shared: bool = True,
    ) -> None:
        self.endpoint = endpoint
        self.share_group = share_group
        self.shared = shared
        self.client_id = client_id
        self._topics = set(topics)
        self._receive_maximum = receive_maximum
        self._session_expiry_s = session_expiry_s
        self._pending: list[RawMessage] = []
        self._lock = threading.Lock()
        self._ready = asyncio.Event()
        self._connected = asyncio.Event()
        self._subscribed = asyncio.Event()
        self._connect_error: str | None = None
        self.reconnects = 0
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=paho.MQTTv5,
            manual_ack=True,
        )

    async def __aenter__(self) -> MqttSource:
        self._loop = asyncio.get_running_loop()
        client = self._client
        if self.endpoint.username:
            client.username_pw_set(self.endpoint.username, self.endpoint.password)
        if self.endpoint.tls:
            client.tls_set()
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.reconnect_delay_set(min_delay=1, max_delay=15)
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = self._session_expiry_s
        properties.ReceiveMaximum = self._receive_maximum
        try:
            await asyncio.to_thread(
                client.connect,
                self.endpoint.host,
                self.endpoint.port,
                keepalive=KEEPALIVE_S,
                clean_start=False,
                properties=properties,
            )
        except OSError as exc:
            raise BrokerUnavailableError(
                f"cannot reach the MQTT broker at {self.endpoint}: {exc} — check that it is "
                "running and ENERGYHUB_MQTT_URL is right"
            ) from None
        client.loop_start()
        try:
            await asyncio.wait_for(self._connected.wait(), CONNECT_TIMEOUT_S)
            await asyncio.wait_for(self._subscribed.wait(), CONNECT_TIMEOUT_S)
        except TimeoutError:
            client.loop_stop()
            raise BrokerUnavailableError(
                f"the MQTT broker at {self.endpoint} did not accept the connection: "
                f"{self._connect_error or 'no answer'}"
            ) from None
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._client.disconnect()
        await asyncio.to_thread(self._client.loop_stop)

    # --- paho's network thread ---

    def _on_connect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        if reason.is_failure:
            self._connect_error = str(reason)
            log.warning("MQTT broker %s refused %s: %s", self.endpoint, self.client_id, reason)
            return
        if self._connected.is_set():
            self.reconnects += 1
            log.info(
                "reconnected to %s (session present: %s)", self.endpoint, flags.session_present
            )
        self._subscribe(self._topics)
        self._loop.call_soon_threadsafe(self._connected.set)

    def _on_disconnect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        if reason.is_failure:
            log.warning("lost the MQTT broker %s: %s; reconnecting", self.endpoint, reason)

    def _on_subscribe(
        self, client: paho.Client, userdata: Any, mid: int, reasons: Any, properties: Any
    ) -> None:
        failed = [str(reason) for reason in reasons if reason.is_failure]
        if failed:
            log.error("MQTT broker %s refused subscriptions: %s", self.endpoint, ", ".join(failed))
        self._loop.call_soon_threadsafe(self._subscribed.set)

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        raw = RawMessage(
            message.topic, bytes(message.payload), message.qos, message.mid, time.time_ns() // 1000
        )
        with self._lock:
            self._pending.append(raw)
            first = len(self._pending) == 1
        if first:
            self._loop.call_soon_threadsafe(self._ready.set)

    def _filter(self, topic: str, shared: bool) -> str:
        return f"$share/{self.share_group}/{topic}" if shared else topic

    def _subscribe(self, topics: Iterable[str]) -> None:
        """Subscribe in this source's mode and drop the other mode's filters from the session,
        which a worker that changed mode would otherwise still receive twice."""
        ordered = sorted(topics)
        if ordered:
            self._client.subscribe(
                [(self._filter(t, self.shared), SubscribeOptions(qos=1)) for t in ordered]
            )
            self._client.unsubscribe([self._filter(t, not self.shared) for t in ordered])

    # --- the asyncio side ---

    def subscribe(self, topics: Iterable[str]) -> None:
        """Add topics (e.g. devices a reloaded site maps) to the subscription."""
        new = set(topics) - self._topics
        if new:
            self._topics |= new
            self._subscribe(new)

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def wait(self, timeout_s: float) -> None:
        """Until a message is pending or the timeout passes."""
        if not self._pending:
            try:
                await asyncio.wait_for(self._ready.wait(), timeout_s)
            except TimeoutError:
                pass
        self._ready.clear()

    def take(self) -> list[RawMessage]:
        """Every pending message, in receipt order."""
        with self._lock:
            taken, self._pending = self._pending, []
        return taken

    def ack(self, messages: Iterable[RawMessage]) -> None:
        """Acknowledge committed messages, in receipt order (a lost PUBACK means a redelivery)."""
        for message in messages:
            if message.qos > 0:
                self._client.ack(message.mid, message.qos)
