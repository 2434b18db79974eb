"""The ingest worker against the real Mosquitto and PostgreSQL."""

from __future__ import annotations

import asyncio
import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
import yaml

from energyhub.ingest.worker import IngestWorker
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


async def test_a_nul_in_a_meter_name_is_rejected_and_the_stream_goes_on(
    site_db: str, prefix: str
) -> None:
    """The reason quoted the name with its NUL; PostgreSQL refused the reject row, so the batch's
    commit failed on every retry and no reading after it was ever stored or acknowledged. A
    weather forecast on the same prefix is no reading and no reject (it was one)."""
    frame = {"ts": minute(1), "values": {"main\u0000": 1.0, "main": 2.0}}
    weather = {"steps": [{"ts": minute(3), "outdoor_c": 5.0}]}  # forecast weather-listen's
    async with running_worker(ingest_settings(site_db, prefix)):
        await publish([(f"{prefix}/weather/expo/forecast", orjson.dumps(weather))])
        await publish([(f"{prefix}/expo/b01", orjson.dumps(frame)), single(prefix, "main", 2, 3.0)])
        assert await wait_for(site_db, READINGS, 2) == 2
        assert await wait_for(site_db, REJECTED, 1) == 1
    async with connect(site_db) as conn:
        cur = await conn.execute("SELECT reason FROM rejected")
        assert await cur.fetchall() == [("unknown meter expo/b01/main\ufffd",)]


async def test_a_meter_or_key_given_twice_is_rejected_by_name_through_the_broker(
    site_db: str, prefix: str
) -> None:
    """A frame giving `main` twice stored one of its values unseen (the parser kept the last);
    a batch with two items for one meter and time stored one (the store keeps one per meter and
    time); a reading giving `value` twice stored the last. Now each is a named reject, and the
    values beside them are stored."""
    frame = (
        b'{"ts": "%s", "values": {"main": 1.0, "indoor": 21.0, "main": 2.0}}' % minute(1).encode()
    )
    batch = orjson.dumps(
        [
            {"meter": "main", "ts": minute(2), "value": 5.0},
            {"meter": "indoor", "ts": minute(2), "value": 22.0},
            {"meter": "main", "ts": minute(2), "value": 6.0},
        ]
    )
    twice = b'{"ts": "%s", "value": 7.0, "value": 8.0}' % minute(3).encode()
    async with running_worker(ingest_settings(site_db, prefix)):
        await publish([single(prefix, "main", 0, 1.0)])  # the topic takes the short path next
        await publish(
            [
                (f"{prefix}/expo/b01", frame),
                (f"{prefix}/expo/b01", batch),
                (f"{prefix}/expo/b01/main", twice),
            ]
        )
        assert await wait_for(site_db, REJECTED, 3) == 3
        assert await wait_for(site_db, READINGS, 3) == 3
    async with connect(site_db) as conn:
        cur = await conn.execute("SELECT reason FROM rejected ORDER BY id")
        reasons = [row[0] for row in await cur.fetchall()]
        cur = await conn.execute(
            "SELECT m.name, r.value FROM readings r JOIN meters m ON m.id = r.meter_id ORDER BY ts"
        )
        assert await cur.fetchall() == [("main", 1.0), ("indoor", 21.0), ("indoor", 22.0)]

    def at(i: int) -> str:
        return minute(i).replace("+00:00", "Z")

    assert reasons == [
        f"meter b01/main: given 2 times at {at(1)} with different values (1, 2): none stored, "
        "which one it read is unknown",
        f"meter b01/main: given 2 times at {at(2)} with different values (5, 6): none stored, "
        "which one it read is unknown",
        "key 'value' is given twice in one JSON object (a parser keeps the last unseen); "
        "give it once",
    ]


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


EXPO_METERS = [("b01", "main"), ("b02", "main"), ("b03", "plug"), ("b04", "gas"), ("b05", "heat")]


def across_buildings(prefix: str, count: int) -> list[tuple[str, bytes]]:
    """`count` single readings spread over five buildings, each (meter, ts) distinct."""
    return [
        (
            f"{prefix}/expo/{EXPO_METERS[i % 5][0]}/{EXPO_METERS[i % 5][1]}",
            orjson.dumps({"ts": minute(i), "value": float(i)}),
        )
        for i in range(count)
    ]


def received(*workers: IngestWorker) -> list[float]:
    return [w.metrics.value("energyhub_ingest_messages_received_total") for w in workers]


@pytest.mark.parametrize("mode", ["partitioned", "shared"])
async def test_two_workers_split_the_stream(site_db: str, prefix: str, mode: str) -> None:
    settings = ingest_settings(site_db, prefix, ingest_subscription=mode)
    async with (
        running_worker(settings, 0, workers=2) as first,
        running_worker(settings, 1, workers=2) as second,
    ):
        await publish(across_buildings(prefix, 3000))
        assert await wait_for(site_db, READINGS, 3000) == 3000
    assert sum(received(first, second)) == 3000  # each message went to one worker
    assert min(received(first, second)) > 0, received(first, second)


async def test_a_worker_that_joins_a_partitioned_group_drops_its_old_subscription(
    site_db: str, prefix: str
) -> None:
    """A lone worker's session holds `{prefix}/#`; as worker 0 of 2 it must stop receiving
    worker 1's sites, or both would take them."""
    settings = ingest_settings(site_db, prefix)
    async with running_worker(settings):
        pass
    async with (
        running_worker(settings, 0, workers=2) as first,
        running_worker(settings, 1, workers=2) as second,
    ):
        await publish(across_buildings(prefix, 1000))
        assert await wait_for(site_db, READINGS, 1000) == 1000
        await asyncio.sleep(0.5)  # a second delivery would arrive by now
    assert sum(received(first, second)) == 1000


async def test_a_partitioned_group_subscribes_to_a_building_added_by_a_reload(
    site_db: str, prefix: str, example_site_path: Path
) -> None:
    data = yaml.safe_load(example_site_path.read_text())
    park = data["city"]["parks"][0]
    new = {
        "id": "b99",
        "name": "Added",
        "class": "office-B",
        "floor_area_m2": 1000,
        "meters": [{"id": "main", "carrier": "electricity", "quantity": "power_kw"}],
    }
    settings = ingest_settings(site_db, prefix)
    async with (
        running_worker(settings, 0, workers=2) as first,
        running_worker(settings, 1, workers=2) as second,
    ):
        park["buildings"].append(new)
        async with connect(site_db) as conn:
            await sync_site(conn, parse_site(data))
        await asyncio.sleep(2.5)  # the workers poll the site version every 2 s
        await publish([(f"{prefix}/expo/b99/main", orjson.dumps({"ts": minute(0), "value": 1.0}))])
        assert await wait_for(site_db, READINGS, 1) == 1
    assert sum(received(first, second)) == 1


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
