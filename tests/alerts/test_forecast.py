"""Rules on 15-minute buckets, on a driven clock: forecast departure (from the active plan's
forecast and from a synthetic one) and a counter meter read incrementally from the rollups."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from energyhub.alerts.evaluator import Evaluator
from energyhub.alerts.series import plan_forecast
from energyhub.clock import ManualClock
from energyhub.store.batch import ReadingBatch
from energyhub.store.db import Backend, connect, open_pool
from energyhub.store.maintenance import refresh_rollups
from energyhub.store.writer import ReadingWriter

from .conftest import small_site

T0 = datetime(2026, 11, 20, 2, tzinfo=UTC)  # 10:00 in Shanghai: daytime, no night rule
GRACE = timedelta(seconds=30)


async def write_quarter(url: str, meter_id: int, start: datetime, kw: float) -> None:
    """A quarter hour of 1-minute power readings, then the rollups refreshed."""
    ts = pd.date_range(start, periods=15, freq="1min").tz_convert(None).values
    batch = ReadingBatch.from_columns(ts, np.full(15, meter_id), np.full(15, kw))
    async with open_pool(url, max_size=1) as pool:
        await ReadingWriter(pool, Backend.POSTGRES).write(batch)
    async with connect(url) as conn:
        await refresh_rollups(conn, Backend.POSTGRES)


async def main_meter(url: str) -> int:
    async with connect(url) as conn:
        row = await (
            await conn.execute("SELECT id FROM meters WHERE site_id = 'b1' AND name = 'main'")
        ).fetchone()
        assert row is not None
        return int(row[0])


async def test_departure_from_a_synthetic_forecast_opens_and_closes(site_db: str) -> None:
    forecast = {"b1": 200.0}

    async def synthetic(
        conn: object, sites: list[tuple[str, str]], bucket: datetime
    ) -> dict[str, float]:
        assert ("b1", "p1") in sites
        return dict(forecast)

    meter = await main_meter(site_db)
    clock = ManualClock(T0)
    async with open_pool(site_db, max_size=2) as pool:
        evaluator = Evaluator(pool, small_site(), clock, forecast=synthetic, rollup_grace=GRACE)
        await evaluator.load()
        for quarter, kw in enumerate([210.0, 330.0, 340.0, 350.0, 205.0, 200.0]):  # band ± 60 kW
            start = T0 + timedelta(minutes=15 * quarter)
            await write_quarter(site_db, meter, start, kw)
            await clock.set(start + timedelta(minutes=15) + GRACE)
            await evaluator.tick()
    async with connect(site_db) as conn:
        cur = await conn.execute(
            "SELECT opened_at, closed_at, opening_values FROM alerts WHERE rule = 'forecast'"
        )
        rows = await cur.fetchall()
    assert len(rows) == 1
    opened_at, closed_at, values = rows[0]
    assert values["forecast_kw"] == 200 and values["band_kw"] == 60 and values["load_kw"] >= 330
    # Departs from the 2nd quarter on; holds 30 min (for_min) → opens when the 4th is read.
    assert opened_at == T0 + timedelta(minutes=60) + GRACE
    assert closed_at == T0 + timedelta(minutes=90) + GRACE  # clear_min 15 after the 5th


async def test_plan_forecast_reads_the_active_plan(site_db: str) -> None:
    async with connect(site_db) as conn:
        cur = await conn.execute(
            "INSERT INTO plans (level, site_id, status, horizon_start, horizon_end, step_s) "
            "VALUES ('park', 'p1', 'active', %s, %s, 3600) RETURNING id",
            (T0, T0 + timedelta(hours=4)),
        )
        row = await cur.fetchone()
        assert row is not None
        for hour, kw in enumerate([100.0, 150.0, 175.0]):
            await conn.execute(
                "INSERT INTO plan_inputs (plan_id, ts, name, value) VALUES (%s, %s, 'b1:electricity_kw', %s)",
                (row[0], T0 + timedelta(hours=hour), kw),
            )
        sites = [("b1", "p1"), ("b2", "p1")]
        assert await plan_forecast(conn, sites, T0 + timedelta(minutes=75)) == {"b1": 150.0}
        assert await plan_forecast(conn, sites, T0 - timedelta(minutes=15)) == {}
