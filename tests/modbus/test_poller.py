"""The poller against the simulator's Modbus TCP gateways, through MQTT into PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import orjson
import pytest

from energyhub.modbus.service import ModbusService
from energyhub.sites import SiteFile
from energyhub.store.db import connect
from energyhub.store.devices import field_devices, offline_meters
from simulators.engine import StepReadings
from simulators.modbus import ModbusGateways
from simulators.plant import Plant, build_plant
from simulators.weather import TimeGrid
from tests.ingest.conftest import ingest_settings, running_worker, scalar

LATEST = (
    "SELECT value FROM meter_latest AS l JOIN meters AS m ON m.id = l.meter_id "
    "WHERE m.site_id = 'b01' AND m.name = %s"
)


def plant_of(site: SiteFile) -> Plant:
    return build_plant(site, TimeGrid(datetime.now(UTC), 60.0, 2), seed=0)


def readings(plant: Plant, values: dict[str, float]) -> StepReadings:
    """One step whose b01 meters read `values` (by meter id)."""
    listed = [0.0] * len(plant.channels)
    for i, channel in enumerate(plant.channels):
        if channel.node.id == "b01" and channel.meter.id in values:
            listed[i] = values[channel.meter.id]
    return StepReadings(0, listed, listed, listed)


async def until(check: Callable[[], Awaitable[bool]], timeout_s: float = 20) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.1)
    return False


@contextlib.asynccontextmanager
async def polling(db_url: str, prefix: str) -> AsyncIterator[ModbusService]:
    service = ModbusService(ingest_settings(db_url, prefix))
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        await asyncio.wait_for(service.ready.wait(), 20)
        yield service
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)


async def latest(db_url: str, meter: str) -> float | None:
    value = await scalar(db_url, LATEST, meter)
    return None if value is None else float(value)


async def gateway_online(db_url: str) -> bool | None:
    async with connect(db_url) as conn:
        states = {d.key: d.online for d in await field_devices(conn) if d.kind == "modbus"}
    return states.get("gw-b01")


async def test_meters_read_over_modbus_reach_the_database(
    modbus_db: str, modbus_site_file: SiteFile, prefix: str
) -> None:
    plant = plant_of(modbus_site_file)
    gateways = ModbusGateways(modbus_site_file, plant)
    gateways.update(readings(plant, {"main": 123.5, "f3": 4321.07}))
    async with gateways, running_worker(ingest_settings(modbus_db, prefix)):
        async with polling(modbus_db, prefix) as service:
            assert await until(lambda: _is(modbus_db, "f3", 4321.07))
            assert await latest(modbus_db, "main") == pytest.approx(123.5)
            gateways.update(readings(plant, {"main": -42.25, "f3": 4321.32}))
            assert await until(lambda: _is(modbus_db, "f3", 4321.32))
            assert await latest(modbus_db, "main") == pytest.approx(-42.25)
            assert service.pollers[0].registers_read > 0
    assert await gateway_online(modbus_db) is True
    assert await scalar(modbus_db, "SELECT count(*) FROM rejected") == 0


async def _is(db_url: str, meter: str, value: float) -> bool:
    got = await latest(db_url, meter)
    return got is not None and abs(got - value) < 1e-6


async def test_a_gateway_that_goes_away_is_offline_then_read_again(
    modbus_db: str, modbus_site_file: SiteFile, prefix: str
) -> None:
    plant = plant_of(modbus_site_file)
    gateways = ModbusGateways(modbus_site_file, plant)
    gateways.update(readings(plant, {"main": 10.0, "f3": 100.0}))
    (server,) = gateways.servers.values()
    async with gateways, running_worker(ingest_settings(modbus_db, prefix)):
        async with polling(modbus_db, prefix):
            assert await until(lambda: _is(modbus_db, "f3", 100.0))
            await server.stop()
            assert await until(lambda: _equals(gateway_online(modbus_db), False))
            main_id = await scalar(
                modbus_db, "SELECT id FROM meters WHERE site_id = 'b01' AND name = 'main'"
            )
            async with connect(modbus_db) as conn:
                offline = await offline_meters(conn, [main_id])
            assert "modbus gw-b01" in offline[main_id][1]
            gateways.update(readings(plant, {"main": 11.0, "f3": 101.0}))
            await server.start()
            assert await until(lambda: _is(modbus_db, "f3", 101.0), timeout_s=40)
            assert await gateway_online(modbus_db) is True


async def _equals(value: Awaitable[object], expected: object) -> bool:
    return await value == expected


async def test_a_gateway_that_never_answers_times_out_and_is_offline(
    modbus_db: str, modbus_port: int, prefix: str
) -> None:
    async def accept_and_ignore(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(-1)  # reads every request, answers none

    silent = await asyncio.start_server(accept_and_ignore, "127.0.0.1", modbus_port)
    async with silent, polling(modbus_db, prefix) as service:
        assert await until(lambda: _equals(gateway_online(modbus_db), False))
    async with connect(modbus_db) as conn:
        (row,) = [d for d in await field_devices(conn) if d.kind == "modbus"]
    assert "no answer" in row.detail
    assert service.pollers[0].online is False


async def test_an_exception_response_is_rejected_and_the_other_unit_still_read(
    modbus_db: str, modbus_site_file: SiteFile, prefix: str
) -> None:
    plant = plant_of(modbus_site_file)
    gateways = ModbusGateways(modbus_site_file, plant)
    gateways.update(readings(plant, {"main": 7.5, "f3": 1.0}))
    (server,) = gateways.servers.values()
    server.images[2] = server.images[2][:41]  # unit 2 lacks f3's second register
    async with gateways, running_worker(ingest_settings(modbus_db, prefix)):
        async with polling(modbus_db, prefix):
            assert await until(lambda: _is(modbus_db, "main", 7.5))
            assert await until(lambda: _count(modbus_db, "SELECT count(*) FROM rejected"))
    reason = await scalar(modbus_db, "SELECT reason FROM rejected ORDER BY id LIMIT 1")
    assert "gw-b01 unit 2 holding registers 40–41: exception 2 (illegal data address)" in reason
    assert "meters f3 not read" in reason
    assert await latest(modbus_db, "f3") is None
    assert await scalar(modbus_db, "SELECT count(*) FROM rejected") == 1  # not once per poll


async def _count(db_url: str, query: str) -> bool:
    return int(await scalar(db_url, query)) > 0


async def test_a_register_that_reads_an_implausible_value_is_rejected_with_the_reason(
    modbus_db: str, modbus_site_file: SiteFile, prefix: str
) -> None:
    """f3 is a counter behind a 20 MW connection: 5 MWh more a poll (0.2 s) later cannot be."""
    plant = plant_of(modbus_site_file)
    gateways = ModbusGateways(modbus_site_file, plant)
    gateways.update(readings(plant, {"main": 123.5, "f3": 4321.07}))
    async with gateways, running_worker(ingest_settings(modbus_db, prefix)):
        async with polling(modbus_db, prefix):
            assert await until(lambda: _is(modbus_db, "f3", 4321.07))
            gateways.update(readings(plant, {"main": 130.0, "f3": 9321.07}))
            assert await until(lambda: _count(modbus_db, "SELECT count(*) FROM rejected"))
            assert await until(lambda: _is(modbus_db, "main", 130.0))  # its neighbour is kept
    reason = await scalar(modbus_db, "SELECT reason FROM rejected ORDER BY id LIMIT 1")
    assert reason.startswith("meter b01/f3: value 9321.07 kWh rose 5000")
    assert "max_rise_kw 40800" in reason, reason
    # the refused reading is not stored; later polls of the same value are (a counter is judged
    # against the reading just before, refused or not, so one bad reading cannot hold it back)
    refused = orjson.loads(
        await scalar(modbus_db, "SELECT payload FROM rejected ORDER BY id LIMIT 1")
    )
    stored_then = await scalar(
        modbus_db,
        "SELECT count(*) FROM readings r JOIN meters m ON m.id = r.meter_id "
        "WHERE m.name = 'f3' AND r.ts = %s",
        datetime.fromisoformat(refused["ts"]),
    )
    assert refused["values"]["f3"] == pytest.approx(9321.07)
    assert stored_then == 0
