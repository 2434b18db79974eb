"""Delivery: the MQTT notification across a broker restart; webhook retries and signatures."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import numpy as np
import orjson
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from energyhub.alerts.notify import AlertEvent, WebhookError, WebhookNotifier
from energyhub.alerts.service import run_alerts
from energyhub.alerts.store import AlertRow
from energyhub.clock import SystemClock
from energyhub.store.batch import ReadingBatch
from energyhub.store.db import Backend, open_pool
from energyhub.store.embedded import free_port
from energyhub.store.writer import ReadingWriter
from tests.ingest.conftest import Broker

from .conftest import SECRET, Receiver, alert_settings, meter_id, serve, site_with, wait_rows

OFF = {"enabled": False}
SILENCE = {
    "silence": {"meters": ["main"], "intervals": 4, "interval_s": 0.25, "clear_min": 0},
    "limit": OFF,
    "soc": OFF,
}
T0 = datetime(2026, 11, 20, 2, tzinfo=UTC)


async def listen(port: int, topic: str, into: list[dict[str, Any]], ready: asyncio.Event) -> None:
    """A subscriber with a persistent session that reconnects until cancelled."""
    connect = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    connect.SessionExpiryInterval = 300
    while True:
        try:
            async with aiomqtt.Client(
                "127.0.0.1", port, identifier=f"listener-{port}", clean_start=False,
                properties=connect, protocol=aiomqtt.ProtocolVersion.V5,
            ) as client:  # fmt: skip
                await client.subscribe(topic, qos=1)
                ready.set()
                async for message in client.messages:
                    into.append(orjson.loads(bytes(message.payload)))
        except aiomqtt.MqttError:
            await asyncio.sleep(0.1)


async def until(test: Any, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not test():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


@pytest.mark.timed
async def test_mqtt_notifications_survive_a_broker_restart(
    site_db: str, prefix: str, tmp_path: Path
) -> None:
    broker = Broker(tmp_path / "mosquitto")
    broker.start()
    heard: list[dict[str, Any]] = []
    ready = asyncio.Event()
    listener = asyncio.create_task(listen(broker.port, f"{prefix}/p1/b1/alert", heard, ready))
    settings = alert_settings(site_db, prefix, mqtt_url=broker.url)
    stop = asyncio.Event()
    try:
        await asyncio.wait_for(ready.wait(), 10)
        role = asyncio.create_task(
            run_alerts(settings, site_with({"ingest": OFF}, SILENCE), SystemClock(), stop)
        )
        await until(lambda: len(heard) == 1, 10)  # b1/main never heard: silent after 1 s
        broker.stop()
        async with open_pool(site_db, max_size=1) as pool:  # the meter speaks: closes
            ts = np.array([datetime.now(UTC).replace(tzinfo=None)], dtype="datetime64[us]")
            await ReadingWriter(pool, Backend.POSTGRES).write(
                ReadingBatch.from_columns(ts, [await meter_id(site_db, "main")], [100.0])
            )
        await wait_rows(site_db, "silence", lambda r: r[0][4] is not None, 5)
        await asyncio.sleep(1.5)  # ... and goes silent again, all while the broker is down
        broker.start()
        await until(lambda: len(heard) >= 3, 20)
        stop.set()
        await asyncio.wait_for(role, 15)
    finally:
        stop.set()
        listener.cancel()
        broker.stop()
    rows = await wait_rows(site_db, "silence", lambda r: len(r) == 2, 1)
    assert [(m["event"], m["id"]) for m in heard[:3]] == [
        ("opened", rows[0][0]),
        ("closed", rows[0][0]),
        ("opened", rows[1][0]),
    ]


def event() -> AlertEvent:
    row = AlertRow(
        7, "b1", "p1", "limit", "", "critical", "load 470 kW above 90 % of the 500 kW limit",
        T0, None, {"load_kw": 470.0}, None, None, None,
    )  # fmt: skip
    return AlertEvent("opened", row, "b1")


async def deliver(url: str, attempts: int = 4) -> None:
    async with httpx.AsyncClient(timeout=2) as http:
        await WebhookNotifier(http, url, SECRET, attempts, backoff_s=0.2).send(event())


@pytest.mark.parametrize("status", [400, 404, 422])
async def test_webhook_client_errors_are_not_retried(status: int) -> None:
    state = Receiver(statuses=[status])
    server = serve(state)
    try:
        with pytest.raises(WebhookError) as info:
            await deliver(state.url)
    finally:
        server.shutdown()
        server.server_close()
    assert info.value.status == status and info.value.attempts == 1
    assert len(state.requests) == 1 and state.valid(*state.requests[0])


async def test_webhook_server_errors_are_retried_with_the_same_signed_body() -> None:
    state = Receiver(statuses=[500, 503, 429])
    server = serve(state)
    try:
        await deliver(state.url)
    finally:
        server.shutdown()
        server.server_close()
    assert len(state.requests) == 4  # three failures, then 204
    assert len({body for _, body in state.requests}) == 1
    assert all(state.valid(headers, body) for headers, body in state.requests)
    headers, body = state.requests[0]
    assert headers["content-type"] == "application/json"
    assert headers["x-energyhub-event"] == "alert.opened"
    assert orjson.loads(body)["values"] == {"load_kw": 470.0}
    assert not state.valid({"x-energyhub-signature": "sha256=" + "0" * 64}, body)


async def test_webhook_connection_errors_are_retried_until_the_receiver_listens() -> None:
    state = Receiver()
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"
    servers: list[Any] = []
    loop = asyncio.get_running_loop()
    loop.call_later(0.1, lambda: servers.append(serve(state, port)))  # after the first try
    try:
        await deliver(url)
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
    assert len(state.requests) == 1 and state.valid(*state.requests[0])
    with pytest.raises(WebhookError) as info:  # nobody listens at all: every attempt, then up
        await deliver(f"http://127.0.0.1:{free_port()}/hook", attempts=3)
    assert info.value.attempts == 3 and info.value.status is None
    assert "ConnectError" in str(info.value)
