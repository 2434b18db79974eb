"""The weather forecast listener: MQTT messages on `<prefix>/weather/<park>/forecast` stored.

One subscription, one connection; a bad message is logged with what is wrong (its good steps are
still stored) and never stops the loop; a lost broker is retried with a pause.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import aiomqtt
import orjson
import psycopg
from psycopg import AsyncConnection

from energyhub.forecast.store import save_weather
from energyhub.forecast.weather import TOPIC_LEVEL, ParsedWeather, parse_message
from energyhub.json_keys import repeated_key, repeated_key_reason
from energyhub.mqtt import mqtt_client, parse_mqtt_url

log = logging.getLogger(__name__)

RECONNECT_S = 2.0


def weather_topic(prefix: str, park_id: str = "+") -> str:
    return f"{prefix}/{TOPIC_LEVEL}/{park_id}/forecast"


async def store_parsed(conn: AsyncConnection, parsed: ParsedWeather) -> int:
    """Store every issue of a parsed message or file; returns the steps stored."""
    stored = 0
    async with conn.transaction():
        for issue in parsed.issues:
            stored += await save_weather(
                conn, issue.park_id, issue.issued_at, issue.frame, issue.source
            )
    return stored


async def handle(
    conn: AsyncConnection, topic: str, payload: bytes, prefix: str, parks: set[str]
) -> ParsedWeather:
    """Parse and store one message; its problems are logged and returned. A key given twice in
    one object refuses the message, as the ingest and the API do (a parser keeps the last)."""
    try:
        document: object = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        parsed = ParsedWeather(errors=[f"{topic}: not JSON ({exc})"])
    else:
        if (key := repeated_key(payload, document)) is not None:
            parsed = ParsedWeather(errors=[f"{topic}: {repeated_key_reason(key)}"])
        else:
            received = datetime.now(UTC)
            parsed = parse_message(
                topic, document, prefix=prefix, parks=parks, received_at=received
            )
            await store_parsed(conn, parsed)
    for error in parsed.errors:
        log.warning("weather forecast refused: %s", error)
    return parsed


async def listen(
    conn: AsyncConnection,
    mqtt_url: str,
    prefix: str,
    parks: set[str],
    stop: asyncio.Event,
    client_id: str,
) -> None:
    """Store weather forecasts as they arrive until `stop` is set."""
    task = asyncio.create_task(_receive(conn, mqtt_url, prefix, parks, client_id))
    try:
        await stop.wait()
    finally:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass


async def _receive(
    conn: AsyncConnection, mqtt_url: str, prefix: str, parks: set[str], client_id: str
) -> None:
    endpoint = parse_mqtt_url(mqtt_url)
    while True:
        try:
            async with mqtt_client(endpoint, client_id) as client:
                await client.subscribe(weather_topic(prefix), qos=1)
                async for message in client.messages:
                    payload = message.payload
                    raw = payload if isinstance(payload, bytes) else str(payload).encode()
                    try:
                        await handle(conn, str(message.topic), raw, prefix, parks)
                    except psycopg.Error as exc:  # the message is lost, the listener is not
                        log.error("weather forecast not stored: %s", exc)
        except aiomqtt.MqttError as exc:
            log.warning("weather listener: broker lost (%s); retrying in %g s", exc, RECONNECT_S)
            await asyncio.sleep(RECONNECT_S)
