"""Nothing lost, nothing twice: a worker killed, the broker restarted, the database restarted."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from energyhub.sites import load_site
from energyhub.store.db import connect
from energyhub.store.embedded import embedded_postgres
from energyhub.store.migrations import migrate
from energyhub.store.sync import sync_site

from .conftest import Broker, ingest_settings, publish, running_worker, scalar, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timed]

READINGS = "SELECT count(*) FROM readings"
METERS = ["main", "heat", "occupancy", "cooling"]
"""Meters that can read 0 … 20,000 (b01/pv could not: it is bounded by 1.3 × its peak_kw; nor
b01/indoor: a temperature is at most 500 °C)."""


def b01_meters(i: int) -> str:
    return f"expo/b01/{METERS[i % 4]}"


def five_mains(i: int) -> str:
    """The main meters of five buildings, so that workers partitioned by site share the stream."""
    return f"expo/b0{1 + i % 5}/main"


def stream(
    prefix: str, count: int, start: int = 0, topic: Callable[[int], str] = b01_meters
) -> list[tuple[str, bytes]]:
    """`count` single readings, each (meter, ts) distinct, all in the past."""
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
    return [
        (
            f"{prefix}/{topic(i)}",
            orjson.dumps({"ts": (base + timedelta(seconds=i)).isoformat(), "value": float(i)}),
        )
        for i in range(start, start + count)
    ]


async def assert_exactly_once(db_url: str, expected: int) -> None:
    assert await scalar(db_url, READINGS) == expected
    assert await scalar(db_url, "SELECT count(DISTINCT value) FROM readings") == expected


def start_worker(settings_env: dict[str, str]) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENERGYHUB_")} | settings_env
    return subprocess.Popen(
        [sys.executable, "-m", "energyhub", "ingest", "--worker-index", "0"],
        env=env | {"ENERGYHUB_LOG_LEVEL": "INFO"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


async def worker_process(settings_env: dict[str, str]) -> subprocess.Popen[str]:
    """`energyhub ingest` in a process of its own, returned once it has subscribed (what is
    published before that has no session to wait in)."""
    process = start_worker(settings_env)
    assert process.stderr is not None
    log: list[str] = []
    while not any(" subscribed to " in line for line in log):
        line = await asyncio.wait_for(asyncio.to_thread(process.stderr.readline), 60)
        assert line, f"the worker exited before subscribing: {''.join(log)}"
        log.append(line)
    threading.Thread(target=process.stderr.read, daemon=True).start()  # keep the pipe drained
    return process


async def test_worker_sigkill_mid_stream_then_restart(
    site_db: str, prefix: str, broker: Broker
) -> None:
    """On our broker config: the machine's default one drops past 1,000 queued messages."""
    env = {
        "ENERGYHUB_DB_URL": site_db,
        "ENERGYHUB_MQTT_URL": broker.url,
        "ENERGYHUB_MQTT_TOPIC_PREFIX": prefix,
        "ENERGYHUB_MQTT_CLIENT_ID_PREFIX": prefix,
        "ENERGYHUB_INGEST_METRICS_PORT": "0",
        "ENERGYHUB_INGEST_BATCH_ROWS": "500",
    }
    first = await worker_process(env)
    try:
        publisher = asyncio.create_task(publish(stream(prefix, 20_000), broker.url))
        assert await wait_for(site_db, READINGS, 2_000, 60) >= 2_000
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        stored_at_kill = await scalar(site_db, READINGS)
        await publisher
        second = await worker_process(env)
        try:
            assert await wait_for(site_db, READINGS, 20_000, 120) == 20_000
        finally:
            second.terminate()
            second.wait(20)
    finally:
        if first.poll() is None:
            first.kill()
    assert stored_at_kill < 20_000, "the kill came too late to test anything"
    await assert_exactly_once(site_db, 20_000)


async def test_broker_restart_mid_stream(site_db: str, prefix: str, broker: Broker) -> None:
    """A lone worker's plain persistent subscription survives the restart: publishing right
    after it, before the worker is back, loses nothing."""
    settings = ingest_settings(site_db, prefix, mqtt_url=broker.url)
    async with running_worker(settings) as worker:
        await publish(stream(prefix, 5_000), broker.url)
        await wait_for(site_db, READINGS, 1_000, 30)
        broker.stop()
        await asyncio.sleep(1)
        broker.start()
        await publish(stream(prefix, 5_000, start=5_000), broker.url)
        assert await wait_for(site_db, READINGS, 10_000, 90) == 10_000
        assert worker.source.reconnects >= 1
    await assert_exactly_once(site_db, 10_000)


async def test_database_restart_mid_stream(
    prefix: str, example_site_path: Path, broker: Broker
) -> None:
    async with embedded_postgres() as database:
        async with connect(database.url) as conn:
            await migrate(conn)
            await sync_site(conn, load_site(example_site_path))
        settings = ingest_settings(
            database.url,
            prefix,
            mqtt_url=broker.url,
            ingest_receive_maximum=300,
            ingest_batch_rows=200,
            db_connect_timeout_s=1,  # shorter than the outage: the write fails and is retried
        )
        async with running_worker(settings) as worker:
            await publish(stream(prefix, 1_000), broker.url)
            assert await wait_for(database.url, READINGS, 1_000, 30) == 1_000
            await database.stop()
            publisher = asyncio.create_task(publish(stream(prefix, 5_000, 1_000), broker.url))
            await asyncio.sleep(3)  # the worker takes messages, cannot commit, stops acknowledging
            held = [worker.source.unacknowledged]
            for _ in range(10):  # while the database is down, it holds no more than it may
                await asyncio.sleep(0.2)
                held.append(worker.source.unacknowledged)
            await database.start()
            await publisher
            assert await wait_for(database.url, READINGS, 6_000, 90) == 6_000
            assert worker.metrics.value("energyhub_ingest_db_retries_total") >= 1
        assert max(held) <= 300, held
        await assert_exactly_once(database.url, 6_000)


async def test_partitioned_workers_lose_nothing_across_a_broker_restart(
    site_db: str, prefix: str, broker: Broker
) -> None:
    """Their plain persistent subscriptions survive the restart: what is published right after
    it, before either worker is back, waits in their sessions."""
    settings = ingest_settings(site_db, prefix, mqtt_url=broker.url)
    async with (
        running_worker(settings, 0, workers=2) as first,
        running_worker(settings, 1, workers=2) as second,
    ):
        await publish(stream(prefix, 4_000, topic=five_mains), broker.url)
        assert await wait_for(site_db, READINGS, 4_000, 60) == 4_000
        broker.stop()
        broker.start()
        await publish(stream(prefix, 4_000, start=4_000, topic=five_mains), broker.url)
        assert await wait_for(site_db, READINGS, 8_000, 60) == 8_000
        assert first.source.reconnects >= 1 and second.source.reconnects >= 1
    await assert_exactly_once(site_db, 8_000)


async def test_shared_workers_resume_after_a_broker_restart(
    site_db: str, prefix: str, broker: Broker
) -> None:
    """Mosquitto 2.0 does not restore shared subscriptions: the workers subscribe again on
    reconnect, and what was queued or published after that is all stored, once."""
    settings = ingest_settings(site_db, prefix, mqtt_url=broker.url, ingest_subscription="shared")
    async with (
        running_worker(settings, 0, workers=2) as first,
        running_worker(settings, 1, workers=2) as second,
    ):
        await publish(stream(prefix, 4_000), broker.url)
        assert await wait_for(site_db, READINGS, 4_000, 60) == 4_000
        broker.stop()
        broker.start()
        for _ in range(100):
            if first.source.reconnects and second.source.reconnects:
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(0.5)  # the subscriptions follow the reconnect
        await publish(stream(prefix, 4_000, start=4_000), broker.url)
        assert await wait_for(site_db, READINGS, 8_000, 60) == 8_000
    await assert_exactly_once(site_db, 8_000)
