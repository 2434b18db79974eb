"""A database per storage path holding half a day of the simulated example park, rejects and plans.

Readings come from the simulators' plant and engine (the values `energyhub simulate` publishes,
counters as registers) and are stored by the ReadingWriter, as the ingest stores them.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pytest
from psycopg import AsyncConnection, sql
from psycopg.types.range import Range

from energyhub.alerts.store import close_alert, open_alert
from energyhub.carbon.accounting import carbon_report
from energyhub.sites import SiteFile, load_site
from energyhub.store.batch import ReadingBatch
from energyhub.store.db import Backend, connect, installed_backend, open_pool
from energyhub.store.migrations import migrate
from energyhub.store.queries import meter_series, site_meter_ids
from energyhub.store.sync import sync_site
from energyhub.store.writer import ReadingWriter, RejectedRow
from simulators.engine import Engine, SetpointBook
from simulators.plant import build_plant
from simulators.weather import TimeGrid
from tests.conftest import ADMIN_URL, REPO, reset_tsdb
from tests.grafana.macros import Chosen, TimeRange, expand

STEP_S = 300
HOURS = 12
PLAN_STEP = timedelta(minutes=15)
REJECTS = (
    ("energyhub/expo/b01", "{not json", "payload is not JSON: Expecting value: line 1 column 2"),
    ("energyhub/expo/b01/main", '{"ts": "x", "value": 1}', "ts is not RFC 3339, got 'x'"),
    ("energyhub/expo/b01/main", '{"ts": "y", "value": 1}', "ts is not RFC 3339, got 'y'"),
    ("energyhub/expo/b09/main", '{"ts": 1, "value": 1}', "unknown meter expo/b09/main"),
    ("energyhub/expo/b02/main", '{"ts": 1, "value": 1e999}', "value is not finite, got inf"),
)

REFERENCE_METERS = ("expo/chp-el", "b01/f3", "b01/f7", "b04/lab2")


@dataclass(frozen=True)
class PanelDb:
    """A populated database: URL, storage path, simulated range, and store/queries.py's answers.

    At 15 minutes: `load` is the load by carrier of a building and of the park, `meters` the
    `meter_series` of the park CHP's electricity and of Acme's sub-meters (`site/meter` → kW), all
    computed before the tests hold the (on TimescaleDB: only) connection.
    """

    url: str
    backend: Backend
    time_range: TimeRange
    load: dict[str, pd.DataFrame]
    meters: dict[str, pd.DataFrame]
    market: MarketCase | None = None


INSTRUMENT = """
INSERT INTO green_instruments (kind, site_id, registry, project, technology, location, vintage,
    serials, mwh, supplier_kg_per_kwh, delivery, recorded_by, reason)
VALUES (%s, 'b01', 'GEC', 'p', 'wind', 'x', 2026, %s, %s, %s, %s, 't', 't') RETURNING id"""
RETIRE = """
INSERT INTO green_retirements (instrument_id, registry, site_id, period, period_label, serials,
    mwh, recorded_by, reason)
VALUES (%s, 'GEC', %s, tstzrange(%s, %s), 'range', %s, %s, 't', 't')"""
CITY_RESIDUAL_MIX = """
UPDATE sites SET attributes = jsonb_set(attributes, '{carbon}',
    coalesce(attributes->'carbon', '{}') || jsonb_build_object('residual_mix_kg_per_kwh', %s::float8))
WHERE kind = 'city'"""
MARKET_RESIDUAL_MIX = 0.6


@dataclass(frozen=True)
class MarketCase:
    """Two contract claims retired for the range (site, MWh, supplier kg/kWh) that cover part of
    the electricity, with the park report's market-based Scope 2 for them (carbon/market.py)."""

    claims: tuple[tuple[str, float, float], ...]
    report_market_kg: float
    report_contract_kwh: float
    report_electricity_kwh: float


def _steps(site: SiteFile, start: datetime) -> tuple[list[str], np.ndarray]:
    """Channel keys (`site/meter`) and the published values, one row per step."""
    grid = TimeGrid(start.astimezone(site.tz), STEP_S, HOURS * 3600 // STEP_S)
    plant = build_plant(site, grid, seed=7)
    engine = Engine(plant, SetpointBook(3600.0), reset_per_step=0.0)
    keys = [f"{c.node.id}/{c.meter.id}" for c in plant.channels]
    return keys, np.array([engine.step(t).value for t in range(grid.steps)], dtype=np.float64)


async def _store_readings(url: str, site: SiteFile, start: datetime, backend: Backend) -> None:
    keys, values = _steps(site, start)
    async with connect(url) as conn:
        cur = await conn.execute("SELECT site_id || '/' || name, id FROM meters")
        ids = dict(await cur.fetchall())
    steps, channels = values.shape
    ts = np.datetime64(start.replace(tzinfo=None), "us") + np.arange(steps) * np.timedelta64(
        STEP_S, "s"
    )
    batch = ReadingBatch.from_columns(
        np.repeat(ts, channels),
        np.tile([ids[key] for key in keys], steps),
        values.reshape(-1),
    )
    received = start + timedelta(hours=HOURS - 1)
    rejected = [
        RejectedRow(received + timedelta(minutes=7 * i), topic, payload, reason)
        for i, (topic, payload, reason) in enumerate(REJECTS)
    ]
    async with open_pool(url, max_size=1) as pool:
        await ReadingWriter(pool, backend).write(batch, rejected)


def _plan_steps(site_id: str, asset: str, start: datetime, steps: int) -> list[tuple]:
    """A storage plan: import, export, charge, discharge and SOC of one asset, per step."""
    rows = []
    for i in range(steps):
        ts = start + i * PLAN_STEP
        charge = 200.0 if i % 8 < 4 else 0.0
        rows += [
            (ts, f"{site_id}:import_kw", 900.0 + charge),
            (ts, f"{site_id}:export_kw", 0.0),
            (ts, f"{asset}:charge_kw", charge),
            (ts, f"{asset}:discharge_kw", 150.0 - charge / 2),
            (ts, f"{asset}:soc_kwh", 400.0 + 10 * (i % 8)),
        ]
    return rows


async def _store_plans(url: str, start: datetime) -> None:
    horizon = start + timedelta(hours=HOURS // 2)
    steps = HOURS * 4
    plans = (
        ("park", "expo", "expo-bess", "active", 152_000.0, 98_000.0),
        ("building", "b01", "b01-bess", "draft", 21_500.0, 14_200.0),
    )
    async with connect(url) as conn:
        for level, site_id, asset, status, cost, co2 in plans:
            cur = await conn.execute(
                """INSERT INTO plans (level, site_id, status, horizon_start, horizon_end, step_s,
                       objective_cny, cost_terms_cny, co2_kg, baseline)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id""",
                (
                    level,
                    site_id,
                    status,
                    horizon,
                    horizon + steps * PLAN_STEP,
                    int(PLAN_STEP.total_seconds()),
                    cost,
                    psycopg.types.json.Jsonb({"energy": cost * 0.8, "demand": cost * 0.2}),
                    co2,
                    psycopg.types.json.Jsonb(
                        {
                            "cost_cny": cost * 1.1,
                            "co2_kg": co2 * 1.05,
                            "cost_terms_cny": {"energy": cost * 0.85, "demand": cost * 0.25},
                        }
                    ),
                ),
            )
            (plan_id,) = await cur.fetchone() or (None,)
            async with conn.cursor().copy(
                "COPY plan_steps (plan_id, ts, name, value) FROM STDIN"
            ) as copy:
                for row in _plan_steps(site_id, asset, horizon, steps):
                    await copy.write_row((plan_id, *row))


async def _load(
    conn: AsyncConnection, backend: Backend, site_id: str, rng: TimeRange
) -> pd.DataFrame:
    """`site_series` at 15 minutes (kW and kWh), except that a bucket whose every meter is unknown
    (a counter's first interval) is absent rather than 0 — site_series sums NaN to 0 there."""
    ids = await site_meter_ids(conn, site_id)
    per_meter = await meter_series(conn, backend, ids, rng.start, rng.end, timedelta(minutes=15))
    cur = await conn.execute("SELECT id, carrier FROM meters WHERE id = ANY(%s)", (ids,))
    carriers = pd.DataFrame(await cur.fetchall(), columns=["meter_id", "carrier"])
    joined = per_meter.merge(carriers, on="meter_id")
    grouped = joined.groupby(["bucket", "carrier"])
    summed = pd.DataFrame(
        {
            "power_kw": grouped["value"].sum(min_count=1),
            "energy_kwh": grouped["energy_kwh"].sum(min_count=1),
        }
    ).dropna(subset=["power_kw"])
    return summed.reset_index()


async def _market_case(conn: AsyncConnection, backend: Backend, rng: TimeRange) -> MarketCase:
    """The park report with two contract claims that only partly cover its electricity: one for
    b01 (30 % of b01's), one for the park (20 % of the park's), all rolled back afterwards."""
    async with conn.transaction(force_rollback=True):
        await conn.execute(CITY_RESIDUAL_MIX, (MARKET_RESIDUAL_MIX,))
        plain = await carbon_report(conn, backend, "expo", rng.start, rng.end)
        b01 = next(line for line in plain.lines if line.site_id == "b01")
        claims = (
            ("b01", round(0.3 * b01.energy_kwh.electricity / 1000, 3), 0.1),
            ("expo", round(0.2 * plain.energy_kwh.electricity / 1000, 3), 0.3),
        )
        delivery = Range(rng.start, rng.end, "[)")
        for site_id, mwh, factor in claims:
            cur = await conn.execute(INSTRUMENT, ("contract", None, mwh, factor, delivery))
            row = await cur.fetchone()
            assert row is not None
            await conn.execute(RETIRE, (row[0], site_id, rng.start, rng.end, None, mwh))
        report = await carbon_report(conn, backend, "expo", rng.start, rng.end)
    assert report.scope2_market is not None
    return MarketCase(
        claims,
        report.scope2_market.market_kg,
        report.scope2_market.contract_kwh,
        report.scope2_market.electricity_kwh,
    )


async def _references(url: str, backend: Backend, time_range: TimeRange) -> PanelDb:
    start, end, step = time_range.start, time_range.end, timedelta(minutes=15)
    async with connect(url) as conn:
        load = {s: await _load(conn, backend, s, time_range) for s in ("b01", "expo")}
        cur = await conn.execute("SELECT site_id || '/' || name, id FROM meters")
        ids = dict(await cur.fetchall())
        meters = {
            name: await meter_series(conn, backend, [ids[name]], start, end, step)
            for name in REFERENCE_METERS
        }
        market = await _market_case(conn, backend, time_range)
    return PanelDb(url, backend, time_range, load, meters, market)


async def _store_alerts(url: str, start: datetime) -> None:
    """A closed limit alert of b01 and an open park-wide ingest alert, in the time range."""
    async with connect(url) as conn:
        limit = ("b01", "limit", "")
        values = {"load_kw": 480.0}
        await open_alert(conn, limit, "expo", "critical", "load high", start, values)
        await close_alert(conn, limit, start + timedelta(hours=1), {"load_kw": 300.0})
        ingest = ("expo", "ingest", "")
        await open_alert(conn, ingest, "expo", "critical", "ingest lag", start, {"lag_s": 400.0})


async def _populate(url: str, site_path: Path, time_range: TimeRange) -> PanelDb:
    start = time_range.start
    site = load_site(site_path)
    async with connect(url) as conn:
        await migrate(conn)
        await sync_site(conn, site)
        backend = await installed_backend(conn)
    await _store_readings(url, site, start, backend)
    await _store_plans(url, start)
    await _store_alerts(url, start)
    async with connect(url) as conn:  # since v011 both paths keep rollup tables
        await conn.execute("SELECT energyhub_refresh_dirty_rollups()")
    return await _references(url, backend, time_range)


@pytest.fixture(scope="package", params=["postgres", "timescaledb"])
def panel_db(request: pytest.FixtureRequest) -> Iterator[PanelDb]:
    """The example park's last half day on each storage path (built once for the package)."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    start = now - timedelta(hours=HOURS, minutes=now.minute % 15)  # counters' first bucket: NULL
    time_range = TimeRange(start, start + timedelta(hours=HOURS))
    site_path = REPO / "examples" / "expo-park.yaml"
    if request.param == "timescaledb":
        url = str(request.getfixturevalue("tsdb_server"))
        reset_tsdb(url)
        yield asyncio.run(_populate(url, site_path, time_range))
        return
    name = f"eh_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = f"{ADMIN_URL.rpartition('/')[0]}/{name}"
    try:
        yield asyncio.run(_populate(url, site_path, time_range))
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture(scope="package")
def conn(panel_db: PanelDb) -> Iterator[psycopg.Connection]:
    """One connection for the package (the TimescaleDB test server takes one at a time)."""
    with psycopg.connect(panel_db.url, autocommit=True) as connection:
        yield connection


def run(
    conn: psycopg.Connection, db: PanelDb, text: str, chosen: dict[str, Chosen], interval: str
) -> tuple[list[str], list[tuple]]:
    """Panel or variable SQL, expanded as Grafana would for this database: columns and rows."""
    statement = expand(text, chosen, db.time_range, interval, db.backend is Backend.TIMESCALEDB)
    cur = conn.execute(statement.encode())
    return [c.name for c in cur.description or []], cur.fetchall()
