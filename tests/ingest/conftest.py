"""Ingest fixtures: a migrated database with the example site, a worker, a publisher, brokers."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from energyhub.config import Settings
from energyhub.ingest.worker import IngestWorker
from energyhub.sites import SiteFile, load_site
from energyhub.store.db import connect
from tests.support.broker import Broker

REPO = Path(__file__).resolve().parents[2]
SHARED_BROKER = "mqtt://127.0.0.1:1883"


def ingest_settings(
    db_url: str, prefix: str, mqtt_url: str = SHARED_BROKER, **overrides: Any
) -> Settings:
    """Settings for a worker of this test alone: its own topic prefix, client ids and share group."""
    values: dict[str, Any] = {
        "db_url": db_url,
        "mqtt_url": mqtt_url,
        "mqtt_topic_prefix": prefix,
        "mqtt_client_id_prefix": prefix,
        "ingest_metrics_port": 0,
        "ingest_flush_s": 0.1,
        "ingest_session_expiry_s": 300,
        "rollup_refresh_s": 0.5,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def site_db(
    site_database: Callable[[SiteFile | None], Awaitable[str]], example_site_path: Path
) -> str:
    """A migrated database with the example site loaded (a copy of a template)."""
    return await site_database(load_site(example_site_path))


@asynccontextmanager
async def running_worker(
    settings: Settings, index: int = 0, workers: int = 1
) -> AsyncIterator[IngestWorker]:
    """Worker `index` of `workers`, in process, subscribed before this yields, stopped after."""
    worker = IngestWorker(settings, index, workers=workers)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    ready = asyncio.create_task(worker.ready.wait())
    await asyncio.wait([task, ready], timeout=30, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()  # raises the worker's startup error
    assert worker.ready.is_set(), "the worker did not subscribe within 30 s"
    try:
        yield worker
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def publish(
    messages: Iterable[tuple[str, bytes | str]], mqtt_url: str = SHARED_BROKER
) -> int:
    """Publish at QoS 1 through aiomqtt; returns how many."""
    host, port = mqtt_url.removeprefix("mqtt://").split(":")
    count = 0
    async with aiomqtt.Client(host, int(port), protocol=aiomqtt.ProtocolVersion.V5) as client:
        for topic, payload in messages:
            await client.publish(topic, payload, qos=1)
            count += 1
    return count


async def scalar(db_url: str, query: str, *params: object) -> Any:
    async with connect(db_url) as conn:
        row = await (await conn.execute(query, params or None)).fetchone()
        return row[0] if row else None


async def wait_for(db_url: str, query: str, expected: int, timeout_s: float = 60) -> int:
    """Poll a count until it reaches `expected` (or the timeout); returns the last count."""
    deadline = time.monotonic() + timeout_s
    value = -1
    while time.monotonic() < deadline:
        value = int(await scalar(db_url, query))
        if value >= expected:
            return value
        await asyncio.sleep(0.2)
    return value


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    server = Broker(tmp_path / "mosquitto")
    server.start()
    try:
        yield server
    finally:
        server.stop()
