"""The ingest worker against the real Mosquitto and PostgreSQL."""

from __future__ import annotations

import asyncio
import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import yaml

from energyhub.sites import parse_site
from energyhub.store.db import connect
from energyhub.store.sync import sync_site

from .conftest import ingest_settings, publish, running_worker, scalar, wait_for

READINGS = "SELECT count(*) FROM readings"
REJECTED = "SELECT count(*) FROM rejected"


BASE = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(days=2)


def minute(i: int) -> str:
    """The i-th reading time: 30 s apart, all in the past."""
    return (BASE + timedelta(seconds=30 * i)).isoformat()


def single(prefix: str, meter: str, i: int, value: float) -> tuple[str, bytes]:
    return f"{prefix}/expo/b01/{meter}", orjson.dumps({"ts": minute(i), "value": value})


async def test_readings_stored_once_and_bad_ones_rejected_with_reasons(
    site_db: str, prefix: str
) -> None:
    messages = [single(prefix, "main", i, 100.0 + i) for i in range(50)]
    frame = {"ts": minute(60), "values": {"main": 1.5, "indoor": 21.0, "nope": 3, "pv": "sunny"}}
    async with running_worker(ingest_settings(site_db, prefix)):
        await publish(messages + messages)  # every message twice
        await publish(
            [(f"{prefix}/expo/b01", orjson.dumps(frame)), (f"{prefix}/expo/b01/main", b"{oops")]
        )
        assert await wait_for(site_db, READINGS, 52) == 52
        assert await wait_for(site_db, REJECTED, 3) == 3
    async with connect(site_db) as conn:
        cur = await conn.execute("SELECT topic, reason FROM rejected ORDER BY id")
        rejected = await cur.fetchall()
        cur = await conn.execute(
            "SELECT m.name, r.value FROM readings r JOIN meters m ON m.id = r.meter_id "
            "WHERE r.ts = %s ORDER BY 1",
            (datetime.fromisoformat(minute(60)),),
        )
        assert await cur.fetchall() == [("indoor", 21.0), ("main", 1.5)]
    assert (f"{prefix}/expo/b01", "unknown meter expo/b01/nope") in rejected
    assert (f"{prefix}/expo/b01", "meter pv: value must be a number, got 'sunny'") in rejected
    assert any(reason.startswith("payload is not JSON") for _, reason in rejected)
    assert await scalar(site_db, "SELECT count(DISTINCT (meter_id, ts)) FROM readings") == 52


async def test_site_reload_maps_new_meters_without_a_restart(
    site_db: str, prefix: str, example_site_path: Path
) -> None:
    async with running_worker(ingest_settings(site_db, prefix)):
        await publish([single(prefix, "f9", 0, 1.0)])
        assert await wait_for(site_db, REJECTED, 1) == 1
        data = yaml.safe_load(example_site_path.read_text())
        data["city"]["parks"][0]["buildings"][0]["meters"].append(
            {"id": "f9", "carrier": "electricity", "quantity": "energy_kwh", "submeter_of": "main"}
        )
        async with connect(site_db) as conn:
            await sync_site(conn, parse_site(copy.deepcopy(data)))
        await asyncio.sleep(2.5)  # the worker polls the site version every 2 s
        await publish([single(prefix, "f9", 1, 2.0)])
        assert await wait_for(site_db, READINGS, 1) == 1
    assert await scalar(site_db, REJECTED) == 1


async def test_two_workers_split_the_shared_subscription(site_db: str, prefix: str) -> None:
    meters = ["main", "indoor", "occupancy"]
    messages = [single(prefix, meters[i % 3], i, float(i)) for i in range(3000)]
    settings = ingest_settings(site_db, prefix)
    async with (
        running_worker(settings, 0, shared=True) as first,
        running_worker(settings, 1, shared=True) as second,
    ):
        await publish(messages)
        assert await wait_for(site_db, READINGS, 3000) == 3000
    received = [
        w.metrics.value("energyhub_ingest_messages_received_total") for w in (first, second)
    ]
    assert sum(received) == 3000
    assert min(received) > 0, received


async def test_device_payloads_through_the_broker(
    site_db: str, prefix: str, example_site_path: Path
) -> None:
    data = yaml.safe_load(example_site_path.read_text())
    plug = data["city"]["parks"][0]["buildings"][2]["meters"][2]
    plug["device"]["device"] = f"{prefix}-plug"
    async with connect(site_db) as conn:
        await sync_site(conn, parse_site(data))
    local_time = (datetime.now(UTC) + timedelta(hours=8)).replace(tzinfo=None, microsecond=0)
    sensor = {"Time": local_time.isoformat(), "ENERGY": {"Total": 42.5, "Power": 300}}
    async with running_worker(ingest_settings(site_db, prefix)):
        await publish([(f"tele/{prefix}-plug/SENSOR", orjson.dumps(sensor))])
        assert await wait_for(site_db, READINGS, 1) == 1
    stored = await scalar(site_db, "SELECT ts FROM readings")
    assert stored == local_time.replace(tzinfo=UTC) - timedelta(hours=8)
    assert await scalar(site_db, "SELECT value FROM readings") == 42.5


async def test_rollups_follow_the_stream(site_db: str, prefix: str) -> None:
    messages = [single(prefix, "main", i, 10.0) for i in range(30)]
    async with running_worker(ingest_settings(site_db, prefix)):
        await publish(messages)
        assert await wait_for(site_db, READINGS, 30) == 30
        assert await wait_for(site_db, "SELECT coalesce(sum(n), 0) FROM readings_15m", 30, 10) == 30
    assert await scalar(site_db, "SELECT sum(sum_value) FROM readings_15m") == 300.0
