"""Delivery of opened and closed alerts: MQTT (QoS 1) and an optional signed webhook.

A bounded queue decouples delivery from evaluation: a slow webhook never delays the next tick.
The `alerts` table stays the record; a notification that cannot be delivered is logged and dropped.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import aiomqtt
import httpx
import orjson

from energyhub.alerts.store import AlertRow
from energyhub.mqtt import mqtt_client, parse_mqtt_url

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Energyhub-Signature"
"""`sha256=<hex HMAC-SHA256 of the raw body under the shared secret>`, as GitHub signs hooks."""
EVENT_HEADER = "X-Energyhub-Event"
MQTT_ATTEMPTS = 8
MQTT_BACKOFF_S = 0.5
MQTT_BACKOFF_MAX_S = 10.0
"""MQTT retries 0.5, 1, 2, 4, 8, 10, 10 s apart: a broker gone half a minute loses nothing."""


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """An alert opened or closed, with where it belongs."""

    event: Literal["opened", "closed"]
    alert: AlertRow
    building_id: str | None

    def payload(self) -> dict[str, Any]:
        a = self.alert
        return {
            "event": self.event, "id": a.id, "site": a.site_id, "park": a.park_id,
            "building": self.building_id, "rule": a.rule, "subject": a.subject,
            "severity": a.severity, "message": a.message,
            "opened_at": a.opened_at.isoformat(),
            "closed_at": a.closed_at.isoformat() if a.closed_at else None,
            "values": a.closing_values if self.event == "closed" else a.opening_values,
        }  # fmt: skip

    def body(self) -> bytes:
        return orjson.dumps(self.payload())


class Notifier(Protocol):
    async def send(self, event: AlertEvent) -> None:
        """Deliver one event or raise."""
        ...


def alert_topic(prefix: str, park_id: str, building_id: str | None) -> str:
    """`{prefix}/{park}/{building}/alert`; a park-wide alert uses the park id as its building."""
    return f"{prefix}/{park_id}/{building_id or park_id}/alert"


class MqttNotifier:
    """Publishes each event at QoS 1 on its building's alert topic. A lost connection is opened
    anew and the event retried with backoff, so a broker restart delays notifications, not loses
    them (unless it outlasts every attempt)."""

    def __init__(
        self,
        url: str,
        client_id: str,
        prefix: str,
        timeout_s: float = 10,
        attempts: int = MQTT_ATTEMPTS,
        backoff_s: float = MQTT_BACKOFF_S,
    ) -> None:
        self._endpoint = parse_mqtt_url(url)
        self._client_id, self._prefix, self._timeout_s = client_id, prefix, timeout_s
        self._attempts, self._backoff_s = attempts, backoff_s
        self._client: aiomqtt.Client | None = None

    async def _connected(self) -> aiomqtt.Client:
        if self._client is None:
            e = self._endpoint
            client = mqtt_client(e, self._client_id, self._timeout_s)
            await client.__aenter__()
            self._client = client
        return self._client

    async def send(self, event: AlertEvent) -> None:
        topic = alert_topic(self._prefix, event.alert.park_id, event.building_id)
        body = event.body()
        for attempt in range(1, self._attempts + 1):
            try:
                client = await self._connected()
                await client.publish(topic, body, qos=1, timeout=self._timeout_s)
                return
            except aiomqtt.MqttError as exc:
                await self.close()
                if attempt == self._attempts:
                    raise
                delay_s = min(self._backoff_s * 2 ** (attempt - 1), MQTT_BACKOFF_MAX_S)
                log.warning("alert MQTT publish failed (%s), retrying in %.1f s", exc, delay_s)
                await asyncio.sleep(delay_s)

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                await client.__aexit__(None, None, None)
            except aiomqtt.MqttError:
                log.debug("alert MQTT connection already gone")


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookError(Exception):
    """A webhook delivery failed after every attempt; `status` is the last HTTP status, if any."""

    def __init__(self, url: str, attempts: int, status: int | None, reason: str) -> None:
        self.url, self.attempts, self.status = url, attempts, status
        super().__init__(f"webhook {url}: {reason} after {attempts} attempt(s)")


class WebhookNotifier:
    """POSTs each event as JSON with an HMAC signature; retries 5xx, 429 and network errors."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        url: str,
        secret: str,
        attempts: int = 5,
        backoff_s: float = 1.0,
    ) -> None:
        self._client, self._url, self._secret = client, url, secret
        self._attempts, self._backoff_s = attempts, backoff_s

    async def send(self, event: AlertEvent) -> None:
        body = event.body()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(self._secret, body),
            EVENT_HEADER: f"alert.{event.event}",
        }
        status: int | None = None
        reason = "no attempt"
        for attempt in range(1, self._attempts + 1):
            try:
                response = await self._client.post(self._url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                status, reason = None, f"{type(exc).__name__}: {exc}"
            else:
                status = response.status_code
                if status < 300:
                    return
                reason = f"HTTP {status}"
                if status < 500 and status != 429:
                    raise WebhookError(self._url, attempt, status, reason)
            if attempt < self._attempts:
                await asyncio.sleep(self._backoff_s * 2 ** (attempt - 1))
        raise WebhookError(self._url, self._attempts, status, reason)


class Dispatcher:
    """A bounded queue and a delivery task per notifier: a notifier that is down and retrying
    delays only its own deliveries, never the others' nor the evaluation."""

    def __init__(self, notifiers: Sequence[Notifier], capacity: int = 10_000) -> None:
        self._lanes = [(n, asyncio.Queue[AlertEvent](capacity)) for n in notifiers]
        self.dropped = 0

    def submit(self, event: AlertEvent) -> None:
        """Queue an event for every notifier; a full queue drops it (logged), never awaits."""
        for notifier, queue in self._lanes:
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                self.dropped += 1
                log.warning(
                    "alert notification dropped (%s queue full): %s",
                    type(notifier).__name__,
                    event.payload(),
                )

    async def run(self) -> None:
        """Deliver until cancelled."""
        async with asyncio.TaskGroup() as group:
            for notifier, queue in self._lanes:
                group.create_task(self._deliver(notifier, queue))

    @staticmethod
    async def _deliver(notifier: Notifier, queue: asyncio.Queue[AlertEvent]) -> None:
        while True:
            event = await queue.get()
            try:
                await notifier.send(event)
            except Exception as exc:  # every item guarded: the lane never dies
                log.error("alert %s not delivered: %s", event.alert.id, exc)
            finally:
                queue.task_done()

    async def drain(self) -> None:
        """Wait until everything queued so far has been handled."""
        for _, queue in self._lanes:
            await queue.join()
